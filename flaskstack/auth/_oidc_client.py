"""The identity providers' OAuth clients, made with Authlib on first use.

The only module that imports Authlib and requests: the pages of
:mod:`._oidc_views` import it when a browser first starts a sign-in with a
provider (or comes back from one), so an app that names providers loads
neither at start-up nor for requests that do not sign in with one.
"""

from __future__ import annotations

import threading
import typing as t

import requests
from authlib.common.errors import AuthlibBaseError  # type: ignore[import-untyped]
from authlib.integrations.flask_client import OAuth  # type: ignore[import-untyped]

if t.TYPE_CHECKING:
    from flask import Flask

    from ._oidc import ProviderSettings

__all__ = [
    "TIMEOUT",
    "AuthlibBaseError",
    "TransportError",
    "failed_token_check",
    "registry",
]

TIMEOUT = 10.0
"""Seconds the app waits for a provider (discovery, keys, token exchange)."""

TransportError = requests.RequestException
"""What a provider that cannot be reached raises."""

_TOKEN_CHECK_MODULES = ("joserfc.", "authlib.jose.")


def failed_token_check(exc: BaseException) -> bool:
    """Whether ``exc`` is an id token failing its checks (signature, issuer, audience, nonce).

    Authlib 1.7 and later verify id tokens with joserfc; Authlib 1.6 with its own
    ``authlib.jose``, whose errors are also :class:`AuthlibBaseError`. Both count.
    """
    return type(exc).__module__.startswith(_TOKEN_CHECK_MODULES)


_LOCK = threading.Lock()
_KEY = "flaskstack.oidc_clients"


def registry(app: Flask, providers: t.Mapping[str, ProviderSettings]) -> t.Any:
    """The app's Authlib registry of ``providers``' clients, made once per app."""
    found = app.extensions.get(_KEY)
    if found is not None:
        return found
    with _LOCK:
        found = app.extensions.get(_KEY)
        if found is None:
            found = OAuth(app)
            for settings in providers.values():
                client_kwargs: dict[str, t.Any] = {
                    "scope": " ".join(settings.scopes),
                    "code_challenge_method": "S256",
                    "default_timeout": TIMEOUT,
                }
                if settings.client_secret is None:
                    client_kwargs["token_endpoint_auth_method"] = "none"
                found.register(
                    settings.name,
                    client_id=settings.client_id,
                    client_secret=settings.client_secret,
                    server_metadata_url=settings.discovery_url,
                    client_kwargs=client_kwargs,
                )
            app.extensions[_KEY] = found
    return found
