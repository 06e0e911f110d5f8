"""The passkeys page, its removal form and its script (blueprint ``flaskstack_passkeys``).

Under ``FLASKSTACK_AUTH_URL_PREFIX``, registered with ``FLASKSTACK_PASSKEYS``:
``/passkeys`` lists the signed-in user's passkeys, each with a form that
removes it (POST, CSRF token), and has the form that adds one;
``/passkeys.js`` is the script of that form and of the sign-in page's
"Sign in with a passkey" button. The script is a file served by the app
(no inline script: it runs under the default Content-Security-Policy) and
reads everything it needs from ``data-*`` attributes; it drives the JSON
endpoints of :mod:`flaskstack.auth._passkeys_api` with the page's CSRF
token in ``X-CSRFToken``. Rendered from ``templates/flaskstack/auth/passkeys.html``
and ``_passkey_login.html`` (an app may override them).
"""

from __future__ import annotations

import functools
import hashlib
import typing as t
from pathlib import Path

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from flaskstack._routes import clashes_with_existing, own
from flaskstack.database import db

from . import _passkeys
from ._login import sign_in_first
from ._protocols import features_of

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response as BaseResponse

    from flaskstack.config import Resolution
    from flaskstack.errors import Problem

__all__ = ["RULES", "blueprint", "init_app", "prepare", "script_url"]

RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/passkeys", ("GET",)),
    ("/passkeys/<int:passkey_id>/remove", ("POST",)),
    ("/passkeys.js", ("GET",)),
)
"""The pages' paths under ``FLASKSTACK_AUTH_URL_PREFIX`` and their methods."""

_SETTING = "FLASKSTACK_AUTH_URL_PREFIX"
_SCRIPT = Path(__file__).with_name("static") / "passkeys.js"
# Versioned URLs (``?v=``) never change content, so browsers may keep them.
_IMMUTABLE = "public, max-age=31536000, immutable"

blueprint = Blueprint("flaskstack_passkeys", __name__, template_folder="../templates")


@functools.cache
def _script() -> tuple[bytes, str]:
    content = _SCRIPT.read_bytes()
    return content, hashlib.sha256(content).hexdigest()[:12]


def script_url() -> str:
    """The script's URL, versioned by its content."""
    return url_for("flaskstack_passkeys.script", v=_script()[1])


@blueprint.get("/passkeys")
def passkeys() -> str | BaseResponse:
    """List the signed-in user's passkeys, with the form that adds one."""
    refused = sign_in_first()
    if refused is not None:
        return refused
    return render_template(
        "flaskstack/auth/passkeys.html",
        passkeys=_passkeys.passkeys_of(current_user._get_current_object()),
        script_url=script_url(),
    )


@blueprint.post("/passkeys/<int:passkey_id>/remove")
def remove(passkey_id: int) -> BaseResponse:
    """Remove one of the signed-in user's passkeys (another user's is 404, as an unknown one)."""
    refused = sign_in_first()
    if refused is not None:
        return refused
    user = current_user._get_current_object()
    names = {passkey.id: passkey.name for passkey in _passkeys.passkeys_of(user)}
    if not _passkeys.remove_passkey(user, passkey_id):
        abort(404)
    db.session.commit()
    _passkeys.notify(user, "passkey_removed", names[passkey_id])
    flash(f"The passkey {names[passkey_id]!r} is removed: it no longer signs you in.", "success")
    return redirect(url_for("flaskstack_passkeys.passkeys"))


@blueprint.get("/passkeys.js")
def script() -> Response:
    """The passkeys script; kept by browsers for good when asked for by its version."""
    content, version = _script()
    response = Response(content, mimetype="text/javascript")
    response.headers["Cache-Control"] = (
        _IMMUTABLE if request.args.get("v") == version else "no-cache"
    )
    return response


# Marked as flaskstack's, so a rule of the app's at the same URL is found
# (and refused) even when the app adds it after init_app.
for _view in (passkeys, remove, script):
    own(_view, _SETTING)


def prepare(
    app: Flask, resolution: Resolution, model: t.Any, pages: bool, api_path: str | None
) -> list[Problem]:
    """What keeps passkeys from working on ``app`` (``FLASKSTACK_PASSKEYS`` is on).

    :param model: The user model, or ``None`` (the app's own manager, no model named).
    :param pages: Whether flaskstack's auth pages will be registered.
    :param api_path: Where the account endpoints go, or ``None``.
    """
    unusable = None
    if not pages:
        unusable = (
            "flaskstack's auth pages are off (the app's own LoginManager, no auth URL prefix, "
            "or a user model without email and password)"
        )
    elif not features_of(model).tokens:
        unusable = "the user model has no single-column primary key"
    elif api_path is None:
        unusable = "FLASKSTACK_AUTH_API_PATH is None: the passkey ceremonies are JSON endpoints"
    problems = _passkeys.problems(resolution, unusable)
    if unusable is not None or api_path is None:
        return problems
    prefix = resolution[_SETTING]
    for path, methods in RULES:
        full = "/".join((prefix.rstrip("/"), path.lstrip("/")))
        problems.extend(clashes_with_existing(app, _SETTING, full, methods))
    from . import _passkeys_api

    for _resource, path, _endpoint in _passkeys_api.PATHS:
        problems.extend(clashes_with_existing(app, "FLASKSTACK_AUTH_API_PATH", api_path + path))
    return problems


def init_app(app: Flask, model: type[t.Any], api_path: str | None) -> type[t.Any]:
    """Register the page, its script and the JSON endpoints; the passkey model of ``model``."""
    from . import _passkeys_api

    app.register_blueprint(blueprint, url_prefix=app.config[_SETTING])
    app.add_template_global(script_url, "flaskstack_passkeys_script_url")
    if api_path is not None:
        _passkeys_api.register(app, api_path)
    return _passkeys.passkey_model(model)
