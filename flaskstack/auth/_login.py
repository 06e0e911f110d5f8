"""Signing in and out on top of Flask-Login: the session id changes at both ends.

:func:`login_user` gives the session a new id before Flask-Login writes the
user into it (session fixation); :func:`logout_user` deletes the server-side
session, so a copied cookie is dead afterwards. Exported by
:mod:`flaskstack.auth`; the sign-in pages use them too.
"""

from __future__ import annotations

import typing as t

import flask_login

from flaskstack.sessions import destroy, rotate

__all__ = ["login_user", "logout_user"]


def login_user(user: t.Any, remember: bool = False) -> bool:
    """Log ``user`` in under a new session id; ``False`` if the user is inactive."""
    if not user.is_active:
        return False
    rotate()
    return bool(flask_login.login_user(user, remember=remember))


def logout_user() -> None:
    """Log out: delete the session and its cookie, and the remember-me cookie."""
    # Settle who is signing out before the session is emptied: finding out may
    # read the session or the remember-me cookie.
    flask_login.current_user._get_current_object()
    destroy()
    # Flask-Login now leaves in the empty session only its note to clear the
    # remember-me cookie; its response hook takes the note out, after which
    # the empty session is deleted, key and cookie.
    flask_login.logout_user()
