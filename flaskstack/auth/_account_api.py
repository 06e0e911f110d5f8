"""The account flows as JSON endpoints, under the API prefix at ``FLASKSTACK_AUTH_API_PATH``.

The same flows as the pages (:mod:`._accounts`), for clients that are not
browsers showing flaskstack's pages. Signing in, out and up work on the
session cookie, for a browser's script (a single-page app): they need the
``X-CSRFToken`` header like any cookie-authenticated call, which also stops
another site from signing a visitor in to an account of its choosing.
Asking for a link, and using one, take
no credentials and need no CSRF token: a link's token is the credential, and
using one signs nobody in here (the client signs in afterwards, as it
usually does). Changing the password or the address needs the user, by API
token or by session (with ``X-CSRFToken``). The links in the messages open
the pages, which work in any browser.

Registered per app (not on :data:`flaskstack.api`, which every app
shares), and only when flaskstack's auth pages are on.
"""

from __future__ import annotations

import functools
import typing as t

from flask import current_app
from flask_login import current_user
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from flaskstack import rest
from flaskstack._state import current_state
from flaskstack.forms import csrf
from flaskstack.rest._meta import describe

from . import _accounts as accounts
from ._login import complete_sign_in, logout_user
from ._passwords import PasswordPolicyError
from ._roles import access_of
from ._views import (
    GENERIC_FAILURE,
    UNCONFIRMED,
    check_credentials,
    confirmation_missing,
    create_account,
    welcome,
)

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = ["PATHS", "register"]


class Email(rest.Schema):
    """An address to send a link to."""

    email = rest.Email(required=True)


class Notice(rest.Schema):
    """What happened, for people."""

    detail = rest.String(required=True)


class NewPassword(rest.Schema):
    """A reset link's token and the new password."""

    token = rest.String(required=True, min_length=1, max_length=128)
    password = rest.Password(required=True)


class LinkToken(rest.Schema):
    """The token of a link sent by email (the last part of its path)."""

    token = rest.String(required=True, min_length=1, max_length=128)


class PasswordChange(rest.Schema):
    """The current password and the new one."""

    current_password = rest.String(required=True, min_length=1, load_only=True)
    password = rest.Password(required=True)


class EmailChange(rest.Schema):
    """The new address and the current password."""

    email = rest.Email(required=True)
    current_password = rest.String(required=True, min_length=1, load_only=True)


class Credentials(rest.Schema):
    """An email address and a password."""

    email = rest.String(required=True, strip=True, min_length=1, max_length=320)
    # Any length: a password set under an older policy still signs in.
    password = rest.String(required=True, min_length=1, load_only=True)
    remember = rest.Boolean(default=False)
    code = rest.String(
        strip=True,
        min_length=1,
        max_length=64,
        load_only=True,
        description="With two-factor sign-in on: the code from the authenticator app.",
    )
    recovery_code = rest.String(
        strip=True,
        min_length=1,
        max_length=64,
        load_only=True,
        description="With two-factor sign-in on: an unused recovery code, instead of a code.",
    )


class NewAccount(rest.Schema):
    """The address and password of a new account."""

    email = rest.Email(required=True)
    password = rest.Password(required=True)


class SignedIn(rest.Schema):
    """Who is signed in now (``null`` when nobody is)."""

    email = rest.String(nullable=True)
    detail = rest.String(required=True)


class AccountInfo(rest.Schema):
    """The signed-in user's account."""

    email = rest.String(required=True)
    email_confirmed = rest.Boolean(nullable=True)
    roles = rest.List(
        rest.String(),
        nullable=True,
        description="The user's roles, sorted (``null`` with FLASKSTACK_ROLES off).",
    )
    permissions = rest.List(
        rest.String(),
        nullable=True,
        description="What the user's roles permit, sorted (``null`` with FLASKSTACK_ROLES off).",
    )


def _throttled(function: t.Any) -> t.Any:
    # The OpenAPI document lists 429 for it.
    return describe(function, throttled=True)


def _invalid(error: accounts.AccountError) -> t.NoReturn:
    raise rest.ValidationError({error.field or "token": [str(error)]})


def _notice(detail: str) -> dict[str, str]:
    return {"detail": detail}


@csrf.exempt
class PasswordReset(rest.Resource):
    """Password reset: ask for a link by email."""

    @_throttled
    @rest.body(Email)
    @rest.marshal_with(Notice, status=202)
    def post(self, body: dict[str, t.Any]) -> dict[str, str]:
        """Send a reset link to the address if an account uses it.

        The answer is the same whether it does or not. Throttled per address
        and per client (429 with ``Retry-After``).
        """
        accounts.request_password_reset(body["email"])
        return _notice(accounts.SENT_IF_EXISTS)


@csrf.exempt
class PasswordResetConfirm(rest.Resource):
    """Password reset: set the new password with the link's token."""

    @rest.body(NewPassword)
    @rest.marshal_with(Notice)
    def post(self, body: dict[str, t.Any]) -> dict[str, str]:
        """Set a new password with a reset link's token; every session of the user ends.

        422 names ``token`` for a link that is used, expired or replaced by a
        newer one, and ``password`` for one the policy refuses.
        """
        try:
            accounts.reset_password(body["token"], body["password"])
        except accounts.AccountError as exc:
            _invalid(exc)
        except PasswordPolicyError as exc:
            raise rest.ValidationError({"password": [str(exc)]}) from None
        return _notice("The password was changed, and every session of the account ended.")


@csrf.exempt
class EmailConfirmation(rest.Resource):
    """Email confirmation: ask for a new link."""

    @_throttled
    @rest.body(Email)
    @rest.marshal_with(Notice, status=202)
    def post(self, body: dict[str, t.Any]) -> dict[str, str]:
        """Send a new confirmation link to the address if an unconfirmed account uses it.

        The answer is the same either way; throttled like reset links.
        """
        accounts.request_confirmation(body["email"])
        return _notice(accounts.SENT_IF_EXISTS)


@csrf.exempt
class EmailConfirmationConfirm(rest.Resource):
    """Email confirmation: use the link's token."""

    @rest.body(LinkToken)
    @rest.marshal_with(Notice)
    def post(self, body: dict[str, t.Any]) -> dict[str, str]:
        """Confirm the address a confirmation link was sent to."""
        try:
            accounts.confirm_email(body["token"])
        except accounts.AccountError as exc:
            _invalid(exc)
        return _notice("The email address is confirmed.")


def _signed_in() -> list[t.Any]:
    from . import auth_required

    return [auth_required]


class Account(rest.Resource):
    """The signed-in user's account."""

    method_decorators: t.ClassVar[list[t.Any]] = _signed_in()

    @rest.marshal_with(AccountInfo)
    def get(self) -> dict[str, t.Any]:
        """The address, whether it is confirmed, and the user's roles and permissions.

        ``email_confirmed`` is ``null`` with confirmation off; ``roles`` and
        ``permissions`` are ``null`` with flaskstack's roles off.
        """
        user = current_user._get_current_object()
        confirmed = None
        if accounts.confirmation_mode() != "off":
            confirmed = accounts.is_confirmed(user)
        answer: dict[str, t.Any] = {"email": user.email, "email_confirmed": confirmed}
        if current_state().auth.role_models is not None:
            access = access_of(user)
            answer["roles"] = sorted(access.roles)
            answer["permissions"] = sorted(access.permissions)
        return answer


class AccountPassword(rest.Resource):
    """Change the password."""

    method_decorators: t.ClassVar[list[t.Any]] = _signed_in()

    @rest.body(PasswordChange)
    @rest.marshal_with(Notice)
    def put(self, body: dict[str, t.Any]) -> dict[str, str]:
        """Replace the password (the current one is required).

        Every other session and remember-me cookie of the user ends; the
        session or token of this request keeps working.
        """
        try:
            accounts.change_password(
                current_user._get_current_object(), body["current_password"], body["password"]
            )
        except accounts.AccountError as exc:
            _invalid(exc)
        except PasswordPolicyError as exc:
            raise rest.ValidationError({"password": [str(exc)]}) from None
        return _notice("The password was changed, and every other session of the account ended.")


class AccountEmail(rest.Resource):
    """Change the address."""

    method_decorators: t.ClassVar[list[t.Any]] = _signed_in()

    @rest.body(EmailChange)
    @rest.marshal_with(Notice, status=202)
    def post(self, body: dict[str, t.Any]) -> dict[str, str]:
        """Send a link to the new address; the change is made when it is used.

        The old address is told. 422 names ``current_password`` when it is
        wrong and ``email`` for an address already in use.
        """
        try:
            accounts.request_email_change(
                current_user._get_current_object(), body["current_password"], body["email"]
            )
        except accounts.AccountError as exc:
            _invalid(exc)
        detail = "A link was sent to the new address: the change is made when it is used."
        return _notice(detail)


@csrf.exempt
class AccountEmailConfirm(rest.Resource):
    """Change the address: use the link's token."""

    @rest.body(LinkToken)
    @rest.marshal_with(Notice)
    def post(self, body: dict[str, t.Any]) -> dict[str, str]:
        """Move the account to the address the link was sent to; the old address is told."""
        try:
            accounts.confirm_email_change(body["token"])
        except accounts.AccountError as exc:
            _invalid(exc)
        return _notice("The email address was changed.")


class Login(rest.Resource):
    """Sign in: the session cookie of this client becomes the user's."""

    @functools.partial(describe, statuses=("401", "403"))
    @_throttled
    @rest.body(Credentials)
    @rest.marshal_with(SignedIn)
    def post(self, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """Sign in with an email and a password (a browser's script: cookie and ``X-CSRFToken``).

        The session gets a new id, as on the sign-in page; ``remember`` gives
        this device a remember-me cookie. A wrong email or password is 401,
        the same for both; failures are throttled per account and per client
        (429). With confirmation required, an unconfirmed address is 403.
        With two-factor sign-in on and set up for the user, a right password
        without ``code`` (or ``recovery_code``) is 401 with ``errors.code``;
        send the three together. Clients that are not browsers use API
        tokens instead.
        """
        user = check_credentials(body["email"], body["password"])
        if user is None:
            schemes = current_app.config["FLASKSTACK_API_TOKEN_SCHEMES"]
            challenge = WWWAuthenticate(schemes[0] if schemes else "Bearer")
            challenge["realm"] = current_app.name
            raise Unauthorized(GENERIC_FAILURE, www_authenticate=challenge)
        if confirmation_missing(user):
            rest.abort(403, UNCONFIRMED, errors={"email": ["not confirmed"]})
        method = "password"
        if current_state().auth.two_factor is not None:
            from ._two_factor_api import second_factor_of_login

            method = second_factor_of_login(user, body)
        # The second factor, when due, is checked: this signs in.
        complete_sign_in(user, remember=bool(body.get("remember")), method=method)
        return {"email": user.email, "detail": "Signed in."}


class Logout(rest.Resource):
    """Sign out this client."""

    @rest.marshal_with(SignedIn)
    def post(self) -> dict[str, t.Any]:
        """Sign out: this device's session and remember-me cookie stop working."""
        logout_user()
        return {"email": None, "detail": "Signed out."}


class Registration(rest.Resource):
    """Create an account."""

    @rest.body(NewAccount)
    @rest.marshal_with(SignedIn, status=201)
    def post(self, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """Create an account; signed in at once unless email confirmation is required.

        422 names ``email`` for an address another account has, and
        ``password`` for one the policy refuses. With confirmation on, a link
        is mailed to the address.
        """
        try:
            user = create_account(body["email"], body["password"])
        except PasswordPolicyError as exc:
            raise rest.ValidationError({"password": [str(exc)]}) from None
        except ValueError as exc:
            raise rest.ValidationError({"email": [str(exc)]}) from None
        if welcome(user):
            return {"email": user.email, "detail": "The account is created; you are signed in."}
        return {
            "email": None,
            "detail": "The account is created: follow the link mailed to the address to "
            "confirm it, then sign in.",
        }


PATHS: tuple[tuple[type[rest.Resource], str, str], ...] = (
    (Login, "/login", "flaskstack_auth_login"),
    (Logout, "/logout", "flaskstack_auth_logout"),
    (Registration, "/register", "flaskstack_auth_register"),
    (PasswordReset, "/password-reset", "flaskstack_auth_password_reset"),
    (PasswordResetConfirm, "/password-reset/confirm", "flaskstack_auth_password_reset_confirm"),
    (EmailConfirmation, "/email-confirmation", "flaskstack_auth_email_confirmation"),
    (
        EmailConfirmationConfirm,
        "/email-confirmation/confirm",
        "flaskstack_auth_email_confirmation_confirm",
    ),
    (Account, "/account", "flaskstack_auth_account"),
    (AccountPassword, "/account/password", "flaskstack_auth_account_password"),
    (AccountEmail, "/account/email", "flaskstack_auth_account_email"),
    (AccountEmailConfirm, "/account/email/confirm", "flaskstack_auth_account_email_confirm"),
)
"""Each resource, its path under ``<API prefix><FLASKSTACK_AUTH_API_PATH>``, its endpoint."""


_NEEDS_RESET = (PasswordReset, PasswordResetConfirm)
_NEEDS_CONFIRMATION = (
    EmailConfirmation,
    EmailConfirmationConfirm,
    AccountEmail,
    AccountEmailConfirm,
)


def register(app: Flask, prefix: str) -> None:
    """Serve the endpoints that are on for ``app`` under ``prefix`` (API prefix and auth path).

    Those of a flow that is off are not served, so the OpenAPI document
    lists only what answers.
    """
    from flaskstack.rest import api

    off: set[type[rest.Resource]] = set()
    if not app.config["FLASKSTACK_PASSWORD_RESET"]:
        off.update(_NEEDS_RESET)
    if app.config["FLASKSTACK_EMAIL_CONFIRMATION"] == "off":
        off.update(_NEEDS_CONFIRMATION)
    if not app.config["FLASKSTACK_REGISTRATION"]:
        off.add(Registration)
    for resource, path, endpoint in PATHS:
        if resource not in off:
            api.add_app_resource(app, prefix, resource, path, endpoint=endpoint)
