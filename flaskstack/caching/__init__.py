"""The cache: Flask-Caching on the app's shared Redis client, as ``flaskstack.cache``.

This module owns :data:`cache` (a :class:`flask_caching.Cache`), its two
backends, the serialiser they store values with, the defaults of the
``CACHE_*`` settings and the cache's step in :func:`flaskstack.init_app`.

The rule it keeps: **a cached page is only ever served to the user it was
made for.** A view cached with :meth:`Cache.cached` is stored only if
computing it did not use the session (which is where the user is); views
that do use it opt into one entry per user with ``per_user=True``.

With a Redis URL the backend is :class:`RedisCache`, which goes through the
app's :class:`~flaskstack.redis.RedisConnection` (one client, one pool, one
circuit breaker for sessions and cache) and keeps every key under
``<namespace>:cache:``; :meth:`RedisCache.clear` deletes those keys and no
others, and a Redis outage turns reads into misses and drops writes instead
of failing requests. Without Redis (development and testing) the backend is
the in-process :class:`SimpleCache`. Both store values as JSON with tags
for the Python types JSON lacks, never with pickle: whoever can write to
Redis must not be able to run code in the app.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import typing as t

from flask import current_app, g, has_request_context, request
from flask import session as current_session
from flask_caching import Cache as _FlaskCache
from flask_caching.utils import wants_args
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response

from flaskstack._hooks import on_first_request
from flaskstack._state import EXTENSION_KEY
from flaskstack.errors import AlreadyInitialisedError, Problem
from flaskstack.sessions import RedisSession, _request_session

from ._backends import _CONNECTION_KEY, REDIS_BACKEND, SIMPLE_BACKEND, RedisCache, SimpleCache
from ._serializer import _Once, logger

if t.TYPE_CHECKING:
    from flask import Flask
    from flask_caching import _CachedFunction
    from flask_caching.backends.simplecache import SimpleCache as _FlaskSimpleCache

    from flaskstack.config import Resolution
    from flaskstack.redis import RedisConnection

# Flask-Login's session key for the logged-in user's id.
_USER_ID_KEY = "_user_id"

__all__ = ["Cache", "RedisCache", "SimpleCache", "cache"]

_P = t.ParamSpec("_P")
_R = t.TypeVar("_R")


# -- per-user safety -----------------------------------------------------------


def _session_used() -> bool:
    """Whether the current request has used the session so far."""
    session = _request_session()
    if session is None:
        return False
    if isinstance(session, RedisSession):
        return session.accessed  # set by the proxy and by every read of the data
    # Flask's cookie session before 3.1.3 does not record `in` or iteration,
    # so a cookie session holding any data counts as used.
    return session.accessed or len(session) > 0


def _identity() -> str | None:
    """Whom the current request is for: ``"user:<id>"``, ``"anonymous"`` when
    the session is empty, or ``None`` for an anonymous session holding data."""
    if not has_request_context():
        raise RuntimeError("a per_user cached function needs a request (the user is in it)")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if getattr(app, "login_manager", None) is not None:
        from flask_login import current_user

        user = current_user._get_current_object()
        if user.is_authenticated:
            return f"user:{user.get_id()}"
    else:
        user_id = current_session.get(_USER_ID_KEY)
        if user_id is not None:
            return f"user:{user_id}"
    return None if len(current_session) else "anonymous"


def _sets_cookie(rv: t.Any) -> bool:
    """Whether a view's return value sets a cookie (which belongs to one client)."""
    parts = rv if type(rv) is tuple else (rv,)
    for part in parts:
        if isinstance(part, Response):
            if "Set-Cookie" in part.headers:
                return True
        elif isinstance(part, Headers):
            if "Set-Cookie" in part:
                return True
        elif isinstance(part, dict):
            if any(str(name).lower() == "set-cookie" for name in part):
                return True
        elif isinstance(part, list) and any(
            isinstance(item, tuple) and str(item[0]).lower() == "set-cookie" for item in part
        ):
            return True
    return False


class _Guard:
    """The hooks :meth:`Cache.cached` adds to one decorated function."""

    def __init__(
        self,
        function: t.Callable[..., t.Any],
        per_user: bool | None,
        unless: t.Callable[..., t.Any] | None,
        response_filter: t.Callable[..., t.Any] | None,
    ) -> None:
        self.name = f"{function.__module__}.{function.__qualname__}"
        self.per_user = per_user
        self.user_unless = unless
        self.user_filter = response_filter
        self._once = _Once()

    def _state(self) -> dict[int, tuple[str, bool]]:
        state: dict[int, tuple[str, bool]] = g.setdefault("_flaskstack_cache_users", {})
        return state

    def unless(self, f: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> bool:
        """Per user: skip the cache for an anonymous session holding data; note the user."""
        if callable(self.user_unless):
            if wants_args(self.user_unless):
                if self.user_unless(f, *args, **kwargs) is True:
                    return True
            elif self.user_unless() is True:
                return True
        identity = _identity()
        if identity is None:
            return True  # its page may show that data; shared by nobody else
        self._state()[id(self)] = (identity, bool(current_session.modified))
        return False

    def make_key(self, base: t.Callable[..., str]) -> t.Callable[..., str]:
        """Wrap a key function so that the key names the user."""

        def make_cache_key(*args: t.Any, **kwargs: t.Any) -> str:
            noted = self._state().get(id(self)) if has_request_context() else None
            identity = noted[0] if noted else (_identity() or "anonymous-session")
            digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
            return f"{base(*args, **kwargs)}/{digest}"

        return make_cache_key

    def response_filter(self, rv: t.Any) -> bool:
        """Whether the freshly computed ``rv`` may be stored."""
        if self.user_filter is not None and not self.user_filter(rv):
            return False
        if _sets_cookie(rv):
            return self._refuse("it sets a cookie, which belongs to one client")
        if current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token") in g:
            return self._refuse("it contains a CSRF token, which belongs to one session")
        if self.per_user is None and _session_used():
            return self._refuse(
                "the session was used while computing it, so it may show one user's data. "
                "Cache it with per_user=True (one entry per user), or with per_user=False if "
                "it is the same for every user"
            )
        if self.per_user:
            noted = self._state().get(id(self))
            if noted is None or _identity() != noted[0]:
                return self._refuse("the user changed while computing it", quiet=True)
            if current_session.modified and not noted[1]:
                return self._refuse(
                    "it changed the session (e.g. showed flashed messages)", quiet=True
                )
        return True

    def _refuse(self, reason: str, quiet: bool = False) -> bool:
        if quiet:
            logger.debug("%s was not cached: %s", self.name, reason)
        else:
            self._once.warning(reason, "%s was not cached: %s", self.name, reason)
        return False


# -- the extension -----------------------------------------------------------


class Cache(_FlaskCache):
    """Flask-Caching's :class:`~flask_caching.Cache`, made safe per user and per app.

    Use the shared instance, :data:`flaskstack.cache`; :func:`flaskstack.init_app`
    registers it on every app. Everything Flask-Caching offers works
    (:meth:`cached`, ``memoize``, ``get``/``set``, ``clear``…), with these
    differences:

    - :meth:`cached` never serves one user's page to another (see there).
    - ``memoize`` keys on the function's arguments only: a memoized function
      must not read the session or ``current_user``; pass the user's id as an
      argument instead.
    - The current app is always the one in the app context. (Flask-Caching
      remembers the last app it was set up on, which is wrong when a process
      has several apps.)
    - Values are stored as tagged JSON, not with pickle; a value that
      cannot be encoded that way is not cached.
    - The Jinja ``{% cache %}`` fragment tag keys on the names you give it:
      include the user's id in them for a fragment that shows the user.
    - It is registered once per app, by :func:`flaskstack.init_app`:
      ``cache.init_app(app)`` in the factory is refused, and so is another
      Flask-Caching ``Cache`` registered on the same app (at its first
      request), naming the line to remove.
    """

    def init_app(self, app: Flask, config: dict[str, t.Any] | None = None) -> None:
        """Refused on an app flaskstack set up: :func:`flaskstack.init_app` registers the cache.

        :raises AlreadyInitialisedError: if ``app`` is already set up by
            flaskstack or already has this cache, naming the line to remove.
            On an app flaskstack has not set up yet, registers as
            Flask-Caching does (and :func:`flaskstack.init_app` then refuses
            the app).
        """
        if EXTENSION_KEY in app.extensions or self in app.extensions.get("cache", {}):
            raise AlreadyInitialisedError(_REGISTERED_TWICE.format(app=app.name))
        self._register(app, config)

    def _register(self, app: Flask, config: dict[str, t.Any] | None) -> None:
        """Flask-Caching's registration; flaskstack's own call."""
        super().init_app(app, config)

    @property
    def app(self) -> Flask:
        """The current app."""
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        return app  # a local, not t.cast(): this runs on every cache hit

    @app.setter
    def app(self, value: Flask) -> None:
        # Flask-Caching assigns the app it was last set up on; we never keep it.
        pass

    @property
    def cache(self) -> _FlaskSimpleCache:
        """The current app's backend (Flask-Caching's ``current_app or self.app``, in one step)."""
        backend: _FlaskSimpleCache = self.app.extensions["cache"][self]
        return backend

    def cached(
        self,
        timeout: int | dt.timedelta | None = None,
        key_prefix: str | t.Callable[[], str] = "view/%s",
        unless: t.Callable[..., t.Any] | None = None,
        forced_update: t.Callable[..., t.Any] | None = None,
        is_stale: t.Callable[..., t.Any] | None = None,
        response_filter: t.Callable[..., t.Any] | None = None,
        query_string: bool = False,
        hash_method: t.Callable[..., t.Any] | None = None,
        cache_none: bool = False,
        make_cache_key: t.Callable[..., t.Any] | None = None,
        source_check: bool | None = None,
        response_hit_indication: bool | None = False,
        *,
        per_user: bool | None = None,
    ) -> t.Callable[[t.Callable[_P, _R]], _CachedFunction[_P, _R]]:
        """Cache a view (or any function called in a request), like Flask-Caching's ``cached``.

        The key is the request path (plus the query string with
        ``query_string=True``), so without care one entry would serve
        everyone. ``per_user`` says who may share an entry:

        - ``None`` (the default): everyone, so the page must not depend on
          who asks. A result computed while the request used the session
          (which reading ``flask_login.current_user`` or ``login_required``
          does) is **not stored**, and a warning says so once per function.
          A cache hit costs one Redis command and does not load the session.
        - ``True``: one entry per user. The key names the user: the id of
          Flask-Login's ``current_user``, or ``session["_user_id"]`` without
          Flask-Login; requests with an empty session share one anonymous
          entry. The page may show the user but should not depend on other
          session data: an anonymous request whose session holds data skips
          the cache, and a result is not stored when the view logged the user
          in or out or changed the session (flashed messages). A hit loads
          the session (one more Redis command when there is a cookie).
        - ``False``: everyone, and you promise the result does not depend on
          the user, so nothing is checked. Use it for functions called from
          views that read the session (``key_prefix="all_posts"``).

        In every mode a result that sets a cookie or contains a CSRF token is
        not stored. The other parameters are Flask-Caching's; ``unless``,
        ``response_filter`` and ``make_cache_key`` are combined with the rules
        above, not replaced by them.
        """
        upstream = super().cached

        def decorator(f: t.Callable[_P, _R]) -> _CachedFunction[_P, _R]:
            guard = _Guard(f, per_user, unless, response_filter)
            key_function = make_cache_key
            if per_user and key_function is not None:
                key_function = guard.make_key(key_function)
            # ``is_stale`` exists from Flask-Caching 2.5 (Python 3.11+) on;
            # before 2.5, ``hash_method=None`` is called as the hash function.
            extra: dict[str, t.Any] = {} if is_stale is None else {"is_stale": is_stale}
            if hash_method is not None:
                extra["hash_method"] = hash_method
            cached_function = upstream(
                timeout=timeout,
                key_prefix=key_prefix,
                unless=guard.unless if per_user else unless,
                forced_update=forced_update,
                **extra,
                response_filter=guard.response_filter,
                query_string=query_string,
                cache_none=cache_none,
                make_cache_key=key_function,
                source_check=source_check,
                response_hit_indication=response_hit_indication,
            )(f)
            if make_cache_key is None and not query_string and isinstance(key_prefix, str):
                cached_function.make_cache_key = self._request_key(
                    cached_function.make_cache_key, key_prefix, source_check
                )
            if per_user and make_cache_key is None:
                cached_function.make_cache_key = guard.make_key(cached_function.make_cache_key)
            return cached_function

        return decorator

    def _request_key(
        self, default: t.Callable[..., str], key_prefix: str, source_check: bool | None
    ) -> t.Callable[..., str]:
        """Flask-Caching's key function for :meth:`cached`, with a shortcut for a request.

        When the cached view calls it (``use_request=True``, view arguments as
        keywords), the key is the prefix formatted with the request path and
        does not depend on the arguments; Flask-Caching still inspects the
        function's signature on every call to map them. The shortcut returns
        the same key without that; every other call (``delete_cached``, a
        source check) goes to Flask-Caching's function.
        """

        def make_cache_key(*args: t.Any, **kwargs: t.Any) -> str:
            if (
                not args
                and kwargs.get("use_request")
                and not (source_check if source_check is not None else self.source_check)
            ):
                return key_prefix % request.path if "%s" in key_prefix else key_prefix
            return default(*args, **kwargs)

        return make_cache_key


cache = Cache()
"""The cache extension shared by every app (Flask-Caching on the app's Redis)."""


# -- wiring --------------------------------------------------------------------


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Settle the backend and key prefix defaults, which depend on the Redis URL."""
    problems: list[Problem] = []
    has_redis = resolution["FLASKSTACK_REDIS_URL"] is not None
    type_entry = resolution.entries["CACHE_TYPE"]
    backend = type_entry.value
    if backend is None:
        backend = REDIS_BACKEND if has_redis else SIMPLE_BACKEND
        resolution.entries["CACHE_TYPE"] = dataclasses.replace(type_entry, value=backend)
    elif backend == REDIS_BACKEND and not has_redis:
        problems.append(
            Problem(
                "config.E001",
                "CACHE_TYPE",
                type_entry.shown,
                "a Redis URL for flaskstack's Redis cache",
                f"set REDIS_URL, or remove CACHE_TYPE from {type_entry.origin} to use the "
                "in-process cache",
            )
        )
    prefix_entry = resolution.entries["CACHE_KEY_PREFIX"]
    if prefix_entry.value is None:
        # Our backends keep keys under <namespace>:cache: already; another Redis
        # backend gets the same place (and its clear() a prefix, not FLUSHDB).
        ours = backend in (REDIS_BACKEND, SIMPLE_BACKEND)
        prefix = "" if ours else f"{resolution['FLASKSTACK_NAMESPACE']}:cache:"
        resolution.entries["CACHE_KEY_PREFIX"] = dataclasses.replace(prefix_entry, value=prefix)
    return problems


_REGISTERED_TWICE = (
    "app {app!r} already has a cache: flaskstack.init_app(app) registers flaskstack.cache "
    "itself. Remove cache.init_app(app) (or Cache(app)) from the factory and use "
    "flaskstack.cache."
)


def _refuse_another_cache(app: Flask) -> None:
    """Refuse a Flask-Caching ``Cache`` the app registered after :func:`flaskstack.init_app`."""
    if any(other is not cache for other in app.extensions.get("cache", {})):
        raise AlreadyInitialisedError(_REGISTERED_TWICE.format(app=app.name))


def _init_app(app: Flask, connection: RedisConnection | None) -> None:
    """Register :data:`cache` on ``app``, on its Redis connection when it has one."""
    cache._register(app, {_CONNECTION_KEY: connection} if connection is not None else None)
    on_first_request(app, _refuse_another_cache)
