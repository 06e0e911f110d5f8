"""Passkeys (WebAuthn), server side: registration, sign-in, removal and every refusal.

The client side is a software authenticator written here (an ES256 key made
with ``cryptography``, CBOR from ``cbor2``, py_webauthn's own dependency): it
answers the app's real options exactly as a browser with a platform
authenticator would, so the app's real verification runs on real signatures.
It can also misbehave on purpose (another origin, another RP id, no user
verification, a counter that goes backwards). Apps run on a fresh PostgreSQL
database with sessions in the shared Redis under a namespace of the test's own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import time
import typing as t

import cbor2
import pytest
import redis
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

import flaskstack
from flaskstack import db
from flaskstack.auth import current_user

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

REDIS_URL = "redis://127.0.0.1:6379/0"
FAST_HASH = "pbkdf2:sha256:1000"
PASSWORD = "correct horse battery staple"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON_CLIENT = {"Accept": "application/json"}
PROBLEM = "application/problem+json"
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
API = "/api/auth/passkeys"
ORIGIN = "http://localhost"  # the test client's host

_UP, _UV, _BE, _BS, _AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    """A platform authenticator holding discoverable ES256 credentials, in software."""

    def __init__(self, *, synced: bool = False) -> None:
        self.synced = synced
        self.credentials: dict[bytes, tuple[ec.EllipticCurvePrivateKey, bytes, int]] = {}

    def _flags(self, uv: bool) -> int:
        flags = _UP | (_UV if uv else 0)
        return flags | (_BE | _BS if self.synced else 0)

    def create(
        self,
        options: dict[str, t.Any],
        *,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        uv: bool = True,
    ) -> dict[str, t.Any]:
        """The answer of ``navigator.credentials.create(options)``, in its JSON form."""
        key = ec.generate_private_key(ec.SECP256R1())
        credential_id = secrets.token_bytes(32)
        handle = unb64(options["user"]["id"])
        self.credentials[credential_id] = (key, handle, 0)
        numbers = key.public_key().public_numbers()
        cose = {
            1: 2,
            3: -7,
            -1: 1,
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
        attested = bytes(16) + len(credential_id).to_bytes(2, "big") + credential_id
        rp_hash = hashlib.sha256((rp_id or options["rp"]["id"]).encode()).digest()
        auth_data = (
            rp_hash
            + bytes([self._flags(uv) | _AT])
            + (0).to_bytes(4, "big")
            + attested
            + cbor2.dumps(cose)
        )
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64(credential_id),
            "rawId": b64(credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64(client_data),
                "attestationObject": b64(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(
        self,
        options: dict[str, t.Any],
        *,
        credential_id: bytes | None = None,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        uv: bool = True,
        count: int | None = None,
    ) -> dict[str, t.Any]:
        """The answer of ``navigator.credentials.get(options)`` (by default: the last passkey)."""
        if credential_id is None:
            credential_id = list(self.credentials)[-1]
        key, handle, counter = self.credentials[credential_id]
        counter = counter + 1 if count is None else count
        self.credentials[credential_id] = (key, handle, counter)
        rp_hash = hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
        auth_data = rp_hash + bytes([self._flags(uv)]) + counter.to_bytes(4, "big")
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64(credential_id),
            "rawId": b64(credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(handle),
            },
            "clientExtensionResults": {},
        }

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        document = {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        return json.dumps(document).encode()


class Site:
    """One app with passkeys on, and its clients."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def add_user(self, email: str) -> None:
        with self.app.app_context():
            user = flaskstack.get_state(self.app).auth.user_model(email=email)
            user.set_password(PASSWORD)
            db.session.add(user)
            db.session.commit()

    def passkeys(self, email: str) -> list[dict[str, t.Any]]:
        """The user's rows in the passkey table."""
        with self.app.app_context():
            auth = flaskstack.get_state(self.app).auth
            users, passkeys = auth.user_model, auth.passkey_model
            rows = db.session.execute(
                sa.select(passkeys.__table__)
                .join(users.__table__, passkeys.user_id == users.id)
                .where(users.email == email)
                .order_by(passkeys.id)
            )
            return [dict(row._mapping) for row in rows]

    def signed_in(self, email: str) -> FlaskClient:
        client = self.app.test_client()
        page = client.get("/auth/login", headers=BROWSER)
        token = CSRF_FIELD.search(page.text)
        assert token is not None, page.text
        data = {"csrf_token": token.group(1), "email": email, "password": PASSWORD}
        assert client.post("/auth/login", data=data, headers=BROWSER).status_code == 302
        return client


@pytest.fixture
def build(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> Callable[..., Site]:
    def factory(**config: t.Any) -> Site:
        settings = {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "FLASKSTACK_REDIS_URL": REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_PASSWORD_METHOD": FAST_HASH,
            "FLASKSTACK_PASSKEYS": True,
            **config,
        }
        app = make_app(settings, profile="testing")

        @app.get("/whoami")
        def whoami() -> dict[str, t.Any]:
            return {"user": current_user.email if current_user.is_authenticated else None}

        with app.app_context():
            tables = [model.__table__ for model in flaskstack.get_state(app).auth.models]
            db.metadata.create_all(bind=db.engine, tables=tables)
        return Site(app)

    return factory


@pytest.fixture
def site(build: Callable[..., Site]) -> Site:
    site = build()
    site.add_user("alice@example.com")
    site.add_user("bob@example.com")
    return site


def csrf(client: FlaskClient) -> dict[str, str]:
    token = client.get("/csrf-token").get_json()["csrf_token"]
    return {**JSON_CLIENT, "X-CSRFToken": token}


def post(client: FlaskClient, path: str, body: dict[str, t.Any] | None = None) -> TestResponse:
    return client.post(API + path, json=body or {}, headers=csrf(client))


def register(
    client: FlaskClient, authenticator: Authenticator, name: str = "Laptop", **answer: t.Any
) -> TestResponse:
    options = post(client, "/registration-options")
    assert options.status_code == 200, options.text
    credential = authenticator.create(options.get_json()["publicKey"], **answer)
    return post(client, "", {"name": name, "credential": credential})


def sign_in(client: FlaskClient, authenticator: Authenticator, **answer: t.Any) -> TestResponse:
    options = post(client, "/login-options")
    assert options.status_code == 200, options.text
    credential = authenticator.get(options.get_json()["publicKey"], **answer)
    return post(client, "/login", {"credential": credential})


def whoami(client: FlaskClient) -> str | None:
    user: str | None = client.get("/whoami").get_json()["user"]
    return user


def assert_problem(response: TestResponse, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.content_type == PROBLEM
    assert words in response.get_json()["detail"], response.get_json()


# -- registration and sign-in -------------------------------------------------------------


def test_a_registered_passkey_signs_in_without_a_password(site: Site) -> None:
    laptop = site.signed_in("alice@example.com")
    authenticator = Authenticator(synced=True)
    options = post(laptop, "/registration-options").get_json()["publicKey"]
    assert options["rp"]["id"] == "localhost"
    assert options["user"]["name"] == "alice@example.com"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    credential = authenticator.create(options)
    created = post(laptop, "", {"name": "  Laptop  ", "credential": credential})
    assert created.status_code == 201, created.text
    assert created.get_json()["name"] == "Laptop"
    assert created.get_json()["backed_up"] is True

    (row,) = site.passkeys("alice@example.com")
    assert row["credential_id"] == unb64(credential["rawId"])
    assert (row["sign_count"], row["backup_eligible"], row["transports"]) == (0, True, "internal")
    listed = laptop.get(API, headers=JSON_CLIENT).get_json()["passkeys"]
    assert [passkey["name"] for passkey in listed] == ["Laptop"]

    # Another browser, nobody signed in: the passkey alone signs Alice in.
    phone = site.app.test_client()
    assert whoami(phone) is None
    signed_in = sign_in(phone, authenticator)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.get_json() == {
        "email": "alice@example.com",
        "detail": "Signed in.",
        "next": "/auth/done",
    }
    assert whoami(phone) == "alice@example.com"
    (row,) = site.passkeys("alice@example.com")
    assert row["sign_count"] == 1
    assert row["last_used_at"] is not None


def test_a_second_passkey_keeps_the_user_handle_and_excludes_the_first(site: Site) -> None:
    laptop = site.signed_in("alice@example.com")
    first, second = Authenticator(), Authenticator()
    assert register(laptop, first, "One").status_code == 201
    options = post(laptop, "/registration-options").get_json()["publicKey"]
    (excluded,) = options["excludeCredentials"]
    assert excluded["id"] == b64(next(iter(first.credentials)))
    credential = second.create(options)
    assert post(laptop, "", {"name": "Two", "credential": credential}).status_code == 201
    handles = {row["user_handle"] for row in site.passkeys("alice@example.com")}
    assert len(handles) == 1
    # The same passkey again is refused.
    options = post(laptop, "/registration-options").get_json()["publicKey"]
    again = dict(credential, response=dict(credential["response"]))
    fresh = second.create(options)
    again["response"]["clientDataJSON"] = fresh["response"]["clientDataJSON"]
    refused = post(laptop, "", {"name": "Three", "credential": again})
    assert refused.status_code == 422, refused.text
    assert refused.get_json()["errors"]["credential"] == ["This passkey is already registered."]
    assert len(site.passkeys("alice@example.com")) == 2


def test_registration_needs_a_signed_in_user(site: Site) -> None:
    client = site.app.test_client()
    assert post(client, "/registration-options").status_code == 401
    assert client.get(API, headers=JSON_CLIENT).status_code == 401
    assert client.get("/auth/passkeys", headers=BROWSER).status_code == 302


# -- refusals ------------------------------------------------------------------------------


def test_an_answer_from_another_origin_is_refused(site: Site) -> None:
    laptop = site.signed_in("alice@example.com")
    authenticator = Authenticator()
    refused = register(laptop, authenticator, origin="https://evil.example")
    assert refused.status_code == 422, refused.text
    assert "origin" in refused.get_json()["errors"]["credential"][0]
    assert site.passkeys("alice@example.com") == []

    assert register(laptop, authenticator).status_code == 201
    phone = site.app.test_client()
    assert_problem(sign_in(phone, authenticator, origin="https://evil.example"), 401, "origin")
    assert whoami(phone) is None


def test_an_answer_for_another_rp_id_is_refused(site: Site) -> None:
    laptop = site.signed_in("alice@example.com")
    authenticator = Authenticator()
    refused = register(laptop, authenticator, rp_id="evil.example")
    assert refused.status_code == 422, refused.text
    assert "RP ID" in refused.get_json()["errors"]["credential"][0]

    assert register(laptop, authenticator).status_code == 201
    phone = site.app.test_client()
    assert_problem(sign_in(phone, authenticator, rp_id="evil.example"), 401, "RP ID")
    assert whoami(phone) is None


def test_an_answer_without_user_verification_is_refused(site: Site) -> None:
    laptop = site.signed_in("alice@example.com")
    authenticator = Authenticator()
    assert register(laptop, authenticator, uv=False).status_code == 422
    assert register(laptop, authenticator).status_code == 201
    phone = site.app.test_client()
    assert_problem(sign_in(phone, authenticator, uv=False), 401, "verif")
    assert whoami(phone) is None


def test_a_challenge_answers_once(site: Site) -> None:
    laptop = site.signed_in("alice@example.com")
    authenticator = Authenticator()
    assert register(laptop, authenticator).status_code == 201

    phone = site.app.test_client()
    options = post(phone, "/login-options").get_json()["publicKey"]
    answer = authenticator.get(options)
    first = post(phone, "/login", {"credential": answer, "remember": False})
    assert first.status_code == 200, first.text
    thief = site.app.test_client()
    # The same answer again, in the same session or with a fresh challenge of its own:
    assert_problem(post(phone, "/login", {"credential": answer}), 400, "start again")
    post(thief, "/login-options")
    assert_problem(post(thief, "/login", {"credential": answer}), 401, "challenge")
    assert whoami(thief) is None
    # A registration answer is not a sign-in answer, and neither is replayed.
    options = post(laptop, "/registration-options").get_json()["publicKey"]
    credential = authenticator.create(options)
    assert post(laptop, "", {"name": "Two", "credential": credential}).status_code == 201
    assert_problem(post(laptop, "", {"name": "Two", "credential": credential}), 400, "start again")


def test_a_challenge_expires(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_PASSKEYS_TIMEOUT=1)
    site.add_user("alice@example.com")
    laptop = site.signed_in("alice@example.com")
    authenticator = Authenticator()
    options = post(laptop, "/registration-options").get_json()["publicKey"]
    assert options["timeout"] == 1000
    credential = authenticator.create(options)
    time.sleep(1.1)
    late = post(laptop, "", {"name": "Late", "credential": credential})
    assert_problem(late, 400, "longer than 1 seconds")
    assert site.passkeys("alice@example.com") == []


def test_an_unknown_passkey_is_refused(site: Site) -> None:
    stranger = Authenticator()
    stranger.create({"user": {"id": b64(b"x")}, "challenge": b64(b"c"), "rp": {"id": "localhost"}})
    phone = site.app.test_client()
    assert_problem(sign_in(phone, stranger), 401, "not registered here")
    assert whoami(phone) is None


def test_a_removed_passkey_signs_nobody_in(site: Site) -> None:
    laptop = site.signed_in("alice@example.com")
    by_api, by_page = Authenticator(), Authenticator()
    first = register(laptop, by_api, "API").get_json()
    second = register(laptop, by_page, "Page").get_json()

    # Bob cannot remove Alice's passkey: it is not his (404, as an unknown id).
    bob = site.signed_in("bob@example.com")
    assert bob.delete(f"{API}/{first['id']}", headers=csrf(bob)).status_code == 404
    assert laptop.delete(f"{API}/{first['id']}", headers=csrf(laptop)).status_code == 204

    page = laptop.get("/auth/passkeys", headers=BROWSER)
    assert page.status_code == 200
    assert "<td>Page</td>" in page.text
    assert "<td>API</td>" not in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    removed = laptop.post(
        f"/auth/passkeys/{second['id']}/remove",
        data={"csrf_token": token.group(1)},
        headers=BROWSER,
    )
    assert removed.status_code == 302
    assert "is removed" in laptop.get("/auth/passkeys", headers=BROWSER).text
    assert site.passkeys("alice@example.com") == []

    for authenticator in (by_api, by_page):
        phone = site.app.test_client()
        assert_problem(sign_in(phone, authenticator), 401, "not registered here")
        assert whoami(phone) is None


def test_a_counter_going_backwards_is_refused_and_logged(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    laptop = site.signed_in("alice@example.com")
    authenticator = Authenticator()
    assert register(laptop, authenticator).status_code == 201
    assert sign_in(site.app.test_client(), authenticator, count=5).status_code == 200

    clone = site.app.test_client()
    with caplog.at_level(logging.WARNING, logger="flaskstack.auth"):
        assert_problem(sign_in(clone, authenticator, count=3), 401, "copied")
    assert whoami(clone) is None
    assert any("signature counter went from 5 to 3" in r.getMessage() for r in caplog.records)
    (row,) = site.passkeys("alice@example.com")
    assert row["sign_count"] == 5
    assert sign_in(site.app.test_client(), authenticator, count=6).status_code == 200


def test_a_malformed_answer_is_a_clear_4xx(site: Site) -> None:
    phone = site.app.test_client()
    post(phone, "/login-options")
    refused = post(phone, "/login", {"credential": {"rawId": "!!"}})
    assert refused.status_code == 422, refused.text
    assert refused.content_type == PROBLEM
    not_an_object = post(phone, "/login", {"credential": "text"})
    assert not_an_object.status_code == 422
    assert "credential" in not_an_object.get_json()["errors"]
    laptop = site.signed_in("alice@example.com")
    post(laptop, "/registration-options")
    garbage = post(laptop, "", {"name": "x", "credential": {"id": "a", "rawId": "a"}})
    assert garbage.status_code == 422
    assert "credential" in garbage.get_json()["errors"]


def test_the_ceremonies_need_a_csrf_token(site: Site) -> None:
    client = site.app.test_client()
    refused = client.post(f"{API}/login-options", json={}, headers=JSON_CLIENT)
    assert refused.status_code == 400
    assert refused.content_type == PROBLEM
    assert "CSRF" in refused.get_json()["detail"]


# -- pages ---------------------------------------------------------------------------------


def test_the_pages_offer_passkeys_and_load_only_the_apps_script(site: Site) -> None:
    anonymous = site.app.test_client()
    login = anonymous.get("/auth/login", headers=BROWSER)
    assert "Sign in with a passkey" in login.text
    scripts = re.findall(r"<script([^>]*)>", login.text)
    assert scripts
    assert all('src="/auth/passkeys.js?v=' in attrs for attrs in scripts)
    assert 'data-login-url="/api/auth/passkeys/login"' in login.text
    csp = login.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp

    src = re.search(r'src="([^"]+)"', scripts[0])
    assert src is not None
    script = anonymous.get(src.group(1))
    assert script.status_code == 200
    assert script.content_type.startswith("text/javascript")
    assert "immutable" in script.headers["Cache-Control"]
    assert b"navigator.credentials" in script.data

    laptop = site.signed_in("alice@example.com")
    assert "Your passkeys" in laptop.get("/auth/account", headers=BROWSER).text
    page = laptop.get("/auth/passkeys", headers=BROWSER)
    assert '<label for="passkey-name">Name</label>' in page.text
    assert "You have no passkeys yet." in page.text


def test_the_openapi_document_describes_the_endpoints(site: Site) -> None:
    document = site.app.test_client().get("/api/openapi.json").get_json()
    paths = document["paths"]
    for path in (
        "/passkeys",
        "/passkeys/{passkey_id}",
        "/passkeys/login",
        "/passkeys/login-options",
    ):
        assert f"/api/auth{path}" in paths or f"/auth{path}" in paths, sorted(paths)


# -- off, and settings ---------------------------------------------------------------------


def test_off_there_is_no_page_no_endpoint_and_no_table(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_PASSKEYS=False)
    assert flaskstack.get_state(site.app).auth.passkey_model is None
    rules = {rule.rule for rule in site.app.url_map.iter_rules()}
    assert not [rule for rule in rules if "passkey" in rule]
    client = site.app.test_client()
    assert "passkey" not in client.get("/auth/login", headers=BROWSER).text
    assert client.post(f"{API}/login-options", json={}, headers=csrf(client)).status_code == 404


def test_production_needs_the_relying_party(make_app: AppFactory, postgres_url: str) -> None:
    from conftest import PRODUCTION_MAIL

    settings = {
        "SQLALCHEMY_DATABASE_URI": postgres_url,
        "FLASKSTACK_REDIS_URL": REDIS_URL,
        "SECRET_KEY": "8H1bq0oWcT7c8f6mQhZ2pXv4rS9yL3dK5nJ0aE2gU7w",
        "FLASKSTACK_PASSKEYS": True,
        **PRODUCTION_MAIL,
    }
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(settings, profile="production")
    found = {(problem.id, problem.key) for problem in caught.value.problems}
    assert ("passkeys.E003", "FLASKSTACK_PASSKEYS_RP_ID") in found
    assert ("passkeys.E003", "FLASKSTACK_PASSKEYS_ORIGINS") in found

    settings["FLASKSTACK_PASSKEYS_RP_ID"] = "example.com"
    settings["FLASKSTACK_PASSKEYS_ORIGINS"] = "https://example.com, https://evil.example"
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(settings, profile="production")
    (problem,) = caught.value.problems
    assert problem.id == "passkeys.E004"
    assert "https://evil.example" in problem.fix

    settings["FLASKSTACK_PASSKEYS_ORIGINS"] = "https://example.com,https://login.example.com"
    app = make_app(settings, profile="production")
    assert app.config["FLASKSTACK_PASSKEYS_ORIGINS"] == [
        "https://example.com",
        "https://login.example.com",
    ]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("FLASKSTACK_PASSKEYS_RP_ID", "https://example.com"),
        ("FLASKSTACK_PASSKEYS_RP_ID", "Example.com"),
        ("FLASKSTACK_PASSKEYS_ORIGINS", "*"),
        ("FLASKSTACK_PASSKEYS_ORIGINS", "https://example.com/login"),
    ],
)
def test_malformed_settings_are_refused(make_app: AppFactory, setting: str, value: str) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app({"FLASKSTACK_PASSKEYS": True, setting: value}, profile="testing")
    assert setting in str(caught.value)


def test_the_deploy_check_wants_https_origins_under_the_rp_id(site: Site) -> None:
    site.app.config["FLASKSTACK_PASSKEYS_RP_ID"] = "localhost"
    site.app.config["FLASKSTACK_PASSKEYS_ORIGINS"] = ["http://localhost"]
    from flaskstack.checks import run_checks

    found = {f.id: f for f in run_checks(site.app, deploy=True, tags=["auth"])}
    assert "passkeys.E005" in found
    assert "http://localhost" in found["passkeys.E005"].msg
    assert "passkeys.E003" not in found
    assert "passkeys.E005" not in {f.id for f in run_checks(site.app, tags=["auth"])}


# -- throttling, and what options cost ------------------------------------------------------


def keys(site: Site, kind: str) -> dict[str, int]:
    """This app's Redis keys of ``kind`` (``session``, ``passkey-sign-in``) and their TTLs."""
    namespace = site.app.config["FLASKSTACK_NAMESPACE"]
    with redis.Redis.from_url(REDIS_URL, decode_responses=True) as client:
        names = list(client.scan_iter(match=f"{namespace}:{kind}:*"))
        return {name: int(client.ttl(name)) for name in names}


def from_address(site: Site, address: str) -> FlaskClient:
    client = site.app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_refused_sign_ins_are_throttled_per_address(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_LOGIN_ADDRESS_LIMIT=3)
    site.add_user("alice@example.com")
    authenticator = Authenticator()
    assert register(site.signed_in("alice@example.com"), authenticator).status_code == 201

    attacker = from_address(site, "203.0.113.7")
    # No sign-in in progress: nothing was checked, so nothing counts.
    assert_problem(post(attacker, "/login", {"credential": {"rawId": "x"}}), 400, "start again")
    for _ in range(3):
        assert_problem(sign_in(attacker, authenticator, origin="https://evil.example"), 401, "")
    for path in ("/login-options", "/login"):
        refused = post(attacker, path, {"credential": {"rawId": "x"}})
        assert_problem(refused, 429, "Too many failed login attempts")
        assert 0 < int(refused.headers["Retry-After"]) <= 900
    # One budget per address: the password sign-in page refuses it too.
    page = attacker.get("/auth/login", headers=BROWSER)
    token = CSRF_FIELD.search(page.text)
    assert token is not None
    data = {"csrf_token": token.group(1), "email": "alice@example.com", "password": PASSWORD}
    assert attacker.post("/auth/login", data=data, headers=BROWSER).status_code == 429
    assert whoami(attacker) is None

    # Another address is not affected.
    phone = from_address(site, "198.51.100.2")
    assert sign_in(phone, authenticator).status_code == 200
    assert whoami(phone) == "alice@example.com"


def test_options_keep_one_challenge_per_session(site: Site) -> None:
    laptop = site.signed_in("alice@example.com")
    authenticator = Authenticator()
    assert register(laptop, authenticator).status_code == 201
    before = set(keys(site, "session"))

    # A visitor's session stays in its cookie; a client that replays that cookie
    # with every request gets one challenge in Redis, replaced each time.
    visitor = site.app.test_client()
    headers = csrf(visitor)
    cookie = visitor.get_cookie("session")
    assert cookie is not None
    assert cookie.value.startswith("~")  # a cookie session: nothing in Redis
    answers = []
    for _ in range(20):
        replay = site.app.test_client()
        replay.set_cookie("session", cookie.value)
        options = replay.post(f"{API}/login-options", json={}, headers=headers)
        assert options.status_code == 200, options.text
        answers.append(authenticator.get(options.get_json()["publicKey"]))
    assert set(keys(site, "session")) == before
    (ttl,) = keys(site, "passkey-sign-in").values()
    assert 0 < ttl <= 300

    replay = site.app.test_client()
    replay.set_cookie("session", cookie.value)
    # Only the last challenge is pending: an answer to an earlier one is refused.
    stale = replay.post(f"{API}/login", json={"credential": answers[0]}, headers=headers)
    assert_problem(stale, 401, "challenge")
    assert keys(site, "passkey-sign-in") == {}  # taken by that answer, whatever its outcome

    options = replay.post(f"{API}/login-options", json={}, headers=headers)
    answer = authenticator.get(options.get_json()["publicKey"])
    signed_in = replay.post(f"{API}/login", json={"credential": answer}, headers=headers)
    assert signed_in.status_code == 200, signed_in.text
    assert whoami(replay) == "alice@example.com"
    assert keys(site, "passkey-sign-in") == {}


# -- security notices ----------------------------------------------------------------------


def test_adding_and_removing_a_passkey_is_mailed(site: Site) -> None:
    from flaskstack._mail_backend import outbox

    laptop = site.signed_in("alice@example.com")
    added = register(laptop, Authenticator(), "Work laptop").get_json()
    (message,) = [m for m in outbox(site.app) if m.to == ["alice@example.com"]]
    assert message.subject == "A passkey was added to your account"
    assert 'A passkey named "Work laptop" was added to the account alice@example.com on ' in (
        message.body
    )
    assert re.search(r" on \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", message.body)
    assert "If you did not add it, remove it at once" in message.body
    assert "http://localhost/auth/passkeys" in message.body
    html, _ = message.alternatives[0]
    assert "<strong>Work laptop</strong>" in html

    assert laptop.delete(f"{API}/{added['id']}", headers=csrf(laptop)).status_code == 204
    removed = outbox(site.app)[-1]
    assert removed.to == ["alice@example.com"]
    assert removed.subject == "A passkey was removed from your account"
    assert 'The passkey named "Work laptop" was removed' in removed.body
    assert "If you did not remove it" in removed.body

    second = register(laptop, Authenticator(), "Phone").get_json()
    page = laptop.get("/auth/passkeys", headers=BROWSER)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    laptop.post(
        f"/auth/passkeys/{second['id']}/remove",
        data={"csrf_token": token.group(1)},
        headers=BROWSER,
    )
    subjects = [m.subject for m in outbox(site.app) if m.to == ["alice@example.com"]]
    assert subjects[-2:] == [
        "A passkey was added to your account",
        "A passkey was removed from your account",
    ]
    # Refusals change nothing, and tell nobody anything.
    count = len(outbox(site.app))
    bob = site.signed_in("bob@example.com")
    assert bob.delete(f"{API}/{added['id']}", headers=csrf(bob)).status_code == 404
    assert register(bob, Authenticator(), uv=False).status_code == 422
    assert len(outbox(site.app)) == count


def test_with_jobs_on_a_worker_sends_the_notice(build: Callable[..., Site]) -> None:
    from flaskstack._mail_backend import outbox
    from flaskstack.testing._jobs import EnqueuedJobs, JobsWorker, delete_job_keys

    site = build(FLASKSTACK_JOBS=True)
    try:
        site.add_user("alice@example.com")
        laptop = site.signed_in("alice@example.com")
        assert register(laptop, Authenticator()).status_code == 201
        assert outbox(site.app) == []  # the request only enqueued it
        (job,) = EnqueuedJobs(site.app).all()
        assert job.function == "flaskstack.auth._accounts.send_notice"
        (ran,) = JobsWorker(site.app).run()
        assert ran.status == "finished"
        (message,) = outbox(site.app)
        assert message.subject == "A passkey was added to your account"
        assert 'A passkey named "Laptop"' in message.body
    finally:
        delete_job_keys(site.app.extensions["flaskstack"].redis)
