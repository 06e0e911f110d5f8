"""The sign-in, sign-out and registration pages (blueprint ``flaskstack_auth``).

Rendered from ``templates/flaskstack/auth/*.html``: an app overrides any of
them by putting a template of the same name in its own templates folder.
Signing in checks the throttles before the password, answers an unknown
email exactly as a wrong password (same message, same hashing work), rehashes
outdated hashes, rotates the session and follows ``next`` only to a path on
this site. Signing out is POST only, so it needs a CSRF token.
"""

from __future__ import annotations

import re
import typing as t

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from flaskstack._routes import own
from flaskstack.database import db
from flaskstack.forms import Form
from flaskstack.urls import safe_next

from . import _accounts
from ._login import complete_sign_in, login_user, logout_user
from ._models import normalise_email, user_by_email, user_model
from ._passwords import PasswordPolicyError, verify_password
from ._protocols import check_user_password, set_user_password

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

__all__ = ["RULES", "LoginForm", "RegisterForm", "blueprint"]

RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/login", ("GET", "POST")),
    ("/logout", ("POST",)),
    ("/register", ("GET", "POST")),
    ("/done", ("GET",)),
)
"""The pages' paths under ``FLASKSTACK_AUTH_URL_PREFIX`` and their methods."""

_SETTING = "FLASKSTACK_AUTH_URL_PREFIX"

GENERIC_FAILURE = "Invalid email or password."
UNCONFIRMED = (
    "Confirm your email address before signing in: follow the link we sent to it, or ask "
    "for a new one."
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


blueprint = Blueprint("flaskstack_auth", __name__, template_folder="../templates")


class LoginForm(Form):
    """Email, password and "remember me"."""

    email = EmailField("Email", filters=[_strip], validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Remember me")


class RegisterForm(Form):
    """Email and a password typed twice."""

    email = EmailField(
        "Email",
        filters=[_strip],
        validators=[
            DataRequired(),
            Length(max=320),
            Regexp(_EMAIL, message="Enter an email address."),
        ],
    )
    password = PasswordField("Password", validators=[DataRequired()])
    confirm = PasswordField(
        "Repeat the password",
        validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
    )


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    """Show the sign-in form; on a valid POST, sign in and go to ``next``."""
    form = LoginForm()
    if form.validate_on_submit():
        user = check_credentials(form.email.data, form.password.data)
        if user is None:
            form.form_errors.append(GENERIC_FAILURE)
            return render_template(
                "flaskstack/auth/login.html", form=form, registration=_registration()
            )
        if confirmation_missing(user):
            # Said only to whoever knows the password: it tells nothing to others.
            form.form_errors.append(UNCONFIRMED)
            return render_template(
                "flaskstack/auth/login.html",
                form=form,
                registration=_registration(),
                unconfirmed=True,
            )
        held = complete_sign_in(user, remember=bool(form.remember.data))
        if held is not None:  # a second factor to give first
            return held
        flash("You are signed in.", "success")
        return redirect(safe_next(default=url_for("flaskstack_auth.login_done")))
    return render_template("flaskstack/auth/login.html", form=form, registration=_registration())


@blueprint.route("/logout", methods=["POST"])
def logout() -> Response:
    """Sign out (POST with a CSRF token): the session and its cookie are deleted."""
    logout_user()
    return redirect(safe_next(default=url_for("flaskstack_auth.login")))


@blueprint.route("/register", methods=["GET", "POST"])
def register() -> str | Response:
    """Show the registration form; on a valid POST, create the user and sign in."""
    if not _registration():
        abort(404)
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = create_account(form.email.data, form.password.data)
        except _AccountError as exc:
            form.email.errors.append(str(exc))
        except PasswordPolicyError as exc:
            form.password.errors.append(str(exc))
        else:
            return _registered(user)
    return render_template("flaskstack/auth/register.html", form=form)


class _AccountError(ValueError):
    """Registration refused the address."""


def create_account(email: str, password: str) -> t.Any:
    """Create and commit the user with ``email`` and ``password``.

    :raises ValueError: for an address another account has.
    :raises PasswordPolicyError: for a password the policy refuses.
    """
    email = normalise_email(email)
    if user_by_email(email) is not None:
        raise _AccountError("An account with this email already exists.")
    user = user_model()(email=email)
    set_user_password(user, password)
    db.session.add(user)
    db.session.commit()
    return user


def welcome(user: t.Any) -> bool:
    """After registration: send the confirmation link; sign in unless confirming comes first.

    :returns: Whether the user is now signed in.
    """
    mode = _accounts.confirmation_mode()
    if mode != "off":
        _accounts.send_confirmation(user)
    if mode == "required":
        return False
    login_user(user)
    return True


def check_credentials(email: str, password: str) -> t.Any | None:
    """The active user with ``email`` and ``password``, or ``None``; throttled.

    Checks the throttles before any password work (429), answers an unknown
    email with the same work as a wrong password, counts failures, and
    commits a rehashed password. The sign-in page and the JSON sign-in share it.

    :raises flaskstack.throttle.LoginThrottled: over a throttle's limit.
    """
    email = normalise_email(email)
    address = request.remote_addr or "unknown"
    # Deferred for start-up cost (~8 ms): a worker that never serves a
    # sign-in never imports the throttles.
    from flaskstack.throttle import login_throttles

    throttles = login_throttles(current_app._get_current_object())  # type: ignore[attr-defined]
    throttles.guard(email, address)  # 429 before any password work
    user = user_by_email(email)
    if user is None:
        verify_password(None, password)  # the same work as a real check
        signed_in = False
    else:
        signed_in = check_user_password(user, password) and user.is_active
    if not signed_in:
        throttles.failed(email, address)
        return None
    throttles.succeeded(email)
    db.session.commit()  # keeps a rehashed password
    return user


def confirmation_missing(user: t.Any) -> bool:
    """Whether ``user`` may not sign in yet: confirmation is required and still missing."""
    return _accounts.confirmation_mode() == "required" and not _accounts.is_confirmed(user)


def _registered(user: t.Any) -> Response:
    """The page after registration: signed in (or told to confirm first), and told so."""
    mode = _accounts.confirmation_mode()
    if not welcome(user):
        flash(
            f"Your account is created. We sent a link to {user.email}: follow it to confirm "
            "your address, then sign in.",
            "info",
        )
        return redirect(url_for("flaskstack_auth.login"))
    if mode == "optional":
        flash(
            f"Welcome! We sent a link to {user.email} to confirm your address.",
            "success",
        )
    else:
        flash("Welcome! Your account is created.", "success")
    return redirect(safe_next(default=url_for("flaskstack_auth.login_done")))


@blueprint.route("/done")
def login_done() -> Response:
    """Where signing in lands without ``next``: the app's ``/``."""
    return redirect(request.script_root + "/")


# Marked as flaskstack's, so a rule of the app's at the same URL is found
# (and refused) even when the app adds it after init_app.
for _view in (login, logout, register, login_done):
    own(_view, _SETTING)


def _registration() -> bool:
    return bool(current_app.config["FLASKSTACK_REGISTRATION"])


def init_app(app: t.Any) -> None:
    """Register the pages under ``FLASKSTACK_AUTH_URL_PREFIX`` (``None``: no pages)."""
    prefix = app.config["FLASKSTACK_AUTH_URL_PREFIX"]
    if prefix:
        app.register_blueprint(blueprint, url_prefix=prefix)
