"""The rate limits of one app, on Flask-Limiter: imported only when they are on.

:class:`AppLimits` builds the app's ``flask_limiter.Limiter`` and checks
each :class:`~flaskstack.limits.Limit` through the limiter's public
decorator: the first time an app meets a declaration, ``Limiter.limit(...)``
decorates a stand-in function of its own, and calling that function is the
check (Flask-Limiter's "limit inside a view" path). The API default is one
more declaration, checked before the view when the view and method declare
none. Flask-Limiter's own response headers are off: it sends the reset time
as a timestamp; flaskstack sends the IETF draft's seconds, from the limiter's
public ``current_limit``.

:class:`AppRedisStorage` is the adapter between limits and the app's Redis
connection (a storage class registered with limits under the scheme
``flaskstack+redis``): every call goes through
:meth:`RedisConnection.run <flaskstack.redis.RedisConnection.run>`, so an
outage costs one Redis timeout and the app's circuit breaker, and becomes
one exception the limiter either swallows (fail open) or lets through as a
503 (fail closed). Standalone and Sentinel use the app's own connection pool;
Cluster gets a cluster client of its own, built from the same URL with the
same timeouts, because limits' cluster storage builds its client itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
import typing as t

from flask import current_app, request
from flask_limiter import Limiter
from limits import parse_many
from limits.storage import MovingWindowSupport, SlidingWindowCounterSupport, Storage

from ._credentials import request_api_token
from ._hooks import after_response
from ._limits_declarations import Limit, declares_limits
from .problems import _ServiceUnavailableProblem, is_api_request
from .redis import RedisUnavailable, _client_options
from .throttle import _normalize_address

if t.TYPE_CHECKING:
    from flask import Flask
    from flask_limiter import RequestLimit
    from limits.storage import RedisStorage
    from werkzeug.wrappers import Response

    from ._state import StackState
    from .redis import RedisConnection, _Client

__all__ = ["AppLimits", "AppRedisStorage", "RateLimitsUnavailable", "spec_problem"]

_logger = logging.getLogger("flaskstack.limits")

STORAGE_SCHEME = "flaskstack+redis"
# The limits a request was checked against, in its WSGI environ: per request, even when
# several requests share one app context (a test inside ``app.app_context()``).
_RECORD = "flaskstack.rate_limits"
_CHECKING = "flaskstack.rate_limits.checking"  # set while AppLimits.check runs
_DIGEST_CHARS = 32


def spec_problem(spec: object) -> str | None:
    """Why ``spec`` is not a rate limit limits can parse, or ``None`` if it is one."""
    try:
        parse_many(t.cast("str", spec))
    except ValueError as exc:
        return str(exc)
    return None


class RateLimitsUnavailable(_ServiceUnavailableProblem):
    """503: the rate limit of this request cannot be checked (Redis cannot be reached).

    Raised by the storage; with ``FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR =
    "open"`` the limiter swallows it and serves the request.
    """

    description = (
        "The service cannot check its request limits right now. Try again in a few seconds."
    )


# -- the storage adapter ------------------------------------------------------------


@t.final
class AppRedisStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport):
    """limits' Redis storage on the app's :class:`~flaskstack.redis.RedisConnection`.

    Built by Flask-Limiter from the URI ``flaskstack+redis://`` and the
    options ``connection``, ``key_prefix`` and ``fail_open``. The limits
    storage underneath is made on first use, not here (a Cluster client
    connects when it is built, and ``init_app`` does no network I/O).

    :param connection: The app's Redis connection.
    :param key_prefix: The start of every key: ``<namespace>:limits``.
    :param fail_open: Only for the log line an outage writes.
    """

    STORAGE_SCHEME = [STORAGE_SCHEME]  # noqa: RUF012  # limits reads it from the class

    def __init__(
        self,
        uri: str,
        *,
        connection: RedisConnection,
        key_prefix: str,
        fail_open: bool,
        wrap_exceptions: bool = False,
        **options: float | str | bool,
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.connection = connection
        self.key_prefix = key_prefix
        self.fail_open = fail_open
        self._storage: RedisStorage | None = None
        self._lock = threading.Lock()
        self._outage = False

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """What this storage raises when Redis cannot be reached."""
        return RateLimitsUnavailable

    @property
    def storage(self) -> RedisStorage:
        """limits' own storage underneath (made on first use; may connect to a cluster)."""
        return self.connection.run(self._storage_on)

    def _storage_on(self, client: _Client) -> RedisStorage:
        if self._storage is None:
            with self._lock:
                if self._storage is None:
                    self._storage = _make_storage(self.connection, client, self.key_prefix)
        return self._storage

    def _call(self, name: str, *args: t.Any) -> t.Any:
        try:
            result = self.connection.run(_invoke, self, name, args)
        except Exception as exc:
            if not _is_redis_failure(exc):
                raise
            self._report(exc)
            raise RateLimitsUnavailable(self.connection.breaker.backoff) from exc
        if self._outage:
            with self._lock:
                recovered, self._outage = self._outage, False
            if recovered:
                _logger.warning("rate limits are checked again: Redis answers")
        return result

    def _report(self, exc: BaseException) -> None:
        with self._lock:
            first, self._outage = not self._outage, True
        if not first:
            return
        if self.fail_open:
            _logger.warning(
                "rate limits are not checked while Redis cannot be reached: requests are served "
                "without them (FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR = 'open'); %s: %s",
                type(exc).__name__,
                exc,
            )
        else:
            _logger.warning(
                "requests under a rate limit are refused with 503 while Redis cannot be reached "
                "(FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR = 'closed'); %s: %s",
                type(exc).__name__,
                exc,
            )

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the counter at ``key`` (limits' ``incr``)."""
        return int(self._call("incr", key, expiry, amount))

    def get(self, key: str) -> int:
        """The counter at ``key``."""
        return int(self._call("get", key))

    def get_expiry(self, key: str) -> float:
        """When the counter at ``key`` expires (a timestamp)."""
        return float(self._call("get_expiry", key))

    def check(self) -> bool:
        """Whether Redis answers."""
        try:
            return bool(self._call("check"))
        except RateLimitsUnavailable:
            return False

    def reset(self) -> int | None:
        """Delete every counter of this app (keys under ``key_prefix``)."""
        return t.cast("int | None", self._call("reset"))

    def clear(self, key: str) -> None:
        """Delete the counter at ``key``."""
        self._call("clear", key)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Moving window: take ``amount`` entries if the window has room."""
        return bool(self._call("acquire_entry", key, limit, expiry, amount))

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """Moving window: its start and the entries taken."""
        return t.cast("tuple[float, int]", self._call("get_moving_window", key, limit, expiry))

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        """Sliding window counter: take ``amount`` if the weighted count allows."""
        return bool(self._call("acquire_sliding_window_entry", key, limit, expiry, amount))

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        """Sliding window counter: the previous and current windows."""
        return t.cast(
            "tuple[int, float, int, float]", self._call("get_sliding_window", key, expiry)
        )

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        """Sliding window counter: delete both windows."""
        self._call("clear_sliding_window", key, expiry)


def _invoke(client: _Client, storage: AppRedisStorage, name: str, args: tuple[t.Any, ...]) -> t.Any:
    return getattr(storage._storage_on(client), name)(*args)


def _make_storage(connection: RedisConnection, client: _Client, key_prefix: str) -> RedisStorage:
    """limits' storage for the app's Redis.

    Standalone and Sentinel: on the app client's own connection pool (a
    Sentinel pool follows the master). Cluster: limits builds its own
    cluster client, from the app's nodes, credentials and timeouts.
    """
    from limits.storage import RedisClusterStorage, RedisStorage

    target = connection.target
    if target.kind != "cluster":
        pool = t.cast("t.Any", client).connection_pool
        return RedisStorage("redis://", connection_pool=pool, key_prefix=key_prefix)
    nodes = ",".join(f"{host}:{port}" for host, port in target.nodes)
    options: dict[str, t.Any] = dict(_client_options(connection.timeout))
    if target.username:
        options["username"] = target.username
    if target.password:
        options["password"] = target.password
    return RedisClusterStorage(f"redis+cluster://{nodes}", key_prefix=key_prefix, **options)


def _is_redis_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis failing (unreachable, read-only, out of memory), not a bug."""
    if isinstance(exc, (RedisUnavailable, OSError)):
        return True
    from redis.exceptions import RedisClusterException, RedisError

    return isinstance(exc, (RedisError, RedisClusterException))


# -- keys -------------------------------------------------------------------------------


def _digest(kind: str, identity: str) -> str:
    """``kind:<keyed digest>``: identities (tokens, addresses) never appear in key names."""
    secret = current_app.config["SECRET_KEY"]
    secret_bytes = secret.encode() if isinstance(secret, str) else secret
    message = f"{kind}\0{identity}".encode(errors="surrogatepass")
    digest = hmac.new(secret_bytes, message, hashlib.sha256).hexdigest()
    return f"{kind}:{digest[:_DIGEST_CHARS]}"


def address_key() -> str:
    """The client address (IPv6 by ``/64``), as ``FLASKSTACK_PROXY_FIX`` made it."""
    return _digest("address", _normalize_address(request.remote_addr or ""))


def user_key() -> str:
    """The API token of a request it authenticates; else the signed-in user; else the address.

    A token (or a session) that authenticates nobody counts by address, so
    made-up tokens do not buy fresh budgets.
    """
    manager = getattr(current_app, "login_manager", None)
    if manager is not None:
        from flask_login import current_user

        if current_user.is_authenticated:
            token = request_api_token()
            if token is not None:
                return _digest("token", token)
            return _digest("user", str(current_user.get_id()))
    return address_key()


_KEY_FUNCTIONS: dict[str, t.Callable[[], str]] = {"user": user_key, "address": address_key}


# -- the app's limits --------------------------------------------------------------------


class AppLimits:
    """The rate limits of one app: its ``Limiter`` and a check per declaration.

    :param limiter: The app's Flask-Limiter ``Limiter``, registered on the app.
    :param default_key: ``FLASKSTACK_RATE_LIMIT_KEY``.
    :param api_default: ``FLASKSTACK_RATE_LIMIT_API_DEFAULT`` as a declaration.
    """

    def __init__(self, limiter: Limiter, default_key: str, api_default: Limit | None) -> None:
        self.limiter = limiter
        self.default_key = default_key
        self.api_default = api_default
        self._checks: dict[int, tuple[Limit, t.Callable[[], None]]] = {}
        self._declared: dict[tuple[str, str], bool] = {}
        self._lock = threading.Lock()

    @classmethod
    def install(cls, app: Flask, state: StackState) -> AppLimits:
        """Build the app's limiter and register its hooks on ``app``."""
        config = app.config
        fail_open = config["FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR"] == "open"
        connection = state.redis
        storage_uri = "memory://"
        storage_options: dict[str, t.Any] = {}
        if connection is not None:
            storage_uri = f"{STORAGE_SCHEME}://"
            storage_options = {
                "connection": connection,
                "key_prefix": connection.key("limits"),
                "fail_open": fail_open,
            }
        limiter = Limiter(
            user_key,
            storage_uri=storage_uri,
            storage_options=t.cast("dict[str, str | int]", storage_options),
            headers_enabled=False,  # flaskstack sends the draft's headers itself
            swallow_errors=fail_open,
        )
        breaker = connection.breaker if connection is not None and fail_open else None

        def skip() -> bool:
            # Flask-Limiter's own request hook has nothing to check (flaskstack's limits
            # are checked by AppLimits.check): skip its work. And while the breaker is
            # open, failing open, do not even try: the request is served at once.
            return _CHECKING not in request.environ or (breaker is not None and breaker.is_open)

        limiter.request_filter(skip)
        limiter.init_app(app)
        spec = config["FLASKSTACK_RATE_LIMIT_API_DEFAULT"]
        limits = cls(
            limiter,
            config["FLASKSTACK_RATE_LIMIT_KEY"],
            None if spec is None else Limit(spec, None, None),
        )
        if limits.api_default is not None:
            app.before_request(limits._check_api_default)
        after_response(app, _add_headers)
        return limits

    def check(self, declaration: Limit) -> None:
        """Count this request against ``declaration``.

        :raises flask_limiter.RateLimitExceeded: over the limit (a 429).
        :raises RateLimitsUnavailable: Redis cannot be reached and limits fail closed.
        """
        entry = self._checks.get(id(declaration))
        if entry is None:
            entry = self._check_for(declaration)
        environ = request.environ
        environ[_CHECKING] = True
        try:
            entry[1]()
        finally:
            del environ[_CHECKING]
            current = self.limiter.current_limit
            if current is not None:
                record: list[RequestLimit] = request.environ.setdefault(_RECORD, [])
                if current not in record:
                    record.append(current)

    def _check_for(self, declaration: Limit) -> tuple[Limit, t.Callable[[], None]]:
        """Decorate a stand-in function of ``declaration`` with ``Limiter.limit``, once."""
        reason = spec_problem(declaration.spec)
        if reason is not None:
            raise ValueError(
                f"{declaration!r} is not a rate limit ({reason}): write it like '100/minute'"
            )
        with self._lock:
            entry = self._checks.get(id(declaration))
            if entry is not None:
                return entry
            key = declaration.key or self.default_key
            key_function = _KEY_FUNCTIONS[key] if isinstance(key, str) else key

            def stand_in() -> None:
                return None

            # Flask-Limiter files a decorated limit under the function's module
            # and name; one name per declaration keeps them apart.
            stand_in.__name__ = stand_in.__qualname__ = f"limit_{len(self._checks)}"
            checked = self.limiter.limit(
                declaration.spec,
                key_func=key_function,
                scope=_method_scope,
                methods=_counted_methods(declaration.methods),
                error_message=(
                    f"Too many requests: the limit here is {declaration.spec}. Try again after "
                    "the number of seconds in the Retry-After header."
                ),
            )(stand_in)
            # The declaration object is kept with its check, so its id stays its own.
            entry = self._checks[id(declaration)] = (declaration, checked)
            return entry

    def _check_api_default(self) -> None:
        """``before_request``: the API default, for views and methods that declare no limit."""
        endpoint = request.endpoint
        if endpoint is None or request.method == "OPTIONS" or not is_api_request():
            return
        method = request.method
        declared = self._declared.get((endpoint, method))
        if declared is None:
            view = current_app.view_functions.get(endpoint)
            declared = self._declared[(endpoint, method)] = declares_limits(view, method)
        if not declared:
            assert self.api_default is not None  # registered only with a default
            self.check(self.api_default)


def _method_scope(endpoint: str) -> str:
    """The budget of the request's method within its rule: ``HEAD`` shares ``GET``'s.

    Flask answers ``HEAD`` with the ``GET`` view; a budget of its own would
    double the limit.
    """
    return "GET" if request.method == "HEAD" else request.method


def _counted_methods(methods: tuple[str, ...] | None) -> list[str] | None:
    """The methods a limit counts; ``GET`` brings ``HEAD``, which runs the same view."""
    if methods is None:
        return None
    return sorted({*methods, "HEAD"} if "GET" in methods else set(methods))


# -- response headers -----------------------------------------------------------------


def _add_headers(response: Response) -> Response:
    """``RateLimit-*`` for the limit closest to its end; ``Retry-After`` on a 429 of a limit."""
    record: list[RequestLimit] | None = request.environ.get(_RECORD)
    if not record:
        return response
    try:
        shown = _most_pressing(record)
        reset_time, remaining = shown.window
        reset = max(0, math.ceil(reset_time - time.time()))
    except RateLimitsUnavailable:
        return response  # Redis went away after the check: no headers rather than an error
    headers = response.headers
    item = shown.limit
    headers["RateLimit-Limit"] = str(item.amount)
    headers["RateLimit-Remaining"] = str(remaining)
    headers["RateLimit-Reset"] = str(reset)
    headers["RateLimit-Policy"] = f"{item.amount};w={item.get_expiry()}"
    if shown.breached and response.status_code == 429 and "Retry-After" not in headers:
        headers["Retry-After"] = str(max(1, reset))
    return response


def _most_pressing(record: list[RequestLimit]) -> RequestLimit:
    """The breached limit, else the one with the fewest requests left."""
    for request_limit in record:
        if request_limit.breached:
            return request_limit
    return min(record, key=lambda request_limit: request_limit.remaining)
