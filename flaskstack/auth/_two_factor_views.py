"""The two-factor pages: set it up, give a code at sign-in, new recovery codes, turn it off.

Blueprint ``flaskstack_two_factor`` under ``FLASKSTACK_AUTH_URL_PREFIX``,
registered only when :setting:`FLASKSTACK_TWO_FACTOR` is on (this module is
not even imported otherwise). Rendered from
``templates/flaskstack/auth/two_factor*.html`` (an app may override each).

- ``/two-factor``: the signed-in user's two-factor status; while it is off,
  the QR code and the secret as text, and a form for the first code, which
  turns it on and shows the recovery codes once. A user whose role requires
  two-factor comes here after the password, half signed in, and is signed
  in once it is on.
- ``/two-factor/verify``: after a right password, the code from the app or
  a recovery code; only then is the user signed in.
- ``/two-factor/recovery-codes`` and ``/two-factor/disable``: new recovery
  codes, and turning two-factor off; both ask for the password or a code
  again.

Every POST needs a CSRF token, as every unsafe request does.
"""

from __future__ import annotations

import importlib.util
import typing as t

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

from flaskstack._routes import clashes_with_existing, own
from flaskstack.errors import Problem
from flaskstack.forms import Form

from . import _two_factor as two_factor
from ._login import login_user, sign_in_first
from ._protocols import features_of

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

    from flaskstack.config import Resolution

__all__ = ["RULES", "blueprint", "check_findings", "init_app", "prepare"]

RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/two-factor", ("GET", "POST")),
    ("/two-factor/verify", ("GET", "POST")),
    ("/two-factor/recovery-codes", ("GET", "POST")),
    ("/two-factor/disable", ("GET", "POST")),
)
"""The pages' paths under ``FLASKSTACK_AUTH_URL_PREFIX`` and their methods."""

_SETTING = "FLASKSTACK_AUTH_URL_PREFIX"
_EXTRA = "pip install 'flaskstack[two-factor]'"
_WRONG_CODE = "This code is not right, or it was used already. Enter the newest code."
_WRONG_SECOND_FACTOR = (
    "This code is not right, or it was used already. Enter the newest code from your "
    "authenticator app, or an unused recovery code."
)
_NOT_YOU = "Enter your password, or a code from your authenticator app."

blueprint = Blueprint("flaskstack_two_factor", __name__, template_folder="../templates")


class CodeForm(Form):
    """A code from the authenticator app (or, at sign-in, a recovery code)."""

    code = StringField(
        "Code",
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[DataRequired(message="Enter the code."), Length(max=64)],
        render_kw={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"},
    )


class ReauthenticateForm(Form):
    """The password, or a code from the authenticator app: proof that it is still the user."""

    password = PasswordField(
        "Password", validators=[Optional()], render_kw={"autocomplete": "current-password"}
    )
    code = StringField(
        "Or a code from your authenticator app",
        validators=[Optional(), Length(max=64)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )

    def proves(self, user: t.Any) -> bool:
        """Whether the password or the code is right (throttled); errors go on the fields."""
        password, code = self.password.data or None, (self.code.data or "").strip() or None
        if password is None and code is None:
            self.form_errors.append(_NOT_YOU)
            return False
        if two_factor.reauthenticated(user, password, code):
            return True
        field = self.password if password is not None else self.code
        field.errors = [
            "The password is not right." if password is not None else _WRONG_SECOND_FACTOR
        ]
        return False


def _finish(held: two_factor.Pending) -> None:
    """Sign the held user in, with the remember-me they asked for."""
    two_factor.release()
    login_user(held.user, remember=held.remember)


def _render(template: str, status: int = 200, **context: t.Any) -> tuple[str, int]:
    return render_template(f"flaskstack/auth/{template}", **context), status


# -- the pages -------------------------------------------------------------------------


@blueprint.route("/two-factor", methods=["GET", "POST"])
def setup() -> t.Any:
    """Two-factor status; while off, set it up (QR code, secret, first code)."""
    held = two_factor.pending()
    if held is not None and held.enrol:
        user = held.user
    else:
        refused = sign_in_first()
        if refused is not None:
            return refused
        user = current_user._get_current_object()
        held = None
    if two_factor.is_enabled(user):
        return _render(
            "two_factor.html",
            recovery_codes_left=two_factor.recovery_codes_left(user),
            required=two_factor.is_required(user),
        )
    enrolment = two_factor.enrolment(user)
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        codes = two_factor.confirm(user, form.code.data)
        if codes is not None:
            next_url = url_for("flaskstack_two_factor.setup")
            if held is not None:
                _finish(held)
                next_url = held.next
            return _render("two_factor_recovery_codes.html", codes=codes, next_url=next_url)
        form.code.errors = [_WRONG_CODE]
        status = 422
    elif form.errors:
        status = 422
    return _render(
        "two_factor_setup.html",
        status,
        form=form,
        secret=enrolment.secret,
        qr_svg=enrolment.qr_svg(),
        issuer=two_factor.issuer(),
        required=held is not None,
    )


@blueprint.route("/two-factor/verify", methods=["GET", "POST"])
def verify() -> t.Any:
    """After the password: the code (or a recovery code) that completes the sign-in."""
    held = two_factor.pending()
    if held is None or held.enrol:
        flash("Your sign-in expired: sign in again.", "info")
        return redirect(url_for("flaskstack_auth.login"))
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        if two_factor.verify_second_factor(held.user, form.code.data):
            _finish(held)
            flash("You are signed in.", "success")
            return redirect(held.next)
        form.code.errors = [_WRONG_SECOND_FACTOR]
        status = 422
    elif form.errors:
        status = 422
    return _render("two_factor_verify.html", status, form=form)


def _enabled_user() -> tuple[t.Any, Response | None]:
    """The signed-in user with two-factor on, or the answer to give (sign in, or the status)."""
    refused = sign_in_first()
    if refused is not None:
        return None, refused
    user = current_user._get_current_object()
    if not two_factor.is_enabled(user):
        flash("Two-factor sign-in is off for your account.", "info")
        return None, redirect(url_for("flaskstack_two_factor.setup"))
    return user, None


@blueprint.route("/two-factor/recovery-codes", methods=["GET", "POST"])
def recovery_codes() -> t.Any:
    """New recovery codes (the old ones stop working), after the password or a code."""
    user, answer = _enabled_user()
    if answer is not None:
        return answer
    form = ReauthenticateForm()
    status = 200
    if form.validate_on_submit():
        if form.proves(user):
            codes = two_factor.regenerate_recovery_codes(user)
            back = url_for("flaskstack_two_factor.setup")
            return _render("two_factor_recovery_codes.html", codes=codes, next_url=back)
        status = 422
    elif form.errors:
        status = 422
    return _render("two_factor_reauthenticate.html", status, form=form, action="recovery-codes")


@blueprint.route("/two-factor/disable", methods=["GET", "POST"])
def disable() -> t.Any:
    """Turn two-factor off, after the password or a code; the user is told by mail."""
    user, answer = _enabled_user()
    if answer is not None:
        return answer
    if two_factor.is_required(user):
        abort(403, description="Your role requires two-factor sign-in: it cannot be turned off.")
    form = ReauthenticateForm()
    status = 200
    if form.validate_on_submit():
        if form.proves(user):
            two_factor.disable(user)
            flash("Two-factor sign-in is off for your account.", "success")
            return redirect(url_for("flaskstack_two_factor.setup"))
        status = 422
    elif form.errors:
        status = 422
    return _render("two_factor_reauthenticate.html", status, form=form, action="disable")


# Marked as flaskstack's, so a rule of the app's at the same URL is found
# (and refused) even when the app adds it after init_app.
for _view in (setup, verify, recovery_codes, disable):
    own(_view, _SETTING)


# -- wiring ----------------------------------------------------------------------------


def prepare(
    app: Flask, resolution: Resolution, model: t.Any, pages: bool, api_path: str | None
) -> list[Problem]:
    """What keeps two-factor sign-in from working for ``app`` (it is asked for)."""
    value = "True"
    problems = []
    missing = [name for name in ("pyotp", "segno") if importlib.util.find_spec(name) is None]
    if missing:
        problems.append(
            Problem(
                "auth.E020",
                "FLASKSTACK_TWO_FACTOR",
                f"{value}, and {' and '.join(missing)} is not installed",
                "the two-factor extra installed (pyotp and segno)",
                f"{_EXTRA}, or set FLASKSTACK_TWO_FACTOR = False",
            )
        )
    if not pages or not features_of(model).tokens:
        problems.append(
            Problem(
                "auth.E021",
                "FLASKSTACK_TWO_FACTOR",
                f"{value}, and flaskstack's auth pages are off or the user model has no "
                "single-column primary key",
                "flaskstack's auth pages (its LoginManager, FLASKSTACK_AUTH_URL_PREFIX set, a "
                "user model with an email, a password and a single-column primary key)",
                "use flaskstack's sign-in pages and a user model with what they need (flask "
                "stack check lists what is missing), or set FLASKSTACK_TWO_FACTOR = False",
            )
        )
        return problems
    required = resolution["FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES"]
    if required:
        from ._models import answers_roles

        if not answers_roles(model, bool(resolution["FLASKSTACK_ROLES"])):
            name = f"{model.__module__}.{model.__qualname__}"
            problems.append(
                Problem(
                    "auth.E022",
                    "FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES",
                    f"{required!r}, and the user model {name} cannot say which roles a user holds",
                    "roles (FLASKSTACK_ROLES, or a user model with has_role(name) and "
                    "has_permission(name)), to know who must use two-factor",
                    "set FLASKSTACK_ROLES = True, or give the user model has_role(name) and "
                    "has_permission(name), or empty FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES",
                )
            )
    prefix = str(resolution[_SETTING]).rstrip("/")
    for path, methods in RULES:
        problems.extend(clashes_with_existing(app, _SETTING, prefix + path, methods))
    if api_path is not None:
        from . import _two_factor_api

        for _resource, path, _endpoint in _two_factor_api.PATHS:
            problems.extend(clashes_with_existing(app, "FLASKSTACK_AUTH_API_PATH", api_path + path))
    return problems


def init_app(app: Flask, model: type[t.Any], api_path: str | None) -> two_factor.TwoFactorModels:
    """Declare the models, register the pages and the endpoints; the models."""
    models = two_factor.two_factor_models(model)
    app.register_blueprint(blueprint, url_prefix=app.config[_SETTING])
    if api_path is not None:
        from . import _two_factor_api

        _two_factor_api.register(app, api_path)
    return models


def check_findings(app: Flask) -> list[tuple[str, str]]:
    """``(check id, message)`` for ``flask stack check`` about two-factor sign-in."""
    required = app.config["FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES"]
    if not required:
        return []  # optional for everyone: a normal choice, nothing to report
    from flaskstack._state import get_state

    role_models = get_state(app).auth.role_models
    if role_models is None:
        return []  # the model's own has_role answers: its roles are not ours to list
    import sqlalchemy as sa

    from flaskstack.database import db

    role = role_models.role
    with app.app_context():
        try:
            known = set(db.session.execute(sa.select(role.name)).scalars())
        except sa.exc.SQLAlchemyError:
            return []  # the database checks say why
    unknown = [name for name in required if name not in known]
    if not unknown:
        return []
    return [
        (
            "auth.W020",
            f"FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES names roles that do not exist: "
            f"{', '.join(map(repr, unknown))}. Nobody holds them, so nobody is required to "
            "use two-factor by them.",
        )
    ]
