"""Rate limits on Redis servers the tests own: outages, Sentinel, Cluster, commands per request.

These tests are also the adapter's: flaskstack keeps limits' Redis storages
(``RedisStorage``, ``RedisClusterStorage``) on redis-py 8, which limits'
``redis`` extra does not admit; if limits changes how it talks to Redis, a
test here fails.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import typing as t

import pytest

from flaskstack.limits import limit

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient
    from redis_servers import ClusterSetup, RedisServer, SentinelSetup

pytest_plugins = ["redis_servers"]

PROBLEM = "application/problem+json"
TIMEOUT = 0.25
BACKOFF = 0.2
# Apps that share counters share the secret too: identities are keyed digests.
SECRET_KEY = "limits-tests-9f4b2c7e1d8a6053b2e4c9a1f7d3086e"

Build = t.Callable[..., "Flask"]


@pytest.fixture
def build(make_app: AppFactory, namespace: Callable[[], str]) -> Build:
    """``build(redis_url, name=None, **config)``: an app with limits on that Redis.

    Its views: ``/limited`` (a declared limit; left out with ``limited=False``),
    ``/api/ping`` (the API default) and ``/free``.
    """

    def factory(
        redis_url: str, name: str | None = None, *, limited: bool = True, **config: t.Any
    ) -> Flask:
        app = make_app(
            {
                "FLASKSTACK_REDIS_URL": redis_url,
                "SECRET_KEY": SECRET_KEY,
                "FLASKSTACK_NAMESPACE": name or namespace(),
                "FLASKSTACK_REDIS_TIMEOUT": TIMEOUT,
                "FLASKSTACK_REDIS_BACKOFF": BACKOFF,
                "FLASKSTACK_RATE_LIMITS": True,
                "FLASKSTACK_RATE_LIMIT_API_DEFAULT": "2/minute",
                **config,
            },
            profile="testing",
        )
        add_views(app, limited)
        return app

    return factory


def add_views(app: Flask, limited: bool) -> None:
    if limited:

        @app.get("/limited")
        @limit("2/minute")
        def limited_page() -> str:
            return "limited"

    @app.get("/api/ping")
    def ping() -> dict[str, bool]:
        return {"pong": True}

    @app.get("/free")
    def free_page() -> str:
        return "free"


def statuses(client: FlaskClient, path: str, times: int) -> list[int]:
    return [client.get(path).status_code for _ in range(times)]


def storage_of(app: Flask) -> t.Any:
    """limits' storage under the app's limiter (Flask-Limiter's public ``storage``)."""
    return app.extensions["flaskstack.limits"].limiter.storage.storage


def after_backoff() -> None:
    time.sleep(BACKOFF * 1.5)


# -- outages ---------------------------------------------------------------------------


def test_fail_open_serves_requests_while_redis_is_down_and_limits_again_after(
    build: Build, fresh_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = build(fresh_redis_server.url)
    client = app.test_client()
    assert statuses(client, "/limited", 2) == [200, 200]

    fresh_redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="flaskstack.limits"):
        down = statuses(client, "/limited", 3) + statuses(client, "/api/ping", 3)

    assert down == [200] * 6  # over the limit, but it could not be checked
    assert "rate limits are not checked while Redis cannot be reached" in caplog.text
    assert "FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR = 'open'" in caplog.text

    fresh_redis_server.start()
    after_backoff()
    assert statuses(client, "/limited", 3) == [200, 200, 429]  # a new server: counts anew
    assert statuses(client, "/api/ping", 3) == [200, 200, 429]


def test_fail_closed_refuses_limited_requests_with_503_while_redis_is_down(
    build: Build, fresh_redis_server: RedisServer
) -> None:
    app = build(fresh_redis_server.url, FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR="closed")
    client = app.test_client()
    assert statuses(client, "/api/ping", 1) == [200]

    fresh_redis_server.kill()
    api = client.get("/api/ping")
    page = client.get("/limited")
    again = client.get("/api/ping")  # the breaker is open: refused at once

    assert api.status_code == 503
    assert api.mimetype == PROBLEM
    assert "request limits" in api.get_json()["detail"]
    assert int(api.headers["Retry-After"]) >= 1
    assert page.status_code == 503
    assert page.mimetype == "text/html"
    assert again.status_code == 503
    assert client.get("/free").status_code == 200  # no limit, no Redis needed

    fresh_redis_server.start()
    after_backoff()
    assert statuses(client, "/api/ping", 3) == [200, 200, 429]


@pytest.mark.parametrize(("mode", "answer"), [("open", 200), ("closed", 503)])
def test_a_redis_that_never_answers_costs_one_timeout(
    build: Build, fresh_redis_server: RedisServer, mode: str, answer: int
) -> None:
    app = build(fresh_redis_server.url, FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR=mode)
    client = app.test_client()
    assert statuses(client, "/limited", 1) == [200]
    pool = storage_of(app).storage.connection_pool
    assert pool is app.extensions["flaskstack"].redis.client.connection_pool  # the app's own
    assert pool.connection_kwargs["socket_timeout"] == TIMEOUT
    assert pool.connection_kwargs["socket_connect_timeout"] == TIMEOUT

    pid = int(fresh_redis_server.info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)
    try:
        frozen = statuses(client, "/limited", 3)
    finally:
        os.kill(pid, signal.SIGCONT)

    assert frozen == [answer] * 3
    after_backoff()
    # Counting again (the server may still have run the command that timed out).
    assert statuses(client, "/limited", 2)[-1] == 429


# -- Sentinel and Cluster ----------------------------------------------------------------


def test_apps_on_sentinel_share_their_counts(
    build: Build, redis_sentinel: SentinelSetup, namespace: Callable[[], str]
) -> None:
    shared = namespace()
    one, two = build(redis_sentinel.url, shared), build(redis_sentinel.url, shared)

    assert statuses(one.test_client(), "/limited", 1) == [200]
    assert statuses(two.test_client(), "/limited", 2) == [200, 429]
    assert statuses(one.test_client(), "/limited", 1) == [429]
    # On the master through the app's own Sentinel-managed pool.
    pool = storage_of(one).storage.connection_pool
    assert pool is one.extensions["flaskstack"].redis.client.connection_pool
    keys = redis_sentinel.master.client().keys(f"{shared}:limits:*")
    assert len(keys) == 1


def test_apps_on_a_cluster_share_their_counts(
    build: Build, redis_cluster: ClusterSetup, namespace: Callable[[], str]
) -> None:
    shared = namespace()
    one, two = build(redis_cluster.url, shared), build(redis_cluster.url, shared)

    assert statuses(one.test_client(), "/api/ping", 1) == [200]
    assert statuses(two.test_client(), "/api/ping", 2) == [200, 429]
    assert statuses(one.test_client(), "/limited", 3) == [200, 200, 429]
    # limits builds its own cluster client: from the app's nodes, with the app's timeouts.
    node = storage_of(one).storage.get_default_node()
    options = node.redis_connection.connection_pool.connection_kwargs
    assert options["socket_timeout"] == TIMEOUT
    assert options["socket_connect_timeout"] == TIMEOUT


# -- what it costs ------------------------------------------------------------------------


def test_commands_per_request(build: Build, redis_server: RedisServer) -> None:
    """A limited request: three round trips (count, then the expiry and the count for the
    headers); ``INFO commandstats`` also lists the ``INCRBY`` the counting script runs."""
    app = build(redis_server.url)
    client = app.test_client()
    client.get("/limited")  # loads the counting script
    client.get("/api/ping")

    redis_server.reset_stats()
    assert statuses(client, "/free", 3) == [200] * 3
    free = redis_server.command_counts()
    redis_server.reset_stats()
    assert statuses(client, "/limited", 1) == [200]
    limited = redis_server.command_counts()

    assert free == {}
    assert limited == {"evalsha": 1, "incrby": 1, "get": 1, "ttl": 1}


def test_an_app_without_rate_limits_makes_no_redis_command(
    build: Build, redis_server: RedisServer
) -> None:
    app = build(
        redis_server.url,
        limited=False,
        FLASKSTACK_RATE_LIMITS=False,
        FLASKSTACK_RATE_LIMIT_API_DEFAULT=None,
    )
    client = app.test_client()

    redis_server.reset_stats()
    assert statuses(client, "/api/ping", 3) == [200] * 3
    assert statuses(client, "/free", 3) == [200] * 3

    assert redis_server.command_counts() == {}
    assert "flaskstack.limits" not in app.extensions
