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

import functools
import logging
import threading
import time
import typing as t

from ._redis_url import REDIS_URL_FORMS, RedisTarget, parse_redis_url
from ._signals import redis_breaker_closed, redis_breaker_opened, redis_failed
from ._state import get_state
from .config import _mask
from .errors import ConfigError, FlaskStackError, Problem

if t.TYPE_CHECKING:
    import redis
    from flask import Flask

__all__ = ["RedisConnection", "RedisUnavailable", "get_redis"]

_logger = logging.getLogger("flaskstack.redis")

_Client = t.Union["redis.Redis", "redis.cluster.RedisCluster"]
_T = t.TypeVar("_T")
_P = t.ParamSpec("_P")


@functools.cache
def _unreachable_errors() -> tuple[type[BaseException], ...]:
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


def _is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says Redis cannot be reached (not that a command was wrong).

    The cluster client raises a bare ``RedisClusterException`` both when no
    node can be connected and for programming errors such as a cross-slot
    ``MGET``; only the former is an outage.
    """
    if isinstance(exc, _unreachable_errors()):
        return True
    from redis.exceptions import RedisClusterException

    return type(exc) is RedisClusterException and "connect" in str(exc)


def _is_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis refusing a command (not an error of the caller's own code)."""
    from redis.exceptions import RedisError

    return isinstance(exc, RedisError)


class RedisUnavailable(FlaskStackError, ConnectionError):
    """Redis cannot be reached now (or was not reachable moments ago)."""


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


def _make_client(target: RedisTarget, timeout: float) -> _Client:
    """Build the client for ``target``. A Cluster client connects to the cluster here.

    This is where redis-py is imported.
    """
    import redis

    options = _client_options(timeout)
    if target.kind == "standalone":
        try:
            return redis.Redis.from_url(target.url, **options)
        except ValueError as exc:
            raise _refused_url(target.url, exc) from exc
    credentials: dict[str, t.Any] = {"username": target.username, "password": target.password}
    if target.kind == "sentinel":
        from redis.sentinel import Sentinel

        # redis-py types these from 8.2; the ignores serve older releases.
        sentinel = Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
            list(target.nodes),
            sentinel_kwargs={
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
            },
            **options,
        )
        assert target.service is not None  # parse_redis_url guarantees it
        master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call,unused-ignore]
            target.service, db=target.db, **credentials
        )
        return master
    from redis.cluster import ClusterNode, RedisCluster

    return RedisCluster(
        startup_nodes=[
            ClusterNode(host, port)  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis-py 8.2
            for host, port in target.nodes
        ],
        **credentials,
        **options,
    )


def _refused_url(url: str, error: ValueError) -> ConfigError:
    """The error for a standalone URL redis-py refuses when it builds the client."""
    return ConfigError(
        [
            Problem(
                "config.E001",
                "FLASKSTACK_REDIS_URL",
                f"{_mask('FLASKSTACK_REDIS_URL', url)} ({error})",
                "a Redis URL redis-py accepts: " + "; ".join(REDIS_URL_FORMS),
                "correct REDIS_URL (or FLASKSTACK_REDIS_URL); `flask stack check` reports it "
                "without serving a request",
            )
        ]
    )


class _Breaker:
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
        #: The app whose signals (:mod:`flaskstack._signals`) the breaker sends.
        self.sender: object = None

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
            redis_breaker_opened.send(self.sender)
            _logger.warning(
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
                redis_breaker_closed.send(self.sender)
                _logger.warning("Redis answers again")


class RedisConnection:
    """The Redis client of one app, its key namespace and its circuit breaker.

    Get it with :func:`get_redis`.
    """

    def __init__(self, target: RedisTarget, namespace: str, timeout: float, backoff: float) -> None:
        self.target = target
        self.namespace = namespace
        self.timeout = timeout
        self.breaker = _Breaker(backoff)
        self._client: _Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> _Client:
        """The shared redis-py client, created on first use.

        Calls made on it directly bypass the circuit breaker; prefer :meth:`run`.
        """
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = _make_client(self.target, self.timeout)
        return self._client

    def key(self, *parts: str) -> str:
        """The namespaced key for ``parts``: ``key("cache", "x")`` is ``"<ns>:cache:x"``."""
        return ":".join((self.namespace, *parts))

    def run(
        self,
        operation: t.Callable[t.Concatenate[_Client, _P], _T],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
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
            if not _is_unreachable(exc):
                if _is_refused(exc):
                    redis_failed.send(self.breaker.sender, error=exc)
                raise
            redis_failed.send(self.breaker.sender, error=exc)
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

    target_app: Flask = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    connection = get_state(target_app).redis
    if connection is None:
        raise LookupError(
            f"app {target_app.name!r} has no Redis: set REDIS_URL (FLASKSTACK_REDIS_URL)"
        )
    return connection


def _init_app(app: Flask) -> RedisConnection | None:
    """Build (without connecting) the app's Redis connection, if a URL is configured."""
    url = app.config["FLASKSTACK_REDIS_URL"]
    if url is None:
        return None
    connection = RedisConnection(
        parse_redis_url(url),
        namespace=app.config["FLASKSTACK_NAMESPACE"],
        timeout=app.config["FLASKSTACK_REDIS_TIMEOUT"],
        backoff=app.config["FLASKSTACK_REDIS_BACKOFF"],
    )
    connection.breaker.sender = app
    return connection


def _probe(app: Flask, timeout: float) -> None:
    """Readiness probe: ``PING`` Redis (bypassing the breaker, so it sees recovery first)."""
    get_redis(app).client.ping()
