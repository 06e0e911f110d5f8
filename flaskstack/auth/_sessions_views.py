"""The signed-in devices page: list them, sign one out, sign out everywhere.

Blueprint ``flaskstack_sessions`` under ``FLASKSTACK_AUTH_URL_PREFIX``,
registered with the auth pages where logins are tracked
(:mod:`flaskstack.auth._logins`). Every page needs a signed-in user and
shows only that user's devices; a key of another user's device is 404,
exactly as an unknown key. The POSTs need a CSRF token, as every unsafe
request does, and say what they did in a flashed message. Rendered from
``templates/flaskstack/auth/sessions.html`` (an app may override it).
"""

from __future__ import annotations

import typing as t

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from flaskstack._routes import own
from flaskstack.database import db

from . import _logins
from ._login import logout_user, sign_in_first

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

__all__ = ["RULES", "blueprint", "init_app"]

RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/sessions", ("GET",)),
    ("/sessions/<key>/revoke", ("POST",)),
    ("/sessions/revoke-all", ("POST",)),
)
"""The pages' paths under ``FLASKSTACK_AUTH_URL_PREFIX`` and their methods."""

_SETTING = "FLASKSTACK_AUTH_URL_PREFIX"

blueprint = Blueprint("flaskstack_sessions", __name__, template_folder="../templates")


@blueprint.get("/sessions")
def sessions() -> str | Response:
    """List the signed-in user's devices, this one marked."""
    refused = sign_in_first()
    if refused is not None:
        return refused
    user = current_user._get_current_object()
    return render_template(
        "flaskstack/auth/sessions.html",
        logins=_logins.logins_of(user),
        current_key=_logins.current_key(),
    )


@blueprint.post("/sessions/<key>/revoke")
def revoke(key: str) -> Response:
    """Sign one device out; signing this one out is signing out."""
    refused = sign_in_first()
    if refused is not None:
        return refused
    user = current_user._get_current_object()
    if not _logins.revoke_login(user, key):
        abort(404)
    db.session.commit()
    if key == _logins.current_key():
        logout_user()
        flash("You are signed out on this device.", "success")
        return redirect(url_for("flaskstack_auth.login"))
    flash("The device is signed out.", "success")
    return redirect(url_for("flaskstack_sessions.sessions"))


@blueprint.post("/sessions/revoke-all")
def revoke_all() -> Response:
    """Sign out everywhere, this device included; API tokens too when the box is ticked."""
    refused = sign_in_first()
    if refused is not None:
        return refused
    user = current_user._get_current_object()
    api_tokens = request.form.get("api_tokens") in ("y", "on", "1", "true")
    count = _logins.revoke_logins(user, api_tokens=api_tokens)
    db.session.commit()
    logout_user()
    devices = "device" if count == 1 else "devices"
    tokens = " and every API token is revoked" if api_tokens else ""
    flash(f"You are signed out everywhere ({count} {devices}){tokens}.", "success")
    return redirect(url_for("flaskstack_auth.login"))


# Marked as flaskstack's, so a rule of the app's at the same URL is found
# (and refused) even when the app adds it after init_app.
for _view in (sessions, revoke, revoke_all):
    own(_view, _SETTING)


def init_app(app: Flask) -> None:
    """Register the pages under ``FLASKSTACK_AUTH_URL_PREFIX``."""
    app.register_blueprint(blueprint, url_prefix=app.config[_SETTING])
