"""Rate limit declarations: what :func:`flaskstack.limits.limit` makes, and where they are checked.

A module of its own so that the engine (:mod:`flaskstack._limits_engine`,
which imports Flask-Limiter) and the public face (:mod:`flaskstack.limits`,
which imports the engine only when rate limits are on) both import it
without importing each other. It imports neither Flask-Limiter nor limits.
"""

from __future__ import annotations

import functools
import typing as t

from flask import current_app

from ._state import get_state

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = [
    "DECLARED_ATTRIBUTE",
    "EXTENSION_KEY",
    "KEYS",
    "Limit",
    "app_limits",
    "declared_limits",
    "declares_limits",
]

_F = t.TypeVar("_F", bound=t.Callable[..., t.Any])

EXTENSION_KEY = "flaskstack.limits"
"""Where the per-app rate limit state lives in ``app.extensions``."""

DECLARED_ATTRIBUTE = "_flaskstack_limits"
"""Set on a function :func:`limit` wrapped, so the API default knows to stand aside."""

KEYS = ("user", "address")
"""The names ``key`` and ``FLASKSTACK_RATE_LIMIT_KEY`` accept."""


class Limit:
    """A rate limit declaration, made by :func:`limit`; apply it to a view or a method.

    The same object may decorate several views, and may sit in the
    ``method_decorators`` of a :class:`flaskstack.rest.Resource` (list or
    dict by method), where it is applied anew on each request.

    :ivar spec: The limit, in Flask-Limiter's notation (``"10/minute"``).
    :ivar key: ``"user"``, ``"address"``, a callable returning the client's
        identity as a string, or ``None`` for ``FLASKSTACK_RATE_LIMIT_KEY``.
    :ivar methods: The HTTP methods counted (upper case), or ``None`` for all.
    """

    __slots__ = ("key", "methods", "spec")

    def __init__(
        self,
        spec: str,
        key: str | t.Callable[[], str] | None,
        methods: tuple[str, ...] | None,
    ) -> None:
        self.spec = spec
        self.key = key
        self.methods = methods

    def __repr__(self) -> str:
        return f"limit({self.spec!r})"

    def __call__(self, function: _F) -> _F:
        """Check this limit before each call of ``function``."""

        @functools.wraps(function)
        def limited(*args: t.Any, **kwargs: t.Any) -> t.Any:
            app_limits(current_app).check(self)
            return current_app.ensure_sync(function)(*args, **kwargs)

        declared: tuple[Limit, ...] = getattr(function, DECLARED_ATTRIBUTE, ())
        setattr(limited, DECLARED_ATTRIBUTE, (*declared, self))
        return t.cast("_F", limited)


class _AppLimitsLike(t.Protocol):
    def check(self, declaration: Limit) -> None: ...


def app_limits(app: Flask) -> _AppLimitsLike:
    """The rate limit state of ``app``.

    :raises RuntimeError: if rate limits are off for it, naming the setting.
    """
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        get_state(app)  # an app flaskstack did not set up gets that error first
        raise RuntimeError(
            f"a view of app {app.name!r} declares a rate limit, but rate limits are off: set "
            "FLASKSTACK_RATE_LIMITS = True (or remove the limit() declaration)"
        )
    return t.cast("_AppLimitsLike", state)


def declares_limits(view: t.Callable[..., t.Any] | None, method: str) -> bool:
    """Whether ``view`` (or, for a resource, the method's decorators) declares a limit."""
    if view is None:
        return False
    if getattr(view, DECLARED_ATTRIBUTE, None):
        return True
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return False
    # Flask-RESTful's rule: method_decorators is a list, or a dict by lower-case method.
    decorators = getattr(view_class, "method_decorators", None) or []
    if isinstance(decorators, t.Mapping):
        decorators = decorators.get(method.lower(), [])
    if any(isinstance(decorator, Limit) for decorator in decorators):
        return True
    handler = getattr(view_class, method.lower(), None)
    return bool(getattr(handler, DECLARED_ATTRIBUTE, None))


def declared_limits(view: t.Callable[..., t.Any]) -> bool:
    """Whether ``view`` declares a limit for any method (see :func:`declares_limits`)."""
    methods = getattr(getattr(view, "view_class", None), "methods", None) or ("GET",)
    return any(declares_limits(view, method) for method in methods)
