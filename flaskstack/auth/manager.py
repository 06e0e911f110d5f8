"""Flask-Login, wired for server-side sessions, API tokens and JSON clients.

:data:`login_manager` differs from a plain ``flask_login.LoginManager`` in
three ways, each keeping a promise the rest of flaskstack makes:

- A request whose ``Authorization`` header carries an API token is
  authenticated by the token alone: no session, no remember-me cookie.
- Nothing reads the session unless the request does: templates get the lazy
  ``current_user`` proxy, and the remember-me cookie is only looked after
  when the session was loaded anyway.
- An unauthenticated request gets 401 ``application/problem+json`` with
  ``WWW-Authenticate`` when it wants JSON, and a redirect to the login page
  with a safe, relative ``next`` otherwise — never a flashed message (which
  would create a session for every anonymous hit).
"""

from __future__ import annotations

import datetime as dt
import typing as t
import weakref

import flask_login
import sqlalchemy as sa
from flask import Flask, current_app, redirect, request, session, url_for
from flask_login.utils import encode_cookie
from werkzeug.exceptions import Unauthorized

from flaskstack._hooks import after_response
from flaskstack._state import current_state
from flaskstack.database import db
from flaskstack.problems import prefers_json, problem
from flaskstack.sessions import is_untouched, request_session, rotate

from .tokens import authenticate, request_token

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

__all__ = ["LoginManager", "login_manager"]

LOGIN_ENDPOINT = "flaskstack_auth.login"


class LoginManager(flask_login.LoginManager):  # type: ignore[misc]
    """``flask_login.LoginManager`` with token auth and no needless session reads."""

    def init_app(self, app: Flask, add_context_processor: bool = True) -> None:
        """Register on ``app``; templates get the lazy ``current_user`` proxy."""
        super().init_app(app, add_context_processor=False)
        # Flask-Login registered its remember-me hook as an after_request
        # function of its own; it runs in flaskstack's one hook instead.
        hooks = app.after_request_funcs.get(None, [])
        if self._update_remember_cookie in hooks:
            hooks.remove(self._update_remember_cookie)
            after_response(app, self._update_remember_cookie)
        if add_context_processor:
            app.context_processor(_current_user_context)

    def _load_user(self) -> t.Any:
        token = request_token()
        if token is not None:
            return self._update_request_context_with_user(authenticate(token))
        return super()._load_user()

    def _load_user_from_remember_cookie(self, cookie: str) -> t.Any:
        # Signing in by remember-me cookie is a login: give the session a new
        # id, so an id planted in the browser before does not become the user's.
        user = super()._load_user_from_remember_cookie(cookie)
        if user is not None:
            rotate()
        return user

    def _set_cookie(self, response: Response) -> None:
        # Flask-Login 0.6 dates the cookie with datetime.utcnow(), deprecated
        # since Python 3.12; a Max-Age gives browsers the same lifetime.
        config = current_app.config
        seconds = session.get("_remember_seconds")
        duration = (
            dt.timedelta(seconds=seconds)
            if seconds is not None
            else config.get("REMEMBER_COOKIE_DURATION", dt.timedelta(days=365))
        )
        if isinstance(duration, int):
            duration = dt.timedelta(seconds=duration)
        response.set_cookie(
            config.get("REMEMBER_COOKIE_NAME", "remember_token"),
            value=encode_cookie(str(session["_user_id"])),
            max_age=duration,
            domain=config.get("REMEMBER_COOKIE_DOMAIN"),
            path=config.get("REMEMBER_COOKIE_PATH", "/"),
            secure=config["REMEMBER_COOKIE_SECURE"],
            httponly=config["REMEMBER_COOKIE_HTTPONLY"],
            samesite=config["REMEMBER_COOKIE_SAMESITE"],
        )

    def _update_remember_cookie(self, response: Response) -> Response:
        # Look at the session object itself: touching the ``session`` proxy
        # would mark it accessed (``Vary: Cookie`` on every response), and a
        # Redis session nobody loaded holds no login or logout from this request.
        session = request_session()
        if session is None or is_untouched(session):
            return response
        refresh = current_app.config.get("REMEMBER_COOKIE_REFRESH_EACH_REQUEST", False)
        if "_remember" in session or (refresh and "_user_id" in session):
            return t.cast("Response", super()._update_remember_cookie(response))
        return response


def _current_user_context() -> dict[str, t.Any]:
    return {"current_user": flask_login.current_user}


login_manager = LoginManager()
"""The Flask-Login extension shared by every app."""


@login_manager.user_loader  # type: ignore[untyped-decorator]
def _load_user_by_session_token(session_token: str) -> t.Any | None:

    user_model = current_state().auth.user_model
    user = db.session.execute(
        _user_by_session_token(user_model), {"session_token": session_token}
    ).scalar_one_or_none()
    if user is None or not user.is_active:
        return None
    return user


_user_lookups: weakref.WeakKeyDictionary[type[t.Any], sa.Select[t.Any]] = (
    weakref.WeakKeyDictionary()
)


def _user_by_session_token(user_model: type[t.Any]) -> sa.Select[t.Any]:
    # Built once per model, so SQLAlchemy computes its cache key once.
    statement = _user_lookups.get(user_model)
    if statement is None:
        statement = _user_lookups[user_model] = sa.select(user_model).where(
            user_model.session_token == sa.bindparam("session_token")
        )
    return statement


def _relative_request_path() -> str:
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


@login_manager.unauthorized_handler  # type: ignore[untyped-decorator]
def _unauthorized() -> Response:
    schemes = current_app.config["FLASKSTACK_API_TOKEN_SCHEMES"]
    challenge = f'{schemes[0] if schemes else "Bearer"} realm="{current_app.name}"'
    login_endpoint = _login_endpoint()
    if prefers_json() or login_endpoint not in current_app.view_functions:
        if not prefers_json():
            raise Unauthorized(www_authenticate=None)
        return problem(
            401,
            "Authentication is required: send an API token in the Authorization header.",
            headers={"WWW-Authenticate": challenge},
        )
    return redirect(url_for(login_endpoint, next=_relative_request_path()))


def _login_endpoint() -> str:
    # The app's own login page when it named one (``login_manager.login_view``,
    # per blueprint with ``blueprint_login_views``), else flaskstack's.
    manager = current_app.login_manager  # type: ignore[attr-defined]
    for blueprint in request.blueprints:
        if blueprint in manager.blueprint_login_views:
            return str(manager.blueprint_login_views[blueprint])
    return str(manager.login_view or LOGIN_ENDPOINT)
