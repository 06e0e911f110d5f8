"""Signing in and out on top of Flask-Login: the session id changes at both ends.

:func:`login_user` gives the session a new id before Flask-Login writes the
user into it (session fixation) and, where logins are tracked
(:mod:`flaskstack.auth._logins`), records the device's login (committing
the database session) and sends the device's own remember-me cookie;
:func:`logout_user` revokes that login and deletes the server-side session,
so neither a copied session cookie nor a copied remember-me cookie works
afterwards. Exported by :mod:`flaskstack.auth`; the sign-in pages use them
too.
"""

from __future__ import annotations

import typing as t

import flask_login
from flask import current_app, url_for

from flaskstack._state import current_state
from flaskstack.sessions import destroy, rotate

from . import _logins

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

__all__ = ["complete_sign_in", "login_user", "logout_user", "sign_in_first"]


def sign_in_first() -> Response | None:
    """``None`` when the request is signed in; else the app's answer to an anonymous one.

    That is the Flask-Login manager's ``unauthorized()``: with flaskstack's,
    a redirect to the sign-in page for browsers and 401 for JSON clients.
    :func:`~flaskstack.auth.auth_required` and the account pages answer so.
    """
    if flask_login.current_user.is_authenticated:
        return None
    return t.cast("Response", current_app.login_manager.unauthorized())  # type: ignore[attr-defined]


def login_user(user: t.Any, remember: bool = False) -> bool:
    """Log ``user`` in under a new session id; ``False`` if the user is inactive.

    Where the app tracks signed-in devices (flaskstack's login manager and a
    user model with a single-column primary key), the sign-in is recorded
    as a login of this device and the database session is **committed**;
    with ``remember``, the device gets a remember-me cookie of its own.
    """
    if not user.is_active:
        return False
    rotate()
    if current_state().auth.login_model is None:
        return bool(flask_login.login_user(user, remember=remember))
    signed_in = bool(flask_login.login_user(user, remember=False))
    _logins.start(user, remember)
    return signed_in


def complete_sign_in(
    user: t.Any, remember: bool = False, *, method: str = "password"
) -> Response | None:
    """Finish a sign-in whose first factor ``method`` has been checked.

    ``None`` when ``user`` is now fully signed in (:func:`login_user`);
    else the response that carries the sign-in on (a second factor to
    give, or to enrol), which the caller returns as it is. Every sign-in
    page and endpoint (password, passkey, identity provider) ends here.

    With two-factor sign-in on (:setting:`FLASKSTACK_TWO_FACTOR`), a user
    who has it on, or must set it up, is not signed in yet: the session
    holds the sign-in and the response is a redirect to the page asking for
    a code (or setting two-factor up). A ``"passkey"`` sign-in (the passkey
    verified the user: two factors already) and a ``"two-factor"`` one
    (the caller checked the code) go straight through.
    """
    if current_state().auth.two_factor is None or method in _BOTH_FACTORS:
        login_user(user, remember=remember)
        return None
    from flaskstack.urls import safe_next

    from . import _two_factor  # only where two-factor is on

    if not _two_factor.due(user):
        _two_factor.release()
        login_user(user, remember=remember)
        return None
    if flask_login.current_user.is_authenticated:
        logout_user()  # whoever was signed in here is not any more
    next_url = safe_next(default=url_for("flaskstack_auth.login_done"))
    return _two_factor.hold(user, remember, next_url)


_BOTH_FACTORS = frozenset({"passkey", "two-factor"})
"""Sign-in methods that already are two factors."""


def logout_user() -> None:
    """Log out: revoke this device's login; delete the session and both cookies."""
    # Settle who is signing out before the session is emptied: finding out may
    # read the session or the remember-me cookie.
    user = flask_login.current_user._get_current_object()
    if current_state().auth.login_model is not None:
        _logins.end_current(user)
    destroy()
    # Flask-Login now leaves in the empty session only its note to clear the
    # remember-me cookie; its response hook takes the note out, after which
    # the empty session is deleted, key and cookie.
    flask_login.logout_user()
