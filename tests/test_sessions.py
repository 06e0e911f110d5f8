"""Server-side sessions: what a browser and the Redis server see."""

from __future__ import annotations

import datetime
import json
import pickle
import time
import typing as t

import pytest
import redis
from flask import Flask, request, session

from flaskstack.forms import csrf
from flaskstack.sessions import _request_session, destroy, rotate

if t.TYPE_CHECKING:
    from conftest import AppFactory
    from flask.testing import FlaskClient
    from redis_servers import RedisServer

SHARED_REDIS = "redis://127.0.0.1:6379/0"


def add_views(app: Flask) -> Flask:
    @app.get("/plain")
    def plain() -> str:
        return "no session here"

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"name": session.get("name"), "visits": session.get("visits")}

    @app.post("/login/<name>")
    @csrf.exempt  # these tests are about sessions; CSRF has its own
    def login(name: str) -> str:
        rotate()
        session["name"] = name
        return "ok"

    @app.post("/visit")
    @csrf.exempt  # these tests are about sessions; CSRF has its own
    def visit() -> dict[str, int]:
        session["visits"] = session.get("visits", 0) + 1
        return {"visits": session["visits"]}

    @app.post("/logout")
    @csrf.exempt  # these tests are about sessions; CSRF has its own
    def logout() -> str:
        destroy()
        return "bye"

    @app.post("/store-types")
    @csrf.exempt  # these tests are about sessions; CSRF has its own
    def store_types() -> str:
        session["when"] = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        session["pair"] = (1, 2)
        session["raw"] = b"\x00\xff"
        return "ok"

    @app.get("/types")
    def types() -> dict[str, str]:
        return {k: type(session[k]).__name__ for k in ("when", "pair", "raw")}

    return app


@pytest.fixture
def namespace(namespace: t.Callable[[], str]) -> str:
    """A namespace of its own on the shared Redis (conftest's), emptied afterwards."""
    return namespace()


@pytest.fixture
def shared(namespace: str) -> t.Iterator[redis.Redis]:
    client = redis.Redis.from_url(SHARED_REDIS)
    yield client
    client.close()


@pytest.fixture
def client(make_app: AppFactory, namespace: str) -> FlaskClient:
    app = make_app({"FLASKSTACK_REDIS_URL": SHARED_REDIS, "FLASKSTACK_NAMESPACE": namespace})
    return add_views(app).test_client()


def session_keys(shared: redis.Redis, namespace: str) -> list[bytes]:
    return sorted(shared.scan_iter(match=f"{namespace}:session:*"))


def cookie(client: FlaskClient) -> str | None:
    found = client.get_cookie("session")
    return None if found is None else found.value


def test_untouched_session_sets_nothing(
    client: FlaskClient, shared: redis.Redis, namespace: str
) -> None:
    response = client.get("/plain")
    assert "Set-Cookie" not in response.headers
    assert "Cookie" not in response.headers.get("Vary", "")
    assert session_keys(shared, namespace) == []


def test_write_then_read(client: FlaskClient, shared: redis.Redis, namespace: str) -> None:
    assert client.post("/visit").get_json() == {"visits": 1}
    (key,) = session_keys(shared, namespace)
    sid = key.decode().rsplit(":", 1)[1]
    assert len(sid) >= 43  # 256 random bits
    assert cookie(client).startswith(sid + ".")  # signed id, no data in the cookie
    ttl = shared.ttl(key)
    assert 31 * 86400 - 10 < ttl <= 31 * 86400  # PERMANENT_SESSION_LIFETIME
    stored = json.loads(shared.get(key))  # plain JSON, not pickle
    assert stored == {"visits": 1}

    response = client.get("/read")
    assert response.get_json() == {"name": None, "visits": 1}
    assert "Set-Cookie" not in response.headers  # nothing changed
    assert "Cookie" in response.headers["Vary"]
    assert client.post("/visit").get_json() == {"visits": 2}
    assert session_keys(shared, namespace) == [key]


def test_a_rotated_secret_key_keeps_sessions_through_its_fallbacks(client: FlaskClient) -> None:
    app = client.application
    client.post("/visit")
    assert client.get("/read").get_json() == {"name": None, "visits": 1}

    # The key changes while the app runs, the old one kept as a fallback.
    app.config["SECRET_KEY_FALLBACKS"] = [app.secret_key]
    app.secret_key = "a-new-key-" + "x" * 40
    assert client.get("/read").get_json() == {"name": None, "visits": 1}

    app.config["SECRET_KEY_FALLBACKS"] = []  # the old key retired: its cookies are refused
    assert client.get("/read").get_json() == {"name": None, "visits": None}


def test_tagged_types_survive(client: FlaskClient) -> None:
    client.post("/store-types")
    assert client.get("/types").get_json() == {"when": "datetime", "pair": "tuple", "raw": "bytes"}


def test_rotation_issues_a_new_id_and_kills_the_old_one(
    client: FlaskClient, shared: redis.Redis, namespace: str
) -> None:
    client.post("/visit")
    before = cookie(client)
    (old_key,) = session_keys(shared, namespace)
    client.post("/login/alice")
    after = cookie(client)
    assert after != before
    (new_key,) = session_keys(shared, namespace)
    assert new_key != old_key
    assert client.get("/read").get_json() == {"name": "alice", "visits": 1}

    # The old cookie (e.g. planted by an attacker before login) is now worthless.
    client.set_cookie("session", before)
    assert client.get("/read").get_json() == {"name": None, "visits": None}


def test_logout_deletes_the_key_and_the_cookie(
    client: FlaskClient, shared: redis.Redis, namespace: str
) -> None:
    client.post("/login/alice")
    stolen = cookie(client)
    response = client.post("/logout")
    assert "session=;" in response.headers["Set-Cookie"]
    assert session_keys(shared, namespace) == []
    client.set_cookie("session", stolen)
    assert client.get("/read").get_json() == {"name": None, "visits": None}


@pytest.mark.parametrize(
    "bad_cookie",
    [
        "garbage",
        "",
        "a" * 4000,
        "x.y.z",
        "\u2603.snowman",
        "tampered-id-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.c2lnbmF0dXJl",
    ],
)
def test_bad_cookies_start_a_fresh_session(
    client: FlaskClient, shared: redis.Redis, namespace: str, bad_cookie: str
) -> None:
    client.set_cookie("session", bad_cookie)
    response = client.get("/read")
    assert response.status_code == 200
    assert response.get_json() == {"name": None, "visits": None}
    client.set_cookie("session", bad_cookie)
    assert client.post("/visit").get_json() == {"visits": 1}
    assert cookie(client) != bad_cookie
    assert len(session_keys(shared, namespace)) == 1


def test_an_unknown_but_signed_id_is_not_adopted(
    client: FlaskClient, shared: redis.Redis, namespace: str
) -> None:
    client.post("/visit")
    signed = cookie(client)
    assert signed is not None
    shared.delete(*session_keys(shared, namespace))  # expired on the server
    client.set_cookie("session", signed)
    client.post("/visit")
    assert cookie(client) != signed  # a new id, never the one the client offered
    (key,) = session_keys(shared, namespace)
    assert key.decode().rsplit(":", 1)[1] != signed.split(".")[0]


def test_pickle_in_redis_is_never_unpickled(
    client: FlaskClient, shared: redis.Redis, namespace: str
) -> None:
    client.post("/visit")
    (key,) = session_keys(shared, namespace)

    class Exploit:
        def __reduce__(self) -> tuple[t.Any, ...]:
            return (pytest.fail, ("pickle was loaded",))

    shared.set(key, pickle.dumps(Exploit()))
    response = client.get("/read")
    assert response.status_code == 200
    assert response.get_json() == {"name": None, "visits": None}


def test_permanent_sessions_get_an_expiring_cookie(client: FlaskClient) -> None:
    app = client.application

    @app.post("/remember")
    @csrf.exempt  # these tests are about sessions; CSRF has its own
    def remember() -> str:
        session.permanent = True
        session["name"] = "alice"
        return "ok"

    response = client.post("/remember")
    assert "Expires=" in response.headers["Set-Cookie"]


def test_cookie_sessions_without_redis_have_the_same_api(make_app: AppFactory) -> None:
    client = add_views(make_app()).test_client()
    client.post("/visit")
    client.post("/login/bob")
    assert client.get("/read").get_json() == {"name": "bob", "visits": 1}
    client.post("/logout")
    assert client.get("/read").get_json() == {"name": None, "visits": None}


# Commands an app sends for data; sentinels and replicas add their own
# (PING, INFO, PUBLISH, REPLCONF) to the servers they watch.
DATA_COMMANDS = {"get", "getex", "set", "del", "unlink", "mget", "keys", "scan", "flushdb"}


class Counted(t.NamedTuple):
    url: str
    reset: t.Callable[[], None]
    counts: t.Callable[[], dict[str, int]]


@pytest.fixture(params=["redis_server", "redis_sentinel", "redis_cluster"])
def counted(request: pytest.FixtureRequest) -> Counted:
    """A test-owned topology whose Redis commands can be counted."""
    setup = request.getfixturevalue(request.param)
    if request.param == "redis_sentinel":
        return Counted(setup.url, setup.master.reset_stats, setup.master.command_counts)
    return Counted(setup.url, setup.reset_stats, setup.command_counts)


def commands_for(counted: Counted, request: t.Callable[[], t.Any]) -> dict[str, int]:
    counted.reset()
    request()
    return {k: v for k, v in counted.counts().items() if k in DATA_COMMANDS}


def test_redis_commands_per_request(make_app: AppFactory, counted: Counted) -> None:
    def new_client() -> FlaskClient:
        config = {"FLASKSTACK_REDIS_URL": counted.url, "FLASKSTACK_NAMESPACE": "counted"}
        return add_views(make_app(config)).test_client()

    client = new_client()
    client.post("/visit")  # warm up: the pool opens its connection(s)
    client.get("/read")

    assert commands_for(counted, lambda: client.get("/plain")) == {}
    assert cookie(client) is not None  # the request above carried the session cookie
    assert commands_for(counted, lambda: client.get("/read")) == {"getex": 1}
    assert commands_for(counted, lambda: client.post("/visit")) == {"getex": 1, "set": 1}
    assert commands_for(counted, lambda: client.post("/logout")) == {"getex": 1, "del": 1}
    anonymous = new_client()
    assert commands_for(counted, lambda: anonymous.get("/plain")) == {}
    assert commands_for(counted, lambda: anonymous.get("/read")) == {}


def outage_app(make_app: AppFactory, server: RedisServer) -> FlaskClient:
    app = make_app(
        {
            "FLASKSTACK_REDIS_URL": server.url,
            "FLASKSTACK_NAMESPACE": "outage",
            "FLASKSTACK_REDIS_TIMEOUT": 0.3,
            "FLASKSTACK_REDIS_BACKOFF": 0.2,
        }
    )
    return add_views(app).test_client()


def test_outage_gives_503_only_where_the_session_is_needed(
    make_app: AppFactory, fresh_redis_server: RedisServer
) -> None:
    client = outage_app(make_app, fresh_redis_server)
    client.post("/login/alice")
    fresh_redis_server.stop()

    assert client.get("/plain").status_code == 200
    response = client.get("/read")
    assert response.status_code == 503
    assert "Set-Cookie" not in response.headers  # the outage logs nobody out
    assert "session store is unreachable" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) >= 1
    assert client.post("/visit").status_code == 503
    assert client.get("/plain").status_code == 200

    fresh_redis_server.start()
    time.sleep(0.3)  # the back-off passes
    # No persistence on the test server: the restart lost the data, so the
    # session starts afresh, and works.
    assert client.get("/read").status_code == 200
    assert client.post("/visit").get_json() == {"visits": 1}


def test_a_failed_save_is_a_503_not_a_500(
    make_app: AppFactory, fresh_redis_server: RedisServer
) -> None:
    client = outage_app(make_app, fresh_redis_server)
    app = client.application

    @app.post("/visit-then-outage")
    @csrf.exempt  # these tests are about sessions; CSRF has its own
    def visit_then_outage() -> str:
        session["visits"] = session.get("visits", 0) + 1  # read succeeds
        fresh_redis_server.stop()  # the save will fail
        return "changed"

    client.post("/visit")
    response = client.post("/visit-then-outage")
    assert response.status_code == 503
    assert "changed" not in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("topology", ["redis_sentinel", "redis_cluster"])
def test_sessions_on_sentinel_and_cluster(
    make_app: AppFactory, request: pytest.FixtureRequest, topology: str
) -> None:
    setup = request.getfixturevalue(topology)
    app = make_app({"FLASKSTACK_REDIS_URL": setup.url, "FLASKSTACK_NAMESPACE": f"s-{topology}"})
    client = add_views(app).test_client()
    client.post("/visit")
    client.post("/login/carol")  # rotation: SET and DEL land on different nodes
    assert client.get("/read").get_json() == {"name": "carol", "visits": 1}
    stolen = cookie(client)
    client.post("/logout")
    client.set_cookie("session", stolen)
    assert client.get("/read").get_json() == {"name": None, "visits": None}


def test_sessions_survive_a_sentinel_failover(
    make_app: AppFactory, fresh_redis_sentinel: t.Any
) -> None:
    setup = fresh_redis_sentinel
    app = make_app({"FLASKSTACK_REDIS_URL": setup.url, "FLASKSTACK_NAMESPACE": "failover"})
    client = add_views(app).test_client()
    client.post("/login/dave")
    with setup.master.client() as master:
        master.wait(1, 2000)  # the replica has the session before the master dies
    setup.failover(restart_old_master=False)

    response = client.get("/read")
    assert response.status_code == 200
    assert response.get_json() == {"name": "dave", "visits": None}
    assert client.post("/visit").get_json() == {"visits": 1}


def test_outage_answers_json_clients_with_a_problem(
    make_app: AppFactory, fresh_redis_server: RedisServer
) -> None:
    client = outage_app(make_app, fresh_redis_server)
    client.post("/login/alice")
    fresh_redis_server.stop()
    response = client.get("/read", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == 503
    assert body["title"] == "Service Unavailable"
    assert "session store is unreachable" in body["detail"]
    assert int(response.headers["Retry-After"]) >= 1
    page = client.get("/read", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert page.mimetype == "text/html"


def test_sessions_written_before_an_outage_are_still_there_after_it(
    make_app: AppFactory, tmp_path: t.Any
) -> None:
    from redis_servers import RedisServer

    # A server that keeps its data across a restart, as a production Redis does.
    with RedisServer(
        tmp_path / "aof", name="persistent", extra_args=("--appendonly", "yes")
    ) as server:
        client = outage_app(make_app, server)
        client.post("/login/erin")
        client.post("/visit")
        server.stop()
        failed = client.get("/read")
        assert failed.status_code == 503
        assert "Set-Cookie" not in failed.headers
        server.start()
        time.sleep(0.3)  # the back-off passes
        assert client.get("/read").get_json() == {"name": "erin", "visits": 1}


# -- request_session(): the session without marking it accessed -------------------------------


def _add_probe(app: Flask) -> Flask:
    @app.get("/probe")
    def probe() -> dict[str, t.Any]:
        before = _request_session()
        seen = {
            "kind": type(before).__name__,
            "accessed_before": bool(before is not None and before.accessed),
        }
        if "read" in request.args:
            seen["name"] = session.get("name")
            seen["same_object"] = _request_session() is before
            seen["accessed_after"] = bool(_request_session().accessed)  # type: ignore[union-attr]
        return seen

    return app


@pytest.mark.parametrize("redis_url", [SHARED_REDIS, None], ids=["redis", "cookie"])
def test_request_session_is_the_session_without_marking_it_accessed(
    make_app: AppFactory, namespace: str, redis_url: str | None
) -> None:
    config: dict[str, t.Any] = {"FLASKSTACK_NAMESPACE": namespace}
    if redis_url is not None:
        config["FLASKSTACK_REDIS_URL"] = redis_url
    app = _add_probe(add_views(make_app(config, profile="testing")))
    expected = "RedisSession" if redis_url is not None else "SecureCookieSession"
    client = app.test_client()
    client.post("/login/alice")

    untouched = client.get("/probe")
    assert untouched.get_json() == {"kind": expected, "accessed_before": False}
    assert "Cookie" not in untouched.vary  # looking did not count as using it
    assert untouched.headers.getlist("Set-Cookie") == []

    read = client.get("/probe?read")
    assert read.get_json() == {
        "kind": expected,
        "accessed_before": False,
        "name": "alice",
        "same_object": True,
        "accessed_after": True,
    }
    assert "Cookie" in read.vary
    with app.test_request_context():
        assert _request_session() is not None  # opened when the request context was pushed
    assert _request_session() is None  # no request, no session


def test_an_apps_own_session_interface_is_kept_and_counts_as_used(
    make_app: AppFactory, namespace: str
) -> None:
    """Without Redis, a session interface the app installed stays; the cache then
    cannot tell whether a page used the session, so it never shares one."""
    from flask.sessions import SecureCookieSessionInterface

    from flaskstack import cache

    class AppSessions(SecureCookieSessionInterface):
        salt = "the-apps-own"

    def install(app: Flask) -> None:
        app.session_interface = AppSessions()

    app = make_app({"FLASKSTACK_NAMESPACE": namespace}, profile="testing", before=install)
    assert type(app.session_interface) is AppSessions
    add_views(app)
    calls = iter(range(1, 100))

    @app.get("/greeting")
    @cache.cached()
    def greeting() -> str:
        return f"hello {session.get('name', 'stranger')} #{next(calls)}"

    alice, bob = app.test_client(), app.test_client()
    alice.post("/login/alice")
    bob.post("/login/bob")
    pages = [client.get("/greeting").text for client in (alice, bob, alice)]
    assert pages == ["hello alice #1", "hello bob #2", "hello alice #3"]
