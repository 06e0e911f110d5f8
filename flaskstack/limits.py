"""Rate limits on views and API resources, counted in the app's Redis by Flask-Limiter.

This module owns :func:`limit`, the ``FLASKSTACK_RATE_LIMIT*`` settings and
the wiring of one Flask-Limiter ``Limiter`` per app. The rules it keeps:

- **Off until configured, free when off.** Without
  ``FLASKSTACK_RATE_LIMITS = True`` neither Flask-Limiter nor limits is
  imported and no request makes a Redis command for a limit; a view that
  declares a :func:`limit` then makes the app's first request fail with a
  :class:`~flaskstack.ConfigError` naming the setting, rather than run unlimited.
- **One budget per limit, URL rule, HTTP method and client.** The client is
  the signed-in user, the API token, or the client address
  (``FLASKSTACK_RATE_LIMIT_KEY``); behind a proxy the address is the one
  ``FLASKSTACK_PROXY_FIX`` recovers, never a header the client sent.
- **The app's Redis, under the app's namespace.** Counters live at
  ``<FLASKSTACK_NAMESPACE>:limits:...`` on the app's Redis connection (without
  a Redis URL, in the process: development and testing only).
- **Redis down never means a 500,** nor a wait longer than
  ``FLASKSTACK_REDIS_TIMEOUT``: requests are served without the limit
  (``FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR = "open"``, logged) or refused with
  503 and ``Retry-After`` (``"closed"``).
- **One way to answer.** A request over its limit raises Flask-Limiter's
  ``RateLimitExceeded`` (a 429): under the API prefix it is a problem
  document like every other error, elsewhere the app's own 429 handler or
  Flask's page answers. Responses under a limit carry ``RateLimit-Limit``,
  ``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds) and
  ``RateLimit-Policy``; a 429 also ``Retry-After``.
"""

from __future__ import annotations

import typing as t

from ._hooks import on_first_request
from ._limits_declarations import EXTENSION_KEY, KEYS, Limit, declared_limits
from .errors import ConfigError, Problem

if t.TYPE_CHECKING:
    from flask import Flask

    from ._state import StackState
    from .config import Resolution

__all__ = ["Limit", "limit"]


def limit(
    spec: str,
    *,
    key: str | t.Callable[[], str] | None = None,
    methods: t.Iterable[str] | None = None,
) -> Limit:
    """Limit how often a client may call a view or an API method.

    On a view (below the route decorator)::

        @app.post("/reports")
        @limit("10/hour")
        def create_report(): ...

    On an API resource, for every method or for one::

        class Reports(rest.Resource):
            method_decorators = {"post": [limit("10/hour"), auth_required]}

    Each limit has one budget per URL rule, HTTP method and client: a client
    over it gets 429 with ``Retry-After``. A declared limit replaces
    ``FLASKSTACK_RATE_LIMIT_API_DEFAULT`` for the methods it decorates.
    Needs ``FLASKSTACK_RATE_LIMITS = True``.

    :param spec: The limit: ``"100/minute"``, ``"10 per hour"``, several
        separated by ``;`` (``"5/second;100/hour"``): every one applies.
    :param key: Whose requests count together: ``"user"`` (the signed-in
        user; for a request authenticated by an API token, the token; else
        the client address), ``"address"`` (the client address), or a
        callable returning a string; ``None`` (the default) means
        ``FLASKSTACK_RATE_LIMIT_KEY``.
    :param methods: Count only these HTTP methods (``["POST"]``); all by default.
    :raises ValueError: for a ``key`` that is neither one of the names nor callable.
    """
    if isinstance(key, str) and key not in KEYS:
        raise ValueError(f"key {key!r}: expected one of {', '.join(map(repr, KEYS))} or a callable")
    if key is not None and not isinstance(key, str) and not callable(key):
        raise ValueError(f"key {key!r}: expected one of {', '.join(map(repr, KEYS))} or a callable")
    chosen = None if methods is None else tuple(sorted({m.upper() for m in methods}))
    return Limit(spec, key, chosen)


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Check the rate limit settings; with limits on, that every limit parses."""
    entries = resolution.entries
    problems: list[Problem] = []
    default = entries["FLASKSTACK_RATE_LIMIT_API_DEFAULT"]
    if not resolution["FLASKSTACK_RATE_LIMITS"]:
        if default.value is not None:
            problems.append(
                Problem(
                    "config.E001",
                    default.key,
                    default.shown,
                    "FLASKSTACK_RATE_LIMITS = True for a default API rate limit",
                    "set FLASKSTACK_RATE_LIMITS = True, or remove "
                    f"FLASKSTACK_RATE_LIMIT_API_DEFAULT from {default.origin}",
                )
            )
        return problems
    from ._limits_engine import spec_problem

    if default.value is not None:
        reason = spec_problem(default.value)
        if reason is not None:
            problems.append(
                Problem(
                    "config.E001",
                    default.key,
                    default.shown,
                    "a rate limit such as '100/minute' or '10/second;1000/hour'",
                    f"correct the value in {default.origin} ({reason})",
                )
            )
    for native in ("RATELIMIT_STORAGE_URI", "RATELIMIT_STORAGE_OPTIONS"):
        if resolution.extra.get(native) or app.config.get(native):
            problems.append(
                Problem(
                    "config.E001",
                    native,
                    "set",
                    "no storage of its own for flaskstack's rate limits",
                    f"remove {native}: flaskstack keeps rate limits in the app's Redis "
                    "(FLASKSTACK_REDIS_URL), in the app's namespace",
                )
            )
    return problems


def _init_app(app: Flask, state: StackState) -> None:
    """Register rate limiting on ``app`` when ``FLASKSTACK_RATE_LIMITS`` is on.

    Off, the app's first request refuses views that declare a limit, which
    would otherwise go unlimited.
    """
    if not app.config["FLASKSTACK_RATE_LIMITS"]:
        on_first_request(app, _refuse_declared_limits)
        return
    from ._limits_engine import AppLimits

    app.extensions[EXTENSION_KEY] = AppLimits.install(app, state)


def _refuse_declared_limits(app: Flask) -> None:
    """Refuse views that declare a limit while rate limits are off (they would run unlimited)."""
    endpoints = sorted(name for name, view in app.view_functions.items() if declared_limits(view))
    if not endpoints:
        return
    raise ConfigError(
        [
            Problem(
                "config.E001",
                "FLASKSTACK_RATE_LIMITS",
                "False",
                f"True: views of app {app.name!r} declare rate limits ({', '.join(endpoints)})",
                "set FLASKSTACK_RATE_LIMITS = True, or remove their limit() declarations",
            )
        ]
    )
