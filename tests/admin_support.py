"""What the admin's tests share: the app's settings, and a Chromium page that reports every
Content-Security-Policy violation and script error to the test."""

from __future__ import annotations

import contextlib
import dataclasses
import typing as t

from conftest import SHARED_REDIS_URL
from loopback import HOST, free_port, serving

import flaskstack
from flaskstack import db
from flaskstack.auth import create_role, grant_role

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from flask import Flask
    from playwright.sync_api import Browser, BrowserContext, Page

PASSWORD = "correct horse battery staple"
FAST_HASH = "pbkdf2:sha256:1000"
#: Generous: a bound for a slow, busy machine, not a speed requirement.
WAIT_MS = 30_000

# Every page reports its policy violations to the test (the console says so too).
_WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportViolation(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}`);
});
"""


def admin_settings(postgres_url: str, namespace: str, **more: t.Any) -> dict[str, t.Any]:
    """An app with roles and the admin on, PostgreSQL, sessions in the shared Redis."""
    return {
        "SQLALCHEMY_DATABASE_URI": postgres_url,
        "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
        "FLASKSTACK_NAMESPACE": namespace,
        "FLASKSTACK_PASSWORD_METHOD": FAST_HASH,
        "FLASKSTACK_ROLES": True,
        "FLASKSTACK_ADMIN": True,
        **more,
    }


@contextlib.contextmanager
def served_admin(
    app: Flask, email: str, models: Iterable[type[t.Any]], permissions: Iterable[str]
) -> Iterator[str]:
    """``app`` served on loopback, with the tables of ``models`` and one administrator,
    ``email``, holding ``permissions``; its origin."""
    from flaskstack.admin._setup import admin_of

    with app.app_context():
        auth = flaskstack.get_state(app).auth
        tables = [*auth.models, admin_of(app).audit_model, *models]
        db.metadata.create_all(bind=db.engine, tables=[m.__table__ for m in tables])
        user = auth.user_model(email=email)
        user.set_password(PASSWORD)
        db.session.add(user)
        create_role("admin", ["admin.access", "audit.view", *permissions])
        db.session.commit()
        grant_role(user, "admin")
        db.session.commit()
    port = free_port()
    with serving(app, port, HOST):
        yield f"http://localhost:{port}"


@dataclasses.dataclass
class WatchedPage:
    """A page of its own browser context; what went wrong on it, as it happened."""

    context: BrowserContext
    page: Page
    violations: list[str] = dataclasses.field(default_factory=list)
    console: list[str] = dataclasses.field(default_factory=list)

    def sign_in(self, site: str, email: str, password: str = PASSWORD) -> None:
        """Open the admin, which sends the browser to sign in, and come back signed in."""
        page = self.page
        page.goto(f"{site}/admin/")
        page.get_by_role("textbox", name="Email", exact=True).fill(email)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(f"{site}/admin/")

    def assert_clean(self) -> None:
        """No policy violation was reported and no script failed."""
        assert self.violations == [], self.violations
        failures = [m for m in self.console if "Content Security Policy" in m or "uncaught" in m]
        assert failures == [], self.console


def watched_page(browser: Browser) -> WatchedPage:
    """A new context and page; dialogs ("Are you sure...?") are accepted."""
    context = browser.new_context()
    violations: list[str] = []
    context.expose_function("reportViolation", lambda text: violations.append(text))
    context.add_init_script(_WATCH_CSP)
    page = context.new_page()
    watched = WatchedPage(context, page, violations)
    page.set_default_timeout(WAIT_MS)
    page.on("console", lambda message: watched.console.append(message.text))
    page.on("pageerror", lambda error: watched.console.append(f"uncaught: {error}"))
    page.on("dialog", lambda dialog: dialog.accept())
    return watched
