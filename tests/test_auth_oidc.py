"""Sign-in with an OpenID Connect identity provider, against a real provider process.

The provider is ``tests/oidc_provider.py`` (Authlib's server side), started
once for the module on a loopback port; each test rewrites its state file
(users, switches) before using it. The browser is Flask's test client for
the app and ``requests`` for the provider: the app's redirect to the
provider is followed over real HTTP, and the provider's redirect back is
followed into the app, exactly as a browser would. Every app runs on a fresh
PostgreSQL database and real Redis under a namespace of its own.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import time
import typing as t
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import sqlalchemy as sa
from loopback import HOST, free_port
from test_auth import BROWSER, PASSWORD, Site, forget, log_in, new_site, whoami

import flaskstack
from flaskstack import db
from flaskstack.errors import ConfigError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

CLIENT_ID = "flaskstack-test"
CLIENT_SECRET = "a client secret for the tests"
CALLBACK = "http://localhost/auth/login/test/callback"
HIDDEN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
USERS = {
    "ada": {"sub": "ada-0001", "email": "ada@example.com", "email_verified": True, "name": "Ada"},
    "bob": {"sub": "bob-0002", "email": "Bob@Example.com", "email_verified": True},
    "eve": {"sub": "eve-0003", "email": "carol@example.com", "email_verified": False},
    "nomail": {"sub": "nomail-0004"},
}


class Provider:
    """The provider process: its URL, its state file and what it logged."""

    def __init__(self, url: str, state: Path) -> None:
        self.url = url
        self.state = state
        self.log_path = state.with_name(state.name + ".log")

    def configure(self, **changes: t.Any) -> None:
        state = {
            "clients": {CLIENT_ID: {"secret": CLIENT_SECRET, "redirect_uris": [CALLBACK]}},
            "users": USERS,
            "signed_in": "ada",
            "deny": False,
            "wrong_nonce": False,
            **changes,
        }
        self.state.write_text(json.dumps(state))
        self.log_path.write_text("")

    def events(self, kind: str) -> list[dict[str, t.Any]]:
        lines = self.log_path.read_text().splitlines()
        return [event for event in map(json.loads, lines) if event["event"] == kind]

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"


@pytest.fixture(scope="module")
def provider_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    port = free_port()
    state = tmp_path_factory.mktemp("oidc") / "provider.json"
    provider = Provider(f"http://{HOST}:{port}", state)
    provider.configure()
    script = Path(__file__).with_name("oidc_provider.py")
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), "--state", str(state)],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(provider.discovery_url, timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"the OIDC provider did not start: {stderr}") from None
                time.sleep(0.1)
        yield provider
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


@pytest.fixture
def provider(provider_process: Provider) -> Provider:
    provider_process.configure()
    return provider_process


@pytest.fixture
def namespaces() -> Iterator[list[tuple[str, str]]]:
    used: list[tuple[str, str]] = []
    yield used
    forget(used)


def providers_setting(provider: Provider, **options: t.Any) -> dict[str, t.Any]:
    return {
        "test": {
            "discovery_url": provider.discovery_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "label": "Test ID",
            **options,
        }
    }


@pytest.fixture
def build(
    make_app: AppFactory, postgres_url: str, namespaces: list[tuple[str, str]], provider: Provider
) -> Callable[..., Site]:
    """``build(**config)``: an app signing in with the test provider, on this test's database."""
    settings = {"FLASKSTACK_OIDC_PROVIDERS": providers_setting(provider)}
    return functools.partial(new_site, make_app, postgres_url, namespaces, **settings)


@pytest.fixture
def site(build: Callable[..., Site]) -> Site:
    return build()


# -- helpers -----------------------------------------------------------------------------


def hidden_csrf(response: TestResponse) -> str:
    assert response.status_code == 200, response.text
    found = HIDDEN_CSRF.search(response.text)
    assert found is not None, response.text
    return found.group(1)


def to_provider(client: FlaskClient, path: str = "/auth/login", action: str = "") -> str:
    """Press the provider's button on ``path``; the URL the app sends the browser to."""
    page = client.get(path, headers=BROWSER)
    action = action or "/auth/login/test"
    start = client.post(action, data={"csrf_token": hidden_csrf(page)}, headers=BROWSER)
    assert start.status_code == 302, start.text
    assert start.location.startswith("http://127.0.0.1:")
    return start.location


def at_provider(authorize_url: str, login: str | None = None) -> str:
    """Visit the provider (signed in there as ``login``); the app path it sends the browser to."""
    url = authorize_url if login is None else f"{authorize_url}&{urlencode({'login': login})}"
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return f"{back.path}?{back.query}"


def sign_in_with_provider(
    client: FlaskClient, login: str | None = None
) -> tuple[TestResponse, str]:
    """The whole trip: the app's answer to the provider's redirect back, and that path."""
    callback = at_provider(to_provider(client), login)
    return client.get(callback, headers=BROWSER), callback


def rows(site: Site, which: str) -> list[dict[str, t.Any]]:
    with site.app.app_context():
        auth = flaskstack.get_state(site.app).auth
        model = {
            "users": auth.user_model,
            "identities": auth.identity_model,
            "confirmed": auth.account_models.confirmed_email,
        }[which]
        found = db.session.execute(sa.select(model.__table__)).mappings().all()
        return [dict(row) for row in found]


def assert_nobody_signed_in(client: FlaskClient) -> None:
    assert whoami(client) is None


# -- signing in --------------------------------------------------------------------------


def test_signing_in_with_a_provider_creates_an_account(site: Site, provider: Provider) -> None:
    client = site.client()
    page = client.get("/auth/login", headers=BROWSER)
    assert "Sign in with Test ID" in page.text

    response, _ = sign_in_with_provider(client)

    assert response.status_code == 302
    assert response.location == "/auth/done"
    assert whoami(client) == "ada@example.com"
    (user,) = rows(site, "users")
    assert user["email"] == "ada@example.com"
    assert user["password_hash"] is None  # no password until the user sets one
    (identity,) = rows(site, "identities")
    assert (identity["provider"], identity["subject"]) == ("test", "ada-0001")
    assert identity["user_id"] == user["id"]
    assert identity["tokens"] is None  # FLASKSTACK_OIDC_STORE_TOKENS is off
    assert [row["email"] for row in rows(site, "confirmed")] == ["ada@example.com"]
    (authorize,) = provider.events("authorize")
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["has_state"]
    assert authorize["has_nonce"]
    assert authorize["scope"] == "openid email profile"


def test_a_verified_email_links_to_the_account_that_has_it(site: Site, provider: Provider) -> None:
    site.add_user("bob@example.com")

    first, _ = sign_in_with_provider(site.client(), "bob")
    assert first.status_code == 302
    again = site.client()
    response, _ = sign_in_with_provider(again, "bob")

    assert response.status_code == 302
    assert whoami(again) == "bob@example.com"
    (user,) = rows(site, "users")  # linked, not a second account
    (identity,) = rows(site, "identities")
    assert identity["user_id"] == user["id"]
    assert log_in(site.client(), "bob@example.com").status_code == 302  # the password still works


def test_an_unverified_email_is_not_linked_until_the_user_links_it(
    site: Site, provider: Provider
) -> None:
    site.add_user("carol@example.com")
    client = site.client()

    response, _ = sign_in_with_provider(client, "eve")  # claims carol's address, unverified

    assert response.status_code == 409
    assert "does not say it verified that address" in response.text
    assert "Sign in with your password" in response.text
    assert_nobody_signed_in(client)
    assert rows(site, "identities") == []

    # Explicit linking: signed in with the password, from the account page.
    assert log_in(client, "carol@example.com").status_code == 302
    page = client.get("/auth/account", headers=BROWSER)
    assert "Sign-in providers" in page.text
    authorize = to_provider(
        client, "/auth/account/identities", "/auth/account/identities/test/link"
    )
    linked = client.get(at_provider(authorize, "eve"), headers=BROWSER)
    assert linked.status_code == 302
    assert linked.location == "/auth/account/identities"
    assert "Test ID is linked" in client.get(linked.location, headers=BROWSER).text
    (identity,) = rows(site, "identities")
    assert identity["subject"] == "eve-0003"

    other = site.client()
    signed_in, _ = sign_in_with_provider(other, "eve")
    assert signed_in.status_code == 302
    assert whoami(other) == "carol@example.com"


def test_without_an_email_or_with_registration_closed_nobody_is_signed_in(
    build: Callable[..., Site], provider: Provider
) -> None:
    site = build(FLASKSTACK_REGISTRATION=False)
    client = site.client()
    response, _ = sign_in_with_provider(client, "nomail")
    assert response.status_code == 400
    assert "did not share your email address" in response.text
    response, _ = sign_in_with_provider(client, "ada")
    assert response.status_code == 403
    assert "does not let new accounts be made" in response.text
    assert_nobody_signed_in(client)
    assert rows(site, "users") == []


# -- refusals ----------------------------------------------------------------------------


def test_a_refused_or_missing_state_signs_nobody_in(site: Site, provider: Provider) -> None:
    client = site.client()
    callback = at_provider(to_provider(client))
    query = parse_qs(urlsplit(callback).query)
    code, state = query["code"][0], query["state"][0]

    for params in ({"code": code}, {"code": code, "state": state[:-2] + "xx"}):
        refused = client.get("/auth/login/test/callback", query_string=params, headers=BROWSER)
        assert refused.status_code == 400
        assert "not started in this browser" in refused.text
    other_browser = site.client()  # the right state, in a session that did not start it
    refused = other_browser.get(callback, headers=BROWSER)
    assert refused.status_code == 400
    assert_nobody_signed_in(client)
    assert_nobody_signed_in(other_browser)
    assert provider.events("token") == []  # no code was exchanged
    assert rows(site, "users") == []

    assert client.get(callback, headers=BROWSER).status_code == 302  # the real one still works
    assert whoami(client) == "ada@example.com"


def test_a_replayed_code_is_refused_by_the_provider_and_the_page_says_so(
    site: Site, provider: Provider
) -> None:
    first, callback = sign_in_with_provider(site.client())
    assert first.status_code == 302
    code = parse_qs(urlsplit(callback).query)["code"][0]

    # Another browser starts its own trip, and comes back with the used code.
    client = site.client()
    state = parse_qs(urlsplit(to_provider(client)).query)["state"][0]
    replay = client.get(
        "/auth/login/test/callback", query_string={"code": code, "state": state}, headers=BROWSER
    )

    assert replay.status_code == 400
    assert "Test ID refused to complete the sign-in (invalid_grant)" in replay.text
    assert_nobody_signed_in(client)
    refused = [event for event in provider.events("token") if event["outcome"] == "refused"]
    assert refused == [{"event": "token", "outcome": "refused", "reason": "used"}]


def test_an_id_token_with_another_nonce_is_refused(site: Site, provider: Provider) -> None:
    provider.configure(wrong_nonce=True)
    client = site.client()
    response, _ = sign_in_with_provider(client)
    assert response.status_code == 400
    assert "could not be verified" in response.text
    assert "nonce" in response.text
    assert_nobody_signed_in(client)
    assert rows(site, "users") == []


def test_an_error_from_the_provider_is_a_clear_page(site: Site, provider: Provider) -> None:
    provider.configure(deny=True)
    client = site.client()
    response, _ = sign_in_with_provider(client)
    assert response.status_code == 400
    assert "Test ID did not sign you in" in response.text
    assert 'href="/auth/login"' in response.text
    assert_nobody_signed_in(client)


def test_a_provider_that_cannot_be_reached_is_503(
    make_app: AppFactory, postgres_url: str, namespaces: list[tuple[str, str]], provider: Provider
) -> None:
    down = Provider(f"http://{HOST}:{free_port()}", provider.state)  # nothing listens there
    site = new_site(
        make_app,
        postgres_url,
        namespaces,
        FLASKSTACK_OIDC_PROVIDERS=providers_setting(down),
    )
    client = site.client()
    page = client.get("/auth/login", headers=BROWSER)
    response = client.post(
        "/auth/login/test", data={"csrf_token": hidden_csrf(page)}, headers=BROWSER
    )
    assert response.status_code == 503
    assert "Test ID cannot be reached right now" in response.text
    assert_nobody_signed_in(client)


# -- the account page ----------------------------------------------------------------------


def unlink_first(client: FlaskClient) -> TestResponse:
    page = client.get("/auth/account/identities", headers=BROWSER)
    action = re.search(r'action="(/auth/account/identities/\d+/unlink)"', page.text)
    assert action is not None, page.text
    return client.post(action.group(1), data={"csrf_token": hidden_csrf(page)}, headers=BROWSER)


def test_the_last_way_to_sign_in_cannot_be_unlinked(site: Site, provider: Provider) -> None:
    client = site.client()
    sign_in_with_provider(client)  # an account without a password

    refused = unlink_first(client)
    assert refused.status_code == 303
    assert "This is the only way you can sign in" in client.get(refused.location).text
    assert len(rows(site, "identities")) == 1


def test_unlinking_a_provider_of_a_user_with_a_password(site: Site, provider: Provider) -> None:
    site.add_user("bob@example.com")
    client = site.client()
    sign_in_with_provider(client, "bob")

    done = unlink_first(client)
    assert done.status_code == 302
    assert "Test ID is unlinked" in client.get(done.location, headers=BROWSER).text
    assert rows(site, "identities") == []
    assert whoami(client) == "bob@example.com"  # still signed in


def test_unlinking_needs_a_csrf_token_and_another_users_identity_is_404(
    site: Site, provider: Provider
) -> None:
    sign_in_with_provider(site.client(), "ada")
    (identity,) = rows(site, "identities")
    site.add_user("bob@example.com")
    client = site.client()
    assert log_in(client, "bob@example.com", PASSWORD).status_code == 302
    path = f"/auth/account/identities/{identity['id']}/unlink"
    assert client.post(path, headers=BROWSER).status_code == 400  # no CSRF token
    token = hidden_csrf(client.get("/auth/account/identities", headers=BROWSER))
    assert client.post(path, data={"csrf_token": token}, headers=BROWSER).status_code == 404
    assert len(rows(site, "identities")) == 1


def test_stored_tokens_are_encrypted(build: Callable[..., Site], provider: Provider) -> None:
    site = build(FLASKSTACK_OIDC_STORE_TOKENS=True)
    sign_in_with_provider(site.client())
    (identity,) = rows(site, "identities")
    assert identity["tokens"]
    assert "access_token" not in identity["tokens"]
    with site.app.app_context():
        from flaskstack.auth._oidc import identities_of, stored_tokens

        user = db.session.get(flaskstack.get_state(site.app).auth.user_model, identity["user_id"])
        tokens = stored_tokens(identities_of(user)[0])
    assert tokens is not None
    assert tokens["access_token"]
    assert tokens["id_token"]


# -- off, and settings ---------------------------------------------------------------------


def test_with_no_provider_there_are_no_pages(
    make_app: AppFactory, postgres_url: str, namespaces: list[tuple[str, str]]
) -> None:
    site = new_site(make_app, postgres_url, namespaces)
    client = site.client()
    assert "Sign in with" not in client.get("/auth/login", headers=BROWSER).text
    assert client.post("/auth/login/test").status_code in (400, 404, 405)
    assert client.get("/auth/login/test/callback").status_code == 404
    assert client.get("/auth/account/identities").status_code == 404
    assert flaskstack.get_state(site.app).auth.identity_model is None


def test_on_without_providers_the_table_and_pages_exist(
    make_app: AppFactory, postgres_url: str, namespaces: list[tuple[str, str]]
) -> None:
    # FLASKSTACK_OIDC = True in the factory: the table (and its migration) does not depend on
    # whether this run has the providers' settings, as tests without their secrets do not.
    site = new_site(make_app, postgres_url, namespaces, FLASKSTACK_OIDC=True)
    client = site.client()
    assert "Sign in with" not in client.get("/auth/login", headers=BROWSER).text
    assert client.get("/auth/login/test/callback").status_code == 404
    assert flaskstack.get_state(site.app).auth.identity_model is not None
    site.add_user("ada@example.com")
    log_in(client, "ada@example.com")
    page = client.get("/auth/account/identities", headers=BROWSER)
    assert page.status_code == 200


def test_off_with_providers_named_is_refused(make_app: AppFactory) -> None:
    providers = {"google": {"preset": "google", "client_id": "x"}}
    found = problems_of(make_app, FLASKSTACK_OIDC=False, FLASKSTACK_OIDC_PROVIDERS=providers)
    assert found == {"oidc.E007 False, and FLASKSTACK_OIDC_PROVIDERS names 'google'"}


def problems_of(make_app: AppFactory, profile: str = "testing", **config: t.Any) -> set[str]:
    with pytest.raises(ConfigError) as raised:
        make_app(config, profile=profile)
    return {f"{problem.id} {problem.value}" for problem in raised.value.problems}


def test_bad_provider_settings_are_refused_with_what_to_do(make_app: AppFactory) -> None:
    found = problems_of(
        make_app,
        FLASKSTACK_OIDC_PROVIDERS={
            "nothing": {"client_id": "x"},
            "typo": {"preset": "gogle", "client_id": "x"},
            "ms": {"preset": "microsoft", "client_id": "x"},
            "noid": {"preset": "google"},
            "noopenid": {"preset": "google", "client_id": "x", "scopes": "email"},
            "Bad Name": {"preset": "google", "client_id": "x"},
        },
    )
    assert found == {
        "oidc.E001 'nothing': neither",
        "oidc.E001 'typo': preset 'gogle'",
        "oidc.E001 'ms': preset 'microsoft' without a tenant",
        "oidc.E001 'noid': no client_id",
        "oidc.E001 'noopenid': scopes ['email']",
        "oidc.E001 a provider named 'Bad Name'",
    }


def test_presets_and_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from flaskstack.auth._oidc import parse_providers

    monkeypatch.setenv("FLASKSTACK_OIDC_CORP_ID_CLIENT_SECRET", "from-env")
    providers, problems = parse_providers(
        {
            "google": {"preset": "google", "client_id": "g"},
            "corp-id": {"preset": "microsoft", "tenant": "contoso.example", "client_id": "m"},
            "gitlab": {"preset": "gitlab", "client_id": "l"},
        }
    )
    assert problems == []
    assert providers["google"].discovery_url == (
        "https://accounts.google.com/.well-known/openid-configuration"
    )
    assert providers["corp-id"].discovery_url == (
        "https://login.microsoftonline.com/contoso.example/v2.0/.well-known/openid-configuration"
    )
    assert providers["corp-id"].client_secret == "from-env"
    assert (
        providers["gitlab"].discovery_url == "https://gitlab.com/.well-known/openid-configuration"
    )
    assert (providers["google"].label, providers["google"].scopes) == (
        "Google",
        ("openid", "email", "profile"),
    )


def test_production_refuses_a_plain_http_discovery_url(
    make_app: AppFactory, provider: Provider
) -> None:
    found = problems_of(
        make_app,
        "production",
        SECRET_KEY="8H1bq0oWcT7c8f6mQhZ2pXv4rS9yL3dK5nJ0aE2gU7w",
        FLASKSTACK_OIDC_PROVIDERS=providers_setting(provider),
    )
    assert any(problem.startswith("oidc.E003 'test': discovery_url") for problem in found)


def test_deploy_checks_name_a_missing_secret_http_redirect_uris_and_a_strict_cookie(
    build: Callable[..., Site], provider: Provider
) -> None:
    from flaskstack.checks import run_checks

    setting = providers_setting(provider, client_secret=None)
    site = build(
        FLASKSTACK_OIDC_PROVIDERS=setting,
        SERVER_NAME="example.com",
        SESSION_COOKIE_SAMESITE="Strict",
    )
    findings = {
        finding.id: finding.msg for finding in run_checks(site.app, deploy=True, tags=["oidc"])
    }
    assert set(findings) == {"oidc.E005", "oidc.E006", "oidc.W001"}
    assert "FLASKSTACK_OIDC_TEST_CLIENT_SECRET" in findings["oidc.E005"]
    assert "http://example.com/auth/login/test/callback" in findings["oidc.E006"]

    fine = build(PREFERRED_URL_SCHEME="https", SERVER_NAME="example.com")
    assert run_checks(fine.app, deploy=True, tags=["oidc"]) == []


# -- the JSON endpoints ----------------------------------------------------------------------

API = "/api/auth/identities"
JSON = {"Accept": "application/json"}
PROBLEM = "application/problem+json"


def with_csrf(client: FlaskClient) -> dict[str, str]:
    return {**JSON, "X-CSRFToken": client.get("/csrf-token").get_json()["csrf_token"]}


def test_the_api_lists_linked_providers_and_never_their_tokens(
    build: Callable[..., Site], provider: Provider
) -> None:
    site = build(FLASKSTACK_OIDC_STORE_TOKENS=True)
    client = site.client()
    sign_in_with_provider(client)
    (identity,) = rows(site, "identities")
    assert identity["tokens"]  # stored, encrypted

    listed = client.get(API, headers=JSON)
    assert listed.status_code == 200, listed.text
    body = listed.get_json()
    assert body["has_password"] is False
    (item,) = body["identities"]
    assert set(item) == {"id", "provider", "label", "email", "linked_at", "last_used_at"}
    assert (item["id"], item["provider"], item["label"], item["email"]) == (
        identity["id"],
        "test",
        "Test ID",
        "ada@example.com",
    )
    assert item["linked_at"].startswith(identity["created_at"].strftime("%Y-%m-%dT%H:%M"))
    assert identity["tokens"] not in listed.text
    assert "token" not in listed.text

    anonymous = site.client()
    refused = anonymous.get(API, headers=JSON)
    assert refused.status_code == 401
    assert refused.content_type == PROBLEM


def test_the_api_unlinks_a_provider_with_a_csrf_token_and_mails_the_user(
    site: Site, provider: Provider
) -> None:
    from flaskstack._mail_backend import outbox

    site.add_user("bob@example.com")
    client = site.client()
    sign_in_with_provider(client, "bob")  # linked by its verified address
    (identity,) = rows(site, "identities")

    no_token = client.delete(f"{API}/{identity['id']}", headers=JSON)
    assert no_token.status_code == 400
    assert no_token.content_type == PROBLEM
    assert "CSRF" in no_token.get_json()["detail"]
    assert len(rows(site, "identities")) == 1

    done = client.delete(f"{API}/{identity['id']}", headers=with_csrf(client))
    assert done.status_code == 204, done.text
    assert rows(site, "identities") == []
    assert client.get(API, headers=JSON).get_json() == {"identities": [], "has_password": True}
    assert whoami(client) == "bob@example.com"  # still signed in
    message = outbox(site.app)[-1]
    assert message.to == ["bob@example.com"]
    assert message.subject == "Test ID was unlinked from your account"
    assert "The Test ID account (bob@example.com) was unlinked from the account" in message.body
    assert re.search(r" on \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", message.body)
    assert "If you did not unlink it" in message.body
    assert "http://localhost/auth/account/identities" in message.body

    again = client.delete(f"{API}/{identity['id']}", headers=with_csrf(client))
    assert again.status_code == 404


def test_the_api_refuses_the_last_way_to_sign_in_and_another_users_identity(
    site: Site, provider: Provider
) -> None:
    from flaskstack._mail_backend import outbox

    ada = site.client()
    sign_in_with_provider(ada, "ada")  # an account without a password
    (identity,) = rows(site, "identities")
    sent = len(outbox(site.app))

    last = ada.delete(f"{API}/{identity['id']}", headers=with_csrf(ada))
    assert last.status_code == 409, last.text
    assert last.content_type == PROBLEM
    assert (
        "This is the only way you can sign in: set a password first" in (last.get_json()["detail"])
    )

    site.add_user("bob@example.com")
    bob = site.client()
    assert log_in(bob, "bob@example.com").status_code == 302
    other = bob.delete(f"{API}/{identity['id']}", headers=with_csrf(bob))
    assert other.status_code == 404
    assert other.content_type == PROBLEM
    assert bob.get(API, headers=JSON).get_json()["identities"] == []
    assert len(rows(site, "identities")) == 1
    assert len(outbox(site.app)) == sent  # nothing changed, nobody was told anything


def test_the_openapi_document_describes_the_identity_endpoints(site: Site) -> None:
    paths = site.client().get("/api/openapi.json").get_json()["paths"]
    listed = paths["/api/auth/identities"]["get"]
    assert "401" in listed["responses"]
    unlink = paths["/api/auth/identities/{identity_id}"]["delete"]
    assert {"400", "401", "404", "409"} <= set(unlink["responses"])


# -- security notices ------------------------------------------------------------------------


def test_linking_a_provider_is_mailed_but_a_new_account_is_not(
    site: Site, provider: Provider
) -> None:
    from flaskstack._mail_backend import outbox

    sign_in_with_provider(site.client(), "ada")  # a new account: nothing to warn about
    assert [m.subject for m in outbox(site.app) if m.to == ["ada@example.com"]] == []

    # Linked by a verified address at sign-in.
    site.add_user("bob@example.com")
    sign_in_with_provider(site.client(), "bob")
    (message,) = [m for m in outbox(site.app) if m.to == ["bob@example.com"]]
    assert message.subject == "Test ID can now sign in to your account"
    assert "A Test ID account (bob@example.com) was linked to the account bob@example.com" in (
        message.body
    )
    assert "If you did not link it, unlink it at once" in message.body
    html, _ = message.alternatives[0]
    assert 'href="http://localhost/auth/account/identities"' in html

    # Linked explicitly, from the account page; signing in with it again tells nothing.
    site.add_user("carol@example.com")
    client = site.client()
    assert log_in(client, "carol@example.com").status_code == 302
    authorize = to_provider(
        client, "/auth/account/identities", "/auth/account/identities/test/link"
    )
    assert client.get(at_provider(authorize, "eve"), headers=BROWSER).status_code == 302
    sign_in_with_provider(site.client(), "eve")
    (linked,) = [m for m in outbox(site.app) if m.to == ["carol@example.com"]]
    assert linked.subject == "Test ID can now sign in to your account"
    assert "(carol@example.com)" in linked.body

    # Unlinked from the page.
    assert unlink_first(client).status_code == 302
    unlinked = outbox(site.app)[-1]
    assert (unlinked.to, unlinked.subject) == (
        ["carol@example.com"],
        "Test ID was unlinked from your account",
    )
