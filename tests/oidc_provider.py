"""A small but real OpenID Connect provider for the tests, built on Authlib's server side.

Run as its own process on loopback::

    python tests/oidc_provider.py --port 12345 --state /tmp/provider.json

It serves a discovery document, its JWKS, the authorization endpoint
(authorization code with PKCE S256 required, ``state`` and ``nonce``), the
token endpoint (client_secret_basic or client_secret_post; a code works
once) and the userinfo endpoint. Id tokens are signed RS256 with a key made
at start. It works with every Authlib release flaskstack supports: the key is a
plain JWK dictionary, which both Authlib's older ``get_jwt_config`` interface and
its newer ``resolve_client_private_key`` one accept.

What it does is read from the JSON state file at every request, so a test
changes it by rewriting the file::

    {
      "clients": {"<client id>": {"secret": "...", "redirect_uris": ["..."]}},
      "users": {"<login>": {"sub": "...", "email": "...", "email_verified": true,
                            "name": "..."}},
      "signed_in": "<login>",       # who approves at /authorize (?login=<login> wins)
      "deny": false,                # answer /authorize with error=access_denied
      "wrong_nonce": false          # put another nonce in the id token
    }

Every answer of the authorization and token endpoints is appended, one
JSON object per line, to ``<state file>.log`` (``event``, ``outcome``,
``error``, ``code_challenge_method``...), so a test can see what reached the
provider and what it refused.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import threading
import time
import typing as t
from pathlib import Path

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

CODE_LIFETIME = 60


class Provider:
    """The provider's in-memory stores and its state file."""

    def __init__(self, state_path: Path, issuer: str) -> None:
        self.state_path = state_path
        self.log_path = state_path.with_name(state_path.name + ".log")
        self.issuer = issuer
        self.key = _rsa_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, dict[str, t.Any]] = {}
        self.lock = threading.Lock()

    def state(self) -> dict[str, t.Any]:
        return t.cast("dict[str, t.Any]", json.loads(self.state_path.read_text()))

    def log(self, **event: t.Any) -> None:
        with self.lock, self.log_path.open("a") as log:
            log.write(json.dumps(event) + "\n")


class Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, client_id: str, options: dict[str, t.Any]) -> None:
        self.client_id = client_id
        self.secret = str(options["secret"])
        self.redirect_uris = list(options.get("redirect_uris", []))

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "email", "profile"}
        return " ".join(item for item in (scope or "").split() if item in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _rsa_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The private key as a JWK (RFC 7518, section 6.3)."""
    private = key.private_numbers()
    public = private.public_numbers
    numbers = {
        "n": public.n,
        "e": public.e,
        "d": private.d,
        "p": private.p,
        "q": private.q,
        "dp": private.dmp1,
        "dq": private.dmq1,
        "qi": private.iqmp,
    }
    return {
        "kty": "RSA",
        "kid": "test-key",
        "use": "sig",
        "alg": "RS256",
        **{name: _b64(value) for name, value in numbers.items()},
    }


class Code:
    """An authorization code, as issued (kept after use to recognise a replay)."""

    def __init__(self, **fields: t.Any) -> None:
        self.__dict__.update(fields)
        self.issued_at = time.time()
        self.used = False

    def get_redirect_uri(self) -> str:
        return t.cast("str", self.redirect_uri)  # type: ignore[attr-defined]

    def get_scope(self) -> str:
        return t.cast("str", self.scope)  # type: ignore[attr-defined]

    def get_nonce(self) -> str | None:
        if self.provider.state().get("wrong_nonce"):  # type: ignore[attr-defined]
            return "not-the-nonce-the-client-sent"
        return t.cast("str | None", self.nonce)  # type: ignore[attr-defined]

    def get_auth_time(self) -> int:
        return int(self.issued_at)

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


def make_app(provider: Provider) -> Flask:
    app = Flask("oidc_provider")

    def query_client(client_id: str) -> Client | None:
        options = provider.state().get("clients", {}).get(client_id)
        return None if options is None else Client(client_id, options)

    def save_token(token: dict[str, t.Any], oauth_request: t.Any) -> None:
        provider.tokens[token["access_token"]] = {"user": oauth_request.user, **token}

    class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS: t.ClassVar[list[str]] = [
            "client_secret_basic",
            "client_secret_post",
        ]

        def save_authorization_code(self, code: str, oauth_request: t.Any) -> None:
            data = oauth_request.payload.data
            provider.codes[code] = Code(
                provider=provider,
                code=code,
                client_id=oauth_request.client.client_id,
                redirect_uri=oauth_request.payload.redirect_uri,
                scope=oauth_request.scope,
                user=oauth_request.user,
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
            )

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            item = provider.codes.get(code)
            if item is None or item.used:
                provider.log(event="token", outcome="refused", reason="used" if item else "unknown")
                return None
            if item.client_id != client.client_id:  # type: ignore[attr-defined]
                return None
            if time.time() - item.issued_at > CODE_LIFETIME:
                return None
            return item

        def delete_authorization_code(self, authorization_code: Code) -> None:
            authorization_code.used = True  # kept, to tell a replay from an unknown code

        def authenticate_user(self, authorization_code: Code) -> dict[str, t.Any]:
            login = authorization_code.user  # type: ignore[attr-defined]
            return {"login": login, **provider.state()["users"][login]}

    class IdToken(OpenIDCode):  # type: ignore[misc]
        def get_jwt_config(self, grant: t.Any) -> dict[str, t.Any]:  # Authlib 1.6
            return {
                "key": provider.key,
                "alg": "RS256",
                "kid": "test-key",
                "iss": provider.issuer,
                "exp": 3600,
            }

        def resolve_client_private_key(self, client: Client) -> dict[str, str]:
            return provider.key

        def get_client_algorithm(self, client: Client) -> str:
            return "RS256"

        def get_encode_header(self, client: Client) -> dict[str, str]:
            return {"alg": "RS256", "kid": "test-key"}

        def get_client_claims(self, client: Client) -> dict[str, t.Any]:
            return {"iss": provider.issuer, "aud": [client.get_client_id()]}

        def exists_nonce(self, nonce: str, oauth_request: t.Any) -> bool:
            return any(code.nonce == nonce for code in provider.codes.values())  # type: ignore[attr-defined]

        def generate_user_info(self, user: dict[str, t.Any], scope: str) -> UserInfo:
            return _claims(user, scope)

    server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
    server.register_grant(CodeGrant, [CodeChallenge(required=True), IdToken(require_nonce=True)])

    @app.get("/.well-known/openid-configuration")
    def discovery() -> t.Any:
        base = provider.issuer
        return jsonify(
            issuer=base,
            authorization_endpoint=f"{base}/authorize",
            token_endpoint=f"{base}/token",
            userinfo_endpoint=f"{base}/userinfo",
            jwks_uri=f"{base}/jwks",
            response_types_supported=["code"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            scopes_supported=["openid", "email", "profile"],
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            code_challenge_methods_supported=["S256"],
            claims_supported=["sub", "email", "email_verified", "name"],
        )

    @app.get("/jwks")
    def jwks() -> t.Any:
        public = {name: provider.key[name] for name in ("kty", "kid", "use", "alg", "n", "e")}
        return jsonify(keys=[public])

    @app.get("/authorize")
    def authorize() -> t.Any:
        state = provider.state()
        login = request.args.get("login") or state.get("signed_in")
        method = request.args.get("code_challenge_method")
        entry = {
            "event": "authorize",
            "login": login,
            "code_challenge_method": method,
            "has_state": bool(request.args.get("state")),
            "has_nonce": bool(request.args.get("nonce")),
            "scope": request.args.get("scope"),
        }
        if method != "S256":  # this provider insists on PKCE S256
            provider.log(**entry, outcome="refused", error="pkce")
            return jsonify(error="invalid_request", error_description="PKCE S256 required"), 400
        user = None if state.get("deny") or login not in state.get("users", {}) else login
        try:
            response = server.create_authorization_response(grant_user=user)
        except OAuth2Error as exc:  # pragma: no cover - answered by Authlib itself
            provider.log(**entry, outcome="refused", error=exc.error)
            raise
        provider.log(**entry, outcome="issued" if user else "denied")
        return response

    @app.post("/token")
    def token() -> t.Any:
        response = server.create_token_response()
        body = json.loads(response.get_data(as_text=True) or "{}")
        provider.log(
            event="token",
            outcome="issued" if response.status_code == 200 else "answered",
            status=response.status_code,
            error=body.get("error"),
        )
        return response

    @app.get("/userinfo")
    def userinfo() -> t.Any:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        found = provider.tokens.get(value) if scheme.lower() == "bearer" else None
        if found is None:
            return jsonify(error="invalid_token"), 401
        return jsonify(dict(_claims(found["user"], found["scope"])))

    return app


def _claims(user: dict[str, t.Any], scope: str) -> UserInfo:
    info = UserInfo(sub=str(user["sub"]))
    scopes = set((scope or "").split())
    if "email" in scopes and "email" in user:
        info["email"] = user["email"]
        info["email_verified"] = bool(user.get("email_verified", False))
    if "profile" in scopes and "name" in user:
        info["name"] = user["name"]
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    options = parser.parse_args()
    issuer = f"http://127.0.0.1:{options.port}"
    provider = Provider(options.state, issuer)
    server = make_server("127.0.0.1", options.port, make_app(provider), threaded=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
