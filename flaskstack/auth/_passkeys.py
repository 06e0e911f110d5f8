"""Passkeys (WebAuthn): the model, and the registration and sign-in ceremonies.

On with ``FLASKSTACK_PASSKEYS`` (and the ``passkeys`` extra, py_webauthn):
a signed-in user registers passkeys, each named, and signs in with one
without a password. The ceremonies are py_webauthn's; this module keeps
the rules around them:

- **The server decides, once.** Each ceremony starts with options whose
  random challenge is kept in the session (server-side in Redis), bound to
  the ceremony and, for registration, to the user; the answer must come
  within ``FLASKSTACK_PASSKEYS_TIMEOUT`` and takes the challenge out of the
  session before anything else is checked, so a challenge is used at most
  once, whatever the outcome.
- **Discoverable and verified.** Registration asks for a resident
  (discoverable) credential and user verification, and both ceremonies
  refuse an answer without user verification: a passkey is then two
  factors by itself, and sign-in needs no email.
- **The relying party is configured, not guessed, in production**
  (``FLASKSTACK_PASSKEYS_RP_ID`` and ``FLASKSTACK_PASSKEYS_ORIGINS``); in
  development and testing the request's host and origin stand in.
- **Clones are refused.** The signature counter and the backup flags are
  stored; a counter that does not grow, once it is not zero, means two
  authenticators hold the same key: the sign-in is refused and a warning
  goes to the ``flaskstack.auth`` logger.
- **Sign-in costs Redis one small key per session, for the ceremony only.**
  A visitor who is not signed in keeps a session in a signed cookie; putting
  the sign-in challenge in it would move it into Redis for the session's
  lifetime, once per request of a client that replays its first cookie. So
  with Redis the sign-in challenge has a key of its own,
  ``<namespace>:passkey-sign-in:<digest>``, named after the session's CSRF
  secret (one per session: new options replace it), living
  ``FLASKSTACK_PASSKEYS_TIMEOUT`` seconds and taken with ``GETDEL`` (once,
  even under concurrent answers).
- **Refused answers are throttled.** Each refused sign-in answer counts
  against the client address with the password sign-in's address throttle
  (``FLASKSTACK_LOGIN_ADDRESS_LIMIT`` per ``FLASKSTACK_LOGIN_WINDOW``, one
  budget for both); past it, options and answers are refused with 429 and
  ``Retry-After``.

The passkey model is made per user model (:func:`passkey_model`): table
``user_passkeys`` for the default ``User``, ``<user table>_passkeys``
otherwise. Nothing here imports py_webauthn until a ceremony runs.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import hmac
import importlib.util
import json
import logging
import secrets
import time
import typing as t
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, request, session
from sqlalchemy.orm import Mapped, mapped_column

from flaskstack._state import current_state
from flaskstack.database import db
from flaskstack.errors import Problem

from . import _models
from ._models import user_key

if t.TYPE_CHECKING:
    from flaskstack.config import Resolution
    from flaskstack.redis import RedisConnection
    from flaskstack.throttle import Throttle

__all__ = [
    "PasskeyError",
    "authenticate",
    "authentication_options",
    "deploy_findings",
    "notify",
    "passkey_model",
    "passkeys_of",
    "problems",
    "register",
    "registration_options",
    "remove_passkey",
]

_REGISTRATION = "_flaskstack_passkey_registration"
_SIGN_IN = "_flaskstack_passkey_sign_in"
_SIGN_IN_SCOPE = "passkey-sign-in"
"""Redis keys ``<namespace>:passkey-sign-in:<digest>``: one sign-in challenge per session."""
_CREDENTIAL_ID_LENGTH = 1023  # WebAuthn's limit
_TRANSPORTS = frozenset({"ble", "cable", "hybrid", "internal", "nfc", "smart-card", "usb"})
_logger = logging.getLogger("flaskstack.auth")

UNKNOWN_PASSKEY = (
    "This passkey is not registered here (it may have been removed): sign in another way, "
    "then add it again on your passkeys page."
)
COPIED_PASSKEY = (
    "This passkey was refused: its signature counter went backwards, as happens when the "
    "key was copied to another authenticator. Sign in another way and remove this passkey."
)


class PasskeyError(Exception):
    """A ceremony was refused: ``status`` (HTTP), the message for people, the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


# -- the model --------------------------------------------------------------------------


class _PasskeyColumns:
    """A passkey of a user: its credential id, public key, counter and flags."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    credential_id: Mapped[bytes] = mapped_column(sa.LargeBinary(_CREDENTIAL_ID_LENGTH), unique=True)
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    user_handle: Mapped[bytes] = mapped_column(sa.LargeBinary(64))
    """The user id the authenticator keeps (random, the same for every passkey of the user)."""
    sign_count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    transports: Mapped[str | None] = mapped_column(sa.String(100))
    aaguid: Mapped[str | None] = mapped_column(sa.String(36))
    backup_eligible: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    backed_up: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_models.now, server_default=sa.func.now()
    )
    last_used_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))

    @property
    def key(self) -> str:
        """The credential id, base64url-encoded (as browsers write it)."""
        return _encode(self.credential_id)

    def __repr__(self) -> str:
        return f"<Passkey {self.id} {self.name!r} of user {self.user_id}>"  # type: ignore[attr-defined]


def passkey_model(user_model: type[t.Any]) -> type[t.Any]:
    """The passkey model for ``user_model`` (made once per user model).

    For the default ``User`` its table is ``user_passkeys``; for another
    user model ``<user table>_passkeys``. The user model needs a
    single-column primary key.
    """
    return _models.rows_model_of(
        user_model, "Passkey", ("user_passkeys", "passkeys"), _PasskeyColumns
    )


def _model() -> type[t.Any]:
    model: type[t.Any] | None = current_state().auth.passkey_model
    if model is None:
        raise LookupError("passkeys are off for this app: set FLASKSTACK_PASSKEYS = True")
    return model


def passkeys_of(user: t.Any) -> list[t.Any]:
    """``user``'s passkeys, oldest first."""
    model = _model()
    statement = sa.select(model).where(model.user_id == user_key(user)).order_by(model.id)
    return list(db.session.scalars(statement))


def remove_passkey(user: t.Any, passkey_id: int) -> bool:
    """Delete ``user``'s passkey ``passkey_id``; ``False`` when the user has none such.

    Only added to the database session: commit to keep it.
    """
    model = _model()
    passkey = db.session.scalars(
        sa.select(model).where(model.id == passkey_id, model.user_id == user_key(user))
    ).one_or_none()
    if passkey is None:
        return False
    db.session.delete(passkey)
    return True


# -- the relying party and the challenges ---------------------------------------------------


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclasses.dataclass(frozen=True)
class _RelyingParty:
    id: str
    name: str
    origins: list[str]


def _relying_party() -> _RelyingParty:
    """The settings, or else (development and testing) the request's host and origin."""
    config = current_app.config
    here = urlsplit(request.host_url)
    rp_id = config["FLASKSTACK_PASSKEYS_RP_ID"] or (here.hostname or "").lower()
    origins = list(config["FLASKSTACK_PASSKEYS_ORIGINS"]) or [
        f"{here.scheme}://{here.netloc.lower()}"
    ]
    return _RelyingParty(rp_id, config["FLASKSTACK_PASSKEYS_RP_NAME"] or rp_id, origins)


def _timeout() -> int:
    return int(current_app.config["FLASKSTACK_PASSKEYS_TIMEOUT"])


def _remember(key: str, challenge: bytes, **bound: str) -> None:
    pending = {"challenge": _encode(challenge), "expires": time.time() + _timeout(), **bound}
    stored = _sign_in_key() if key == _SIGN_IN else None
    if stored is None:
        session[key] = pending
        return
    connection, name = stored
    data = json.dumps(pending)
    _redis(connection, lambda client: client.set(name, data, ex=_timeout()))


def _take(key: str, what: str) -> dict[str, t.Any]:
    """The pending ceremony, taken out of the session: a challenge answers once."""
    stored = _sign_in_key() if key == _SIGN_IN else None
    if stored is None:
        pending = session.pop(key, None)
    else:
        connection, name = stored
        raw = _redis(connection, lambda client: client.getdel(name))
        pending = json.loads(raw) if raw else None
    if not isinstance(pending, dict) or not isinstance(pending.get("challenge"), str):
        raise PasskeyError(
            400,
            f"No {what} is in progress in this session (it was already answered, or never "
            "started): start again.",
        )
    if float(pending.get("expires", 0)) < time.time():
        raise PasskeyError(400, f"The {what} took longer than {_timeout()} seconds: start again.")
    return pending


def _sign_in_key() -> tuple[RedisConnection, str] | None:
    """The app's Redis and the key of this session's sign-in challenge; ``None`` without Redis.

    The key is named after the session's CSRF secret (Flask-WTF keeps it
    under ``WTF_CSRF_FIELD_NAME``, and makes one if the session has none), a
    random value that stays in a visitor's cookie session: one key per
    session, whatever the client does with its cookies. The secret is
    hashed with ``SECRET_KEY`` first, so key names reveal nothing of it.
    """
    connection = current_state().redis
    if connection is None:
        return None  # signed-cookie sessions (development, testing): the challenge rides them
    from flask_wtf.csrf import generate_csrf  # type: ignore[import-untyped]

    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    if not session.get(field):
        generate_csrf()
    secret = current_app.config["SECRET_KEY"]
    secret = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    message = f"passkey sign-in\0{session[field]}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]
    return connection, connection.key(_SIGN_IN_SCOPE, digest)


def _redis(connection: RedisConnection, operation: t.Callable[[t.Any], t.Any]) -> t.Any:
    from flaskstack.redis import RedisUnavailable
    from flaskstack.sessions import SessionUnavailable

    try:
        return connection.run(operation)
    except RedisUnavailable as exc:  # as for the session itself: 503, retry shortly
        _logger.warning("a passkey sign-in could not reach Redis: %s", exc)
        raise SessionUnavailable(connection.breaker.backoff) from exc


def _options_json(options: t.Any) -> dict[str, t.Any]:
    from webauthn import options_to_json

    document: dict[str, t.Any] = json.loads(options_to_json(options))
    return document


def _display_name(user: t.Any) -> str:
    # Never get_id(): for flaskstack's models it is the session token.
    email = getattr(user, "email", None)
    return str(email) if email else f"user {user_key(user)}"


_BAD_ANSWER = (ValueError, TypeError, KeyError, AttributeError, binascii.Error)


# -- registration ---------------------------------------------------------------------------


def registration_options(user: t.Any) -> dict[str, t.Any]:
    """Start registering a passkey for ``user``: the options for ``navigator.credentials.create``.

    The challenge is kept in the session for :func:`register`. The user's
    passkeys are excluded, so an authenticator that holds one says so.
    """
    from webauthn import generate_registration_options
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        AuthenticatorTransport,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    party = _relying_party()
    existing = passkeys_of(user)
    handle = existing[0].user_handle if existing else secrets.token_bytes(32)
    name = _display_name(user)
    options = generate_registration_options(
        rp_id=party.id,
        rp_name=party.name,
        user_name=name,
        user_id=handle,
        user_display_name=name,
        timeout=_timeout() * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(
                id=passkey.credential_id,
                transports=[
                    AuthenticatorTransport(name)
                    for name in (passkey.transports or "").split(",")
                    if name in _TRANSPORTS
                ]
                or None,
            )
            for passkey in existing
        ],
    )
    _remember(_REGISTRATION, options.challenge, user=str(user_key(user)), handle=_encode(handle))
    return _options_json(options)


def register(user: t.Any, name: str, credential: dict[str, t.Any]) -> t.Any:
    """Check the browser's answer to :func:`registration_options` and store the passkey.

    The new passkey is added to the database session (commit to keep it)
    and returned.

    :raises PasskeyError: no registration in progress for ``user`` (400),
        an answer that does not verify or a passkey already registered (422).
    """
    from webauthn import verify_registration_response
    from webauthn.helpers.exceptions import WebAuthnException
    from webauthn.helpers.structs import CredentialDeviceType

    pending = _take(_REGISTRATION, "passkey registration")
    if pending.get("user") != str(user_key(user)):
        raise PasskeyError(
            400, "The passkey registration was started by another user: start again."
        )
    party = _relying_party()
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=_decode(pending["challenge"]),
            expected_rp_id=party.id,
            expected_origin=party.origins,
            require_user_verification=True,
        )
    except (WebAuthnException, *_BAD_ANSWER) as exc:
        raise PasskeyError(
            422, f"The passkey could not be registered: {exc or type(exc).__name__}.", "credential"
        ) from exc
    model = _model()
    taken = sa.select(model.id).where(model.credential_id == verified.credential_id)
    if db.session.scalar(taken) is not None:
        raise PasskeyError(422, "This passkey is already registered.", "credential")
    response = credential.get("response")
    reported = response.get("transports") if isinstance(response, dict) else None
    transports = [str(item) for item in reported or () if item in _TRANSPORTS]
    passkey = model(
        user_id=user_key(user),
        name=name,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        user_handle=_decode(pending["handle"]),
        sign_count=verified.sign_count,
        transports=",".join(transports) or None,
        aaguid=str(verified.aaguid),
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
    )
    db.session.add(passkey)
    return passkey


# -- sign-in --------------------------------------------------------------------------------


def authentication_options() -> dict[str, t.Any]:
    """Start a sign-in: options for ``navigator.credentials.get`` (any passkey of this site).

    No user is named: the browser offers the passkeys it holds for the site.
    The session's previous sign-in challenge, if any, is replaced.

    :raises flaskstack.throttle.LoginThrottled: (429, with ``Retry-After``)
        while the client's address is over its limit of failed sign-ins.
    """
    from webauthn import generate_authentication_options
    from webauthn.helpers.structs import UserVerificationRequirement

    from flaskstack.throttle import LoginThrottled

    LoginThrottled.raise_for(_address_throttle().check(_client_address()))
    options = generate_authentication_options(
        rp_id=_relying_party().id,
        timeout=_timeout() * 1000,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    _remember(_SIGN_IN, options.challenge)
    return _options_json(options)


def _address_throttle() -> Throttle:
    from flaskstack.throttle import login_throttles

    return login_throttles(current_app._get_current_object()).address  # type: ignore[attr-defined]


def _client_address() -> str:
    return request.remote_addr or ""


def authenticate(credential: dict[str, t.Any]) -> t.Any:
    """Check the browser's answer to :func:`authentication_options`; the passkey's user.

    The passkey's counter, backup state and last use are updated in the
    database session (the sign-in that follows commits them). A refused
    answer (401, 422) counts against the client's address with the
    password sign-in's address throttle; with none in progress (400) it
    does not, as nothing was checked.

    :raises PasskeyError: no sign-in in progress (400), an answer that
        cannot be read (422), a passkey unknown here (401), an answer that
        does not verify, a copied passkey or an inactive user (401).
    :raises flaskstack.throttle.LoginThrottled: (429, with ``Retry-After``)
        while the address is over its limit, before anything is checked, or
        when this refusal took it over.
    """
    from flaskstack.throttle import LoginThrottled

    throttle, address = _address_throttle(), _client_address()
    LoginThrottled.raise_for(throttle.check(address))
    try:
        return _authenticate(credential)
    except PasskeyError as error:
        if error.status != 400:
            LoginThrottled.raise_for(throttle.hit(address))
        raise


def _authenticate(credential: dict[str, t.Any]) -> t.Any:
    from webauthn import verify_authentication_response
    from webauthn.helpers.exceptions import WebAuthnException

    pending = _take(_SIGN_IN, "passkey sign-in")
    try:
        credential_id = _decode(str(credential["rawId"]))
        response = credential["response"]
        handle = response.get("userHandle")
    except (*_BAD_ANSWER,) as exc:
        raise PasskeyError(
            422, "The answer is not a passkey's: it lacks rawId or response.", "credential"
        ) from exc
    model = _model()
    passkey = db.session.scalars(
        sa.select(model).where(model.credential_id == credential_id)
    ).one_or_none()
    if passkey is None:
        raise PasskeyError(401, UNKNOWN_PASSKEY)
    party = _relying_party()
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=_decode(pending["challenge"]),
            expected_rp_id=party.id,
            expected_origin=party.origins,
            credential_public_key=passkey.public_key,
            # The counter is judged below, after the signature, to tell a copy.
            credential_current_sign_count=0,
            require_user_verification=True,
        )
        if handle and _decode(str(handle)) != passkey.user_handle:
            raise PasskeyError(401, UNKNOWN_PASSKEY)
    except (WebAuthnException, *_BAD_ANSWER) as exc:
        raise PasskeyError(
            401, f"The passkey's answer was refused: {exc or type(exc).__name__}."
        ) from exc
    stored, counted = passkey.sign_count, verified.new_sign_count
    if (stored or counted) and counted <= stored:
        _logger.warning(
            "passkey %s of user %s refused: its signature counter went from %s to %s, as "
            "when the key was copied to another authenticator",
            passkey.id,
            passkey.user_id,
            stored,
            counted,
        )
        raise PasskeyError(401, COPIED_PASSKEY)
    passkey.sign_count = counted
    passkey.backed_up = verified.credential_backed_up
    passkey.last_used_at = _models.now()
    user = passkey.user
    if not user.is_active:
        raise PasskeyError(401, "This account is disabled.")
    return user


# -- notices --------------------------------------------------------------------------------


def notify(user: t.Any, template: str, name: str) -> None:
    """Mail ``user`` the security notice ``template`` about their passkey ``name``.

    ``passkey_added`` or ``passkey_removed``; sent when the app sends mail
    (after the response over SMTP, by a job with ``FLASKSTACK_JOBS``), not
    sent to a user without an address. Call it once the change is committed.
    """
    from flask import url_for

    from flaskstack.mail import mail_configured

    email = getattr(user, "email", None)
    if not email or not mail_configured():
        return
    from ._accounts import _send

    _send(
        email,
        template,
        user,
        name=name,
        when=_models.now().strftime("%Y-%m-%d %H:%M UTC"),
        manage_url=url_for("flaskstack_passkeys.passkeys", _external=True),
    )


# -- settings -------------------------------------------------------------------------------


def _origin_problems(rp_id: str | None, origins: t.Iterable[str]) -> list[str]:
    """The origins whose host is neither ``rp_id`` nor under it."""
    if rp_id is None:
        return []
    wrong = []
    for origin in origins:
        host = (urlsplit(origin).hostname or "").lower()
        if host != rp_id and not host.endswith("." + rp_id):
            wrong.append(origin)
    return wrong


def problems(resolution: Resolution, unusable: str | None) -> list[Problem]:
    """What keeps passkeys from working with these settings (``FLASKSTACK_PASSKEYS`` is on).

    :param unusable: Why the app cannot have them (no auth pages...), or ``None``.
    """
    found = []
    if importlib.util.find_spec("webauthn") is None:
        found.append(
            Problem(
                "passkeys.E001",
                "FLASKSTACK_PASSKEYS",
                "true, and py_webauthn is not installed",
                "the passkeys extra installed",
                "pip install 'flaskstack[passkeys]', or turn FLASKSTACK_PASSKEYS off",
            )
        )
    if unusable is not None:
        found.append(
            Problem(
                "passkeys.E002",
                "FLASKSTACK_PASSKEYS",
                f"true, and {unusable}",
                "flaskstack's auth pages, FLASKSTACK_AUTH_API_PATH and a user model with a "
                "single-column primary key",
                "turn FLASKSTACK_PASSKEYS off, or give the app what it lacks",
            )
        )
    rp_id = resolution["FLASKSTACK_PASSKEYS_RP_ID"]
    origins = resolution["FLASKSTACK_PASSKEYS_ORIGINS"]
    if resolution.profile == "production":
        found.extend(_missing(rp_id, origins))
    wrong = _origin_problems(rp_id, origins)
    if wrong:
        found.append(
            Problem(
                "passkeys.E004",
                "FLASKSTACK_PASSKEYS_ORIGINS",
                repr(origins),
                f"origins whose host is {rp_id!r} or ends with {'.' + rp_id!r} (the RP id)",
                f"fix or remove {', '.join(wrong)}, or set FLASKSTACK_PASSKEYS_RP_ID to a "
                "domain they share: browsers refuse every passkey ceremony from them",
            )
        )
    return found


def _missing(rp_id: str | None, origins: list[str]) -> list[Problem]:
    found = []
    if rp_id is None:
        found.append(
            Problem(
                "passkeys.E003",
                "FLASKSTACK_PASSKEYS_RP_ID",
                "not set",
                "the site's host name (or a parent domain): passkeys are bound to it for good",
                "set FLASKSTACK_PASSKEYS_RP_ID, e.g. 'example.com'",
            )
        )
    if not origins:
        found.append(
            Problem(
                "passkeys.E003",
                "FLASKSTACK_PASSKEYS_ORIGINS",
                "empty",
                "the origins of the site's pages, such as ['https://example.com']",
                "set FLASKSTACK_PASSKEYS_ORIGINS to the https origins the site is served from",
            )
        )
    return found


def deploy_findings(config: t.Mapping[str, t.Any]) -> list[tuple[str, str]]:
    """``(check id, message)`` for ``flask stack check --deploy`` with passkeys on."""
    if not config.get("FLASKSTACK_PASSKEYS"):
        return []
    rp_id = config["FLASKSTACK_PASSKEYS_RP_ID"]
    origins = list(config["FLASKSTACK_PASSKEYS_ORIGINS"])
    findings = [
        ("passkeys.E003", f"{problem.key} is {problem.value}: {problem.expected}.")
        for problem in _missing(rp_id, origins)
    ]
    plain = [origin for origin in origins if not origin.startswith("https://")]
    if plain:
        findings.append(
            (
                "passkeys.E005",
                f"FLASKSTACK_PASSKEYS_ORIGINS has origins that are not https: {', '.join(plain)}.",
            )
        )
    wrong = _origin_problems(rp_id, origins)
    if wrong:
        findings.append(
            (
                "passkeys.E004",
                f"FLASKSTACK_PASSKEYS_ORIGINS has origins outside the RP id {rp_id!r}: "
                f"{', '.join(wrong)}.",
            )
        )
    return findings
