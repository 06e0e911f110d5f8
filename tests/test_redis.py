"""The shared Redis client: URL forms, no I/O at init, timeouts, the circuit breaker."""

from __future__ import annotations

import socket
import threading
import time
import typing as t

import pytest
from loopback import free_port

import flaskstack
from flaskstack._redis_url import parse_redis_url
from flaskstack.redis import RedisUnavailable, get_redis

if t.TYPE_CHECKING:
    from conftest import AppFactory
    from redis_servers import RedisServer


@pytest.mark.parametrize(
    ("url", "kind", "nodes", "service", "db"),
    [
        # A standalone URL's database is redis-py's to read (db stays 0 here).
        ("redis://127.0.0.1:6379/2", "standalone", (), None, 0),
        ("rediss://:pw@cache.internal:6380/0", "standalone", (), None, 0),
        ("unix:///run/redis.sock?db=3", "standalone", (), None, 0),
        (
            "redis+sentinel://10.0.0.1:26379,[::1]:26380/mymaster/4",
            "sentinel",
            (("10.0.0.1", 26379), ("::1", 26380)),
            "mymaster",
            4,
        ),
        ("redis+sentinel://s1/cache", "sentinel", (("s1", 26379),), "cache", 0),
        ("redis+cluster://n1:7000,n2:7001", "cluster", (("n1", 7000), ("n2", 7001)), None, 0),
        ("redis+cluster://n1", "cluster", (("n1", 6379),), None, 0),
    ],
)
def test_accepted_url_forms(
    url: str, kind: str, nodes: tuple[tuple[str, int], ...], service: str | None, db: int
) -> None:
    target = parse_redis_url(url)
    assert (target.kind, target.nodes, target.service, target.db) == (kind, nodes, service, db)


def test_credentials_are_parsed_and_never_shown() -> None:
    target = parse_redis_url("redis+cluster://app:s3cr%40t@n1:7000")
    assert target.username == "app"
    assert target.password == "s3cr@t"
    assert "s3cr" not in repr(target)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:6379", "unknown scheme 'http'"),
        ("redis+sentinel://s1:26379", "ends in /service"),
        ("redis+sentinel://s1:26379/svc/x", "is not a number"),
        ("redis+cluster://n1:70x0", "is not a number"),
        ("redis+cluster://n1:7000/3", "database 0 only"),
        ("redis+cluster://n1:7000,,n2", "empty host"),
        ("redis://", "no host"),
    ],
)
def test_bad_urls_are_config_errors_naming_the_forms(
    make_app: AppFactory, url: str, reason: str
) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app({"FLASKSTACK_REDIS_URL": url})
    (problem,) = caught.value.problems
    assert problem.key == "FLASKSTACK_REDIS_URL"
    assert reason in problem.value
    assert "redis+sentinel://" in problem.expected
    assert "redis+cluster://" in problem.expected


def closed_port() -> int:
    return free_port()


class CountingListener:
    """A TCP listener on loopback that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_init_app_does_no_network_io_even_for_a_cluster(make_app: AppFactory) -> None:
    listener = CountingListener()
    try:
        app = make_app({"FLASKSTACK_REDIS_URL": f"redis+cluster://127.0.0.1:{listener.port}"})
        app.test_client().get("/healthz")
        assert listener.accepted == []
        assert get_redis(app).namespace == "testapp"
    finally:
        listener.close()


def test_client_uses_the_configured_timeouts(make_app: AppFactory) -> None:
    app = make_app(
        {"FLASKSTACK_REDIS_URL": "redis://127.0.0.1:6379/0", "FLASKSTACK_REDIS_TIMEOUT": 0.25}
    )
    client = get_redis(app).client
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.25
    assert kwargs["socket_connect_timeout"] == 0.25
    get_redis(app).close()


def test_keys_are_namespaced(make_app: AppFactory) -> None:
    app = make_app(
        {"FLASKSTACK_REDIS_URL": "redis://127.0.0.1:6379/0", "FLASKSTACK_NAMESPACE": "shop"}
    )
    assert get_redis(app).key("cache", "front") == "shop:cache:front"


def test_an_app_without_redis_says_how_to_get_one(make_app: AppFactory) -> None:
    app = make_app()
    with pytest.raises(LookupError, match="set REDIS_URL"):
        get_redis(app)


def test_a_silent_server_costs_one_timeout_then_calls_fail_at_once(make_app: AppFactory) -> None:
    listener = CountingListener()
    try:
        app = make_app(
            {
                "FLASKSTACK_REDIS_URL": f"redis://127.0.0.1:{listener.port}/0",
                "FLASKSTACK_REDIS_TIMEOUT": 0.2,
                "FLASKSTACK_REDIS_BACKOFF": 30,
            }
        )
        connection = get_redis(app)
        with pytest.raises(RedisUnavailable, match="TimeoutError"):
            connection.run(lambda client: client.get("k"))
        attempts = len(listener.accepted)
        assert attempts == 1  # a timeout is not retried
        for _ in range(5):
            with pytest.raises(RedisUnavailable, match="retrying shortly"):
                connection.run(lambda client: client.get("k"))
        assert len(listener.accepted) == attempts  # the breaker kept Redis out of it
        assert connection.breaker.is_open
    finally:
        listener.close()


def test_breaker_closes_when_redis_is_back(
    make_app: AppFactory, fresh_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(
        {"FLASKSTACK_REDIS_URL": fresh_redis_server.url, "FLASKSTACK_REDIS_BACKOFF": 0.05}
    )
    connection = get_redis(app)
    assert connection.run(lambda client: client.set("k", "v")) is True
    fresh_redis_server.stop()
    with pytest.raises(RedisUnavailable):
        connection.run(lambda client: client.get("k"))
    assert "Redis is unreachable" in caplog.text
    fresh_redis_server.start()
    time.sleep(0.1)  # let the back-off pass
    assert connection.run(lambda client: client.set("k", "again")) is True
    assert not connection.breaker.is_open
    assert "Redis answers again" in caplog.text
    connection.close()


def test_a_restarted_server_is_reached_without_an_error(
    make_app: AppFactory, fresh_redis_server: RedisServer
) -> None:
    """Pooled connections to the old process are dead: one silent retry on a new one."""
    app = make_app({"FLASKSTACK_REDIS_URL": fresh_redis_server.url})
    connection = get_redis(app)
    connection.run(lambda client: client.ping())
    fresh_redis_server.restart()
    assert connection.run(lambda client: client.set("after", "restart")) is True
    connection.close()


def test_readyz_reports_redis(make_app: AppFactory) -> None:
    ok = make_app({"FLASKSTACK_REDIS_URL": "redis://127.0.0.1:6379/0"}).test_client().get("/readyz")
    assert ok.status_code == 200
    assert ok.get_json()["checks"]["redis"]["status"] == "ok"
    down = make_app({"FLASKSTACK_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"})
    response = down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["failed"] == ["redis"]
    assert response.get_json()["checks"]["database"]["status"] == "ok"


def test_sentinel_and_cluster_clients(
    make_app: AppFactory, redis_sentinel: t.Any, redis_cluster: t.Any
) -> None:
    for url in (redis_sentinel.url, redis_cluster.url):
        app = make_app({"FLASKSTACK_REDIS_URL": url, "FLASKSTACK_NAMESPACE": "topology"})
        connection = get_redis(app)
        key = connection.key("probe")
        assert connection.run(lambda client, key=key: client.set(key, b"1")) is True
        assert connection.run(lambda client, key=key: client.get(key)) == b"1"
        assert app.test_client().get("/readyz").status_code == 200
        connection.close()


def test_a_wrong_command_on_a_cluster_is_not_an_outage(
    make_app: AppFactory, redis_cluster: t.Any
) -> None:
    import redis as redis_py

    app = make_app({"FLASKSTACK_REDIS_URL": redis_cluster.url, "FLASKSTACK_NAMESPACE": "xslot"})
    connection = get_redis(app)
    keys = [connection.key("a"), connection.key("b"), connection.key("c")]
    with pytest.raises(redis_py.exceptions.RedisClusterException, match="slot"):
        connection.run(lambda client: client.mget(keys))
    assert not connection.breaker.is_open
    assert connection.run(lambda client: client.set(keys[0], b"1")) is True
