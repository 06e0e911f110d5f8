"""Throttling of failed attempts: fixed-window counters per identity, in Redis or in-process.

This module owns the failed-login limits (``FLASKSTACK_LOGIN_ACCOUNT_LIMIT``,
``FLASKSTACK_LOGIN_ADDRESS_LIMIT``, ``FLASKSTACK_LOGIN_WINDOW``), the counters
behind them and the 429 answer. The login view uses it like this::

    throttles = login_throttles(current_app)
    throttles.guard(email, request.remote_addr)       # 429 while either is blocked
    if not password_ok:
        throttles.failed(email, request.remote_addr)  # count the failure
        ...                                           # the usual "wrong email or password"
    throttles.succeeded(email)                        # clears the account counter

The rule it keeps: **a throttle never takes the site down.** Every call is
one round trip to Redis, through the app's circuit breaker; when Redis cannot
be reached the attempt is allowed (fail open), one warning is logged per
outage, and nothing raises. Identities (emails, addresses) never appear in
Redis key names: each is reduced to a keyed SHA-256 digest first.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import hashlib
import hmac
import ipaddress
import logging
import math
import re
import threading
import time
import typing as t

from werkzeug.exceptions import TooManyRequests

from ._credentials import normalise_email
from ._state import get_state
from .redis import RedisUnavailable

if t.TYPE_CHECKING:
    from flask import Flask

    from .redis import RedisConnection, _Client

__all__ = ["LoginThrottled", "LoginThrottles", "Throttle", "Verdict", "login_throttles"]

_logger = logging.getLogger("flaskstack.throttle")

_LOGIN_THROTTLED_MESSAGE = "Too many failed login attempts. Try again later."
"""The description of every login 429, whether the account exists or not."""

_ACCOUNT_SCOPE = "login-account"
"""The scope of the per-account login throttle (part of its Redis keys)."""
_ADDRESS_SCOPE = "login-address"
"""The scope of the per-address login throttle (part of its Redis keys)."""

_SCOPE_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_DIGEST_CHARS = 32  # 128 bits of the HMAC: no collisions in practice, short keys
_STORE_KEY = "flaskstack.throttle"
_PRUNE_INTERVAL = 10.0

# INCR the counter and give it the window as its lifetime if it has none: a new
# counter, or one whose expiry was lost (a key without one would block forever).
# One script is one round trip and atomic, and touches one key, so it runs on
# Redis Cluster too. Returns {count, milliseconds left}.
_HIT_SCRIPT = """\
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  ttl = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {count, ttl}
"""
# Read-only: the count and the milliseconds left, or {0, 0} without a counter.
_CHECK_SCRIPT = """\
local count = redis.call('GET', KEYS[1])
if not count then
  return {0, 0}
end
return {tonumber(count), redis.call('PTTL', KEYS[1])}
"""


def _sha1(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


_HIT_SHA = _sha1(_HIT_SCRIPT)
_CHECK_SHA = _sha1(_CHECK_SCRIPT)


# -- verdicts and the 429 -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a throttle says about one identity.

    :ivar allowed: For :meth:`Throttle.hit`, whether the failure just recorded
        was within the limit (the first ``limit`` failures of a window are);
        for :meth:`Throttle.check`, whether another attempt may be made now
        (fewer than ``limit`` failures so far).
    :ivar count: Failures recorded in the current window.
    :ivar limit: The throttle's limit.
    :ivar retry_after: Seconds until the current window ends and the count
        starts again from zero; ``0.0`` when no failure is recorded.
    :ivar degraded: ``True`` when the store could not be reached: the attempt
        is allowed and was not counted.
    """

    allowed: bool
    count: int
    limit: int
    retry_after: float
    degraded: bool = False

    @property
    def blocked(self) -> bool:
        """The opposite of :attr:`allowed`."""
        return not self.allowed

    @property
    def remaining(self) -> int:
        """Failures still allowed in the current window."""
        return max(0, self.limit - self.count)


class LoginThrottled(TooManyRequests):
    """The 429 answer to a throttled login, with a ``Retry-After`` header.

    Its description is always :data:`LOGIN_THROTTLED_MESSAGE`, whichever
    throttle refused and whether or not the account exists, so the answer
    tells an attacker nothing about accounts.

    :param retry_after: Seconds until the client may try again; rounded up to
        a whole number of at least 1 for the header.
    """

    description = _LOGIN_THROTTLED_MESSAGE

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after=max(1, math.ceil(retry_after)))

    @classmethod
    def raise_for(cls, *verdicts: Verdict) -> None:
        """Raise one :class:`LoginThrottled` if any of ``verdicts`` is blocked.

        ``Retry-After`` is the longest wait among the blocked verdicts.

        :raises LoginThrottled: if an identity is over its limit.
        """
        waits = [v.retry_after for v in verdicts if v.blocked]
        if waits:
            raise cls(max(waits))


# -- stores ----------------------------------------------------------------------


_Count = tuple[int, float]
"""A counter's value and the seconds left in its window, as stores return them."""


class _ThrottleStore(abc.ABC):
    """Where throttles keep their counters: one per app, shared by its throttles.

    :meth:`hit` and :meth:`peek` return ``None`` when the store cannot be
    reached; no method raises for that.
    """

    @abc.abstractmethod
    def key(self, scope: str, digest: str) -> str:
        """The name of the counter of ``digest`` in ``scope``."""
        raise NotImplementedError

    @abc.abstractmethod
    def hit(self, key: str, window: float) -> _Count | None:
        """Add one to the counter at ``key``, starting a ``window`` if there is none."""
        raise NotImplementedError

    @abc.abstractmethod
    def peek(self, key: str) -> _Count | None:
        """Read the counter at ``key`` (``(0, 0.0)`` if there is none) without changing it."""
        raise NotImplementedError

    @abc.abstractmethod
    def clear(self, key: str) -> None:
        """Delete the counter at ``key``."""
        raise NotImplementedError


@functools.cache
def _redis_failures() -> tuple[type[Exception], ...]:
    # Looked up when a call fails, so that importing this module does not
    # import redis-py; by then the client has imported it.
    from redis.exceptions import RedisClusterException, RedisError

    # RedisClusterException is not a RedisError.
    return (RedisUnavailable, RedisError, RedisClusterException)


class _RedisStore(_ThrottleStore):
    """Counters in the app's Redis, at ``<namespace>:throttle:<scope>:<digest>``.

    Each call is one command in one round trip (a Lua script by its SHA, or
    ``DEL``), on one key, so it works on a standalone server, Sentinel and
    Cluster alike; the script is sent in full only when the server does not
    know it yet (after a restart). Counters expire with their window.

    **Outages fail open.** When Redis cannot be reached, :meth:`hit` and
    :meth:`peek` return ``None`` (the throttle then allows the attempt),
    :meth:`clear` does nothing, and one warning is logged per outage.
    Blocking every login instead would lock every user out while Redis is
    down, and raising would turn each login into a 500; allowing the attempt
    costs little, because an outage already makes session-based login answer
    503 and the password check still applies. Calls go through
    :meth:`RedisConnection.run <flaskstack.redis.RedisConnection.run>`, so an
    outage costs one Redis timeout, not one per request. Other Redis errors
    (a read-only replica during a failover, out of memory) are handled the
    same way.
    """

    def __init__(self, connection: RedisConnection) -> None:
        self.connection = connection
        self._outage = False
        self._lock = threading.Lock()

    def key(self, scope: str, digest: str) -> str:
        """``<namespace>:throttle:<scope>:<digest>``."""
        return self.connection.key("throttle", scope, digest)

    def hit(self, key: str, window: float) -> _Count | None:
        """Add one to the counter at ``key`` (one ``EVALSHA``)."""
        milliseconds = max(1, math.ceil(window * 1000))
        return self._script(_HIT_SCRIPT, _HIT_SHA, key, milliseconds)

    def peek(self, key: str) -> _Count | None:
        """Read the counter at ``key`` (one ``EVALSHA``)."""
        return self._script(_CHECK_SCRIPT, _CHECK_SHA, key)

    def clear(self, key: str) -> None:
        """Delete the counter at ``key`` (one ``DEL``)."""
        self._run(lambda client: client.delete(key))

    def _script(self, script: str, sha: str, key: str, *args: int) -> _Count | None:
        def call(client: _Client) -> t.Any:
            from redis.exceptions import NoScriptError

            try:
                return client.evalsha(sha, 1, key, *args)
            except NoScriptError:
                return client.eval(script, 1, key, *args)  # also caches it on the server

        reply = self._run(call)
        if reply is None:
            return None
        count, milliseconds = reply
        return int(count), max(0, int(milliseconds)) / 1000

    def _run(self, operation: t.Callable[[_Client], t.Any]) -> t.Any:
        try:
            result = self.connection.run(operation)
        except _redis_failures() as exc:
            with self._lock:
                first, self._outage = not self._outage, True
            if first:
                _logger.warning(
                    "throttling cannot use Redis: attempts are allowed and not counted until "
                    "it answers again (%s: %s)",
                    type(exc).__name__,
                    exc,
                )
            return None
        if self._outage:
            with self._lock:
                recovered, self._outage = self._outage, False
            if recovered:
                _logger.info("throttling works again")
        return result


class _MemoryStore(_ThrottleStore):
    """Counters in this process, for development and tests without Redis.

    Same semantics as :class:`RedisStore`, but each process counts on its
    own, so with several worker processes the limits apply per process: use
    Redis in production. Thread-safe; expired counters are dropped at most
    every few seconds, so memory stays bounded by the counters of one window.

    :param clock: Monotonic seconds (for tests).
    """

    def __init__(self, clock: t.Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._next_prune = 0.0

    def __len__(self) -> int:
        """The number of counters held, expired ones not yet dropped included."""
        return len(self._counters)

    def key(self, scope: str, digest: str) -> str:
        """``throttle:<scope>:<digest>``."""
        return f"throttle:{scope}:{digest}"

    def hit(self, key: str, window: float) -> _Count:
        """Add one to the counter at ``key``."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            count, expires = self._counters.get(key, (0, 0.0))
            if expires <= now:
                count, expires = 0, now + window
            self._counters[key] = (count + 1, expires)
            return count + 1, expires - now

    def peek(self, key: str) -> _Count:
        """Read the counter at ``key``."""
        with self._lock:
            now = self._clock()
            count, expires = self._counters.get(key, (0, 0.0))
            if expires <= now:
                return 0, 0.0
            return count, expires - now

    def clear(self, key: str) -> None:
        """Delete the counter at ``key``."""
        with self._lock:
            self._counters.pop(key, None)

    def _prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + _PRUNE_INTERVAL
        for key in [k for k, (_, expires) in self._counters.items() if expires <= now]:
            del self._counters[key]


def _make_store(connection: RedisConnection | None) -> _ThrottleStore:
    """A new store: on ``connection``, or in-process without one."""
    return _MemoryStore() if connection is None else _RedisStore(connection)


def _store_for(app: Flask) -> _ThrottleStore:
    """The counter store of ``app``: on its Redis, or in-process without one.

    One store per app, made on first use, so that its counters (in-process)
    and its outage state (Redis) outlive the request.

    :raises LookupError: if :func:`flaskstack.init_app` was not called for ``app``.
    """
    store = app.extensions.get(_STORE_KEY)
    if store is None:
        # setdefault keeps a single store if two threads race here.
        store = app.extensions.setdefault(_STORE_KEY, _make_store(get_state(app).redis))
    return t.cast("_ThrottleStore", store)


# -- throttles --------------------------------------------------------------------


class Throttle:
    """At most ``limit`` failures per identity in each fixed ``window`` of seconds.

    The window of an identity starts with its first failure and does not
    move; after it ends the count starts from zero. So an identity gets at
    most ``limit`` failures per ``window`` (twice that across a window
    boundary, the usual price of a fixed window for one round trip per call).

    :param store: Where the counters live (:func:`store_for` gives the app's).
    :param scope: What is counted, as part of key names (``login-account``):
        1 to 64 letters, digits, ``_``, ``.`` or ``-``.
    :param limit: Failures allowed per window.
    :param window: The window, in seconds.
    :param secret: Keys the digest of identities, so key names cannot be
        reversed by hashing guesses (every IPv4 address is a small space).
        Changing it (a new ``SECRET_KEY``) starts every count afresh.
    :param normalize: Applied to identities before hashing, so spellings of
        the same identity share a counter (see
        :func:`flaskstack.auth.normalise_email`).
    :raises ValueError: for an invalid scope, limit or window.
    """

    def __init__(
        self,
        store: _ThrottleStore,
        scope: str,
        limit: int,
        window: float,
        *,
        secret: str | bytes,
        normalize: t.Callable[[str], str] | None = None,
    ) -> None:
        if not _SCOPE_PATTERN.fullmatch(scope):
            raise ValueError(f"scope {scope!r}: expected 1 to 64 letters, digits, '_', '.' or '-'")
        if limit < 1:
            raise ValueError(f"limit {limit!r}: expected a whole number greater than 0")
        if not window > 0:
            raise ValueError(f"window {window!r}: expected a number of seconds greater than 0")
        self.store = store
        self.scope = scope
        self.limit = limit
        self.window = float(window)
        self.normalize = normalize
        self._secret = secret.encode() if isinstance(secret, str) else secret

    @classmethod
    def for_app(
        cls,
        app: Flask,
        scope: str,
        limit: int,
        window: float,
        *,
        normalize: t.Callable[[str], str] | None = None,
    ) -> Throttle:
        """A throttle on the store of ``app``, keyed with its ``SECRET_KEY``."""
        return cls(
            _store_for(app),
            scope,
            limit,
            window,
            secret=app.config["SECRET_KEY"],
            normalize=normalize,
        )

    def key(self, identity: str) -> str:
        """The store key of ``identity``'s counter; the identity itself is not in it."""
        if self.normalize is not None:
            identity = self.normalize(identity)
        message = f"{self.scope}\0{identity}".encode(errors="surrogatepass")
        digest = hmac.new(self._secret, message, hashlib.sha256).hexdigest()
        return self.store.key(self.scope, digest[:_DIGEST_CHARS])

    def hit(self, identity: str) -> Verdict:
        """Record one failure of ``identity``.

        :returns: allowed if this failure is within the limit (the first
            ``limit`` of the window are), with the seconds left in the window.
        """
        counter = self.store.hit(self.key(identity), self.window)
        if counter is None:
            return Verdict(True, 0, self.limit, 0.0, degraded=True)
        count, left = counter
        return Verdict(count <= self.limit, count, self.limit, left)

    def check(self, identity: str) -> Verdict:
        """Whether ``identity`` may make another attempt now (fewer than ``limit``
        failures in its window), without recording anything."""
        counter = self.store.peek(self.key(identity))
        if counter is None:
            return Verdict(True, 0, self.limit, 0.0, degraded=True)
        count, left = counter
        if count and not left:  # a counter without an expiry: the next hit gives it one
            left = self.window
        return Verdict(count < self.limit, count, self.limit, left)

    def reset(self, identity: str) -> None:
        """Forget the failures of ``identity`` (after a successful login)."""
        self.store.clear(self.key(identity))


# -- the login throttles -------------------------------------------------------------


def _normalize_address(address: str) -> str:
    """The client address as throttled: an IPv6 address stands for its ``/64``.

    One IPv6 host usually holds a whole ``/64``, so counting single addresses
    would let it try once from each. An IPv4-mapped IPv6 address counts as
    the IPv4 address; anything unparsable is used as given.
    """
    text = address.strip()
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginThrottles(t.NamedTuple):
    """The two throttles of the login view: per account and per client address.

    Count failures for unknown emails too: if only existing accounts were
    throttled, a 429 would tell an attacker which emails have accounts.
    The address throttle needs the real client address: behind a reverse
    proxy, switch on ``ProxyFix``, or every client shares the proxy's address
    and its limit.
    """

    account: Throttle
    address: Throttle

    def guard(self, email: str, address: str | None) -> None:
        """Refuse the attempt before the password is checked if either identity is blocked.

        :raises LoginThrottled: with the longest ``Retry-After`` of the two.
        """
        LoginThrottled.raise_for(self.account.check(email), self.address.check(address or ""))

    def failed(self, email: str, address: str | None) -> None:
        """Count a failed attempt against both identities.

        :raises LoginThrottled: if the failure went over a limit (concurrent
            attempts that all passed :meth:`guard`).
        """
        LoginThrottled.raise_for(self.account.hit(email), self.address.hit(address or ""))

    def succeeded(self, email: str) -> None:
        """Clear the account's failures; the address keeps its count."""
        self.account.reset(email)


def login_throttles(app: Flask) -> LoginThrottles:
    """The login throttles of ``app``, configured from its settings.

    ``FLASKSTACK_LOGIN_ACCOUNT_LIMIT`` failures per account (email, stripped
    and lower-cased) and ``FLASKSTACK_LOGIN_ADDRESS_LIMIT`` per client
    address (IPv6 by ``/64``) in each ``FLASKSTACK_LOGIN_WINDOW``. Cheap to
    call on every request: the counters live in the app's store.
    """
    config = app.config
    window = config["FLASKSTACK_LOGIN_WINDOW"]
    return LoginThrottles(
        Throttle.for_app(
            app,
            _ACCOUNT_SCOPE,
            config["FLASKSTACK_LOGIN_ACCOUNT_LIMIT"],
            window,
            normalize=normalise_email,
        ),
        Throttle.for_app(
            app,
            _ADDRESS_SCOPE,
            config["FLASKSTACK_LOGIN_ADDRESS_LIMIT"],
            window,
            normalize=_normalize_address,
        ),
    )
