"""The cache backends: Redis through the app's connection, and in-process.

:class:`RedisCache` keeps every key under ``<namespace>:cache:``, goes through
the app's circuit breaker and never raises for an outage; :class:`SimpleCache`
is Flask-Caching's in-process cache with the same serialiser.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from flask_caching.backends.base import BaseCache
from flask_caching.backends.simplecache import SimpleCache as _SimpleCache

from flaskstack.errors import FlaskStackError
from flaskstack.redis import RedisUnavailable

if t.TYPE_CHECKING:
    from cachelib.serializers import BaseSerializer
    from flask import Flask

    from flaskstack.redis import RedisConnection, _Client


from ._serializer import CacheSerializer, UncacheableValue, _dump, _Once, _skip, logger

T = t.TypeVar("T")
P = t.ParamSpec("P")

REDIS_BACKEND = "flaskstack.caching.RedisCache"
"""``CACHE_TYPE`` of the Redis backend (the default with a Redis URL)."""
SIMPLE_BACKEND = "flaskstack.caching.SimpleCache"
"""``CACHE_TYPE`` of the in-process backend (the default without Redis)."""

# Passes the app's Redis connection to RedisCache.factory through the config
# mapping Flask-Caching hands it; it never reaches app.config.
_CONNECTION_KEY = "_FLASKSTACK_REDIS_CONNECTION"
_SCAN_COUNT = 1000
_DELETE_BATCH = 500


# -- backends ------------------------------------------------------------------


class RedisCache(BaseCache):
    """Flask-Caching backend on the app's shared Redis connection.

    Every key is ``<namespace>:cache:<CACHE_KEY_PREFIX><key>``, and every
    command goes through :meth:`RedisConnection.run
    <flaskstack.redis.RedisConnection.run>`, so after a failure Redis is not
    waited for again until the back-off has passed. While Redis cannot be
    reached, reads are misses, writes and deletes are dropped (and return
    ``False``), and one warning is logged per outage; nothing raises, also
    in debug mode, so cached views and memoized functions are computed.

    Multi-key operations stay single round trips on one server (``MGET``,
    one pipeline, one ``DEL``) and are split by slot on a Redis Cluster,
    which refuses multi-key commands across slots.

    Flask-Caching creates it from ``CACHE_TYPE = "flaskstack.caching.RedisCache"``
    (the default when a Redis URL is set); it cannot be used without
    :func:`flaskstack.init_app`.
    """

    def __init__(
        self,
        connection: RedisConnection,
        default_timeout: int = 300,
        key_prefix: str = "",
        ignore_delete_many_errors: bool = False,
    ) -> None:
        # cachelib before 0.17 (the last on Python 3.10) takes no second argument.
        super().__init__(default_timeout)
        self.ignore_delete_many_errors = ignore_delete_many_errors
        self.connection = connection
        self.key_prefix = key_prefix
        self.serializer: BaseSerializer = CacheSerializer()
        self._outage = False
        self._once = _Once()

    @classmethod
    def factory(
        cls, app: Flask, config: dict[str, t.Any], args: list[t.Any], kwargs: dict[str, t.Any]
    ) -> RedisCache:
        """Build the backend for ``app`` (Flask-Caching calls this)."""
        connection = config.get(_CONNECTION_KEY)
        if connection is None:
            raise FlaskStackError(
                f"CACHE_TYPE {REDIS_BACKEND!r} uses the app's Redis connection: call "
                "flaskstack.init_app(app) with REDIS_URL set instead of Cache.init_app(app)"
            )
        kwargs.setdefault("key_prefix", config.get("CACHE_KEY_PREFIX") or "")
        return cls(connection, **kwargs)

    # -- plumbing --------------------------------------------------------------

    def _key(self, key: str) -> str:
        return self.connection.key("cache", self.key_prefix + key)

    def _run(
        self,
        operation: t.Callable[t.Concatenate[_Client, P], T],
        fallback: T,
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        try:
            result = self.connection.run(operation, *args, **kwargs)
        except RedisUnavailable as exc:
            if not self._outage:
                self._outage = True
                logger.warning(
                    "the cache cannot reach Redis: reads are misses and writes are dropped "
                    "until it answers again (%s)",
                    exc,
                )
            return fallback
        self._outage = False
        return result

    def _load(self, key: str, raw: t.Any) -> t.Any:
        if raw is None:
            return None
        try:
            return self.serializer.loads(raw)
        except Exception:  # unreadable (old format, corrupt, foreign): a miss, never a 500
            self._once.warning(
                "unreadable",
                "ignoring unreadable cache entries (first: %s); they are treated as misses",
                self._key(key),
            )
            return None

    def _expiry(self, timeout: int | dt.timedelta | None) -> int | None:
        seconds = self._normalize_timeout(timeout)
        return seconds if seconds > 0 else None  # 0: never expires

    @property
    def _is_cluster(self) -> bool:
        return self.connection.target.kind == "cluster"

    # -- the cache interface -----------------------------------------------------

    def get(self, key: str) -> t.Any:
        """The value of ``key``, or ``None`` (missing, unreadable, or Redis down)."""
        raw = self._run(_get, None, self._key(key))
        return None if raw is None else self._load(key, raw)

    def get_many(self, *keys: str) -> list[t.Any]:
        """The values of ``keys`` in one ``MGET`` (one per slot on a cluster)."""
        if not keys:
            return []
        names = [self._key(key) for key in keys]

        def fetch(client: _Client) -> list[t.Any]:
            if self._is_cluster:
                return list(client.mget_nonatomic(names))  # type: ignore[union-attr]
            return list(client.mget(names))

        raws = self._run(fetch, [None] * len(keys))
        return [self._load(key, raw) for key, raw in zip(keys, raws, strict=True)]

    def has(self, key: str) -> bool:
        """Whether ``key`` exists (``False`` while Redis is down)."""
        name = self._key(key)
        return bool(self._run(lambda client: client.exists(name), 0))

    def set(self, key: str, value: t.Any, timeout: int | dt.timedelta | None = None) -> bool:
        """Store ``value``; ``False`` if it cannot be encoded or Redis is down."""
        data = _dump(self.serializer, value, self._once)
        if data is None:
            return False
        name, expiry = self._key(key), self._expiry(timeout)
        return self._run(lambda client: bool(client.set(name, data, ex=expiry)), False)

    def add(self, key: str, value: t.Any, timeout: int | dt.timedelta | None = None) -> bool:
        """Store ``value`` unless ``key`` exists; ``True`` if it was stored."""
        data = _dump(self.serializer, value, self._once)
        if data is None:
            return False
        name, expiry = self._key(key), self._expiry(timeout)
        return self._run(lambda client: bool(client.set(name, data, ex=expiry, nx=True)), False)

    def set_many(
        self, mapping: dict[str, t.Any], timeout: int | dt.timedelta | None = None
    ) -> list[t.Any]:
        """Store every item in one pipeline (routed per node on a cluster).

        :returns: the keys that were stored.
        """
        encoded = {key: _dump(self.serializer, value, self._once) for key, value in mapping.items()}
        items = [(key, data) for key, data in encoded.items() if data is not None]
        if not items:
            return []
        expiry = self._expiry(timeout)

        def store(client: _Client) -> list[t.Any]:
            pipe = client.pipeline(transaction=False)
            for key, data in items:
                pipe.set(self._key(key), data, ex=expiry)
            return list(pipe.execute())

        results = self._run(store, [False] * len(items))
        return [key for (key, _), ok in zip(items, results, strict=True) if ok]

    def delete(self, key: str) -> bool:
        """Delete ``key``; ``False`` if it did not exist or Redis is down."""
        name = self._key(key)
        return bool(self._run(lambda client: client.delete(name), 0))

    def delete_many(self, *keys: str) -> list[t.Any]:
        """Delete ``keys`` (one ``DEL``; split by slot on a cluster).

        :returns: the keys, which no longer exist; none while Redis is down.
        """
        if not keys:
            return []
        names = [self._key(key) for key in keys]
        done = self._run(lambda client: client.delete(*names) >= 0, False)
        return list(keys) if done else []

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Atomically add ``delta`` to the integer at ``key`` (``None`` while Redis is down)."""
        name = self._key(key)
        return self._run(lambda client: client.incrby(name, delta), None)

    def dec(self, key: str, delta: int = 1) -> int | None:
        """Atomically subtract ``delta`` from the integer at ``key``."""
        return self.inc(key, -delta)

    def clear(self) -> bool:
        """Delete this cache's keys, and only them: ``<namespace>:cache:<prefix>*``.

        The keys are found with ``SCAN`` (on every primary of a cluster) and
        deleted in batches with ``UNLINK``; never ``KEYS``, never
        ``FLUSHDB``. Sessions and other apps' keys are not touched.

        :returns: ``False`` if Redis could not be reached.
        """
        pattern = _glob_escape(self._key("")) + "*"

        def scan_and_unlink(client: _Client) -> bool:
            options: dict[str, t.Any] = {"match": pattern, "count": _SCAN_COUNT}
            if self._is_cluster:
                from redis.cluster import RedisCluster

                options["target_nodes"] = RedisCluster.PRIMARIES
            batch: list[bytes] = []
            for name in client.scan_iter(**options):
                batch.append(name)
                if len(batch) >= _DELETE_BATCH:
                    client.unlink(*batch)
                    batch.clear()
            if batch:
                client.unlink(*batch)
            return True

        return self._run(scan_and_unlink, False)


def _get(client: _Client, name: str) -> t.Any:
    return client.get(name)


def _glob_escape(text: str) -> str:
    """Escape the characters ``SCAN``'s ``MATCH`` treats as a pattern."""
    return "".join("\\" + c if c in "\\*?[]" else c for c in text)


class SimpleCache(_SimpleCache):
    """Flask-Caching's in-process cache, storing values as :class:`CacheSerializer` does.

    The default without a Redis URL (development and testing only: every
    process has its own). It accepts exactly the values the Redis backend
    accepts, so what caches in development caches in production.
    """

    serializer = CacheSerializer()  # type: ignore[assignment]  # cachelib types it as its pickle one

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._once = _Once()

    def set(self, key: str, value: t.Any, timeout: int | dt.timedelta | None = None) -> bool:
        """Store ``value``; ``False`` if it cannot be encoded."""
        try:
            return bool(super().set(key, value, timeout))
        except UncacheableValue as exc:
            _skip(self._once, exc)
            return False

    def delete_many(self, *keys: str) -> list[t.Any]:
        """Delete every one of ``keys``; returns those that existed.

        (Flask-Caching before 2.5 stops at the first key that does not exist.)
        """
        return [key for key in keys if self.delete(key)]

    def add(self, key: str, value: t.Any, timeout: int | dt.timedelta | None = None) -> bool:
        """Store ``value`` unless ``key`` exists; ``False`` if it cannot be encoded."""
        try:
            return super().add(key, value, timeout)
        except UncacheableValue as exc:
            _skip(self._once, exc)
            return False
