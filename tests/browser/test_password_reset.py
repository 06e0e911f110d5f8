"""A password reset in Chromium, from the message a real SMTP server received.

Conduit runs under gunicorn in the ``production`` profile, sending mail over
SMTP to an aiosmtpd server on loopback (``tests/smtp_server.py``). A user
signed in on one browser with "Remember me" forgets their password on
another: they ask for a link on the sign-in page, the link arrives at the
SMTP server, they open it in the second browser, choose a new password and
are signed in. Then the first browser is signed out, its remember-me cookie
replayed alone signs nobody in, and the new password signs in.
"""

from __future__ import annotations

import re
import typing as t

from chromium import chromium
from playwright.sync_api import expect

from browser.conduit import PASSWORD, sign_up

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page
    from smtp_server import SMTPServer

NEW_PASSWORD = "a completely new passphrase"
#: Generous: a bound for a slow, busy machine, not a speed requirement.
WAIT_MS = 30_000
LINK = re.compile(r"https?://[^\s/]+(/auth/reset-password/[A-Za-z0-9_-]+)")


def sign_in(page: Page, base: str, email: str, password: str, *, remember: bool = False) -> None:
    page.goto(base + "/auth/login")
    page.get_by_role("textbox", name="Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    if remember:
        page.get_by_label("Remember me").check()
    page.get_by_role("button", name="Sign in").click()


def signed_in_as(page: Page, base: str, username: str) -> bool:
    """Whether the settings page opens (it redirects to sign-in otherwise)."""
    page.goto(base + "/settings")
    return "/auth/login" not in page.url and page.get_by_role("link", name=username).count() > 0


def cookie(context: BrowserContext, name: str) -> dict[str, t.Any]:
    (found,) = [c for c in context.cookies() if c["name"] == name]
    return dict(found)


def test_a_password_reset_ends_the_old_session_and_remember_me_cookie(
    conduit: str, smtp: SMTPServer
) -> None:
    email, username = sign_up(conduit)
    with chromium() as browser:
        before = browser.new_context()
        old = before.new_page()
        sign_in(old, conduit, email, PASSWORD, remember=True)
        expect(old.get_by_role("link", name=username)).to_be_visible(timeout=WAIT_MS)
        remember_me = cookie(before, "remember_token")

        forgetful = browser.new_context()
        page = forgetful.new_page()
        page.goto(conduit + "/auth/login")
        page.get_by_role("link", name="Forgot your password?").click()
        page.get_by_role("textbox", name="Email", exact=True).fill(email)
        page.get_by_role("button", name="Send the link").click()
        expect(page.get_by_role("status")).to_contain_text(
            "a message with a link is on its way", timeout=WAIT_MS
        )

        # The API's sign-up (RealWorld's own endpoint) sends nothing: this is the link.
        (message,) = smtp.wait_for(1, timeout=WAIT_MS / 1000)
        assert message.rcpt_tos == [email]
        text = message.part("text/plain")
        assert text is not None
        found = LINK.search(text)
        assert found is not None, text
        assert message.part("text/html") is not None

        page.goto(conduit + found.group(1))
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change the password").click()
        expect(page.get_by_role("status")).to_contain_text(
            "Your password was changed", timeout=WAIT_MS
        )
        assert signed_in_as(page, conduit, username)

        # The browser that was signed in before is signed out...
        assert not signed_in_as(old, conduit, username)
        # ...and its remember-me cookie, copied into a new browser, signs nobody in.
        assert not _replay(browser, conduit, username, remember_me)

        again = browser.new_context()
        fresh = again.new_page()
        sign_in(fresh, conduit, email, PASSWORD)
        expect(fresh.get_by_role("alert")).to_contain_text("password", timeout=WAIT_MS)
        sign_in(fresh, conduit, email, NEW_PASSWORD)
        expect(fresh.get_by_role("link", name=username)).to_be_visible(timeout=WAIT_MS)

        # The message said the password changed.
        changed = smtp.wait_for(2, timeout=WAIT_MS / 1000)[-1]
        assert "changed" in changed.subject.lower()


def _replay(browser: Browser, base: str, username: str, remember_me: dict[str, t.Any]) -> bool:
    context = browser.new_context()
    try:
        context.add_cookies([remember_me])  # type: ignore[list-item]
        return signed_in_as(context.new_page(), base, username)
    finally:
        context.close()
