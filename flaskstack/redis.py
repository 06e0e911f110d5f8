"""One Redis client per app, shared by sessions, the cache and throttling.

The client is built from ``FLASKSTACK_REDIS_URL`` (``REDIS_URL`` in the
environment) on first use, never in ``init_app``: creating a Cluster client
talks to the cluster, and ``init_app`` does no network I/O. It has short
connect and read timeouts (``FLASKSTACK_REDIS_TIMEOUT``) and retries a
command once, immediately, only when a pooled connection turns out to be
dead (a restarted server); a server that does not answer is never waited for
twice.

Every call goes through :meth:`RedisConnection.run`, whose circuit breaker
turns an outage into one timeout: after a failure, Redis is not tried again
for ``FLASKSTACK_REDIS_BACKOFF`` seconds and calls fail at once with
:class:`RedisUnavailable`. The first call after the back-off tries again, and
a success closes the breaker: recovery needs no restart.

redis-py itself is imported only when the first client is built: a worker
that has not used Redis yet has not paid for importing it.

Every key flaskstack writes starts with ``FLASKSTACK_NAMESPACE`` and a colon
(:meth:`RedisConnection.key`), so several apps can share one Redis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
import time
import typing as t
from urllib.parse import parse_qs, unquote, urlparse

from .errors import FlaskStackError

if t.TYPE_CHECKING:
    import redis
    from flask import Flask

__all__ = [
    "REDIS_URL_FORMS",
    "RedisConnection",
    "RedisTarget",
    "RedisUnavailable",
    "get_redis",
    "parse_redis_url",
]

logger = logging.getLogger("flaskstack.redis")

REDIS_URL_FORMS = (
    "redis://[[user]:password@]host[:port][/db]",
    "rediss://… (TLS)",
    "unix://[[user]:password@]/path/to/redis.sock[?db=N]",
    "redis+sentinel://[[user]:password@]host:port[,host:port…]/service[/db]",
    "redis+cluster://[[user]:password@]host:port[,host:port…]",
)
"""The accepted forms of a Redis URL, as shown in error messages."""

Kind = t.Literal["standalone", "sentinel", "cluster"]
Client = t.Union["redis.Redis", "redis.cluster.RedisCluster"]
T = t.TypeVar("T")
P = t.ParamSpec("P")


@functools.cache
def unreachable_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean "Redis cannot be reached", as opposed to a bad command.

    A function, not a constant, so that importing flaskstack does not import
    redis-py: a worker imports it when it builds its first client, and only
    a client raises these.
    """
    from redis import exceptions

    return (
        exceptions.ConnectionError,
        exceptions.TimeoutError,
        exceptions.ClusterDownError,
        exceptions.SlotNotCoveredError,
        OSError,
    )


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says Redis cannot be reached (not that a command was wrong).

    The cluster client raises a bare ``RedisClusterException`` both when no
    node can be connected and for programming errors such as a cross-slot
    ``MGET``; only the former is an outage.
    """
    if isinstance(exc, unreachable_errors()):
        return True
    from redis.exceptions import RedisClusterException

    return type(exc) is RedisClusterException and "connect" in str(exc)


class RedisUnavailable(FlaskStackError, ConnectionError):
    """Redis cannot be reached now (or was not reachable moments ago)."""


@dataclasses.dataclass(frozen=True)
class RedisTarget:
    """A parsed Redis URL.

    :ivar kind: ``standalone``, ``sentinel`` or ``cluster``.
    :ivar url: The URL as given (for standalone servers, handed to redis-py).
    :ivar nodes: Sentinel or cluster nodes as ``(host, port)``.
    :ivar service: The Sentinel service (master group) name.
    :ivar db: The database number.
    """

    kind: Kind
    url: str = dataclasses.field(repr=False)  # may hold a password
    nodes: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)


def _parse_nodes(netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    nodes = []
    for part in netloc.split(","):
        part = part.strip()
        if not part:
            raise ValueError("an empty host in the node list")
        if part.startswith("["):  # [::1]:26379
            host, _, rest = part[1:].partition("]")
            port_text = rest.removeprefix(":")
        else:
            host, _, port_text = part.rpartition(":") if ":" in part else (part, "", "")
        if not host:
            raise ValueError(f"no host in {part!r}")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ValueError(f"the port of {part!r} is not a number") from None
        if not 0 < port < 65536:
            raise ValueError(f"the port of {part!r} is out of range")
        nodes.append((host, port))
    return tuple(nodes)


def parse_redis_url(url: str) -> RedisTarget:
    """Parse a Redis URL in one of :data:`REDIS_URL_FORMS`.

    :raises ValueError: saying what is wrong with the URL.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("not a URL")
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget("standalone", url, db=_check_standalone_url(url))
    if scheme not in ("redis+sentinel", "redis+cluster"):
        raise ValueError(f"unknown scheme {scheme!r}")

    netloc, _, path = rest.partition("/")
    path = path.split("?", 1)[0]
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user_text, has_password, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if has_password else None
    parts = [p for p in path.split("/") if p]

    if scheme == "redis+cluster":
        if parts not in ([], ["0"]):
            raise ValueError("a Redis Cluster URL has no path (a cluster has database 0 only)")
        nodes = _parse_nodes(netloc, 6379)
        return RedisTarget("cluster", url, nodes, username=username, password=password)

    nodes = _parse_nodes(netloc, 26379)
    if not parts or len(parts) > 2:
        raise ValueError("a Sentinel URL ends in /service or /service/db")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError(f"the database {parts[1]!r} is not a number")
        db = int(parts[1])
    return RedisTarget("sentinel", url, nodes, unquote(parts[0]), db, username, password)


# The query arguments redis-py converts (and so may refuse) when it parses a
# standalone URL; it passes the others on as they are.
_QUERY_PARSERS: dict[str, t.Callable[[str], object]] = {
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "socket_read_size": int,
    "max_connections": int,
    "health_check_interval": int,
    "ssl_min_version": int,
    "timeout": float,
    "protocol": int,
}
_VERIFY_FLAG_ARGUMENTS = ("ssl_include_verify_flags", "ssl_exclude_verify_flags")


def _check_verify_flags(value: str) -> None:
    import ssl

    for flag in value.replace("[", "").replace("]", "").split(","):
        if not hasattr(ssl.VerifyFlags, flag.strip()):
            raise ValueError(f"Invalid ssl verify flag: {flag.strip()}")


def _check_standalone_url(url: str) -> int:
    """Check a ``redis://``, ``rediss://`` or ``unix://`` URL; return its database number.

    It applies the rules of ``redis.connection.parse_url``, which builds the
    client later, with its messages, so that a URL redis-py would refuse is a
    configuration error at start-up; but without importing redis-py, which
    a worker needs only when it first uses Redis.
    """
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            "Redis URL must specify one of the following schemes (redis://, rediss://, unix://)"
        )
    parts = urlparse(url)
    db: int | None = None
    for name, values in parse_qs(parts.query).items():
        try:
            if name == "db":
                db = int(values[0])
            elif name in _VERIFY_FLAG_ARGUMENTS:
                _check_verify_flags(values[0])
            elif name in _QUERY_PARSERS:
                _QUERY_PARSERS[name](values[0])
        except (TypeError, ValueError):
            raise ValueError(f"Invalid value for '{name}' in connection URL.") from None
    if parts.scheme == "unix":
        return db or 0
    host, _port = parts.hostname, parts.port  # .port raises ValueError for a bad port
    if not host:
        raise ValueError("no host")
    if parts.path and db is None:
        with contextlib.suppress(ValueError):  # like redis-py, which then uses database 0
            db = int(unquote(parts.path).replace("/", ""))
    return db or 0


def _client_options(timeout: float) -> dict[str, t.Any]:
    from redis import exceptions
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
        # One immediate retry when a pooled connection is dead (a restarted
        # server); a timeout is never retried, so an outage costs one timeout.
        "retry": Retry(NoBackoff(), 1, supported_errors=(exceptions.ConnectionError,)),
    }


def make_client(target: RedisTarget, timeout: float) -> Client:
    """Build the client for ``target``. A Cluster client connects to the cluster here.

    This is where redis-py is imported.
    """
    import redis

    options = _client_options(timeout)
    if target.kind == "standalone":
        return redis.Redis.from_url(target.url, **options)
    credentials: dict[str, t.Any] = {"username": target.username, "password": target.password}
    if target.kind == "sentinel":
        from redis.sentinel import Sentinel

        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes),
            sentinel_kwargs={
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
            },
            **options,
        )
        assert target.service is not None  # parse_redis_url guarantees it
        master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service, db=target.db, **credentials
        )
        return master
    from redis.cluster import ClusterNode, RedisCluster

    return RedisCluster(
        startup_nodes=[
            ClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in target.nodes
        ],
        **credentials,
        **options,
    )


class Breaker:
    """Stops calls to Redis for ``backoff`` seconds after a failure.

    Thread-safe; one per app and process. It logs when it opens (with the
    cause) and when Redis answers again, not on every refused call.
    """

    def __init__(self, backoff: float, clock: t.Callable[[], float] = time.monotonic) -> None:
        self.backoff = backoff
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._failing = False

    @property
    def is_open(self) -> bool:
        """Whether calls are refused now."""
        # Not failing (the usual case): no clock read. ``_failing`` is set
        # together with ``_open_until`` and cleared only by a success.
        return self._failing and self._clock() < self._open_until

    def failure(self, exc: BaseException) -> None:
        """Record a failed call: refuse calls for the back-off period."""
        with self._lock:
            self._open_until = self._clock() + self.backoff
            first = not self._failing
            self._failing = True
        if first:
            logger.warning(
                "Redis is unreachable (%s: %s); not retried for %g s",
                type(exc).__name__,
                exc,
                self.backoff,
            )

    def success(self) -> None:
        """Record a successful call: close the breaker."""
        if self._failing:
            with self._lock:
                was_failing, self._failing = self._failing, False
                self._open_until = 0.0
            if was_failing:
                logger.warning("Redis answers again")


class RedisConnection:
    """The Redis client of one app, its key namespace and its circuit breaker.

    Get it with :func:`get_redis`.
    """

    def __init__(self, target: RedisTarget, namespace: str, timeout: float, backoff: float) -> None:
        self.target = target
        self.namespace = namespace
        self.timeout = timeout
        self.breaker = Breaker(backoff)
        self._client: Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        """The shared redis-py client, created on first use.

        Calls made on it directly bypass the circuit breaker; prefer :meth:`run`.
        """
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_client(self.target, self.timeout)
        return self._client

    def key(self, *parts: str) -> str:
        """The namespaced key for ``parts``: ``key("cache", "x")`` is ``"<ns>:cache:x"``."""
        return ":".join((self.namespace, *parts))

    def run(
        self,
        operation: t.Callable[t.Concatenate[Client, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Call ``operation(client, *args, **kwargs)`` unless Redis failed moments ago.

        Passing the arguments (``run(get_value, key)``) rather than a closure
        (``run(lambda client: client.get(key))``) saves building a function
        per call on hot paths.

        :raises RedisUnavailable: when the breaker is open or Redis cannot be
            reached; other Redis errors (a wrong command) propagate unchanged.
        """
        if self.breaker.is_open:
            raise RedisUnavailable("Redis is unreachable (retrying shortly)")
        try:
            # A cluster client connects when it is built: inside the ``try``.
            client = self._client if self._client is not None else self.client
            result = operation(client, *args, **kwargs)
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            self.breaker.failure(exc)
            raise RedisUnavailable(f"Redis is unreachable: {type(exc).__name__}: {exc}") from exc
        self.breaker.success()
        return result

    def close(self) -> None:
        """Close every pooled connection (for tests and shutdown hooks)."""
        with self._lock:
            client, self._client = self._client, None
        if client is None:
            return
        client.close()
        # A Sentinel master client also holds connections to the sentinels.
        manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
        for sentinel in getattr(manager, "sentinels", ()):
            sentinel.close()


def get_redis(app: Flask | None = None) -> RedisConnection:
    """The :class:`RedisConnection` of ``app`` (default: the current app).

    :raises LookupError: when the app has no Redis URL configured.
    """
    from flask import current_app

    from .stack import get_state

    target_app: Flask = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    connection = get_state(target_app).redis
    if connection is None:
        raise LookupError(
            f"app {target_app.name!r} has no Redis: set REDIS_URL (FLASKSTACK_REDIS_URL)"
        )
    return connection


def init_app(app: Flask) -> RedisConnection | None:
    """Build (without connecting) the app's Redis connection, if a URL is configured."""
    url = app.config["FLASKSTACK_REDIS_URL"]
    if url is None:
        return None
    return RedisConnection(
        parse_redis_url(url),
        namespace=app.config["FLASKSTACK_NAMESPACE"],
        timeout=app.config["FLASKSTACK_REDIS_TIMEOUT"],
        backoff=app.config["FLASKSTACK_REDIS_BACKOFF"],
    )


def probe(app: Flask, timeout: float) -> None:
    """Readiness probe: ``PING`` Redis (bypassing the breaker, so it sees recovery first)."""
    get_redis(app).client.ping()
