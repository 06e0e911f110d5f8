"""Two-factor sign-in as JSON endpoints, under ``<API prefix><FLASKSTACK_AUTH_API_PATH>``.

Served only when :setting:`FLASKSTACK_TWO_FACTOR` is on, next to the
account endpoints, for the signed-in user (an API token, or the session with
``X-CSRFToken``):

- ``GET /two-factor``: whether it is on, whether a role requires it, how
  many recovery codes are left;
- ``POST /two-factor/enrolment``: a new secret, its ``otpauth://`` URI and
  the QR code as SVG, to show to the user;
- ``POST /two-factor/confirmation``: the first code turns it on; the answer
  holds the recovery codes, shown this once;
- ``POST /two-factor/recovery-codes``: new recovery codes;
- ``POST /two-factor/disable``: turn it off.

The last two take the password or a current code again. The JSON sign-in
(``POST /login``) asks for the second factor of a user who has it on
(:func:`second_factor_of_login`).
"""

from __future__ import annotations

import functools
import typing as t

from flask import current_app, url_for
from flask_login import current_user
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from flaskstack import rest
from flaskstack.rest._meta import describe

from . import _two_factor as two_factor

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = ["PATHS", "register", "second_factor_of_login"]

CODE_NEEDED = (
    "This account uses two-factor sign-in: send the code from the authenticator app as "
    "'code' (or an unused recovery code as 'recovery_code') with the email and password."
)
WRONG_CODE = (
    "The code is not right, or it was used already: send the newest code from the "
    "authenticator app, or an unused recovery code."
)
MUST_ENROL = (
    "This account's role requires two-factor sign-in, which is not set up yet: sign in on "
    "the sign-in page to set it up first."
)


class TwoFactorStatus(rest.Schema):
    """Two-factor sign-in of the signed-in user."""

    enabled = rest.Boolean(description="Whether a code is asked for at sign-in.")
    required = rest.Boolean(description="Whether a role of the user requires it.")
    recovery_codes_left = rest.Integer(description="Unused recovery codes (0 while it is off).")


class Enrolment(rest.Schema):
    """A new secret for the authenticator app, waiting for its first code."""

    secret = rest.String(description="The secret in base32, for typing into the app.")
    otpauth_uri = rest.String(description="The otpauth:// URI the QR code holds.")
    qr_svg = rest.String(description="The QR code, as an SVG element.")


class FirstCode(rest.Schema):
    """The first code the authenticator app shows for the new secret."""

    code = rest.String(required=True, strip=True, min_length=1, max_length=16)


class RecoveryCodes(rest.Schema):
    """Single-use recovery codes: shown this once, stored hashed."""

    recovery_codes = rest.List(rest.String())


class Reauthentication(rest.Schema):
    """The password, or a current code from the authenticator app."""

    password = rest.String(min_length=1, load_only=True)
    code = rest.String(strip=True, min_length=1, max_length=64, load_only=True)


class Notice(rest.Schema):
    """What happened, for people."""

    detail = rest.String(required=True)


def _signed_in() -> list[t.Any]:
    from . import auth_required

    return [auth_required]


def _user() -> t.Any:
    return current_user._get_current_object()


def _reauthenticate(body: dict[str, t.Any]) -> None:
    """422 unless ``body`` holds the right password or a right code (throttled)."""
    password, code = body.get("password"), body.get("code")
    if not password and not code:
        raise rest.ValidationError({"password": ["Send the password, or a code as 'code'."]})
    if not two_factor.reauthenticated(_user(), password, code):
        field = "password" if password else "code"
        message = "The password is not right." if password else WRONG_CODE
        raise rest.ValidationError({field: [message]})


def _enabled() -> t.Any:
    user = _user()
    if not two_factor.is_enabled(user):
        rest.abort(409, "Two-factor sign-in is off for this account.")
    return user


class TwoFactor(rest.Resource):
    """Two-factor sign-in of the signed-in user."""

    method_decorators: t.ClassVar[list[t.Any]] = _signed_in()

    @rest.marshal_with(TwoFactorStatus)
    def get(self) -> dict[str, t.Any]:
        """Whether two-factor is on, required by a role, and how many recovery codes are left."""
        user = _user()
        enabled = two_factor.is_enabled(user)
        return {
            "enabled": enabled,
            "required": two_factor.is_required(user),
            "recovery_codes_left": two_factor.recovery_codes_left(user) if enabled else 0,
        }


class TwoFactorEnrolment(rest.Resource):
    """Start setting two-factor up."""

    method_decorators: t.ClassVar[list[t.Any]] = _signed_in()

    @functools.partial(describe, statuses=("409",))
    @rest.marshal_with(Enrolment)
    def post(self) -> dict[str, t.Any]:
        """A new secret (replacing one still waiting), its otpauth URI and QR code.

        Show the QR code (or the secret) to the user, then send the first code
        their app shows to ``/two-factor/confirmation``. 409 when two-factor
        is on already (turn it off first to change the secret).
        """
        try:
            enrolment = two_factor.enrolment(_user(), new=True)
        except ValueError as exc:
            rest.abort(409, str(exc))
        return {
            "secret": enrolment.secret,
            "otpauth_uri": enrolment.uri,
            "qr_svg": enrolment.qr_svg(),
        }


class TwoFactorConfirmation(rest.Resource):
    """Finish setting two-factor up."""

    method_decorators: t.ClassVar[list[t.Any]] = _signed_in()

    @functools.partial(describe, statuses=("409",), throttled=True)
    @rest.body(FirstCode)
    @rest.marshal_with(RecoveryCodes)
    def post(self, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """Turn two-factor on with the first code; the answer holds the recovery codes.

        They are shown only this once. 422 names ``code`` when it is wrong;
        409 when no set-up is waiting (start one with ``/two-factor/enrolment``).
        Wrong codes are throttled (429).
        """
        try:
            codes = two_factor.confirm(_user(), body["code"])
        except ValueError as exc:
            rest.abort(409, str(exc))
        if codes is None:
            raise rest.ValidationError({"code": [WRONG_CODE]})
        return {"recovery_codes": codes}


class TwoFactorRecoveryCodes(rest.Resource):
    """Replace the recovery codes."""

    method_decorators: t.ClassVar[list[t.Any]] = _signed_in()

    @functools.partial(describe, statuses=("409",), throttled=True)
    @rest.body(Reauthentication)
    @rest.marshal_with(RecoveryCodes)
    def post(self, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """New recovery codes (the old ones stop working), with the password or a code.

        422 names ``password`` or ``code`` when it is wrong; 409 while
        two-factor is off.
        """
        user = _enabled()
        _reauthenticate(body)
        return {"recovery_codes": two_factor.regenerate_recovery_codes(user)}


class TwoFactorDisable(rest.Resource):
    """Turn two-factor off."""

    method_decorators: t.ClassVar[list[t.Any]] = _signed_in()

    @functools.partial(describe, statuses=("403", "409"), throttled=True)
    @rest.body(Reauthentication)
    @rest.marshal_with(Notice)
    def post(self, body: dict[str, t.Any]) -> dict[str, str]:
        """Turn two-factor off, with the password or a code; the user is told by mail.

        422 names ``password`` or ``code`` when it is wrong; 409 while it is
        off; 403 when a role of the user requires it.
        """
        user = _enabled()
        if two_factor.is_required(user):
            rest.abort(403, "A role of this account requires two-factor sign-in.")
        _reauthenticate(body)
        two_factor.disable(user)
        return {"detail": "Two-factor sign-in is off."}


PATHS: tuple[tuple[type[rest.Resource], str, str], ...] = (
    (TwoFactor, "/two-factor", "flaskstack_auth_two_factor"),
    (TwoFactorEnrolment, "/two-factor/enrolment", "flaskstack_auth_two_factor_enrolment"),
    (TwoFactorConfirmation, "/two-factor/confirmation", "flaskstack_auth_two_factor_confirmation"),
    (TwoFactorRecoveryCodes, "/two-factor/recovery-codes", "flaskstack_auth_two_factor_codes"),
    (TwoFactorDisable, "/two-factor/disable", "flaskstack_auth_two_factor_disable"),
)
"""Each resource, its path under the auth API prefix and its endpoint."""


def register(app: Flask, prefix: str) -> None:
    """Serve the endpoints on ``app`` alone, under ``prefix`` (the API prefix and the auth path)."""
    from flaskstack.rest import api

    for resource, path, endpoint in PATHS:
        api.add_app_resource(app, prefix, resource, path, endpoint=endpoint)


def _challenge() -> WWWAuthenticate:
    schemes = current_app.config["FLASKSTACK_API_TOKEN_SCHEMES"]
    challenge = WWWAuthenticate(schemes[0] if schemes else "Bearer")
    challenge["realm"] = current_app.name
    return challenge


def second_factor_of_login(user: t.Any, body: dict[str, t.Any]) -> str:
    """For the JSON sign-in, after a right password: check the second factor in ``body``.

    :returns: The sign-in method for :func:`~flaskstack.auth._login.complete_sign_in`:
        ``"two-factor"`` when a right code came, ``"password"`` when none is due.
    :raises werkzeug.exceptions.HTTPException: 401 with ``errors.code`` when a
        code is due and missing or wrong; 403 (``errors.two_factor``) when a
        role requires two-factor and it is not set up.
    """
    if two_factor.must_enrol(user):
        setup = url_for("flaskstack_two_factor.setup", _external=False)
        rest.abort(403, MUST_ENROL, errors={"two_factor": ["not set up"]}, setup=setup)
    if not two_factor.is_enabled(user):
        return "password"
    code, recovery = body.get("code"), body.get("recovery_code")
    if not code and not recovery:
        error = Unauthorized(CODE_NEEDED, www_authenticate=_challenge())
        error.data = {"errors": {"code": ["required"]}, "two_factor": True}  # type: ignore[attr-defined]
        raise error
    if code:
        right = two_factor.verify_second_factor(user, code)
    else:
        right = two_factor.verify_second_factor(user, recovery_code=recovery)
    if not right:
        error = Unauthorized(WRONG_CODE, www_authenticate=_challenge())
        field = "code" if code else "recovery_code"
        error.data = {"errors": {field: ["is not right"]}, "two_factor": True}  # type: ignore[attr-defined]
        raise error
    return "two-factor"
