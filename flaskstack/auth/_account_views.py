"""The account pages: password reset, email confirmation, account settings.

On the blueprint ``flaskstack_auth`` (:mod:`._views`), under
``FLASKSTACK_AUTH_URL_PREFIX``; each renders a template of
``templates/flaskstack/auth/`` that the app overrides by shipping one of the
same name. The flows themselves live in :mod:`._accounts`, which the JSON
endpoints share. Pages reached from a link carry its token in their URL:
they are sent with ``Referrer-Policy: same-origin``, so the token never
leaves the site in a ``Referer`` header, and a link is used up only by the
form on its page (a POST with a CSRF token), never by opening it, which mail
scanners do.
"""

from __future__ import annotations

import typing as t

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from flaskstack._routes import own
from flaskstack.forms import Form

from . import _accounts as accounts
from ._login import complete_sign_in, sign_in_first
from ._passwords import PasswordPolicyError
from ._views import _EMAIL, _SETTING, _strip, blueprint

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

__all__ = [
    "RULES",
    "ChangeEmailForm",
    "ChangePasswordForm",
    "EmailForm",
    "NewPasswordForm",
]

RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/reset-password", ("GET", "POST")),
    ("/reset-password/<token>", ("GET", "POST")),
    ("/confirm-email", ("GET", "POST")),
    ("/confirm-email/<token>", ("GET", "POST")),
    ("/account", ("GET",)),
    ("/account/password", ("GET", "POST")),
    ("/account/email", ("GET", "POST")),
    ("/account/email/<token>", ("GET", "POST")),
)
"""The pages' paths under ``FLASKSTACK_AUTH_URL_PREFIX`` and their methods."""

_LINK_REFERRER_POLICY = "same-origin"


def _email_field() -> EmailField:
    return EmailField(
        "Email",
        filters=[_strip],
        validators=[
            DataRequired(),
            Length(max=320),
            Regexp(_EMAIL, message="Enter an email address."),
        ],
        render_kw={"autocomplete": "email"},
    )


def _new_password_field(label: str = "New password") -> PasswordField:
    return PasswordField(
        label, validators=[DataRequired()], render_kw={"autocomplete": "new-password"}
    )


def _repeat_field() -> PasswordField:
    return PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


def _current_password_field() -> PasswordField:
    return PasswordField(
        "Current password",
        validators=[DataRequired()],
        render_kw={"autocomplete": "current-password"},
    )


class EmailForm(Form):
    """An email address to send a link to."""

    email = _email_field()


class NewPasswordForm(Form):
    """A new password, typed twice."""

    password = _new_password_field()
    confirm = _repeat_field()


class ChangePasswordForm(Form):
    """The current password and a new one, typed twice."""

    current_password = _current_password_field()
    password = _new_password_field()
    confirm = _repeat_field()


class ChangeEmailForm(Form):
    """The new address and the current password."""

    email = _email_field()
    current_password = _current_password_field()


class ConfirmForm(Form):
    """Nothing but the CSRF token: the button that uses a link."""


def _render(template: str, status: int = 200, **context: t.Any) -> tuple[str, int]:
    shortest = current_app.config["FLASKSTACK_PASSWORD_MIN_LENGTH"]
    context.setdefault("password_hint", f"At least {shortest} characters.")
    return render_template(f"flaskstack/auth/{template}", **context), status


def _invalid_link(again: str) -> tuple[str, int]:
    return _render("link_invalid.html", 404, message=accounts.INVALID_LINK, again=again)


def _link_page(response: t.Any) -> Response:
    answer = current_app.make_response(response)
    answer.headers["Referrer-Policy"] = _LINK_REFERRER_POLICY
    return answer


def _reset_on() -> None:
    if not current_app.config["FLASKSTACK_PASSWORD_RESET"]:
        abort(404)


def _confirmation_on() -> None:
    if accounts.confirmation_mode() == "off":
        abort(404)


def _field_error(form: Form, error: accounts.AccountError) -> None:
    field = getattr(form, error.field or "", None)
    if field is None:
        form.form_errors.append(str(error))
    else:
        field.errors = [*field.errors, str(error)]


# -- password reset -------------------------------------------------------------


@blueprint.route("/reset-password", methods=["GET", "POST"])
def request_password_reset() -> t.Any:
    """Ask for a password reset link by email."""
    _reset_on()
    form = EmailForm()
    if form.validate_on_submit():
        accounts.request_password_reset(form.email.data)
        flash(accounts.SENT_IF_EXISTS, "info")
        return redirect(url_for("flaskstack_auth.login"))
    return _render("reset_request.html", form=form)


@blueprint.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Response:
    """Choose a new password with a reset link; signs in on success."""
    _reset_on()
    if accounts.reset_target(token) is None:
        return _link_page(_invalid_link("flaskstack_auth.request_password_reset"))
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            user = accounts.reset_password(token, form.password.data)
        except PasswordPolicyError as exc:
            form.password.errors = [str(exc)]
        except accounts.AccountError:
            return _link_page(_invalid_link("flaskstack_auth.request_password_reset"))
        else:
            flash("Your password was changed, and every other session of yours ended.", "success")
            # A reset link proves the address, not a second factor: one may be due.
            held = complete_sign_in(user)
            return held or redirect(url_for("flaskstack_auth.login_done"))
    return _link_page(_render("reset_password.html", form=form))


# -- email confirmation ---------------------------------------------------------


@blueprint.route("/confirm-email", methods=["GET", "POST"])
def request_confirmation() -> t.Any:
    """Ask for a new email confirmation link."""
    _confirmation_on()
    form = EmailForm()
    if request.method == "GET" and current_user.is_authenticated:
        form.email.data = current_user.email
    if form.validate_on_submit():
        accounts.request_confirmation(form.email.data)
        flash(accounts.SENT_IF_EXISTS, "info")
        if current_user.is_authenticated:
            return redirect(url_for("flaskstack_auth.account"))
        return redirect(url_for("flaskstack_auth.login"))
    return _render("confirm_request.html", form=form)


@blueprint.route("/confirm-email/<token>", methods=["GET", "POST"])
def confirm_email(token: str) -> Response:
    """Confirm an email address with the link sent to it."""
    _confirmation_on()
    user = accounts.confirmation_target(token)
    if user is None:
        return _link_page(_invalid_link("flaskstack_auth.request_confirmation"))
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            accounts.confirm_email(token)
        except accounts.AccountError:
            return _link_page(_invalid_link("flaskstack_auth.request_confirmation"))
        flash("Your email address is confirmed.", "success")
        if current_user.is_authenticated:
            return redirect(url_for("flaskstack_auth.account"))
        return redirect(url_for("flaskstack_auth.login"))
    return _link_page(_render("confirm_email.html", form=form, email=user.email))


# -- account settings -----------------------------------------------------------


@blueprint.route("/account")
def account() -> t.Any:
    """The signed-in user's account: address, confirmation, links to change them."""
    refused = sign_in_first()
    if refused is not None:
        return refused
    confirmed = (
        accounts.is_confirmed(current_user._get_current_object())
        if accounts.confirmation_mode() != "off"
        else None
    )
    return _render(
        "account.html",
        user=current_user,
        confirmed=confirmed,
        email_change=confirmed is not None,
        sessions_page="flaskstack_sessions.sessions" in current_app.view_functions,
    )


@blueprint.route("/account/password", methods=["GET", "POST"])
def change_password() -> t.Any:
    """Change the password (the current one is asked for); other sessions end."""
    refused = sign_in_first()
    if refused is not None:
        return refused
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(
                current_user._get_current_object(), form.current_password.data, form.password.data
            )
        except accounts.AccountError as exc:
            _field_error(form, exc)
        except PasswordPolicyError as exc:
            form.password.errors = [str(exc)]
        else:
            flash("Your password was changed, and every other session of yours ended.", "success")
            return redirect(url_for("flaskstack_auth.account"))
    return _render("change_password.html", form=form)


@blueprint.route("/account/email", methods=["GET", "POST"])
def change_email() -> t.Any:
    """Ask to move to a new address; it changes once the link sent there is followed."""
    _confirmation_on()  # a new address is confirmed like any other
    refused = sign_in_first()
    if refused is not None:
        return refused
    form = ChangeEmailForm()
    if form.validate_on_submit():
        try:
            accounts.request_email_change(
                current_user._get_current_object(), form.current_password.data, form.email.data
            )
        except accounts.AccountError as exc:
            _field_error(form, exc)
        else:
            flash(
                "We sent a link to the new address: follow it to make the change. Your "
                "current address stays until then.",
                "info",
            )
            return redirect(url_for("flaskstack_auth.account"))
    return _render("change_email.html", form=form)


@blueprint.route("/account/email/<token>", methods=["GET", "POST"])
def confirm_email_change(token: str) -> Response:
    """Move to the new address with the link sent to it."""
    _confirmation_on()
    target = accounts.email_change_target(token)
    if target is None:
        return _link_page(_invalid_link("flaskstack_auth.change_email"))
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            accounts.confirm_email_change(token)
        except accounts.AccountError as exc:
            return _link_page(
                _render(
                    "link_invalid.html", 404, message=str(exc), again="flaskstack_auth.change_email"
                )
            )
        flash("Your email address was changed.", "success")
        if current_user.is_authenticated:
            return redirect(url_for("flaskstack_auth.account"))
        return redirect(url_for("flaskstack_auth.login"))
    return _link_page(_render("confirm_email_change.html", form=form, email=target[1]))


# Marked as flaskstack's, so a rule of the app's at the same URL is found
# (and refused) even when the app adds it after init_app.
for _view in (
    request_password_reset,
    reset_password,
    request_confirmation,
    confirm_email,
    account,
    change_password,
    change_email,
    confirm_email_change,
):
    own(_view, _SETTING)
