"""Flask-Login, wired for server-side sessions, API tokens and JSON clients.

:data:`login_manager` differs from a plain ``flask_login.LoginManager`` in
four ways, each keeping a promise the rest of flaskstack makes:

- A request whose ``Authorization`` header carries an API token is
  authenticated by the token alone: no session, no remember-me cookie. The
  token is checked before the view runs (one SQL statement, even for a view
  that never asks who the user is), in a ``before_request`` function
  registered by :func:`flaskstack.init_app`: it runs before every
  ``before_request`` function the app registers afterwards.
- Nothing reads the session unless the request does: templates get the lazy
  ``current_user`` proxy, and the remember-me cookie is only looked after
  when the session was loaded anyway.
- Signing in by remember-me cookie is a login: the session gets a new id
  (on Flask-Login's ``user_loaded_from_cookie`` signal).
- Where logins are tracked (:mod:`flaskstack.auth._logins`), a session is
  the user's only while its login exists, checked in the same single SQL
  statement that loads the user; a remember-me cookie names a login and is
  checked and replaced by :func:`~flaskstack.auth._logins.sign_in_by_cookie`;
  a Flask-Login cookie from before gets a login of its own at its sign-in.
- An unauthenticated request gets 401 ``application/problem+json`` with
  ``WWW-Authenticate`` when it wants JSON (for a token that was sent but is
  wrong, expired or revoked, with ``"error": "invalid_token"`` in both, as
  RFC 6750 says), and a redirect to the login page
  with a safe, relative ``next`` otherwise (Flask-Login's plain 401 when the
  app has no login page at all). No message is flashed unless the app asked
  for one (``FLASKSTACK_LOGIN_MESSAGE``, or ``login_message`` set on this
  manager): a flash creates a session for every anonymous hit. A signed-in
  user whose login is not fresh enough for a ``fresh_login_required`` view
  gets the same.

Sessions hold the user's ``session_token`` when the model has one
(flaskstack's :class:`~flaskstack.auth.UserMixin`: sessions end with a
password change), else whatever the model's ``get_id()`` returns, which the
loader reads back as the primary key.

Where Flask-Login has no public hook for this, the code lives in
:mod:`flaskstack.auth._flask_login_adapter`.
"""

from __future__ import annotations

import typing as t
import weakref

import flask_login
import flask_login.config
import sqlalchemy as sa
from flask import Flask, current_app, flash, redirect, request, session, url_for
from werkzeug.exceptions import Unauthorized

from flaskstack._credentials import request_api_token
from flaskstack._state import current_state
from flaskstack.database import _first_read, db
from flaskstack.errors import AlreadyInitialisedError
from flaskstack.problems import _prefers_json, problem
from flaskstack.sessions import rotate

from . import _logins
from ._flask_login_adapter import LoginManagerBase, set_request_user
from ._tokens import authenticate

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

__all__ = ["LoginManager", "login_manager"]

LOGIN_ENDPOINT = "flaskstack_auth.login"


class LoginManager(LoginManagerBase):
    """``flask_login.LoginManager`` with token auth and no needless session reads."""

    def init_app(self, app: Flask, add_context_processor: bool = True) -> None:
        """Register on ``app``; templates get the lazy ``current_user`` proxy.

        :func:`flaskstack.init_app` calls this; an app never needs to.

        :raises AlreadyInitialisedError: when the app already has a
            Flask-Login manager (this one, or its own).
        """
        if getattr(app, "login_manager", None) is not None:
            raise AlreadyInitialisedError(
                f"app {app.name!r} already has a Flask-Login LoginManager: remove "
                "flaskstack.login_manager.init_app(app) from the factory (flaskstack.init_app(app) "
                "uses the app's own LoginManager when one is registered before it, else "
                "registers flaskstack's)."
            )
        super().init_app(app, add_context_processor=False)
        if add_context_processor:
            app.context_processor(_current_user_context)
        app.before_request(_authenticate_api_token)
        flask_login.user_loaded_from_cookie.connect(_rotate_after_remember_me, sender=app)


def _current_user_context() -> dict[str, t.Any]:
    return {"current_user": flask_login.current_user}


login_manager = LoginManager()
"""The Flask-Login extension shared by every app."""


@login_manager.user_loader  # type: ignore[untyped-decorator]
def _load_user(user_id: str) -> t.Any | None:
    auth = current_state().auth
    model = t.cast("type[t.Any]", auth.user_model)  # always set with flaskstack's manager
    if user_id.startswith(_logins.COOKIE_PREFIX):
        # Flask-Login found a remember-me cookie of a login and asks for its "user id".
        return _logins.sign_in_by_cookie(user_id[len(_logins.COOKIE_PREFIX) :])
    by_token = auth.features is not None and auth.features.session_token
    logins = auth.login_model
    key = session.get(_logins.SESSION_KEY) if logins is not None else None
    if logins is not None and isinstance(key, str):
        user = _user_with_login(model, logins, by_token, user_id, key)
    elif by_token:
        with _first_read():
            user = db.session.execute(
                _user_by_session_token(model), {"session_token": user_id}
            ).scalar_one_or_none()
    else:
        with _first_read():
            user = _user_by_primary_key(model, user_id)
    if user is None or not user.is_active:
        return None
    return user


def _user_with_login(
    model: type[t.Any], logins: type[t.Any], by_token: bool, user_id: str, key: str
) -> t.Any | None:
    """The user of a session whose login ``key`` still exists, in one statement."""
    value: t.Any = user_id
    if not by_token:
        value = _primary_key_value(model, user_id)
        if value is None:
            return None
    # Only a request that has not begun a transaction of its own may commit here.
    idle = not db.session().in_transaction()
    with _first_read():
        row = db.session.execute(
            _user_and_login(model, logins, by_token), {"user_id": value, "key": key}
        ).one_or_none()
    if row is None:
        return None
    user, login_id, last_used_at = row
    if idle:
        _logins.note_use(login_id, last_used_at)
    return user


_login_lookups: weakref.WeakKeyDictionary[type[t.Any], sa.Select[t.Any]] = (
    weakref.WeakKeyDictionary()
)


def _user_and_login(model: type[t.Any], logins: type[t.Any], by_token: bool) -> sa.Select[t.Any]:
    # Built once per login model, so SQLAlchemy computes its cache key once.
    statement = _login_lookups.get(logins)
    if statement is None:
        user_column = model.session_token if by_token else sa.inspect(model).primary_key[0]
        statement = _login_lookups[logins] = t.cast(
            "sa.Select[t.Any]",
            sa.select(model, logins.id, logins.last_used_at)
            .join_from(logins, model, logins.user)
            .where(user_column == sa.bindparam("user_id"), logins.key == sa.bindparam("key")),
        )
    return statement


def _primary_key_value(model: type[t.Any], user_id: str) -> t.Any | None:
    primary_key = sa.inspect(model).primary_key
    if len(primary_key) != 1:
        return None
    try:
        return primary_key[0].type.python_type(user_id)
    except (TypeError, ValueError, NotImplementedError):
        return None  # a session id of another kind: nobody


def _user_by_primary_key(model: type[t.Any], user_id: str) -> t.Any | None:
    # What Flask-Login's UserMixin.get_id() gives: str(primary key).
    key = _primary_key_value(model, user_id)
    return None if key is None else db.session.get(model, key)


def _authenticate_api_token() -> None:
    # Only for requests authenticating by token, and only while flaskstack's
    # manager is the app's. With tokens off (a user model without a
    # single-column primary key), a token authenticates nobody.
    token = request_api_token()
    if token is not None and current_app.login_manager is login_manager:  # type: ignore[attr-defined]
        tokens_on = current_state().auth.api_token_model is not None
        set_request_user(authenticate(token) if tokens_on else None)


def _rotate_after_remember_me(app: Flask, user: t.Any = None, **extra: t.Any) -> None:
    # Flask-Login has just written the user into the session: move it to a
    # new id, so an id planted in the browser before does not become theirs.
    rotate()
    if user is not None:
        # A Flask-Login cookie from before logins: replaced by a login's own.
        _logins.adopt_cookie_sign_in(user)


_user_lookups: weakref.WeakKeyDictionary[type[t.Any], sa.Select[t.Any]] = (
    weakref.WeakKeyDictionary()
)


def _user_by_session_token(model: type[t.Any]) -> sa.Select[t.Any]:
    # Built once per model, so SQLAlchemy computes its cache key once.
    statement = _user_lookups.get(model)
    if statement is None:
        statement = _user_lookups[model] = sa.select(model).where(
            model.session_token == sa.bindparam("session_token")
        )
    return statement


def _relative_request_path() -> str:
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


INVALID_TOKEN_DETAIL = (
    "The API token in the Authorization header is invalid, expired or revoked: send a valid "
    "token, or create a new one (an expired or revoked token never works again)."
)


@login_manager.unauthorized_handler  # type: ignore[untyped-decorator]
def _unauthorized() -> Response:
    if request_api_token() is not None:
        # A token was sent and authenticated nobody: say so, as RFC 6750 does
        # with its invalid_token error, rather than ask for a token.
        return _sign_in_required(INVALID_TOKEN_DETAIL, _login_endpoint(), error="invalid_token")
    return _sign_in_required(
        "Authentication is required: send an API token in the Authorization header.",
        _login_endpoint(),
    )


@login_manager.needs_refresh_handler  # type: ignore[untyped-decorator]
def _needs_refresh() -> Response:
    # Flask-Login's default flashes a message, which creates a session.
    refresh_view = current_app.login_manager.refresh_view  # type: ignore[attr-defined]
    return _sign_in_required(
        "This action needs a recent sign-in: sign in again to continue.",
        str(refresh_view) if refresh_view else _login_endpoint(),
    )


def _sign_in_required(detail: str, login_endpoint: str, error: str | None = None) -> Response:
    """401 for JSON clients (``error``, an RFC 6750 error code, in the problem and the
    challenge), else a redirect to the login page."""
    schemes = current_app.config["FLASKSTACK_API_TOKEN_SCHEMES"]
    challenge = f'{schemes[0] if schemes else "Bearer"} realm="{current_app.name}"'
    extra: dict[str, str] = {}
    if error is not None:
        challenge += f', error="{error}"'
        extra["error"] = error
    if _prefers_json() or login_endpoint not in current_app.view_functions:
        if not _prefers_json():
            raise Unauthorized(www_authenticate=None)
        return problem(401, detail, headers={"WWW-Authenticate": challenge}, **extra)
    _flash_login_message()
    return redirect(url_for(login_endpoint, next=_relative_request_path()))


def _flash_login_message() -> None:
    # As Flask-Login does, but only for a message the app chose: the default
    # one would give every anonymous visitor a session.
    manager = current_app.login_manager  # type: ignore[attr-defined]
    message = current_app.config.get("FLASKSTACK_LOGIN_MESSAGE")
    if message is None and manager.login_message != flask_login.config.LOGIN_MESSAGE:
        message = manager.login_message
    if not message:
        return
    if manager.localize_callback is not None:
        message = manager.localize_callback(message)
    flash(message, category=manager.login_message_category)


def _login_endpoint() -> str:
    # The app's own login page when it named one (``login_manager.login_view``,
    # per blueprint with ``blueprint_login_views``), else flaskstack's.
    manager = current_app.login_manager  # type: ignore[attr-defined]
    for blueprint in request.blueprints:
        if blueprint in manager.blueprint_login_views:
            return str(manager.blueprint_login_views[blueprint])
    return str(manager.login_view or LOGIN_ENDPOINT)
