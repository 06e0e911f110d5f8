"""Adopting flaskstack signs nobody out: cookies issued before keep working.

The app below is an existing Flask app as it was before adopting flaskstack:
Flask's default signed-cookie session, its own Flask-Login manager and
``user_loader``. Each test signs a user in with that app, keeps the browser's
cookies, then serves the next request from the same app after
``flaskstack.init_app`` (same ``SECRET_KEY``).
"""

from __future__ import annotations

import datetime
import typing as t

import flask_login
import pytest
import redis
from conftest import SHARED_REDIS_URL
from flask import Flask, request, session
from flask.sessions import SecureCookieSessionInterface, session_json_serializer
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

if t.TYPE_CHECKING:
    from conftest import AppFactory
    from flask.testing import FlaskClient
    from redis_servers import RedisServer

KEY = "the-shops-own-secret-key-" + "k" * 20
NEW_KEY = "the-shops-next-secret-key-" + "n" * 20
SINCE = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


class Member(flask_login.UserMixin):  # type: ignore[misc]
    """The app's own user: no table of flaskstack's, no password protocol."""

    def __init__(self, id: str, name: str) -> None:
        self.id = id
        self.name = name


MEMBERS = {"1": Member("1", "alice"), "2": Member("2", "bob")}


class ShopSessions(SecureCookieSessionInterface):
    """A signed-cookie session interface of the app's own, with its own salt.

    Counts how often a cookie is checked against it.
    """

    salt = "shop-session"
    checks = 0

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        type(self).checks += 1
        return super().get_signing_serializer(app)


def shop(
    app: Flask,
    *,
    cookie_name: str | None = None,
    own_interface: bool = False,
    rotated_key: bool = False,
    login: bool = True,
) -> Flask:
    """What the app's factory did before adopting flaskstack, and keeps doing after."""
    app.config["SECRET_KEY"] = KEY
    if rotated_key:  # the key changed at the deploy; the old one is kept as a fallback
        app.config["SECRET_KEY"] = NEW_KEY
        app.config["SECRET_KEY_FALLBACKS"] = [KEY]
    if cookie_name is not None:
        app.config["SESSION_COOKIE_NAME"] = cookie_name
    if own_interface:
        app.session_interface = ShopSessions()

    if login:
        manager = flask_login.LoginManager()
        manager.init_app(app)

        @manager.user_loader  # type: ignore[untyped-decorator]
        def load_member(user_id: str) -> Member | None:
            return MEMBERS.get(user_id)

    @app.post("/login/<user_id>")
    def sign_in(user_id: str) -> str:
        if login:
            flask_login.login_user(MEMBERS[user_id], remember="remember" in request.args)
        session["cart"] = ["tea", "cups"]
        session["since"] = SINCE
        return "signed in"

    @app.get("/whoami")
    def whoami() -> str:
        user = flask_login.current_user
        return str(user.name) if user.is_authenticated else "anonymous"

    @app.get("/cart")
    def cart() -> dict[str, t.Any]:
        return {"cart": session.get("cart"), "since": type(session.get("since")).__name__}

    @app.get("/plain")
    def plain() -> str:
        return "no session here"

    @app.get("/logout")
    def logout() -> str:
        flask_login.logout_user()
        return "bye"

    return app


def before_adoption(tmp_path: t.Any, **options: t.Any) -> FlaskClient:
    """A browser of the app as it ran before adopting flaskstack."""
    app = Flask("shop", instance_path=str(tmp_path / "before"))
    return shop(app, **options).test_client()


def adopted(
    make_app: AppFactory, config: t.Mapping[str, t.Any] | None = None, **options: t.Any
) -> Flask:
    """The same app after adding ``flaskstack.init_app`` to its factory."""
    return make_app(config, name="shop", before=lambda app: shop(app, **options), profile="testing")


def cookie_of(client: FlaskClient, name: str = "session") -> str | None:
    found = client.get_cookie(name)
    return None if found is None else found.value


def signed_cookie_data(app: Flask, cookie: str) -> dict[str, t.Any]:
    """What Flask's signed-cookie session holds, read as Flask reads it."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    data: dict[str, t.Any] = serializer.loads(cookie)
    return data


@pytest.fixture
def namespace(namespace: t.Callable[[], str]) -> str:
    """A namespace of its own on the shared Redis (conftest's), emptied afterwards."""
    return namespace()


@pytest.fixture
def shared() -> t.Iterator[redis.Redis]:
    client = redis.Redis.from_url(SHARED_REDIS_URL)
    yield client
    client.close()


def session_keys(shared: redis.Redis, namespace: str) -> list[bytes]:
    return sorted(shared.scan_iter(match=f"{namespace}:session:*"))


def stored(shared: redis.Redis, key: bytes) -> dict[str, t.Any]:
    """The session data at ``key``, decoded as flaskstack stores it (Flask's tagged JSON)."""
    raw = shared.get(key)
    assert isinstance(raw, bytes)
    data: dict[str, t.Any] = session_json_serializer.loads(raw.decode())
    return data


def with_redis(namespace: str, **more: t.Any) -> dict[str, t.Any]:
    return {"FLASKSTACK_REDIS_URL": SHARED_REDIS_URL, "FLASKSTACK_NAMESPACE": namespace, **more}


VARIANTS: dict[str, dict[str, t.Any]] = {
    "flask-default": {},
    "own-cookie-name": {"cookie_name": "shop_session"},
    "own-interface-salt": {"own_interface": True},
    "key-rotated-at-deploy": {"rotated_key": True},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_signed_cookie_session_moves_into_redis_once(
    make_app: AppFactory, tmp_path: t.Any, shared: redis.Redis, namespace: str, variant: str
) -> None:
    options = VARIANTS[variant]
    name = options.get("cookie_name", "session")
    # Before the deploy, the app signed with the key that is now the fallback.
    browser = before_adoption(tmp_path, **{k: v for k, v in options.items() if k != "rotated_key"})
    browser.post("/login/1")
    old = cookie_of(browser, name)
    assert old is not None
    kept = signed_cookie_data(browser.application, old)
    assert {"_user_id", "_fresh", "_id", "cart", "since"} <= set(kept)

    client = adopted(make_app, with_redis(namespace), **options).test_client()
    client.set_cookie(name, old)
    response = client.get("/cart")
    assert response.status_code == 200
    assert response.get_json() == {"cart": ["tea", "cups"], "since": "datetime"}

    # The data now lives in Redis, under an id nobody has seen before...
    (key,) = session_keys(shared, namespace)
    sid = key.decode().rsplit(":", 1)[1]
    assert stored(shared, key) == kept  # Flask-Login's keys included
    # ...and the response replaced the old cookie by flaskstack's.
    new = cookie_of(client, name)
    assert new is not None
    assert new != old
    assert new.startswith(sid + ".")
    assert sid not in old

    # From now on the session is Redis's only: no cookie is set again, and
    # without the key the browser has nothing left.
    again = client.get("/cart")
    assert again.get_json() == {"cart": ["tea", "cups"], "since": "datetime"}
    assert "Set-Cookie" not in again.headers
    shared.delete(key)
    assert client.get("/cart").get_json() == {"cart": None, "since": "NoneType"}


def test_each_browser_replaying_a_signed_cookie_gets_its_own_new_id(
    make_app: AppFactory, tmp_path: t.Any, shared: redis.Redis, namespace: str
) -> None:
    """Whoever planted or copied an old cookie cannot know the id it becomes."""
    browser = before_adoption(tmp_path)
    browser.post("/login/1")
    old = cookie_of(browser)
    assert old is not None
    app = adopted(make_app, with_redis(namespace))
    ids = set()
    for _ in range(2):
        client = app.test_client()
        client.set_cookie("session", old)
        client.get("/cart")
        ids.add(cookie_of(client))
    assert len(ids) == 2
    assert len(session_keys(shared, namespace)) == 2


def test_a_signed_in_user_stays_signed_in(
    make_app: AppFactory, tmp_path: t.Any, shared: redis.Redis, namespace: str
) -> None:
    browser = before_adoption(tmp_path)
    browser.post("/login/1")
    assert browser.get("/whoami").text == "alice"
    old = cookie_of(browser)
    assert old is not None

    app = adopted(make_app, with_redis(namespace))
    assert not isinstance(app.session_interface, SecureCookieSessionInterface)  # Redis now
    client = app.test_client()
    client.set_cookie("session", old)
    response = client.get("/whoami")
    assert response.text == "alice"
    assert cookie_of(client) != old
    (key,) = session_keys(shared, namespace)
    assert stored(shared, key)["_user_id"] == "1"
    assert client.get("/whoami").text == "alice"

    client.get("/logout")
    assert client.get("/whoami").text == "anonymous"


def test_a_remember_me_cookie_from_before_signs_in_until_logout(
    make_app: AppFactory, tmp_path: t.Any, shared: redis.Redis, namespace: str
) -> None:
    browser = before_adoption(tmp_path)
    browser.post("/login/2?remember")
    token = cookie_of(browser, "remember_token")
    assert token is not None

    client = adopted(make_app, with_redis(namespace)).test_client()
    # The browser was closed since: its session cookie is gone, remember-me is left.
    client.set_cookie("remember_token", token)
    response = client.get("/whoami")
    assert response.text == "bob"
    assert cookie_of(client) is not None  # now in a Redis session
    (key,) = session_keys(shared, namespace)
    assert stored(shared, key)["_user_id"] == "2"
    assert client.get("/whoami").text == "bob"

    bye = client.get("/logout")
    assert any(
        header.startswith("remember_token=;") for header in bye.headers.getlist("Set-Cookie")
    )
    assert cookie_of(client, "remember_token") is None
    assert client.get("/whoami").text == "anonymous"


def test_without_redis_the_signed_cookie_keeps_working(
    make_app: AppFactory, tmp_path: t.Any, namespace: str
) -> None:
    browser = before_adoption(tmp_path)
    browser.post("/login/1")
    old = cookie_of(browser)
    assert old is not None

    client = adopted(make_app, {"FLASKSTACK_NAMESPACE": namespace}).test_client()
    client.set_cookie("session", old)
    assert client.get("/whoami").text == "alice"
    assert client.get("/cart").get_json() == {"cart": ["tea", "cups"], "since": "datetime"}
    client.get("/logout")
    assert client.get("/whoami").text == "anonymous"


class _SignedLongAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return super().get_timestamp() - 32 * 86400  # older than PERMANENT_SESSION_LIFETIME


def _forged(app: Flask, how: str) -> str:
    data = {"_user_id": "1", "_fresh": True, "cart": ["stolen"]}
    flask_serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert flask_serializer is not None
    if how == "wrong-key":
        other = Flask("elsewhere")
        other.secret_key = "somebody-elses-secret-key-" + "x" * 20
        serializer = SecureCookieSessionInterface().get_signing_serializer(other)
        assert serializer is not None
        return serializer.dumps(data)
    if how == "tampered":
        _payload, stamp, signature = flask_serializer.dumps({"cart": ["tea"]}).split(".")
        evil = flask_serializer.dumps(data).split(".")[0]
        return f"{evil}.{stamp}.{signature}"
    if how == "expired":
        expired = URLSafeTimedSerializer(
            flask_serializer.secret_keys,
            salt=flask_serializer.salt,
            serializer=flask_serializer.serializer,
            signer=_SignedLongAgo,
            signer_kwargs=flask_serializer.signer_kwargs,
        )
        return expired.dumps(data)
    if how == "other-salt":  # the right key, signed for another purpose
        serializer = URLSafeTimedSerializer(KEY, salt="wtf-csrf-token")
        return serializer.dumps(data)
    return {"garbage": "a.b.c", "compressed-garbage": ".eJzz.b.c"}[how]


@pytest.mark.parametrize(
    "how",
    ["wrong-key", "tampered", "expired", "other-salt", "garbage", "compressed-garbage"],
)
def test_a_signed_cookie_that_does_not_verify_is_ignored(
    make_app: AppFactory, shared: redis.Redis, namespace: str, how: str
) -> None:
    app = adopted(make_app, with_redis(namespace))
    client = app.test_client()
    client.set_cookie("session", _forged(app, how))
    response = client.get("/cart")
    assert response.status_code == 200
    assert response.get_json() == {"cart": None, "since": "NoneType"}
    assert session_keys(shared, namespace) == []
    assert client.get("/whoami").text == "anonymous"


def test_adoption_can_be_turned_off(
    make_app: AppFactory, tmp_path: t.Any, shared: redis.Redis, namespace: str
) -> None:
    browser = before_adoption(tmp_path)
    browser.post("/login/1")
    old = cookie_of(browser)
    assert old is not None
    config = with_redis(namespace, FLASKSTACK_SESSION_ADOPT_SIGNED_COOKIES=False)
    client = adopted(make_app, config).test_client()
    client.set_cookie("session", old)
    assert client.get("/cart").get_json() == {"cart": None, "since": "NoneType"}
    assert session_keys(shared, namespace) == []


# Commands an app sends for data.
DATA_COMMANDS = {"get", "getex", "set", "del", "unlink", "mget", "keys", "scan"}


def test_what_moving_a_cookie_costs(
    make_app: AppFactory, tmp_path: t.Any, redis_server: RedisServer, namespace: str
) -> None:
    """Moving costs one SET, once; flaskstack's own cookie is never checked the old way.

    Without Flask-Login here: its response hook reads the session on every
    request, which would hide what a request that never reads it costs.
    """
    browser = before_adoption(tmp_path, own_interface=True, login=False)
    browser.post("/login/1")
    old = cookie_of(browser)
    assert old is not None
    config = {"FLASKSTACK_REDIS_URL": redis_server.url, "FLASKSTACK_NAMESPACE": namespace}
    client = adopted(make_app, config, own_interface=True, login=False).test_client()
    client.set_cookie("session", old)

    def commands(path: str) -> dict[str, int]:
        redis_server.reset_stats()
        client.get(path)
        counts = redis_server.command_counts()
        return {k: v for k, v in counts.items() if k in DATA_COMMANDS}

    ShopSessions.checks = 0
    assert commands("/plain") == {}  # not read: not moved yet, nothing checked
    assert ShopSessions.checks == 0
    assert cookie_of(client) == old
    assert commands("/cart") == {"set": 1}  # moved: no GETEX, there is no key to read
    assert ShopSessions.checks == 1
    assert cookie_of(client) != old
    assert commands("/cart") == {"getex": 1}
    assert commands("/plain") == {}
    assert ShopSessions.checks == 1  # flaskstack's cookie never goes through the old check
