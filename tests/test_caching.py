"""flaskstack.cache on real Redis: per-user safety, outages, clear(), Cluster and Sentinel.

Tests on the shared server (127.0.0.1:6379) use a namespace of their own and
delete only its keys; tests that count commands or stop Redis use servers
the tests own (``redis_servers``).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import pickle
import time
import typing as t
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import redis
import sqlalchemy as sa
from flask import Flask, Response, abort, flash, g, get_flashed_messages, session
from flask_caching import Cache as FlaskCache
from markupsafe import Markup
from werkzeug.datastructures import Headers
from werkzeug.exceptions import NotFound

import flaskstack
from flaskstack import cache, db
from flaskstack.auth import User, login_user
from flaskstack.caching import RedisCache, SimpleCache
from flaskstack.caching._backends import REDIS_BACKEND, SIMPLE_BACKEND
from flaskstack.caching._serializer import CacheSerializer
from flaskstack.redis import _Breaker, get_redis

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from redis_servers import ClusterSetup, RedisServer, SentinelSetup

pytest_plugins = ["redis_servers"]

SHARED_REDIS_URL = os.environ.get("FLASKSTACK_TEST_REDIS", "redis://127.0.0.1:6379/0")
BACKOFF = 0.2


# -- fixtures ------------------------------------------------------------------


class Views:
    """An app with cached views, and how often each view was computed."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()
        self.calls = itertools.count(1)


@pytest.fixture
def build(make_app: AppFactory, namespace: Callable[[], str]) -> Iterator[Callable[..., Views]]:
    """``build(redis_url, **config)``: an app with the test views, on Redis or not."""
    apps: list[Flask] = []

    def factory(
        redis_url: str | None, *, before: Callable[[Flask], None] | None = None, **config: t.Any
    ) -> Views:
        settings: dict[str, t.Any] = {
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_REDIS_BACKOFF": BACKOFF,
        }
        if redis_url is not None:
            settings["FLASKSTACK_REDIS_URL"] = redis_url
        settings.update(config)
        app = make_app(settings, profile="testing", before=before)
        with app.app_context():
            db.create_all()  # the users table: signing in is real
        apps.append(app)
        views = Views(app)
        _add_views(views)
        return views

    yield factory
    for app in apps:
        if flaskstack.get_state(app).redis is not None:
            get_redis(app).close()


def _user(name: str) -> User:
    """The user called ``name``, created on first use."""
    email = f"{name}@example.com"
    user = db.session.execute(sa.select(User).where(User.email == email)).scalar_one_or_none()
    if user is None:
        user = User(email=email)
        db.session.add(user)
        db.session.commit()
    return user


def _add_views(views: Views) -> None:
    app = views.app

    @app.get("/login/<name>")
    def login(name: str) -> str:
        session["name"] = name  # a name, no user id
        return "ok"

    @app.get("/signin/<name>")
    def signin(name: str) -> str:
        login_user(_user(name))
        session["name"] = name
        return "ok"

    @app.get("/hello")
    @cache.cached()
    def hello() -> str:
        return f"hello {session.get('name', 'stranger')} #{next(views.calls)}"

    @app.get("/me")
    @cache.cached(per_user=True)
    def me() -> str:
        return f"me {session.get('name', 'stranger')} #{next(views.calls)}"

    @app.get("/shared")
    @cache.cached(per_user=False)
    def shared() -> str:
        session.get("name")  # read, but the page does not depend on it (promised)
        return f"shared #{next(views.calls)}"

    @app.get("/plain")
    @cache.cached()
    def plain() -> str:
        return f"plain #{next(views.calls)}"

    @app.get("/cookie")
    @cache.cached()
    def cookie() -> Response:
        response = app.make_response(f"cookie #{next(views.calls)}")
        response.set_cookie("flavour", "oat")
        return response

    @app.get("/form")
    @cache.cached()
    def form() -> str:
        g.csrf_token = "token"  # what Flask-WTF's generate_csrf() leaves behind
        return f"form #{next(views.calls)}"

    @app.get("/created")
    @cache.cached()
    def created() -> tuple[str, int, dict[str, str]]:
        return f"created #{next(views.calls)}", 201, {"X-Thing": "1"}

    @app.get("/response")
    @cache.cached()
    def response() -> Response:
        body = f"binary #{next(views.calls)}".encode() + b"\xff"
        return Response(body, status=202, headers={"X-Kind": "raw"}, mimetype="text/x-test")

    @app.get("/gone")
    @cache.cached()
    def gone() -> str:
        next(views.calls)
        abort(404, description="no such thing")


def _text(views: Views, path: str) -> str:
    response = views.client.get(path)
    assert response.status_code == 200, response.text
    return response.text


def _cache_keys(app: Flask) -> list[bytes]:
    with redis.Redis.from_url(app.config["FLASKSTACK_REDIS_URL"]) as client:
        return sorted(client.scan_iter(match=f"{app.config['FLASKSTACK_NAMESPACE']}:cache:*"))


BACKENDS = [pytest.param(SHARED_REDIS_URL, id="redis"), pytest.param(None, id="simple")]


# -- configuration -------------------------------------------------------------


def test_defaults_reach_app_config_and_user_values_win(
    build: Callable[..., Views], namespace: Callable[[], str], make_app: AppFactory
) -> None:
    with_redis = build(SHARED_REDIS_URL).app
    assert with_redis.config["CACHE_TYPE"] == REDIS_BACKEND
    assert with_redis.config["CACHE_KEY_PREFIX"] == ""
    assert with_redis.config["CACHE_DEFAULT_TIMEOUT"] == 300
    with with_redis.app_context():
        backend: object = cache.cache  # Flask-Caching types it as its SimpleCache
        assert isinstance(backend, RedisCache)

    without = build(None, CACHE_DEFAULT_TIMEOUT="60").app
    assert without.config["CACHE_TYPE"] == SIMPLE_BACKEND
    assert without.config["CACHE_DEFAULT_TIMEOUT"] == 60
    with without.app_context():
        assert isinstance(cache.cache, SimpleCache)
        assert cache.cache.default_timeout == 60

    # Another Redis backend still keeps its keys (and its clear()) in the namespace.
    ns = namespace()
    other = make_app(
        {
            "FLASKSTACK_NAMESPACE": ns,
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": SHARED_REDIS_URL,
        },
        profile="testing",
    )
    assert other.config["CACHE_KEY_PREFIX"] == f"{ns}:cache:"

    with pytest.raises(flaskstack.ConfigError, match="CACHE_TYPE"):
        make_app({"CACHE_TYPE": REDIS_BACKEND}, profile="testing")


# -- per-user safety -----------------------------------------------------------


@pytest.mark.parametrize("redis_url", BACKENDS)
def test_alice_never_receives_bobs_page(
    build: Callable[..., Views], redis_url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    views = build(redis_url)
    alice, bob = views.app.test_client(), views.app.test_client()
    alice.get("/login/alice")
    bob.get("/login/bob")

    pages = [client.get("/hello").text for client in (bob, alice, bob, alice)]
    anonymous = views.app.test_client().get("/hello").text

    assert pages == ["hello bob #1", "hello alice #2", "hello bob #3", "hello alice #4"]
    assert anonymous == "hello stranger #5"
    if redis_url is not None:
        assert _cache_keys(views.app) == []
    warnings = [r for r in caplog.records if "was not cached" in r.getMessage()]
    assert len(warnings) == 1  # once per view, not per request
    assert "per_user=True" in warnings[0].getMessage()


@pytest.mark.parametrize("redis_url", BACKENDS)
def test_per_user_gives_each_user_their_own_page(
    build: Callable[..., Views], redis_url: str | None
) -> None:
    views = build(redis_url)
    alice, bob, anonymous = (views.app.test_client() for _ in range(3))
    alice.get("/signin/alice")
    bob.get("/signin/bob")

    assert alice.get("/me").text == "me alice #1"
    assert bob.get("/me").text == "me bob #2"
    assert anonymous.get("/me").text == "me stranger #3"
    # Hits, each from its own entry.
    assert bob.get("/me").text == "me bob #2"
    assert alice.get("/me").text == "me alice #1"
    assert anonymous.get("/me").text == "me stranger #3"
    assert views.app.test_client().get("/me").text == "me stranger #3"

    # An anonymous session holding data is neither served the shared anonymous
    # entry nor stored.
    carol = views.app.test_client()
    carol.get("/login/carol")
    assert carol.get("/me").text == "me carol #4"
    assert carol.get("/me").text == "me carol #5"
    assert anonymous.get("/me").text == "me stranger #3"


@pytest.mark.parametrize("redis_url", BACKENDS)
def test_per_user_does_not_store_pages_that_change_the_user_or_the_session(
    build: Callable[..., Views], redis_url: str | None
) -> None:
    views = build(redis_url)
    app = views.app

    @app.get("/autologin")
    @cache.cached(per_user=True)
    def autologin() -> str:
        login_user(_user("dave"))  # as a remember-me cookie login does
        return f"welcome dave #{next(views.calls)}"

    @app.get("/news")
    @cache.cached(per_user=True)
    def news() -> str:
        return f"news {get_flashed_messages()} #{next(views.calls)}"

    @app.get("/flash")
    def flash_something() -> str:
        flash("saved")
        return "ok"

    # Computed for an anonymous request, but made for dave: not in the anonymous entry.
    assert app.test_client().get("/autologin").text == "welcome dave #1"
    assert app.test_client().get("/autologin").text == "welcome dave #2"

    alice = app.test_client()
    alice.get("/signin/alice")
    alice.get("/flash")
    assert alice.get("/news").text == "news ['saved'] #3"  # popped the message: not stored
    assert alice.get("/news").text == "news [] #4"
    assert alice.get("/news").text == "news [] #4"


@pytest.mark.parametrize("redis_url", BACKENDS)
def test_per_user_false_shares_even_when_the_session_is_read(
    build: Callable[..., Views], redis_url: str | None
) -> None:
    views = build(redis_url)
    alice = views.app.test_client()
    alice.get("/login/alice")
    assert alice.get("/shared").text == "shared #1"
    assert views.app.test_client().get("/shared").text == "shared #1"


def test_per_user_follows_flask_login_current_user(build: Callable[..., Views]) -> None:
    from flask_login import LoginManager, UserMixin, current_user

    class User(UserMixin):  # type: ignore[misc]  # Flask-Login is untyped
        def __init__(self, name: str) -> None:
            self.id = name

    # The app's own LoginManager, registered in the factory before flaskstack.init_app.
    manager = LoginManager()
    # Authenticates from a header, as API tokens do: the session holds no user id.
    manager.request_loader(
        lambda request: User(request.headers["X-User"]) if "X-User" in request.headers else None
    )
    manager.user_loader(lambda user_id: None)
    views = build(SHARED_REDIS_URL, before=manager.init_app)
    app = views.app

    @app.get("/whoami")
    @cache.cached(per_user=True)
    def whoami() -> str:
        return f"whoami {current_user.get_id()} #{next(views.calls)}"

    @app.get("/greeting")
    @cache.cached()
    def greeting() -> str:
        return f"greeting {current_user.get_id()} #{next(views.calls)}"

    client = app.test_client()
    as_alice, as_bob = {"X-User": "alice"}, {"X-User": "bob"}
    assert client.get("/whoami", headers=as_alice).text == "whoami alice #1"
    assert client.get("/whoami", headers=as_bob).text == "whoami bob #2"
    assert client.get("/whoami").text == "whoami None #3"
    assert client.get("/whoami", headers=as_alice).text == "whoami alice #1"
    assert client.get("/whoami").text == "whoami None #3"

    assert client.get("/greeting", headers=as_alice).text == "greeting alice #4"
    assert client.get("/greeting", headers=as_bob).text == "greeting bob #5"
    assert client.get("/greeting").text == "greeting None #6"


@pytest.mark.parametrize("redis_url", BACKENDS)
def test_view_results_come_back_from_the_cache_unchanged(
    build: Callable[..., Views], redis_url: str | None
) -> None:
    views = build(redis_url)
    client = views.client
    for _ in range(2):
        created = client.get("/created")
        assert (created.status_code, created.text, created.headers["X-Thing"]) == (
            201,
            "created #1",
            "1",
        )
    for _ in range(2):
        raw = client.get("/response")
        assert raw.status_code == 202
        assert raw.data == b"binary #2\xff"
        assert (raw.headers["X-Kind"], raw.mimetype) == ("raw", "text/x-test")
    assert next(views.calls) == 3  # each view was computed once
    # Whether an abort() is cached depends on the Flask-Caching release (2.5
    # caches it); either way the client gets the same answer.
    for _ in range(2):
        gone = client.get("/gone")
        assert gone.status_code == 404
        assert "no such thing" in gone.text
    views.calls = itertools.count(5)

    # A response that sets a cookie belongs to one client; a CSRF token to one session.
    assert client.get("/cookie").text == "cookie #5"
    assert client.get("/cookie").text == "cookie #6"
    assert client.get("/form").text == "form #7"
    assert client.get("/form").text == "form #8"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"key_prefix": "items"},
        {"key_prefix": "v/%s/x"},
        {"key_prefix": lambda: "computed"},
        {"query_string": True},
        {"source_check": True},
    ],
    ids=["default", "fixed-prefix", "path-in-prefix", "callable-prefix", "query", "source"],
)
def test_view_keys_are_flask_cachings(
    build: Callable[..., Views], options: dict[str, t.Any]
) -> None:
    views = build(None)

    def item(n: int) -> str:
        return f"item {n} #{next(views.calls)}"

    ours = cache.cached(**options)(item)
    theirs = FlaskCache.cached(cache, **options)(item)  # Flask-Caching's own key function
    views.app.add_url_rule("/item/<int:n>", view_func=ours)  # for url_for(), given no path
    for path, view_args in [("/item/1?b=2&a=1", {"n": 1}), ("/item/22", {"n": 22})]:
        with views.app.test_request_context(path):
            # As the cached view asks for its key, and as delete_cached() does.
            for call in ({"use_request": True, **view_args}, {"path": "/item/7", **view_args}):
                if options.get("query_string") and "path" in call:
                    call["query_args"] = {"a": "1"}
                assert ours.make_cache_key(**call) == theirs.make_cache_key(**call)
            assert ours.make_cache_key(view_args["n"]) == theirs.make_cache_key(view_args["n"])


def test_the_key_made_from_a_views_arguments_finds_its_cached_page(
    build: Callable[..., Views],
) -> None:
    # How Flask-Caching's delete_cached() (2.5 and later) finds a view's
    # entry: the key made from the view's arguments, outside its request.
    views = build(SHARED_REDIS_URL)

    @views.app.get("/item/<int:n>")
    @cache.cached()
    def item(n: int) -> str:
        return f"item {n} #{next(views.calls)}"

    assert _text(views, "/item/1") == "item 1 #1"
    assert _text(views, "/item/1") == "item 1 #1"
    assert _text(views, "/item/2") == "item 2 #2"
    with views.app.test_request_context("/elsewhere"):
        assert cache.delete(item.make_cache_key(n=1)) is True
    assert _text(views, "/item/1") == "item 1 #3"
    assert _text(views, "/item/2") == "item 2 #2"


def test_anonymous_hit_costs_one_redis_command_and_no_session_read(
    build: Callable[..., Views], redis_server: RedisServer
) -> None:
    views = build(redis_server.url)
    bob, anonymous = views.app.test_client(), views.app.test_client()
    bob.get("/signin/bob")
    for client in (bob, anonymous):  # warm up: the miss, then a hit on a pooled connection
        client.get("/plain")
        client.get("/me")
        client.get("/me")

    for client in (bob, anonymous):
        redis_server.reset_stats()
        response = client.get("/plain")
        assert response.text == "plain #1"
        assert redis_server.command_counts() == {"get": 1}  # no GETEX: session not loaded
        assert "Set-Cookie" not in response.headers
        assert "Cookie" not in response.vary

    # Per user, a hit loads the session first when there is one.
    redis_server.reset_stats()
    assert bob.get("/me").text == "me bob #2"
    assert redis_server.command_counts() == {"getex": 1, "get": 1}
    redis_server.reset_stats()
    assert anonymous.get("/me").text == "me stranger #3"
    assert redis_server.command_counts() == {"get": 1}


# -- several apps, clear() -------------------------------------------------------


def test_apps_keep_apart_and_clear_removes_only_this_apps_cache(
    build: Callable[..., Views],
) -> None:
    first, second = build(SHARED_REDIS_URL), build(SHARED_REDIS_URL)
    ns = first.app.config["FLASKSTACK_NAMESPACE"]
    signed_in = first.app.test_client()
    signed_in.get("/signin/alice")  # a session key in the first app's namespace
    for views in (first, second):
        _text(views, "/plain")
        with views.app.app_context():
            cache.set("colour", views.app.name + views.app.config["FLASKSTACK_NAMESPACE"])
    with first.app.app_context():
        assert cache.get("colour") == first.app.name + ns
    lookalikes = [f"{ns}:cachex", f"{ns}x:cache:k", f"{ns}:other:cache:k"]
    with redis.Redis.from_url(SHARED_REDIS_URL) as client:
        for key in lookalikes:
            client.set(key, b"keep")
        session_keys = list(client.scan_iter(match=f"{ns}:session:*"))
        assert len(session_keys) == 1
        assert len(_cache_keys(first.app)) == 2

        with first.app.app_context():
            assert cache.clear() is True
            assert cache.get("colour") is None

        assert _cache_keys(first.app) == []
        assert client.exists(*session_keys, *lookalikes) == len(session_keys) + len(lookalikes)
        assert len(_cache_keys(second.app)) == 2
    with second.app.app_context():
        assert cache.get("colour") == second.app.name + second.app.config["FLASKSTACK_NAMESPACE"]
    assert signed_in.get("/me").text == "me alice #2"  # the session survived


def test_clear_scans_in_batches_without_keys_or_flushdb(
    build: Callable[..., Views], redis_server: RedisServer
) -> None:
    views = build(redis_server.url)
    with views.app.app_context():
        assert len(cache.set_many({f"k{i}": i for i in range(1200)})) == 1200
        with redis_server.client() as client:
            client.set(f"{views.app.config['FLASKSTACK_NAMESPACE']}:session:x", b"s")
        redis_server.reset_stats()
        assert cache.clear() is True
        counts = redis_server.command_counts()
        assert cache.get_many("k0", "k1199") == [None, None]

    assert counts["scan"] >= 2
    assert counts["unlink"] >= 3  # batches of at most 500 keys
    assert not {"keys", "flushdb", "flushall", "del"} & set(counts)
    with redis_server.client() as client:
        assert client.get(f"{views.app.config['FLASKSTACK_NAMESPACE']}:session:x") == b"s"


# -- outages -------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["production-mode", "debug"])
def test_redis_outage_computes_views_and_recovers(
    build: Callable[..., Views],
    fresh_redis_server: RedisServer,
    debug: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    views = build(fresh_redis_server.url)
    views.app.debug = debug
    memo_calls = itertools.count(1)

    @cache.memoize()
    def double(n: int) -> tuple[int, int]:
        return n * 2, next(memo_calls)

    assert _text(views, "/plain") == "plain #1"
    assert _text(views, "/plain") == "plain #1"
    with views.app.app_context():
        assert double(2) == (4, 1)
        assert double(2) == (4, 1)

    fresh_redis_server.stop()
    caplog.clear()
    assert _text(views, "/plain") == "plain #2"
    assert _text(views, "/plain") == "plain #3"
    assert views.client.get("/hello").status_code == 200
    with views.app.app_context():
        assert cache.get("x") is None
        assert cache.set("x", 1) is False
        assert cache.delete("x") is False
        assert cache.get_many("x", "y") == [None, None]
        assert cache.clear() is False
        assert double(2) == (4, 2)
        assert double(2) == (4, 3)
    cache_warnings = [r for r in caplog.records if "cannot reach Redis" in r.getMessage()]
    assert len(cache_warnings) == 1
    assert cache_warnings[0].levelno == logging.WARNING

    fresh_redis_server.start()
    time.sleep(BACKOFF * 1.5)  # the breaker's back-off
    assert _text(views, "/plain") == "plain #5"  # the restarted server is empty
    assert _text(views, "/plain") == "plain #5"
    with views.app.app_context():
        assert cache.set("x", 1) is True
        assert cache.get("x") == 1


def test_an_open_breaker_turns_reads_into_misses_without_calling_redis(
    build: Callable[..., Views], redis_server: RedisServer
) -> None:
    views = build(redis_server.url)
    now = [1000.0]
    connection = get_redis(views.app)
    connection.breaker = _Breaker(BACKOFF, clock=lambda: now[0])
    with views.app.app_context():
        assert cache.set("k", "v") is True
        assert not connection.breaker.is_open
        connection.breaker.failure(redis.ConnectionError("down"))
        redis_server.reset_stats()
        assert cache.get("k") is None
        assert cache.set("k", "w") is False
        assert redis_server.command_counts() == {}
        now[0] += BACKOFF  # the back-off has passed: Redis is asked again
        assert cache.get("k") == "v"
        assert not connection.breaker.is_open
        assert redis_server.command_counts() == {"get": 1}


# -- Cluster and Sentinel ------------------------------------------------------


def test_memoize_and_multi_key_operations_on_a_cluster(
    build: Callable[..., Views], redis_cluster: ClusterSetup
) -> None:
    views = build(redis_cluster.url)
    calls = itertools.count(1)

    @cache.memoize(timeout=60)
    def square(n: int) -> tuple[int, int]:
        return n * n, next(calls)

    with views.app.app_context():
        try:
            assert square(3) == (9, 1)
            assert square(3) == (9, 1)  # version and value keys live in different slots
            assert square(4) == (16, 2)
            cache.delete_memoized(square)
            assert square(3) == (9, 3)

            values = {f"item{i}": i for i in range(20)}
            assert sorted(cache.set_many(values)) == sorted(values)
            assert cache.get_many(*values) == list(values.values())
            assert sorted(cache.delete_many(*values)) == sorted(values)
            assert cache.get_many(*values) == [None] * 20
        finally:
            cache.clear()
    assert _text(views, "/plain") == "plain #1"
    assert _text(views, "/plain") == "plain #1"


def test_clear_on_a_cluster_removes_keys_on_every_node(
    build: Callable[..., Views], redis_cluster: ClusterSetup
) -> None:
    views = build(redis_cluster.url)
    ns = views.app.config["FLASKSTACK_NAMESPACE"]

    def per_node() -> list[int]:
        counts = []
        for node in redis_cluster.nodes:
            with node.client() as client:
                counts.append(len(list(client.scan_iter(match=f"{ns}:cache:*"))))
        return counts

    with views.app.app_context():
        cache.set_many({f"k{i}": i for i in range(60)})
        with redis_cluster.client() as client:
            client.set(f"{ns}:session:x", b"s")
            assert all(count > 0 for count in per_node())
            redis_cluster.reset_stats()
            assert cache.clear() is True
            counts = redis_cluster.command_counts()
            assert per_node() == [0, 0, 0]
            assert client.get(f"{ns}:session:x") == b"s"
            client.delete(f"{ns}:session:x")
    assert counts["scan"] >= 3  # one per primary
    assert not {"keys", "flushdb", "flushall"} & set(counts)


def test_memoize_and_views_on_sentinel(
    build: Callable[..., Views], redis_sentinel: SentinelSetup
) -> None:
    views = build(redis_sentinel.url)
    calls = itertools.count(1)

    @cache.memoize()
    def cube(n: int) -> tuple[int, int]:
        return n**3, next(calls)

    with views.app.app_context():
        try:
            assert cube(2) == (8, 1)
            assert cube(2) == (8, 1)
            assert _text(views, "/plain") == "plain #1"
            assert _text(views, "/plain") == "plain #1"
            with redis_sentinel.master.client() as client:
                ns = views.app.config["FLASKSTACK_NAMESPACE"]
                assert list(client.scan_iter(match=f"{ns}:cache:*"))
        finally:
            assert cache.clear() is True


# -- serialisation -------------------------------------------------------------


def test_values_round_trip_as_json_never_pickle(build: Callable[..., Views]) -> None:
    views = build(SHARED_REDIS_URL)
    value = {
        "text": "naïve",
        "numbers": [1, 2.5, None, True],
        "tuple": (1, ("nested",), b"\x00bytes"),
        3: {"set": {1, 2}, "frozen": frozenset({"a"})},
        ("tuple", "key"): "value",
        "~": "a key that looks like a tag",
        "when": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2))),
        "day": date(2026, 1, 2),
        "span": timedelta(days=1, microseconds=5),
        "money": Decimal("12.30"),
        "id": uuid.UUID(int=7),
        "markup": Markup("<b>safe</b>"),
        "headers": Headers([("X-A", "1"), ("X-A", "2")]),
        "error": NotFound("nothing here"),
    }
    with views.app.app_context():
        assert cache.set("value", value) is True
        back = cache.get("value")
        raw = get_redis(views.app).client.get(
            f"{views.app.config['FLASKSTACK_NAMESPACE']}:cache:value"
        )
    assert isinstance(raw, bytes)
    json.loads(raw)  # plain JSON
    error = back.pop("error")
    assert isinstance(error, NotFound)
    assert error.description == "nothing here"
    del value["error"]
    assert back == value
    assert type(back["markup"]) is Markup
    assert type(back["tuple"]) is tuple


def test_unreadable_entries_are_misses_and_never_unpickled(
    build: Callable[..., Views], tmp_path: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[t.Any, ...]:
            return (os.mkdir, (str(marker),))

    views = build(SHARED_REDIS_URL)
    ns = views.app.config["FLASKSTACK_NAMESPACE"]
    with redis.Redis.from_url(SHARED_REDIS_URL) as client:
        client.set(f"{ns}:cache:evil", b"!" + pickle.dumps(Exploit()))  # cachelib's format
        client.set(f"{ns}:cache:junk", b"{not json")
    with views.app.app_context():
        assert cache.get("evil") is None
        assert cache.get_many("junk", "evil") == [None, None]
    assert not marker.exists()
    assert any("unreadable" in r.getMessage() for r in caplog.records)


def test_the_serializer_reads_what_json_reads() -> None:
    serializer = CacheSerializer()
    readable: list[bytes | bytearray | str] = [
        '"café\\n"'.encode(),
        '{"a": [1, 2.5, null]}',
        '["utf-16"]'.encode("utf-16"),
        b"\xef\xbb\xbf[1]",  # a UTF-8 byte order mark
        bytearray(b"[true]"),
    ]
    for data in readable:
        assert serializer.loads(data) == json.loads(data)
    assert serializer.loads(b' {"~": "tuple", "v": [1]} ') == (1,)
    for junk in (b"", b"{not json", b"[1] 2", b"\xff\xfe\x00", "\ufeff[1]", b'{"~": "nope"}'):
        with pytest.raises(ValueError, match=r"Expecting|Extra data|can't decode|not a cache"):
            serializer.loads(junk)


@pytest.mark.parametrize("redis_url", BACKENDS)
def test_values_that_need_pickle_are_computed_every_time(
    build: Callable[..., Views], redis_url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    class Model:
        pass

    views = build(redis_url)
    views.app.debug = True  # Flask-Caching re-raises backend errors in debug mode
    calls = itertools.count(1)

    @cache.memoize()
    def load() -> tuple[Model, int]:
        return Model(), next(calls)

    with views.app.app_context():
        assert load()[1] == 1
        assert load()[1] == 2
        assert cache.set("model", Model()) is False
        assert cache.get("model") is None
    messages = [r.getMessage() for r in caplog.records if "not caching" in r.getMessage()]
    assert len(messages) == 1
    assert "Model" in messages[0]


@pytest.mark.parametrize("redis_url", [SHARED_REDIS_URL, None], ids=["redis", "in-process"])
def test_delete_many_deletes_every_key_even_after_a_missing_one(
    build: Callable[..., Views], redis_url: str | None
) -> None:
    app = build(redis_url).app
    with app.app_context():
        cache.set("kept-b", 2)
        cache.set("kept-c", 3)
        cache.delete_many("never-set", "kept-b", "kept-c")
        assert cache.get("kept-b") is None
        assert cache.get("kept-c") is None
