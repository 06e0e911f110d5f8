"""Authentication: users, passwords, sessions that rotate, API tokens.

Built on Flask-Login. Use :func:`login_user` and :func:`logout_user` from
here rather than Flask-Login's: logging in gives the session a new id
(session fixation) and logging out deletes the server-side session, so a
stolen cookie is dead afterwards. :func:`auth_required` protects a view for
session and API-token users alike.
"""

from __future__ import annotations

import dataclasses
import functools
import typing as t

from flask import abort, current_app
from flask_login import current_user

from flaskstack.errors import ConfigError
from flaskstack.rest._meta import describe

from . import _views
from ._login import login_user, logout_user
from ._manager import login_manager
from ._models import (
    UserMixin,
    default_user_model,
    normalise_email,
    resolve_user_model,
    token_model,
)
from ._passwords import PasswordPolicyError, verify_password
from ._tokens import create_token, request_token, revoke_token

if t.TYPE_CHECKING:
    from flask import Flask

    from flaskstack.config import Resolution
    from flaskstack.errors import Problem

__all__ = [
    "AuthState",
    "PasswordPolicyError",
    "User",
    "UserMixin",
    "auth_required",
    "create_token",
    "current_user",
    "login_manager",
    "login_user",
    "logout_user",
    "normalise_email",
    "request_token",
    "revoke_token",
    "verify_password",
]

_F = t.TypeVar("_F", bound=t.Callable[..., t.Any])


@dataclasses.dataclass(frozen=True)
class AuthState:
    """The models auth uses for one app (``get_state(app).auth``)."""

    user_model: type[t.Any]
    token_model: type[t.Any]


def auth_required(
    view: _F | None = None,
    *,
    check: t.Callable[[t.Any], bool] | None = None,
    permission: str | None = None,
) -> t.Any:
    """Require an authenticated user (session or API token) for ``view``.

    Without one, the client gets 401: ``application/problem+json`` with
    ``WWW-Authenticate`` for API and JSON clients, a redirect to the login
    page for browsers. With ``check``, also require ``check(current_user)``
    to be true; with ``permission``, ``current_user.has_permission(permission)``
    (a method of your user model); else 403::

        @auth_required(check=lambda user: user.is_admin)
        def admin(): ...

        class Notes(rest.Resource):
            method_decorators = {"delete": [auth_required(permission="notes.delete")]}

    Usable on a view function, on a resource method, and as a
    ``method_decorators`` entry; the OpenAPI document marks the operations
    it protects.
    """

    def decorate(function: _F) -> _F:
        @functools.wraps(function)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            user = current_user._get_current_object()
            if check is not None and not check(user):
                abort(403)
            if permission is not None and not _has_permission(user, permission):
                abort(403)
            return current_app.ensure_sync(function)(*args, **kwargs)

        return describe(t.cast("_F", wrapper), auth=True)

    decorate.__flaskstack_auth__ = True  # type: ignore[attr-defined]
    return decorate(view) if view is not None else decorate


auth_required.__flaskstack_auth__ = True  # type: ignore[attr-defined]


def _has_permission(user: t.Any, permission: str) -> bool:
    has_permission = getattr(user, "has_permission", None)
    if has_permission is None:
        raise TypeError(
            f"auth_required(permission={permission!r}) needs a has_permission(name) method on "
            f"the user model {type(user).__name__}; add one returning True or False"
        )
    return bool(has_permission(permission))


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Check that the configured user model can be used."""
    try:
        resolve_user_model(resolution["FLASKSTACK_USER_MODEL"])
    except ConfigError as exc:
        return list(exc.problems)
    return []


def _init_app(app: Flask) -> AuthState:
    """Register Flask-Login on ``app`` with the configured user model."""
    user_model = resolve_user_model(app.config["FLASKSTACK_USER_MODEL"])
    login_manager.init_app(app)
    _views.init_app(app)
    return AuthState(user_model, token_model(user_model))


def __getattr__(name: str) -> t.Any:
    # ``User``, flaskstack's default model, is declared when first asked for.
    if name == "User":
        return default_user_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
