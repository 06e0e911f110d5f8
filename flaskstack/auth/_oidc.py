"""Sign-in with OpenID Connect identity providers: settings, presets, linked identities, rules.

Off until ``FLASKSTACK_OIDC_PROVIDERS`` names a provider; then, and only
then, :mod:`flaskstack.auth` imports this module and
:mod:`._oidc_views`, which import Authlib (the extra
``flaskstack[oidc]``). An app without providers imports nothing of it,
registers no route and runs no SQL statement for it.

A user's identity at a provider (the provider's name and the id token's
``sub``) is a row of the identity model made for the user model (table
``user_identities`` for flaskstack's default ``User``,
``<user table>_identities`` otherwise). The rules, kept by
:func:`sign_in_user` and :func:`link`:

- An identity already linked signs its user in, whatever its email says now.
- Otherwise an account with the same email is linked and signed in only
  when the provider says it verified the address (``email_verified`` is
  ``true`` in the id token); with an unverified address the sign-in is
  refused, and the user is told to sign in with the password and link the
  provider from the account page (explicit linking).
- No account with that email: one is created when registration is open
  (``FLASKSTACK_REGISTRATION``), its address marked confirmed only when the
  provider verified it. It has no password until the user sets one.
- An identity belongs to one account: linking one that another account
  holds is refused; unlinking the last way to sign in of a user without a
  password is refused.

Linking a provider to an existing account (explicitly, or by a verified
address at sign-in) and unlinking one mail the user a security notice
(:func:`notify`) when the app sends mail.

The provider's tokens are not kept (``FLASKSTACK_OIDC_STORE_TOKENS`` off).
With it on they are stored with the identity, encrypted (Fernet: AES-128-CBC
with HMAC-SHA256) under a key derived from ``SECRET_KEY``; a new
``SECRET_KEY`` makes them unreadable (:func:`stored_tokens` returns ``None``)
until the user's next sign-in stores new ones.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import importlib.util
import json
import os
import re
import typing as t
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from flaskstack.database import db
from flaskstack.errors import Problem

from . import _models
from ._models import normalise_email, now, user_by_email, user_key

if t.TYPE_CHECKING:
    from flask import Flask

    from flaskstack.config import Resolution

__all__ = [
    "PRESETS",
    "RULES",
    "OidcRefusal",
    "ProviderSettings",
    "check_findings",
    "identities_of",
    "identity_model",
    "link",
    "notify",
    "parse_providers",
    "prepare",
    "sign_in_user",
    "stored_tokens",
    "unlink",
]

SETTING = "FLASKSTACK_OIDC_PROVIDERS"
INSTALL = "pip install 'flaskstack[oidc]'"

PRESETS: dict[str, tuple[str, str]] = {
    "google": ("Google", "https://accounts.google.com/.well-known/openid-configuration"),
    "microsoft": (
        "Microsoft",
        "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration",
    ),
    "gitlab": ("GitLab", "{base_url}/.well-known/openid-configuration"),
}
"""Known providers: label and discovery URL (``{tenant}`` and ``{base_url}`` are options)."""

_PRESET_DEFAULTS = {"gitlab": {"base_url": "https://gitlab.com"}}
_OPTIONS = frozenset(
    {
        "preset",
        "discovery_url",
        "client_id",
        "client_secret",
        "scopes",
        "label",
        "tenant",
        "base_url",
    }
)
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_DEFAULT_SCOPES = ("openid", "email", "profile")


@dataclasses.dataclass(frozen=True)
class ProviderSettings:
    """One identity provider as configured (``FLASKSTACK_OIDC_PROVIDERS[name]``)."""

    name: str
    label: str
    discovery_url: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]


def _env_name(name: str, what: str) -> str:
    return f"FLASKSTACK_OIDC_{re.sub(r'[^A-Z0-9]', '_', name.upper())}_{what}"


def _problem(value: str, expected: str, fix: str, check_id: str = "oidc.E001") -> Problem:
    return Problem(check_id, SETTING, value, expected, fix)


def _scopes(name: str, raw: object) -> tuple[tuple[str, ...], list[Problem]]:
    if raw is None:
        return _DEFAULT_SCOPES, []
    if isinstance(raw, str):
        scopes = tuple(raw.split())
    elif isinstance(raw, (list, tuple)) and all(isinstance(item, str) for item in raw):
        scopes = tuple(raw)
    else:
        return (), [
            _problem(
                f"{name!r}: scopes {raw!r}",
                "a list of scopes or a space-separated string",
                f"write the scopes of {name!r} as ['openid', 'email', 'profile']",
            )
        ]
    if "openid" not in scopes:
        return (), [
            _problem(
                f"{name!r}: scopes {list(scopes)!r}",
                "scopes including 'openid' (sign-in reads the id token)",
                f"add 'openid' to the scopes of {name!r} ('email' too, to match accounts)",
            )
        ]
    return scopes, []


def _discovery_url(name: str, options: t.Mapping[str, t.Any]) -> tuple[str, list[Problem]]:
    preset, url = options.get("preset"), options.get("discovery_url")
    if (preset is None) == (url is None):
        return "", [
            _problem(
                f"{name!r}: " + ("both a preset and a discovery_url" if preset else "neither"),
                "either 'preset' (one of " + ", ".join(map(repr, PRESETS)) + ") or "
                "'discovery_url' (the provider's /.well-known/openid-configuration URL)",
                f"give {name!r} one of them",
            )
        ]
    if preset is not None:
        if preset not in PRESETS:
            return "", [
                _problem(
                    f"{name!r}: preset {preset!r}",
                    "one of " + ", ".join(map(repr, PRESETS)),
                    f"correct the preset of {name!r}, or give a 'discovery_url' instead",
                )
            ]
        values = {**_PRESET_DEFAULTS.get(preset, {}), **options}
        if preset == "microsoft" and not values.get("tenant"):
            return "", [
                _problem(
                    f"{name!r}: preset 'microsoft' without a tenant",
                    "'tenant': the directory (tenant) id or domain of the app's registration",
                    f"add 'tenant' to {name!r}; Microsoft's 'common' endpoint issues id tokens "
                    "whose issuer differs per tenant, which cannot be verified",
                )
            ]
        url = PRESETS[preset][1].format(
            tenant=values.get("tenant", ""), base_url=str(values.get("base_url", "")).rstrip("/")
        )
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "", [
            _problem(
                f"{name!r}: discovery_url {url!r}",
                "an http(s) URL of the provider's discovery document",
                f"correct the discovery_url (or base_url) of {name!r}",
            )
        ]
    return str(url), []


def parse_providers(
    value: t.Mapping[str, t.Any], environ: t.Mapping[str, str] | None = None
) -> tuple[dict[str, ProviderSettings], list[Problem]]:
    """The providers of ``FLASKSTACK_OIDC_PROVIDERS``, and what is wrong with them.

    A provider's ``client_id`` and ``client_secret`` may come from the
    environment instead: ``FLASKSTACK_OIDC_<NAME>_CLIENT_ID`` and
    ``FLASKSTACK_OIDC_<NAME>_CLIENT_SECRET`` (the name upper-cased, ``-``
    as ``_``); a value in the mapping wins.
    """
    environ = os.environ if environ is None else environ
    providers: dict[str, ProviderSettings] = {}
    problems: list[Problem] = []
    for name, options in value.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.append(
                _problem(
                    f"a provider named {name!r}",
                    "provider names of lower-case letters, digits, '_' and '-' (up to 32), "
                    "used in the URLs /login/<name>",
                    f"rename {name!r}",
                )
            )
            continue
        if not isinstance(options, t.Mapping):
            problems.append(
                _problem(
                    f"{name!r}: {type(options).__name__}",
                    "a mapping of options (preset or discovery_url, client_id, client_secret, "
                    "scopes, label)",
                    f"make the entry of {name!r} a mapping",
                )
            )
            continue
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            problems.append(
                _problem(
                    f"{name!r}: unknown option(s) {', '.join(map(repr, unknown))}",
                    "options among " + ", ".join(sorted(_OPTIONS)),
                    f"remove or correct them in {name!r}",
                )
            )
        url, found = _discovery_url(name, options)
        problems.extend(found)
        scopes, found = _scopes(name, options.get("scopes"))
        problems.extend(found)
        client_id = options.get("client_id") or environ.get(_env_name(name, "CLIENT_ID"))
        if not client_id:
            problems.append(
                _problem(
                    f"{name!r}: no client_id",
                    "the client id the provider gave the app when it was registered",
                    f"set 'client_id' of {name!r}, or the environment variable "
                    f"{_env_name(name, 'CLIENT_ID')}",
                )
            )
        secret = options.get("client_secret") or environ.get(_env_name(name, "CLIENT_SECRET"))
        preset = options.get("preset")
        label = options.get("label") or (PRESETS[preset][0] if preset in PRESETS else name)
        if found or not url or not client_id:
            continue
        providers[name] = ProviderSettings(
            name, str(label), url, str(client_id), None if secret is None else str(secret), scopes
        )
    return providers, problems


RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/login/<provider>", ("POST",)),
    ("/login/<provider>/callback", ("GET",)),
    ("/account/identities", ("GET",)),
    ("/account/identities/<provider>/link", ("POST",)),
    ("/account/identities/<int:identity_id>/unlink", ("POST",)),
)
"""The pages' paths under ``FLASKSTACK_AUTH_URL_PREFIX`` and their methods."""


def prepare(app: Flask, resolution: Resolution, model: t.Any, pages: bool) -> list[Problem]:
    """Refuse providers without Authlib or the auth pages, bad entries, plain HTTP in production."""
    from flaskstack._routes import clashes_with_existing

    from ._protocols import features_of

    value = resolution[SETTING]  # may be empty with FLASKSTACK_OIDC = True
    problems: list[Problem] = []
    if not pages or not features_of(model).tokens:
        problems.append(
            _problem(
                f"{len(value)} provider(s), and flaskstack's auth pages are off",
                "flaskstack's auth pages (its login manager, FLASKSTACK_AUTH_URL_PREFIX set, a "
                "user model with an email, a password and a single-column primary key)",
                "turn the auth pages on (flask stack check says what they lack), or empty "
                f"{SETTING}",
                "oidc.E004",
            )
        )
    else:
        prefix = str(resolution["FLASKSTACK_AUTH_URL_PREFIX"]).rstrip("/")
        for path, methods in RULES:
            problems.extend(
                clashes_with_existing(app, "FLASKSTACK_AUTH_URL_PREFIX", prefix + path, methods)
            )
    if importlib.util.find_spec("authlib") is None or importlib.util.find_spec("requests") is None:
        problems.append(
            _problem(
                f"{len(value)} provider(s), and Authlib or requests is not installed",
                "Authlib and requests installed (the extra flaskstack[oidc])",
                INSTALL,
                "oidc.E002",
            )
        )
    providers, found = parse_providers(value)
    problems.extend(found)
    if resolution.profile == "production":
        for provider in providers.values():
            if urlsplit(provider.discovery_url).scheme != "https":
                problems.append(
                    _problem(
                        f"{provider.name!r}: discovery_url {provider.discovery_url!r}",
                        "an https discovery URL in production (its answer says where to send "
                        "the client secret and which keys sign the id tokens)",
                        f"use the provider's https URL for {provider.name!r}",
                        "oidc.E003",
                    )
                )
    return problems


def check_findings(app: Flask) -> list[tuple[str, str]]:
    """``(check id, message)`` for ``flask stack check --deploy`` with providers on."""
    from flaskstack._state import get_state

    state = get_state(app).auth.oidc
    findings = []
    for provider in state.providers.values():
        if not provider.client_secret:
            findings.append(
                (
                    "oidc.E005",
                    f"The identity provider {provider.name!r} has no client secret: set it, or "
                    f"the environment variable {_env_name(provider.name, 'CLIENT_SECRET')}.",
                )
            )
    config = app.config
    if config.get("SERVER_NAME") and config.get("PREFERRED_URL_SCHEME", "http") != "https":
        with app.app_context():
            from flask import url_for

            uris = [
                url_for("flaskstack_oidc.callback", provider=name, _external=True)
                for name in state.providers
            ]
        findings.append(
            (
                "oidc.E006",
                "The redirect URIs given to identity providers are not https: "
                + ", ".join(uris)
                + ".",
            )
        )
    if config.get("SESSION_COOKIE_SAMESITE") == "Strict":
        findings.append(
            (
                "oidc.W001",
                "SESSION_COOKIE_SAMESITE is 'Strict': browsers coming back from an identity "
                "provider arrive without their session, and every sign-in with one is refused.",
            )
        )
    return findings


# -- the model of linked identities --------------------------------------------------------


class _IdentityColumns:
    """A user's identity at an OpenID Connect provider: the provider's name and its ``sub``."""

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(32))
    subject: Mapped[str] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    """The address the provider gave at the last sign-in (informative only)."""
    email_verified: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=now, server_default=sa.func.now()
    )
    last_used_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    tokens: Mapped[str | None] = mapped_column(sa.Text)
    """The provider's tokens, encrypted, with FLASKSTACK_OIDC_STORE_TOKENS; else NULL."""

    def __repr__(self) -> str:
        return f"<Identity {self.provider}:{self.subject} of user {self.user_id}>"  # type: ignore[attr-defined]


def identity_model(user_model: type[t.Any]) -> type[t.Any]:
    """The linked-identity model for ``user_model`` (made once per user model).

    Its table is ``user_identities`` for flaskstack's default ``User``,
    ``<user table>_identities`` otherwise; ``(provider, subject)`` is unique.
    """
    return _models.rows_model_of(
        user_model,
        "Identity",
        ("user_identities", "identities"),
        _IdentityColumns,
        __table_args__=(sa.UniqueConstraint("provider", "subject"),),
    )


def _model() -> type[t.Any]:
    from flaskstack._state import current_state

    model = current_state().auth.identity_model
    if model is None:
        raise LookupError("sign-in with identity providers is off: set FLASKSTACK_OIDC_PROVIDERS")
    return model


def identities_of(user: t.Any) -> list[t.Any]:
    """``user``'s linked identities, oldest first."""
    model = _model()
    statement = sa.select(model).where(model.user_id == user_key(user)).order_by(model.id)
    return list(db.session.execute(statement).scalars())


def _identity(provider: str, subject: str) -> t.Any | None:
    model = _model()
    statement = sa.select(model).where(model.provider == provider, model.subject == subject)
    return db.session.execute(statement).scalar_one_or_none()


# -- the rules -----------------------------------------------------------------------------


class OidcRefusal(Exception):
    """A sign-in or link refused: ``status`` and a message that says what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class Claims:
    """What the verified id token says about the user."""

    subject: str
    email: str | None
    email_verified: bool

    @classmethod
    def from_id_token(cls, claims: t.Mapping[str, t.Any]) -> Claims:
        email = claims.get("email")
        return cls(
            subject=str(claims["sub"]),
            email=normalise_email(email) if isinstance(email, str) and email.strip() else None,
            # Only a JSON true counts: some providers send the string "false".
            email_verified=claims.get("email_verified") is True,
        )


def _record(identity: t.Any, claims: Claims, tokens: t.Mapping[str, t.Any] | None) -> None:
    identity.email = claims.email
    identity.email_verified = claims.email_verified
    identity.last_used_at = now()
    identity.tokens = _seal(tokens) if tokens is not None else None


def _new_identity(
    user: t.Any, provider: str, claims: Claims, tokens: t.Mapping[str, t.Any] | None
) -> t.Any:
    identity = _model()(user_id=user_key(user), provider=provider, subject=claims.subject)
    _record(identity, claims, tokens)
    db.session.add(identity)
    return identity


def sign_in_user(
    provider: ProviderSettings,
    claims: Claims,
    tokens: t.Mapping[str, t.Any] | None,
    *,
    registration: bool,
    confirm: t.Callable[[t.Any, str], None],
) -> tuple[t.Any, bool, bool]:
    """The user this verified identity signs in, linked or created as the rules say.

    :returns: The user, whether the account was created now, and whether
        the identity was linked now to an account that existed (by its
        verified address: the user is to be told).

    Adds to the database session; the caller commits. ``confirm(user,
    email)`` records an address the provider verified as confirmed.

    :raises OidcRefusal: when the rules refuse the sign-in.
    """
    identity = _identity(provider.name, claims.subject)
    if identity is not None:
        user = identity.user
        _record(identity, claims, tokens)
        return user, False, False
    if claims.email is None:
        raise OidcRefusal(
            400,
            f"{provider.label} did not share your email address, so no account can be found or "
            f"made for you. Allow {provider.label} to share it and try again, or sign in with "
            "your password and link it from your account page.",
        )
    user = user_by_email(claims.email)
    created = user is None
    if user is not None and not claims.email_verified:
        raise OidcRefusal(
            409,
            f"An account with the address {claims.email} exists, but {provider.label} does not "
            f"say it verified that address, so it was not linked. Sign in with your password, "
            f"then link {provider.label} from your account page.",
        )
    if user is None:
        if not registration:
            raise OidcRefusal(
                403,
                f"No account uses the address {claims.email}, and this site does not let new "
                "accounts be made here. Ask the site's administrators for an account.",
            )
        user = _models.user_model()(email=claims.email)
        db.session.add(user)
        db.session.flush()  # its primary key, for the identity
        if claims.email_verified:
            confirm(user, claims.email)
    _new_identity(user, provider.name, claims, tokens)
    return user, created, not created


def link(
    user: t.Any,
    provider: ProviderSettings,
    claims: Claims,
    tokens: t.Mapping[str, t.Any] | None,
) -> bool:
    """Link the identity to the signed-in ``user`` (explicit linking); ``False`` if it was already.

    :raises OidcRefusal: when another account holds the identity.
    """
    identity = _identity(provider.name, claims.subject)
    if identity is not None and identity.user_id != user_key(user):
        raise OidcRefusal(
            409,
            f"This {provider.label} account is linked to another account of this site. Sign in "
            "to that account and unlink it there first.",
        )
    if identity is not None:
        _record(identity, claims, tokens)
        return False
    _new_identity(user, provider.name, claims, tokens)
    return True


def has_password(user: t.Any) -> bool:
    """Whether ``user`` can sign in with a password (a model that checks its own: assumed)."""
    if hasattr(type(user), "password_hash"):
        return user.password_hash is not None
    return True


def unlink(user: t.Any, identity_id: int) -> t.Any:
    """Delete ``user``'s identity ``identity_id`` (not committed); return it.

    :raises OidcRefusal: 404 for an identity that is not the user's; 409 for
        the last way to sign in of a user without a password.
    """
    identities = identities_of(user)
    found = next((item for item in identities if item.id == identity_id), None)
    if found is None:
        raise OidcRefusal(404, "No such sign-in provider is linked to your account.")
    if len(identities) == 1 and not has_password(user):
        raise OidcRefusal(
            409,
            "This is the only way you can sign in: set a password first (use 'Forgot your "
            "password?' on the sign-in page), or link another provider, then unlink this one.",
        )
    db.session.delete(found)
    return found


def label_of(identity: t.Any) -> str:
    """The label of ``identity``'s provider (its name, for a provider no longer configured)."""
    from flaskstack._state import current_state

    state = current_state().auth.oidc
    found = state.providers.get(identity.provider) if state is not None else None
    return str(found.label) if found is not None else str(identity.provider)


def notify(user: t.Any, template: str, identity: t.Any) -> None:
    """Mail ``user`` the security notice ``template`` about their linked ``identity``.

    ``identity_linked`` or ``identity_unlinked``; sent when the app sends
    mail (after the response over SMTP, by a job with ``FLASKSTACK_JOBS``),
    not sent to a user without an address. Call it once the change is
    committed.
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
        provider=label_of(identity),
        provider_email=identity.email,
        when=now().strftime("%Y-%m-%d %H:%M UTC"),
        manage_url=url_for("flaskstack_oidc.identities", _external=True),
    )


# -- stored tokens ---------------------------------------------------------------------------


def _fernet() -> t.Any:
    from cryptography.fernet import Fernet
    from flask import current_app

    secret = current_app.config["SECRET_KEY"]
    secret = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    key = hmac.new(secret, b"flaskstack oidc tokens", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


_KEPT = ("access_token", "refresh_token", "id_token", "token_type", "scope", "expires_at")


def _seal(tokens: t.Mapping[str, t.Any]) -> str | None:
    from flask import current_app

    if not current_app.config["FLASKSTACK_OIDC_STORE_TOKENS"]:
        return None
    kept = {key: tokens[key] for key in _KEPT if key in tokens}
    return str(_fernet().encrypt(json.dumps(kept).encode("utf-8")).decode("ascii"))


def stored_tokens(identity: t.Any) -> dict[str, t.Any] | None:
    """The provider's tokens stored with ``identity``, decrypted; ``None`` if none are readable.

    Tokens are stored only with ``FLASKSTACK_OIDC_STORE_TOKENS``, and
    replaced at each sign-in with that provider. ``None`` also when they
    were sealed under another ``SECRET_KEY``.
    """
    from cryptography.fernet import InvalidToken

    if not identity.tokens:
        return None
    try:
        data = _fernet().decrypt(identity.tokens.encode("ascii"))
    except InvalidToken:
        return None
    return t.cast("dict[str, t.Any]", json.loads(data))
