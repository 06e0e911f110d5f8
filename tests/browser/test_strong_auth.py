"""Two-factor codes and a passkey for one user, in Chromium: the strong sign-in, end to end.

One app (PostgreSQL, sessions in the shared Redis, ``FLASKSTACK_TWO_FACTOR``
and ``FLASKSTACK_PASSKEYS`` on, relying party ``localhost``) is served by a
Werkzeug server on a loopback port and opened at ``http://localhost:<port>``,
a secure context. Debian's Chromium, driven by Playwright, has a virtual
platform authenticator added over the DevTools protocol
(``WebAuthn.addVirtualAuthenticator``), so ``navigator.credentials`` runs for
real; codes are computed with pyotp from the key the setup page shows, as an
authenticator app would.

The user turns two-factor on and adds a passkey, signs out (the app's own
"Sign out" button), and signs in with the password and a code, then with the
passkey alone (a passkey is two factors: no code is asked). Then they are
refused: the code they already used, a wrong code, and, once removed from
the passkeys page, the passkey the authenticator still holds.
"""

from __future__ import annotations

import time
import typing as t

import pyotp
import pytest
from chromium import chromium
from conftest import SHARED_REDIS_URL
from flask import render_template_string
from loopback import HOST, free_port, serving
from playwright.sync_api import expect

import flaskstack
from flaskstack import db
from flaskstack.auth import current_user

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from playwright.sync_api import Page

EMAIL = "grace@example.com"
PASSWORD = "correct horse battery staple"
#: Generous: a bound for a slow, busy machine, not a speed requirement.
WAIT_MS = 30_000
REFUSED_CODE = "This code is not right, or it was used already."

# The app's home page: who is signed in, and the "Sign out" button every app's layout has.
HOME = """<!doctype html><html lang="en"><title>Home</title>
<h1 id="who">Signed in: {{ who }}</h1>
<form method="post" action="{{ url_for('flaskstack_auth.logout') }}">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
  <button type="submit">Sign out</button>
</form>"""


@pytest.fixture
def site(make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]) -> Iterator[str]:
    """The app with two-factor sign-in and passkeys on, served on loopback; its origin."""
    port = free_port()
    origin = f"http://localhost:{port}"
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_PASSWORD_METHOD": "pbkdf2:sha256:1000",
            "FLASKSTACK_TWO_FACTOR": True,
            "FLASKSTACK_PASSKEYS": True,
            "FLASKSTACK_PASSKEYS_RP_ID": "localhost",
            "FLASKSTACK_PASSKEYS_ORIGINS": [origin],
            "FLASKSTACK_PASSKEYS_RP_NAME": "Strong sign-in test",
        },
        profile="testing",
    )

    @app.get("/")
    def home() -> str:
        who = current_user.email if current_user.is_authenticated else "nobody"
        return render_template_string(HOME, who=who)

    with app.app_context():
        auth = flaskstack.get_state(app).auth
        db.metadata.create_all(bind=db.engine, tables=[m.__table__ for m in auth.models])
        user = auth.user_model(email=EMAIL)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
    with serving(app, port, HOST):
        yield origin


def add_authenticator(page: Page) -> None:
    """A platform authenticator that holds resident keys and verifies the user, in ``page``."""
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


def signed_in_as(page: Page, site: str, who: str) -> None:
    """Open the home page: it says ``who`` is signed in (``"nobody"``: no one)."""
    page.goto(f"{site}/")
    expect(page.locator("#who")).to_have_text(f"Signed in: {who}", timeout=WAIT_MS)


def sign_out(page: Page, site: str) -> None:
    page.goto(f"{site}/")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible(timeout=WAIT_MS)
    signed_in_as(page, site, "nobody")


def sign_in_with_password(page: Page, site: str) -> None:
    page.goto(f"{site}/auth/login")
    page.get_by_role("textbox", name="Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def give_code(page: Page, code: str) -> None:
    page.get_by_role("textbox", name="Code").fill(code)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_in_with_passkey(page: Page, site: str) -> None:
    page.goto(f"{site}/auth/login")
    page.get_by_role("button", name="Sign in with a passkey").click()


def wrong_code(totp: pyotp.TOTP) -> str:
    """Six digits that are none of the codes of the steps around now."""
    now = time.time()
    near = {totp.at(now + 30 * steps) for steps in range(-3, 4)}
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in near)


def test_totp_and_passkey_sign_in_and_refusals(site: str) -> None:
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        add_authenticator(page)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        # Signed in with the password, the user turns two-factor on from the account page...
        sign_in_with_password(page, site)
        expect(page.locator("#who")).to_have_text(f"Signed in: {EMAIL}", timeout=WAIT_MS)
        page.goto(f"{site}/auth/account")
        page.get_by_role("link", name="Two-factor sign-in").click()
        totp = pyotp.TOTP(page.locator("#two-factor-secret").inner_text())
        page.get_by_role("textbox", name="Code").fill(totp.now())
        page.get_by_role("button", name="Turn on two-factor sign-in").click()
        expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
        page.get_by_role("link", name="I have saved them: continue").click()

        # ... and adds a passkey.
        page.goto(f"{site}/auth/account")
        page.get_by_role("link", name="Your passkeys").click()
        page.get_by_label("Name").fill("Virtual laptop")
        page.get_by_role("button", name="Add a passkey").click()
        expect(page.get_by_role("cell", name="Virtual laptop", exact=True)).to_be_visible()
        sign_out(page, site)

        # The password alone signs nobody in: the code does. The code that turned two-factor on
        # is used up; the next step's code is accepted (a phone's clock may be a step ahead).
        sign_in_with_password(page, site)
        expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
        assert page.url == f"{site}/auth/two-factor/verify"
        signed_in_as(page, site, "nobody")
        page.goto(f"{site}/auth/two-factor/verify")
        used = totp.at(time.time() + 30)
        give_code(page, used)
        expect(page.locator("#who")).to_have_text(f"Signed in: {EMAIL}", timeout=WAIT_MS)
        sign_out(page, site)

        # The passkey alone signs in: no code is asked for.
        sign_in_with_passkey(page, site)
        expect(page.locator("#who")).to_have_text(f"Signed in: {EMAIL}", timeout=WAIT_MS)
        assert page.url == f"{site}/"
        sign_out(page, site)

        # Refused: the code used a moment ago, then a wrong one; nobody is signed in.
        sign_in_with_password(page, site)
        expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
        give_code(page, used)
        expect(page.get_by_role("alert")).to_contain_text(REFUSED_CODE)
        assert page.url == f"{site}/auth/two-factor/verify"
        give_code(page, wrong_code(totp))
        expect(page.get_by_role("alert")).to_contain_text(REFUSED_CODE)
        signed_in_as(page, site, "nobody")

        # Removed from the passkeys page, the passkey the authenticator still holds is refused.
        sign_in_with_passkey(page, site)
        expect(page.locator("#who")).to_have_text(f"Signed in: {EMAIL}", timeout=WAIT_MS)
        page.goto(f"{site}/auth/passkeys")
        page.get_by_role("button", name="Remove the passkey Virtual laptop").click()
        expect(page.get_by_role("status")).to_contain_text("is removed")
        expect(page.get_by_text("You have no passkeys yet.")).to_be_visible()
        sign_out(page, site)
        sign_in_with_passkey(page, site)
        expect(page.locator("#passkey-login-error")).to_contain_text("not registered here")
        signed_in_as(page, site, "nobody")

        assert not [error for error in errors if "Content Security Policy" in error], errors
        context.close()
