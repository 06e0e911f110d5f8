"""Two-factor sign-in in Chromium: set it up from the page, then sign in with codes.

An app with ``FLASKSTACK_TWO_FACTOR`` on (PostgreSQL, sessions in Redis) is
served over HTTP on loopback by Werkzeug's threaded server. The user signs
in, sets two-factor up by reading the secret off the page (the QR code
holds the same) and computing codes with pyotp as their phone would, signs
out, and signs in again: a code from the app signs in; the same code again,
and a wrong one, do not.
"""

from __future__ import annotations

import threading
import time
import typing as t

import pyotp
import pytest
from chromium import chromium
from loopback import HOST, free_port
from playwright.sync_api import expect
from werkzeug.serving import make_server

import flaskstack
from flaskstack import db

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from playwright.sync_api import Page

PASSWORD = "correct horse battery staple"
EMAIL = "ada@example.com"
WAIT_MS = 30_000


@pytest.fixture
def site(make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]) -> Iterator[str]:
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "FLASKSTACK_REDIS_URL": "redis://127.0.0.1:6379/0",
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_PASSWORD_METHOD": "pbkdf2:sha256:1000",
            "FLASKSTACK_TWO_FACTOR": True,
        },
        profile="testing",
    )

    @app.get("/")
    def home() -> str:
        from flaskstack.auth import current_user

        who = current_user.email if current_user.is_authenticated else "nobody"
        return f"<!doctype html><title>Home</title><h1>Signed in as {who}</h1>"

    with app.app_context():
        tables = [model.__table__ for model in flaskstack.get_state(app).auth.models]
        db.metadata.create_all(bind=db.engine, tables=tables)
        user = flaskstack.get_state(app).auth.user_model(email=EMAIL)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
    server = make_server(HOST, free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def sign_in(page: Page, base: str) -> None:
    page.goto(base + "/auth/login")
    page.get_by_role("textbox", name="Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def give_code(page: Page, code: str) -> None:
    page.get_by_role("textbox", name="Code").fill(code)
    page.get_by_role("button", name="Sign in").click()


def test_set_up_from_the_page_then_sign_in_with_a_code(site: str) -> None:
    with chromium() as browser:
        page = browser.new_page()
        sign_in(page, site)
        expect(page.get_by_role("heading", name=f"Signed in as {EMAIL}")).to_be_visible(
            timeout=WAIT_MS
        )
        page.goto(site + "/auth/account")
        page.get_by_role("link", name="Two-factor sign-in").click()
        expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
        totp = pyotp.TOTP(page.locator("#two-factor-secret").inner_text())
        page.get_by_role("textbox", name="Code").fill(totp.now())
        page.get_by_role("button", name="Turn on two-factor sign-in").click()
        expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
        assert page.get_by_role("list", name="Recovery codes").get_by_role("listitem").count() == 10

        # Signing out: the account page has no sign-out form, the sign-in page's token works.
        page.goto(site + "/auth/login")
        token = page.locator('input[name="csrf_token"]').input_value()
        page.request.post(site + "/auth/logout", form={"csrf_token": token})

        sign_in(page, site)
        expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
        page.goto(site + "/")
        expect(page.get_by_role("heading", name="Signed in as nobody")).to_be_visible()
        page.goto(site + "/auth/two-factor/verify")

        give_code(page, "000000")
        expect(page.get_by_role("alert")).to_contain_text("not right")
        # This step's code turned it on and is used up: the next step's is accepted
        # (a phone's clock may be one step ahead).
        code = totp.at(time.time() + 30)
        give_code(page, code)
        expect(page.get_by_role("heading", name=f"Signed in as {EMAIL}")).to_be_visible()

        page.goto(site + "/auth/login")
        token = page.locator('input[name="csrf_token"]').input_value()
        page.request.post(site + "/auth/logout", form={"csrf_token": token})
        sign_in(page, site)
        give_code(page, code)  # the same code again
        expect(page.get_by_role("alert")).to_contain_text("used already")
        page.goto(site + "/")
        expect(page.get_by_role("heading", name="Signed in as nobody")).to_be_visible()
