"""Passkeys as JSON endpoints: the two ceremonies, the list, removal.

Served by :data:`flaskstack.api` under ``FLASKSTACK_API_PREFIX`` and
``FLASKSTACK_AUTH_API_PATH`` (``/api/auth`` by default), on the apps with
``FLASKSTACK_PASSKEYS`` on, and only there:

- ``POST /passkeys/registration-options`` then ``POST /passkeys`` (the
  signed-in user registers a passkey: options for
  ``navigator.credentials.create``, then its answer and a name);
- ``GET /passkeys``, ``DELETE /passkeys/<id>``;
- ``POST /passkeys/login-options`` then ``POST /passkeys/login`` (anyone:
  options for ``navigator.credentials.get``, then its answer signs in).

The ceremonies keep their challenge in the session, so they ride the
session cookie, with ``X-CSRFToken`` as every cookie-authenticated unsafe
request does; the passkeys page's script (``passkeys.js``) is their client.
Every refusal is a problem document saying what to do.
"""

from __future__ import annotations

import functools
import typing as t

from flask import url_for
from flask_login import current_user

from flaskstack import rest
from flaskstack.database import db
from flaskstack.rest import api
from flaskstack.rest._meta import describe
from flaskstack.urls import is_safe_redirect

from . import _passkeys, auth_required
from ._login import complete_sign_in
from ._views import UNCONFIRMED, confirmation_missing

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = ["PATHS", "register"]


class JSONObject(rest.Field):
    """A JSON object, passed on as it is (WebAuthn's own structures)."""

    json_type = "object"

    def load(self, value: object) -> t.Any:
        if not isinstance(value, dict):
            raise rest.Invalid("must be a JSON object")
        return value


class CreationOptions(rest.Schema):
    """What to pass to ``navigator.credentials.create`` (base64url for binary values)."""

    publicKey = JSONObject(  # WebAuthn's name
        description="PublicKeyCredentialCreationOptionsJSON (WebAuthn Level 3).",
    )


class RequestOptions(rest.Schema):
    """What to pass to ``navigator.credentials.get`` (base64url for binary values)."""

    publicKey = JSONObject(  # WebAuthn's name
        description="PublicKeyCredentialRequestOptionsJSON (WebAuthn Level 3).",
    )


class NewPasskey(rest.Schema):
    """The browser's answer to the registration options, and a name for the passkey."""

    name = rest.String(required=True, strip=True, min_length=1, max_length=100)
    credential = JSONObject(
        required=True,
        description="The PublicKeyCredential from navigator.credentials.create, in its JSON "
        "form (RegistrationResponseJSON: id, rawId, type, response.clientDataJSON, "
        "response.attestationObject, response.transports; binary values in base64url).",
    )


class Passkey(rest.Schema):
    """A registered passkey."""

    id = rest.Integer(description="Remove it with DELETE /auth/passkeys/{id}.")
    name = rest.String()
    created_at = rest.DateTime()
    last_used_at = rest.DateTime(nullable=True, description="When it last signed in.")
    backed_up = rest.Boolean(description="Whether the authenticator says it is backed up.")
    backup_eligible = rest.Boolean(description="Whether it may be synced between devices.")


class Passkeys(rest.Schema):
    """The user's passkeys, oldest first."""

    passkeys = rest.List(rest.Nested(Passkey))


class PasskeyAnswer(rest.Schema):
    """The browser's answer to the sign-in options."""

    credential = JSONObject(
        required=True,
        description="The PublicKeyCredential from navigator.credentials.get, in its JSON form "
        "(AuthenticationResponseJSON: id, rawId, type, response.clientDataJSON, "
        "response.authenticatorData, response.signature, response.userHandle; base64url).",
    )
    remember = rest.Boolean(default=False, description="Give this device a remember-me cookie.")
    next = rest.String(
        nullable=True,
        max_length=2000,
        description="Where the browser goes afterwards: a path on this site (else ``/``).",
    )


class PasskeySignedIn(rest.Schema):
    """Who is signed in now, and where the browser goes next."""

    email = rest.String(nullable=True, description="Null until a further step is done.")
    detail = rest.String(required=True)
    next = rest.String(required=True, description="The page to open now.")


def _refused(error: _passkeys.PasskeyError) -> t.NoReturn:
    if error.status == 422:
        raise rest.ValidationError({error.field or "credential": [str(error)]})
    rest.abort(error.status, str(error))


def _signed_in() -> list[t.Any]:
    return [auth_required]


class FlaskstackPasskeyRegistrationOptions(rest.Resource):
    """Start registering a passkey."""

    method_decorators: t.ClassVar[list[t.Any]] = _signed_in()

    @rest.marshal_with(CreationOptions)
    def post(self) -> dict[str, t.Any]:
        """Options for ``navigator.credentials.create``: a discoverable passkey, user verified.

        The challenge is kept in the session for ``POST /auth/passkeys``, once,
        for FLASKSTACK_PASSKEYS_TIMEOUT seconds.
        """
        return {"publicKey": _passkeys.registration_options(current_user._get_current_object())}


class FlaskstackPasskeys(rest.Resource):
    """The current user's passkeys."""

    method_decorators: t.ClassVar[list[t.Any]] = _signed_in()

    @rest.marshal_with(Passkeys)
    def get(self) -> dict[str, t.Any]:
        """List the current user's passkeys."""
        return {"passkeys": _passkeys.passkeys_of(current_user._get_current_object())}

    @functools.partial(describe, statuses=("400",))
    @rest.body(NewPasskey)
    @rest.marshal_with(Passkey, status=201)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Register a passkey with the answer to the registration options.

        400 when no registration is in progress in the session (answered
        already, never started, or expired); 422 names ``credential`` when
        the answer does not verify (origin, RP id, challenge, no user
        verification) and when the passkey is registered already.
        """
        user = current_user._get_current_object()
        try:
            passkey = _passkeys.register(user, body["name"], body["credential"])
        except _passkeys.PasskeyError as exc:
            _refused(exc)
        db.session.commit()
        _passkeys.notify(user, "passkey_added", passkey.name)
        return passkey


class FlaskstackPasskey(rest.Resource):
    """One passkey of the current user."""

    method_decorators: t.ClassVar[list[t.Any]] = _signed_in()

    def delete(self, passkey_id: int) -> tuple[str, int]:
        """Remove the passkey: it signs nobody in any more. The user is told by mail."""
        user = current_user._get_current_object()
        names = {passkey.id: passkey.name for passkey in _passkeys.passkeys_of(user)}
        if not _passkeys.remove_passkey(user, passkey_id):
            rest.abort(404, "You have no passkey with this id.")
        db.session.commit()
        _passkeys.notify(user, "passkey_removed", names[passkey_id])
        return "", 204


class FlaskstackPasskeyLoginOptions(rest.Resource):
    """Start signing in with a passkey."""

    @functools.partial(describe, throttled=True)
    @rest.marshal_with(RequestOptions)
    def post(self) -> dict[str, t.Any]:
        """Options for ``navigator.credentials.get``: any passkey of this site, user verified.

        The challenge is kept for ``POST /auth/passkeys/login``, once, for
        FLASKSTACK_PASSKEYS_TIMEOUT seconds; new options replace it (one per
        session). 429 while the client's address is over its limit of failed
        sign-ins (FLASKSTACK_LOGIN_ADDRESS_LIMIT).
        """
        return {"publicKey": _passkeys.authentication_options()}


class FlaskstackPasskeyLogin(rest.Resource):
    """Sign in with a passkey."""

    @functools.partial(describe, statuses=("400", "401", "403"), throttled=True)
    @rest.body(PasskeyAnswer)
    @rest.marshal_with(PasskeySignedIn)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Sign in with the answer to the sign-in options (the session gets a new id).

        400 when no sign-in is in progress in the session (answered already,
        never started, or expired); 401 for a passkey unknown here (removed),
        an answer that does not verify, or a copied passkey; 403 for an
        address that must be confirmed first. Refused answers (401, 422)
        count against the client's address with the password sign-in's
        (FLASKSTACK_LOGIN_ADDRESS_LIMIT per FLASKSTACK_LOGIN_WINDOW): past
        the limit, 429 with ``Retry-After``. ``next`` in the answer is
        where the browser goes: the requested page, or a further step.
        """
        try:
            user = _passkeys.authenticate(body["credential"])
        except _passkeys.PasskeyError as exc:
            _refused(exc)
        if confirmation_missing(user):
            rest.abort(403, UNCONFIRMED)
        target = body.get("next")
        if not is_safe_redirect(target):
            target = url_for("flaskstack_auth.login_done")
        carried_on = complete_sign_in(user, bool(body.get("remember")), method="passkey")
        db.session.commit()
        if carried_on is not None:
            return {
                "email": None,
                "detail": "One more step to sign in.",
                "next": carried_on.location or target,
            }
        return {"email": getattr(user, "email", None), "detail": "Signed in.", "next": target}


PATHS: tuple[tuple[type[rest.Resource], str, str], ...] = (
    (
        FlaskstackPasskeyRegistrationOptions,
        "/passkeys/registration-options",
        "flaskstack_auth_passkey_registration_options",
    ),
    (FlaskstackPasskeys, "/passkeys", "flaskstack_auth_passkeys"),
    (FlaskstackPasskey, "/passkeys/<int:passkey_id>", "flaskstack_auth_passkey"),
    (
        FlaskstackPasskeyLoginOptions,
        "/passkeys/login-options",
        "flaskstack_auth_passkey_login_options",
    ),
    (FlaskstackPasskeyLogin, "/passkeys/login", "flaskstack_auth_passkey_login"),
)
"""Each resource, its path under the auth API prefix and its endpoint."""


def register(app: Flask, prefix: str) -> None:
    """Serve the endpoints on ``app`` alone, under ``prefix`` (the API prefix and the auth path)."""
    for resource, path, endpoint in PATHS:
        api.add_app_resource(app, prefix, resource, path, endpoint=endpoint)
