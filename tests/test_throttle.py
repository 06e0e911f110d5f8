"""Throttling on real Redis (standalone and Cluster) and in-process: counts, windows, keys, outages.

Tests on the shared server (127.0.0.1:6379) use a namespace of their own and
delete only its keys; tests that count commands or stop Redis use servers
the tests own (``redis_servers``).
"""

from __future__ import annotations

import logging
import os
import time
import typing as t

import pytest
import redis

from flaskstack.redis import get_redis
from flaskstack.throttle import (
    _LOGIN_THROTTLED_MESSAGE,
    LoginThrottled,
    Throttle,
    Verdict,
    _MemoryStore,
    _normalize_address,
    _RedisStore,
    _store_for,
    login_throttles,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from flask import Flask
    from redis_servers import ClusterSetup, RedisServer

pytest_plugins = ["redis_servers"]

SHARED_REDIS_URL = os.environ.get("FLASKSTACK_TEST_REDIS", "redis://127.0.0.1:6379/0")
BACKOFF = 0.2
EMAIL = "alice@example.com"
ADDRESS = "203.0.113.7"

Build = t.Callable[..., "Flask"]


# -- fixtures ------------------------------------------------------------------


@pytest.fixture
def build(make_app: AppFactory, namespace: Callable[[], str]) -> Build:
    """``build(redis_url, **config)``: an app on that Redis (``None``: without Redis)."""

    def factory(redis_url: str | None, **config: t.Any) -> Flask:
        settings: dict[str, t.Any] = {
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_REDIS_BACKOFF": BACKOFF,
        }
        if redis_url is not None:
            settings["FLASKSTACK_REDIS_URL"] = redis_url
        settings.update(config)
        return make_app(settings, profile="testing")

    return factory


@pytest.fixture(params=["redis", "memory"])
def app(request: pytest.FixtureRequest, build: Build) -> Flask:
    """An app whose throttles count in the shared Redis, or in-process."""
    return build(SHARED_REDIS_URL if request.param == "redis" else None)


@pytest.fixture
def shared() -> Iterator[redis.Redis]:
    with redis.Redis.from_url(SHARED_REDIS_URL) as client:
        yield client


def throttle_keys(client: redis.Redis, app: Flask) -> list[str]:
    pattern = f"{app.config['FLASKSTACK_NAMESPACE']}:*"
    return sorted(key.decode() for key in client.scan_iter(match=pattern))


# -- semantics, on Redis and in-process -------------------------------------------


def test_hits_up_to_the_limit_are_allowed_then_blocked(app: Flask) -> None:
    throttle = Throttle.for_app(app, "t", limit=3, window=60)
    verdicts = [throttle.hit(EMAIL) for _ in range(3)]
    assert [(v.allowed, v.count, v.remaining) for v in verdicts] == [
        (True, 1, 2),
        (True, 2, 1),
        (True, 3, 0),
    ]
    assert throttle.check(EMAIL).blocked
    over = throttle.hit(EMAIL)
    assert (over.allowed, over.count, over.degraded) == (False, 4, False)
    assert 55 < over.retry_after <= 60


def test_check_records_nothing(app: Flask) -> None:
    throttle = Throttle.for_app(app, "t", limit=2, window=60)
    assert throttle.check(EMAIL) == Verdict(True, 0, 2, 0.0)
    throttle.hit(EMAIL)
    for _ in range(5):
        verdict = throttle.check(EMAIL)
        assert (verdict.allowed, verdict.count) == (True, 1)
        assert 55 < verdict.retry_after <= 60
    throttle.hit(EMAIL)
    assert throttle.check(EMAIL).blocked


def test_reset_clears_the_count(app: Flask) -> None:
    throttle = Throttle.for_app(app, "t", limit=2, window=60)
    for _ in range(3):
        throttle.hit(EMAIL)
    throttle.reset(EMAIL)
    assert throttle.check(EMAIL) == Verdict(True, 0, 2, 0.0)
    assert throttle.hit(EMAIL).count == 1


def test_the_window_ends(app: Flask) -> None:
    throttle = Throttle.for_app(app, "t", limit=1, window=0.3)
    throttle.hit(EMAIL)
    blocked = throttle.hit(EMAIL)
    assert blocked.blocked
    assert 0 < blocked.retry_after <= 0.3
    time.sleep(0.35)
    assert throttle.check(EMAIL) == Verdict(True, 0, 1, 0.0)
    assert throttle.hit(EMAIL).allowed


def test_identities_and_scopes_are_independent(app: Flask) -> None:
    accounts = Throttle.for_app(app, "accounts", limit=1, window=60)
    others = Throttle.for_app(app, "others", limit=1, window=60)
    accounts.hit(EMAIL)
    accounts.hit(EMAIL)
    assert accounts.check(EMAIL).blocked
    assert accounts.check("bob@example.com").allowed
    assert accounts.hit("bob@example.com").allowed
    assert others.check(EMAIL).allowed


def test_an_app_keeps_its_counts_across_calls_and_apps_do_not_share(
    app: Flask, build: Build
) -> None:
    for _ in range(2):
        login_throttles(app).account.hit(EMAIL)
    assert login_throttles(app).account.check(EMAIL).count == 2
    redis_url = app.config["FLASKSTACK_REDIS_URL"]
    other = build(redis_url, SECRET_KEY=app.config["SECRET_KEY"])  # same key, other namespace
    assert login_throttles(other).account.check(EMAIL).count == 0


def test_spellings_of_one_identity_share_a_counter(app: Flask) -> None:
    account, address = login_throttles(app)
    account.hit("Alice@Example.com")
    account.hit(" alice@example.COM ")
    assert account.check(EMAIL).count == 2
    address.hit("2001:db8:1:2::1")
    address.hit("2001:db8:1:2:ffff::9")
    assert address.check("2001:db8:1:2::77").count == 2
    assert address.check("2001:db8:1:3::1").count == 0
    address.hit("::ffff:203.0.113.7")
    assert address.check(ADDRESS).count == 1


def test_normalize_address() -> None:
    assert _normalize_address(" 203.0.113.7 ") == ADDRESS
    assert _normalize_address("2001:DB8::1") == "2001:db8::/64"
    assert _normalize_address("fe80::1%eth0") == "fe80::/64"
    assert _normalize_address("::ffff:198.51.100.1") == "198.51.100.1"
    assert _normalize_address("unix-socket") == "unix-socket"
    assert _normalize_address("") == ""


@pytest.mark.parametrize(
    ("scope", "limit", "window"),
    [("", 1, 1.0), ("a:b", 1, 1.0), ("x" * 65, 1, 1.0), ("ok", 0, 1.0), ("ok", 1, 0.0)],
)
def test_invalid_throttles_are_refused(scope: str, limit: int, window: float) -> None:
    with pytest.raises(ValueError, match="expected"):
        Throttle(_MemoryStore(), scope, limit, window, secret="s")


# -- Redis keys and round trips ------------------------------------------------------


def test_keys_hide_the_identity_and_expire(build: Build, shared: redis.Redis) -> None:
    app = build(SHARED_REDIS_URL, FLASKSTACK_LOGIN_WINDOW=30.0)
    account, address = login_throttles(app)
    account.hit(EMAIL)
    address.hit(ADDRESS)
    keys = throttle_keys(shared, app)
    namespace = app.config["FLASKSTACK_NAMESPACE"]
    assert len(keys) == 2
    assert {key.rsplit(":", 1)[0] for key in keys} == {
        f"{namespace}:throttle:login-account",
        f"{namespace}:throttle:login-address",
    }
    for key in keys:
        digest = key.rsplit(":", 1)[1]
        assert len(digest) == 32
        assert "alice" not in key
        assert "example" not in key
        assert ADDRESS not in key  # (a bare "203" could occur in the hex digest by chance)
        assert all(c in "0123456789abcdef" for c in digest)
        assert 0 < shared.pttl(key) <= 30_000
    account.reset(EMAIL)
    assert len(throttle_keys(shared, app)) == 1


def test_the_secret_key_keys_the_digest(build: Build) -> None:
    first = build(SHARED_REDIS_URL, SECRET_KEY="a" * 40)
    second = build(SHARED_REDIS_URL, SECRET_KEY="b" * 40)
    digests = {Throttle.for_app(a, "t", 1, 1).key(EMAIL).rsplit(":", 1)[1] for a in (first, second)}
    assert len(digests) == 2


@pytest.mark.parametrize("topology", ["redis_server", "redis_cluster"])
def test_each_call_is_one_command(
    request: pytest.FixtureRequest, build: Build, topology: str
) -> None:
    setup: RedisServer | ClusterSetup = request.getfixturevalue(topology)
    app = build(setup.url)
    throttle = Throttle.for_app(app, "t", limit=5, window=60)
    throttle.hit(EMAIL)  # warm-up: connects and loads the script on the node
    throttle.check(EMAIL)
    # Command statistics also count the commands a script runs; the client
    # sent one EVALSHA each time.
    setup.reset_stats()
    assert throttle.hit(EMAIL).count == 2
    assert setup.command_counts() == {"evalsha": 1, "incr": 1, "pttl": 1}
    setup.reset_stats()
    assert throttle.check(EMAIL).count == 2
    assert setup.command_counts() == {"evalsha": 1, "get": 1, "pttl": 1}
    setup.reset_stats()
    throttle.reset(EMAIL)
    assert setup.command_counts() == {"del": 1}


def test_limits_hold_on_a_cluster(build: Build, redis_cluster: ClusterSetup) -> None:
    app = build(redis_cluster.url, FLASKSTACK_LOGIN_ACCOUNT_LIMIT=2, FLASKSTACK_LOGIN_WINDOW=5.0)
    throttles = login_throttles(app)
    emails = [f"user{i}@example.com" for i in range(6)]  # spread over the nodes
    for i, email in enumerate(emails):
        throttles.failed(email, f"198.51.100.{i}")
        throttles.failed(email, f"198.51.100.{i}")
        with pytest.raises(LoginThrottled):
            throttles.guard(email, "192.0.2.1")
    throttles.succeeded(emails[0])
    throttles.guard(emails[0], "192.0.2.1")
    with redis_cluster.client() as client:
        for key in client.scan_iter(match=f"{app.config['FLASKSTACK_NAMESPACE']}:*"):
            assert 0 < client.pttl(key) <= 5000
            client.delete(key)


# -- outages -------------------------------------------------------------------------


def test_an_outage_fails_open_and_recovers(
    build: Build, fresh_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = build(fresh_redis_server.url)
    throttle = Throttle.for_app(app, "t", limit=1, window=60)
    throttle.hit(EMAIL)
    assert throttle.hit(EMAIL).blocked

    fresh_redis_server.stop()
    caplog.set_level(logging.INFO, logger="flaskstack.throttle")
    degraded = Verdict(True, 0, 1, 0.0, degraded=True)
    assert throttle.check(EMAIL) == degraded
    # The breaker is open: later calls fail at once instead of trying Redis again.
    assert get_redis(app).breaker.is_open
    for _ in range(5):
        assert throttle.hit(EMAIL) == degraded
        assert throttle.check(EMAIL) == degraded
        throttle.reset(EMAIL)
    login_throttles(app).guard(EMAIL, ADDRESS)
    login_throttles(app).failed(EMAIL, ADDRESS)
    login_throttles(app).succeeded(EMAIL)
    messages = [r.getMessage() for r in caplog.records if r.name == "flaskstack.throttle"]
    assert len(messages) == 1
    assert "throttling cannot use Redis" in messages[0]

    fresh_redis_server.start()  # empty: the counts and the cached script are gone
    time.sleep(BACKOFF + 0.05)
    caplog.clear()
    recovered = throttle.hit(EMAIL)
    assert (recovered.allowed, recovered.count, recovered.degraded) == (True, 1, False)
    assert throttle.hit(EMAIL).blocked
    assert [r.getMessage() for r in caplog.records if r.name == "flaskstack.throttle"] == [
        "throttling works again"
    ]


def test_a_redis_error_fails_open(build: Build, shared: redis.Redis) -> None:
    app = build(SHARED_REDIS_URL)
    throttle = Throttle.for_app(app, "t", limit=1, window=60)
    shared.set(throttle.key(EMAIL), "not a number")
    assert throttle.hit(EMAIL) == Verdict(True, 0, 1, 0.0, degraded=True)


# -- the login throttles and the 429 --------------------------------------------------


def test_login_throttles_follow_the_settings(build: Build) -> None:
    app = build(
        SHARED_REDIS_URL,
        FLASKSTACK_LOGIN_ACCOUNT_LIMIT=3,
        FLASKSTACK_LOGIN_ADDRESS_LIMIT=7,
        FLASKSTACK_LOGIN_WINDOW=42.0,
    )
    account, address = login_throttles(app)
    assert (account.scope, account.limit, account.window) == ("login-account", 3, 42.0)
    assert (address.scope, address.limit, address.window) == ("login-address", 7, 42.0)
    assert isinstance(account.store, _RedisStore)
    assert account.store is _store_for(app)


def test_the_login_flow(app: Flask) -> None:
    app.config.update(FLASKSTACK_LOGIN_ACCOUNT_LIMIT=2, FLASKSTACK_LOGIN_ADDRESS_LIMIT=3)
    throttles = login_throttles(app)
    for _ in range(2):
        throttles.guard(EMAIL, ADDRESS)
        throttles.failed(EMAIL, ADDRESS)
    with pytest.raises(LoginThrottled) as blocked:
        throttles.guard(EMAIL, "192.0.2.1")  # the account is blocked from anywhere
    assert 0 < t.cast("int", blocked.value.retry_after) <= 900

    throttles.guard("bob@example.com", ADDRESS)
    throttles.failed("nobody@example.com", ADDRESS)  # unknown accounts count too
    with pytest.raises(LoginThrottled):
        throttles.guard("bob@example.com", ADDRESS)  # the address is blocked for anyone

    throttles.succeeded(EMAIL)
    throttles.guard(EMAIL, "192.0.2.1")
    assert throttles.address.check(ADDRESS).blocked  # a success keeps the address count


def test_concurrent_failures_over_the_limit_raise(app: Flask) -> None:
    app.config.update(FLASKSTACK_LOGIN_ACCOUNT_LIMIT=2)
    throttles = login_throttles(app)
    throttles.failed(EMAIL, ADDRESS)
    throttles.failed(EMAIL, ADDRESS)
    with pytest.raises(LoginThrottled):
        throttles.failed(EMAIL, ADDRESS)  # passed guard() alongside the others


def test_the_429_response(app: Flask) -> None:
    app.config.update(FLASKSTACK_LOGIN_ACCOUNT_LIMIT=1)

    # A GET view, so the test needs no CSRF token; the 429 is the same for any method.
    @app.get("/attempt/<email>")
    def attempt(email: str) -> str:
        throttles = login_throttles(app)
        throttles.guard(email, "192.0.2.1")
        throttles.failed(email, "192.0.2.1")
        return "wrong email or password"

    client = app.test_client()
    assert client.get("/attempt/a@example.com").status_code == 200
    response = client.get("/attempt/a@example.com")
    assert response.status_code == 429
    assert 890 <= int(response.headers["Retry-After"]) <= 900
    assert _LOGIN_THROTTLED_MESSAGE in response.get_data(as_text=True)


def test_retry_after_is_a_whole_number_of_seconds() -> None:
    assert LoginThrottled(0.01).retry_after == 1
    assert LoginThrottled(0).retry_after == 1
    assert LoginThrottled(41.2).retry_after == 42
    assert LoginThrottled(3).description == _LOGIN_THROTTLED_MESSAGE
    LoginThrottled.raise_for(Verdict(True, 1, 1, 10.0), Verdict(True, 0, 1, 0.0))
    with pytest.raises(LoginThrottled) as raised:
        LoginThrottled.raise_for(
            Verdict(False, 5, 1, 10.0), Verdict(True, 0, 1, 0.0), Verdict(False, 9, 1, 20.5)
        )
    assert raised.value.retry_after == 21


# -- the in-process store -------------------------------------------------------------


def test_the_app_without_redis_counts_in_process(build: Build) -> None:
    app = build(None)
    assert isinstance(_store_for(app), _MemoryStore)
    assert _store_for(app) is _store_for(app)


def test_the_in_process_store_drops_expired_counters() -> None:
    now = [1000.0]
    store = _MemoryStore(clock=lambda: now[0])
    throttle = Throttle(store, "t", limit=1, window=5, secret="s")
    for i in range(100):
        throttle.hit(f"user{i}")
    assert len(store) == 100
    now[0] += 30
    throttle.hit("late")
    assert len(store) == 1
    assert throttle.check("user1") == Verdict(True, 0, 1, 0.0)
    assert throttle.check("late") == Verdict(False, 1, 1, 5.0)
