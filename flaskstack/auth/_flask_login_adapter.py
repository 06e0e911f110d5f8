"""The two things flaskstack needs from Flask-Login (0.6) that no public hook gives.

Everything else in :mod:`flaskstack.auth` uses Flask-Login's documented API
(``user_loader``, ``unauthorized_handler``, ``needs_refresh_handler``, the
``user_loaded_from_cookie`` signal, ``REMEMBER_COOKIE_*``). These two reach
into it, and ``tests/test_auth_flask_login_adapter.py`` fails, naming what
changed, as soon as a Flask-Login release moves what they rely on.

1. :func:`set_request_user`: make a user the request's ``current_user``
   without Flask-Login loading one. Missing hook: a loader that runs
   *instead of* the session. ``request_loader`` runs only after Flask-Login
   has read the session (session protection, then ``_user_id``) and only
   when no remember-me cookie was sent, so a request carrying an API token
   and a browser's cookies would read the session (a Redis call) and be
   whoever the cookies say (see maxcountryman/flask-login#901 for the
   precedence). Relies on ``LoginManager._update_request_context_with_user``
   and on ``current_user`` using the user it stored without loading another.
2. :class:`LoginManagerBase`: its remember-me hook leaves a session nobody
   read alone. Missing hook: Flask-Login's ``after_request`` function
   ``_update_remember_cookie`` (registered by ``init_app``, with no setting
   to leave it out) looks into the session on every request, which loads a
   server-side session, costs a Redis command and adds ``Vary: Cookie`` to
   responses that never used the session. Relies on ``init_app``
   registering that method by name, and on it taking and returning the
   response.
"""

from __future__ import annotations

import typing as t

import flask_login
from flask import current_app

from flaskstack._state import current_state
from flaskstack.sessions import _is_untouched, _request_session

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

__all__ = ["LoginManagerBase", "set_request_user"]


def set_request_user(user: t.Any | None) -> None:
    """Make ``user`` (``None``: anonymous) the current request's ``current_user``.

    Flask-Login then neither reads the session nor the remember-me cookie in
    this request.
    """
    current_app.login_manager._update_request_context_with_user(user)  # type: ignore[attr-defined]


class LoginManagerBase(flask_login.LoginManager):  # type: ignore[misc]
    """``flask_login.LoginManager`` whose remember-me hook spares unread sessions."""

    def _update_remember_cookie(self, response: Response) -> Response:
        # A Redis session nobody loaded in this request holds no login or
        # logout from it: Flask-Login sets its note ("_remember") and takes it
        # out again within the request that logs in or out.
        session = _request_session()
        if session is None or _is_untouched(session):
            return response
        refresh = current_app.config.get("REMEMBER_COOKIE_REFRESH_EACH_REQUEST", False)
        # With refresh on, Flask-Login would also write its note into the
        # session of an anonymous visitor (and so store that session): only
        # signed-in sessions get their cookie refreshed. Where logins are
        # tracked, it would write the user's id into the cookie in place of
        # the login's: the login's cookie is replaced at each use instead.
        if refresh and current_state().auth.login_model is not None:
            refresh = False
        if "_remember" in session or (refresh and "_user_id" in session):
            return t.cast("Response", super()._update_remember_cookie(response))
        return response
