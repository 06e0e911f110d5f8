"""Passkeys in Chromium, end to end: a real browser ceremony against the app on loopback.

The app (PostgreSQL, sessions in the shared Redis, passkeys on, relying party
``localhost``) is served by a Werkzeug server on a loopback port and opened
at ``http://localhost:<port>``, a secure context. The browser is Debian's
Chromium driven by Playwright, with a virtual platform authenticator added
over the DevTools protocol (``WebAuthn.addVirtualAuthenticator``: CTAP2,
internal transport, resident keys, user verification that succeeds), so
``navigator.credentials`` runs for real: the app's pages, its script and its
JSON endpoints do the rest. A user registers a passkey, signs out, signs in
with it, removes it, and is refused signing in with it afterwards.
"""

from __future__ import annotations

import typing as t

import pytest
from chromium import chromium
from conftest import SHARED_REDIS_URL
from loopback import HOST, free_port, serving
from playwright.sync_api import expect

import flaskstack
from flaskstack import db
from flaskstack.auth import current_user

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from playwright.sync_api import Page

PASSWORD = "correct horse battery staple"
#: Generous: a bound for a slow, busy machine, not a speed requirement.
WAIT_MS = 30_000


@pytest.fixture
def site(make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]) -> Iterator[str]:
    """The app with passkeys on, served on loopback; its origin, on ``localhost``."""
    port = free_port()
    origin = f"http://localhost:{port}"
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_PASSWORD_METHOD": "pbkdf2:sha256:1000",
            "FLASKSTACK_PASSKEYS": True,
            "FLASKSTACK_PASSKEYS_RP_ID": "localhost",
            "FLASKSTACK_PASSKEYS_ORIGINS": [origin],
            "FLASKSTACK_PASSKEYS_RP_NAME": "Passkeys test",
        },
        profile="testing",
    )

    @app.get("/")
    def home() -> str:
        who = current_user.email if current_user.is_authenticated else "nobody"
        return f"<!doctype html><title>Home</title><p id='who'>Signed in: {who}</p>"

    with app.app_context():
        auth = flaskstack.get_state(app).auth
        db.metadata.create_all(bind=db.engine, tables=[m.__table__ for m in auth.models])
        user = auth.user_model(email="alice@example.com")
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
    with serving(app, port, HOST):
        yield origin


def add_authenticator(page: Page) -> t.Any:
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return devtools


def test_register_sign_in_remove_and_be_refused(site: str) -> None:
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        add_authenticator(page)
        errors: list[str] = []
        page.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )

        # Sign in with the password, then add a passkey on the passkeys page.
        page.goto(f"{site}/auth/login")
        page.get_by_label("Email").fill("alice@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.locator("#who")).to_have_text("Signed in: alice@example.com")
        page.goto(f"{site}/auth/account")
        page.get_by_role("link", name="Your passkeys").click()
        page.get_by_label("Name").fill("Virtual laptop")
        page.get_by_role("button", name="Add a passkey").click()
        expect(page.get_by_role("cell", name="Virtual laptop", exact=True)).to_be_visible()

        # Signed out (a fresh start: no cookie), the passkey alone signs in.
        context.clear_cookies()
        page.goto(f"{site}/auth/login")
        page.get_by_role("button", name="Sign in with a passkey").click()
        expect(page.locator("#who")).to_have_text("Signed in: alice@example.com")

        # Removed, the passkey the authenticator still holds signs nobody in.
        page.goto(f"{site}/auth/passkeys")
        page.get_by_role("button", name="Remove the passkey Virtual laptop").click()
        expect(page.get_by_role("status")).to_contain_text("is removed")
        expect(page.get_by_text("You have no passkeys yet.")).to_be_visible()
        context.clear_cookies()
        page.goto(f"{site}/auth/login")
        page.get_by_role("button", name="Sign in with a passkey").click()
        expect(page.locator("#passkey-login-error")).to_contain_text("not registered here")
        page.goto(f"{site}/")
        expect(page.locator("#who")).to_have_text("Signed in: nobody")
        assert not [error for error in errors if "Content Security Policy" in error], errors
        context.close()
