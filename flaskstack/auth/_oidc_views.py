"""The identity-provider pages: sign in with a provider, and link or unlink providers.

Blueprint ``flaskstack_oidc`` under ``FLASKSTACK_AUTH_URL_PREFIX``,
registered only when ``FLASKSTACK_OIDC_PROVIDERS`` names a provider; the
providers' clients (:mod:`._oidc_client`, which imports Authlib) are made
when a browser first starts a sign-in. The flow is OpenID Connect's authorization code
flow through Authlib's Flask client, with ``state``, ``nonce`` and PKCE
(S256):

- ``POST /login/<provider>`` (a button of the sign-in page, with its CSRF
  token) sends the browser to the provider.
- ``GET /login/<provider>/callback`` is where the provider sends it back:
  the ``state`` must be one this browser's session started (and is used up),
  the code is exchanged once, the id token's signature, issuer, audience and
  ``nonce`` are checked; then the rules of :mod:`._oidc` say who signs in,
  and the sign-in ends in :func:`~._login.complete_sign_in` (``method="oidc"``),
  so a second factor still applies.
- ``GET /account/identities`` lists the signed-in user's providers;
  ``POST /account/identities/<provider>/link`` links one (the same trip to
  the provider, for the signed-in user); ``POST
  /account/identities/<id>/unlink`` unlinks one.

Every failure is a page (``templates/flaskstack/auth/oidc_error.html``)
with a 4xx status, or 503 when the provider cannot be reached, saying what
happened and what to do; nothing is signed in and nothing is linked.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from flaskstack._routes import own
from flaskstack._state import current_state
from flaskstack.database import db
from flaskstack.urls import safe_next

from . import _account_tokens, _accounts, _oidc
from ._login import complete_sign_in, sign_in_first
from ._models import user_key

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = ["RULES", "OidcState", "blueprint", "init_app"]

RULES = _oidc.RULES
"""The pages' paths under ``FLASKSTACK_AUTH_URL_PREFIX`` and their methods."""

_SETTING = "FLASKSTACK_AUTH_URL_PREFIX"
_PENDING = "_flaskstack_oidc"
"""The session key of the trips to providers this browser started: state -> what for."""
_MAX_PENDING = 5

_logger = logging.getLogger("flaskstack.auth")

blueprint = Blueprint("flaskstack_oidc", __name__, template_folder="../templates")

_STALE = (
    "This sign-in was not started in this browser, or it was already used or has expired, "
    "so nothing was signed in. Start again from the sign-in page."
)


@dataclasses.dataclass(frozen=True)
class OidcState:
    """The identity providers of one app."""

    providers: dict[str, _oidc.ProviderSettings]

    def client(self, name: str) -> t.Any:
        """Authlib's client of the provider ``name`` (the registry is made on first use)."""
        from . import _oidc_client

        return _oidc_client.registry(current_app, self.providers).create_client(name)


def _state() -> OidcState:
    return t.cast("OidcState", current_state().auth.oidc)


def _provider(name: str) -> _oidc.ProviderSettings:
    found = _state().providers.get(name)
    if found is None:
        abort(404)
    return found


def _failure(
    status: int, message: str, provider: _oidc.ProviderSettings | None = None, *, linking: bool
) -> tuple[str, int]:
    page = render_template(
        "flaskstack/auth/oidc_error.html",
        message=message,
        provider=provider,
        linking=linking,
    )
    return page, status


def _redirect_uri(provider: _oidc.ProviderSettings) -> str:
    return url_for("flaskstack_oidc.callback", provider=provider.name, _external=True)


def _start(provider: _oidc.ProviderSettings, link_user: t.Any | None) -> t.Any:
    """Send the browser to ``provider``; remember in the session what the trip is for."""
    redirect_uri = _redirect_uri(provider)
    linking = link_user is not None
    if current_app.config["FLASKSTACK_PROFILE"] == "production" and not redirect_uri.startswith(
        "https://"
    ):
        _logger.error(
            "sign-in with %s refused: the redirect URI %s is not https (behind a TLS proxy, set "
            "FLASKSTACK_PROXY_FIX so the app sees the original scheme)",
            provider.name,
            redirect_uri,
        )
        return _failure(
            503,
            f"Signing in with {provider.label} is unavailable: this site is misconfigured. "
            "Try again later, or sign in another way.",
            provider,
            linking=linking,
        )
    from ._oidc_client import AuthlibBaseError, TransportError

    client = _state().client(provider.name)
    try:
        answer = client.create_authorization_url(redirect_uri)
    except (TransportError, ValueError, AuthlibBaseError) as exc:
        _logger.warning("%s's discovery document could not be read: %s", provider.name, exc)
        return _unreachable(provider, linking=linking)
    client.save_authorize_data(redirect_uri=redirect_uri, **answer)
    pending = dict(session.get(_PENDING) or {})
    while len(pending) >= _MAX_PENDING:
        pending.pop(next(iter(pending)))
    pending[answer["state"]] = {
        "provider": provider.name,
        "link": None if link_user is None else str(user_key(link_user)),
        "next": safe_next(default=""),
    }
    session[_PENDING] = pending
    return redirect(answer["url"])


def _unreachable(provider: _oidc.ProviderSettings, *, linking: bool) -> tuple[str, int]:
    return _failure(
        503,
        f"{provider.label} cannot be reached right now, so nothing was signed in. Try again in "
        "a few minutes, or sign in another way.",
        provider,
        linking=linking,
    )


@blueprint.post("/login/<provider>")
def start(provider: str) -> t.Any:
    """Send the browser to the provider to sign in (a button of the sign-in page)."""
    return _start(_provider(provider), None)


@blueprint.get("/login/<provider>/callback")
def callback(provider: str) -> t.Any:
    """Where the provider sends the browser back: check everything, then sign in or link."""
    settings = _provider(provider)
    state = request.args.get("state", "")
    pending = dict(session.get(_PENDING) or {})
    trip = pending.pop(state, None) if state else None
    if trip is None or trip.get("provider") != settings.name:
        return _failure(400, _STALE, settings, linking=False)
    session[_PENDING] = pending
    linking = trip["link"] is not None
    error = request.args.get("error")
    if error:
        return _failure(400, _provider_error(settings, error), settings, linking=linking)
    from ._oidc_client import AuthlibBaseError, TransportError, failed_token_check

    try:
        token = _state().client(settings.name).authorize_access_token()
    except TransportError as exc:
        _logger.warning("%s could not be reached to exchange the code: %s", settings.name, exc)
        return _unreachable(settings, linking=linking)
    except Exception as exc:
        if failed_token_check(exc):
            return _failure(400, _unverified(settings, exc), settings, linking=linking)
        if isinstance(exc, AuthlibBaseError):
            return _failure(400, _refused(settings, exc), settings, linking=linking)
        if isinstance(exc, ValueError):  # a token endpoint that did not answer JSON
            _logger.warning("%s answered the code exchange unreadably: %s", settings.name, exc)
            return _unreachable(settings, linking=linking)
        raise
    id_claims = token.get("userinfo")
    if not id_claims or "sub" not in id_claims:
        return _failure(
            400,
            f"{settings.label} did not send an id token, so nothing was signed in. The site's "
            "administrators should check that the provider is set up for OpenID Connect.",
            settings,
            linking=linking,
        )
    claims = _oidc.Claims.from_id_token(id_claims)
    if linking:
        return _finish_link(settings, claims, token, trip)
    return _finish_sign_in(settings, claims, token, trip)


def _provider_error(settings: _oidc.ProviderSettings, error: str) -> str:
    if error == "access_denied":
        return (
            f"{settings.label} did not sign you in (you cancelled, or it refused), so nothing "
            "was signed in. Start again, or sign in another way."
        )
    description = request.args.get("error_description", "")[:200]
    detail = f"{error}: {description}" if description else error
    return (
        f"{settings.label} answered with an error ({detail[:240]}), so nothing was signed in. "
        "Start again, or sign in another way."
    )


def _refused(settings: _oidc.ProviderSettings, exc: Exception) -> str:
    code = getattr(exc, "error", None) or type(exc).__name__
    if code == "mismatching_state":
        return _STALE
    return (
        f"{settings.label} refused to complete the sign-in ({code}): the sign-in link was "
        "already used or has expired. Nothing was signed in; start again from the sign-in page."
    )


def _unverified(settings: _oidc.ProviderSettings, exc: Exception) -> str:
    _logger.warning("an id token from %s failed its checks: %r", settings.name, exc)
    return (
        f"The answer from {settings.label} could not be verified ({exc}), so nothing was signed "
        "in. Start again from the sign-in page."
    )


def _tokens(token: t.Mapping[str, t.Any]) -> t.Mapping[str, t.Any] | None:
    return token if current_app.config["FLASKSTACK_OIDC_STORE_TOKENS"] else None


def _confirm(user: t.Any, email: str) -> None:
    models = current_state().auth.account_models
    if models is not None:
        _account_tokens.confirm_address(models, user, email)


def _finish_sign_in(
    settings: _oidc.ProviderSettings,
    claims: _oidc.Claims,
    token: t.Mapping[str, t.Any],
    trip: t.Mapping[str, t.Any],
) -> t.Any:
    from ._views import confirmation_missing

    try:
        user, created, linked = _oidc.sign_in_user(
            settings,
            claims,
            _tokens(token),
            registration=bool(current_app.config["FLASKSTACK_REGISTRATION"]),
            confirm=_confirm,
        )
    except _oidc.OidcRefusal as refusal:
        db.session.rollback()
        return _failure(refusal.status, refusal.message, settings, linking=False)
    if not user.is_active:
        db.session.rollback()
        return _failure(
            403,
            "This account is disabled, so nothing was signed in. Ask the site's administrators.",
            settings,
            linking=False,
        )
    db.session.commit()
    if linked:
        _notify_linked(user, settings, claims)
    if confirmation_missing(user):
        if created:
            _accounts.send_confirmation(user)
        return _failure(
            403,
            f"Confirm your email address before signing in: follow the link we sent to "
            f"{user.email} (or ask for a new one), then sign in with {settings.label} again.",
            settings,
            linking=False,
        )
    response = complete_sign_in(user, remember=False, method="oidc")
    if response is not None:
        return response
    flash(f"You are signed in with {settings.label}.", "success")
    return redirect(trip.get("next") or url_for("flaskstack_auth.login_done"))


def _finish_link(
    settings: _oidc.ProviderSettings,
    claims: _oidc.Claims,
    token: t.Mapping[str, t.Any],
    trip: t.Mapping[str, t.Any],
) -> t.Any:
    user = current_user._get_current_object()
    if not user.is_authenticated or str(user_key(user)) != trip["link"]:
        return _failure(
            400,
            f"You are no longer signed in as the account that asked to link {settings.label}, "
            "so nothing was linked. Sign in and link it again from your account page.",
            settings,
            linking=True,
        )
    try:
        added = _oidc.link(user, settings, claims, _tokens(token))
    except _oidc.OidcRefusal as refusal:
        db.session.rollback()
        return _failure(refusal.status, refusal.message, settings, linking=True)
    db.session.commit()
    if added:
        _notify_linked(user, settings, claims)
        flash(f"{settings.label} is linked: you can now sign in with it.", "success")
    else:
        flash(f"{settings.label} was already linked to your account.", "info")
    return redirect(url_for("flaskstack_oidc.identities"))


def _notify_linked(user: t.Any, settings: _oidc.ProviderSettings, claims: _oidc.Claims) -> None:
    for identity in _oidc.identities_of(user):
        if (identity.provider, identity.subject) == (settings.name, claims.subject):
            _oidc.notify(user, "identity_linked", identity)


@blueprint.get("/account/identities")
def identities() -> t.Any:
    """The signed-in user's linked providers, with buttons to link and unlink them."""
    refused = sign_in_first()
    if refused is not None:
        return refused
    user = current_user._get_current_object()
    providers = _state().providers
    linked = [
        (identity, providers.get(identity.provider)) for identity in _oidc.identities_of(user)
    ]
    names = {identity.provider for identity, _ in linked}
    return render_template(
        "flaskstack/auth/oidc_identities.html",
        linked=linked,
        available=[p for name, p in providers.items() if name not in names],
        has_password=_oidc.has_password(user),
    )


@blueprint.post("/account/identities/<provider>/link")
def link(provider: str) -> t.Any:
    """Link a provider to the signed-in account: the same trip to the provider."""
    settings = _provider(provider)
    refused = sign_in_first()
    if refused is not None:
        return refused
    return _start(settings, current_user._get_current_object())


@blueprint.post("/account/identities/<int:identity_id>/unlink")
def unlink(identity_id: int) -> t.Any:
    """Unlink one of the signed-in user's providers (never the last way to sign in)."""
    refused = sign_in_first()
    if refused is not None:
        return refused
    user = current_user._get_current_object()
    try:
        identity = _oidc.unlink(user, identity_id)
    except _oidc.OidcRefusal as refusal:
        db.session.rollback()
        if refusal.status == 404:
            abort(404)
        flash(refusal.message, "error")
        return redirect(url_for("flaskstack_oidc.identities")), 303
    db.session.commit()
    _oidc.notify(user, "identity_unlinked", identity)
    flash(f"{_oidc.label_of(identity)} is unlinked: it no longer signs you in.", "success")
    return redirect(url_for("flaskstack_oidc.identities"))


# Marked as flaskstack's, so a rule of the app's at the same URL is found
# (and refused) even when the app adds it after init_app.
for _view in (start, callback, identities, link, unlink):
    own(_view, _SETTING)


def init_app(app: Flask) -> OidcState:
    """Register the pages under ``FLASKSTACK_AUTH_URL_PREFIX``; clients are made on first use."""
    providers, _problems = _oidc.parse_providers(app.config[_oidc.SETTING])  # checked before
    app.register_blueprint(blueprint, url_prefix=app.config[_SETTING])
    # A template global, set once: no context processor runs for every page the app renders.
    app.jinja_env.globals["flaskstack_oidc_providers"] = list(providers.values())
    return OidcState(providers)
