"""The reference app's pages, as a screen reader and a strict browser meet them.

Conduit runs under gunicorn in the ``production`` profile (PostgreSQL, Redis,
flaskstack's default Content-Security-Policy and Permissions-Policy, the API
docs page turned on). In Chromium, each flow of :data:`FLOWS` walks pages a
person uses, and every page it reaches is audited:

- each form field's accessible name, read from Chromium's accessibility tree
  (CDP ``Accessibility.getFullAXTree``), is its visible label;
- the page has a title and exactly one level-1 heading;
- no Content-Security-Policy violation was reported (``securitypolicyviolation``
  events and console messages), and no header was rejected by the browser.

The flows also check that a refused form is announced (an alert, fields
marked invalid and described by their error) and that an action is followed
by a status message. To cover another page, add a function to :data:`FLOWS`.

The pages of strong sign-in (two-factor codes, passkeys, identity providers)
are walked twice: in Conduit, which has two-factor sign-in on, and, with
flaskstack's own templates, in an app that has all three on
(:data:`STRONG_FLOWS`): its sign-in page carries the passkey and provider
buttons. Its providers' discovery documents are at a loopback port where
nothing listens: rendering the pages never fetches them, and following a
provider button shows the page saying the provider cannot be reached.
"""

from __future__ import annotations

import dataclasses
import re
import time
import typing as t
import uuid

import pyotp
import pytest
from chromium import chromium
from conftest import SHARED_REDIS_URL
from flask import render_template_string
from loopback import HOST, free_port, serving
from playwright.sync_api import expect

import flaskstack
from browser.conduit import PASSWORD, sign_up
from flaskstack import db
from flaskstack.auth import current_user

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from playwright.sync_api import Browser, BrowserContext, CDPSession, ConsoleMessage, Page
    from smtp_server import SMTPServer

#: Generous: a bound for a slow, busy machine, not a speed requirement.
WAIT_MS = 30_000

RESET_LINK = re.compile(r"https?://[^\s/]+(/auth/reset-password/[A-Za-z0-9_-]+)")

# Elements a person fills in; hidden inputs and buttons are not fields.
FIELDS = "input:not([type=hidden]):not([type=submit]):not([type=button]), textarea, select"

# Records what the page's Content-Security-Policy refused, from the first script on.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""

# What each field shows as its label: the text of its <label>, when a person can see it.
VISIBLE_LABELS = """
(elements) => elements.map((element) => {
  const label = element.labels && element.labels[0];
  let text = "";
  if (label) {
    const box = label.getBoundingClientRect();
    const shown = label.checkVisibility({ opacityProperty: true, visibilityProperty: true });
    if (shown && box.width > 1 && box.height > 1) text = label.innerText;
  }
  return { id: element.id, label: text.replace(/\\s+/g, " ").trim() };
})
"""


@dataclasses.dataclass
class Visitor:
    """A person in the browser: their page, the app's address, and what went wrong so far."""

    page: Page
    base: str
    email: str
    username: str
    smtp: SMTPServer | None = None
    console: list[str] = dataclasses.field(default_factory=list)
    audited: list[str] = dataclasses.field(default_factory=list)
    _devtools: CDPSession | None = None

    @property
    def devtools(self) -> CDPSession:
        """The page's DevTools session, opened once and never detached: Chromium removes the
        page's virtual authenticators when any DevTools session of the page detaches."""
        if self._devtools is None:
            self._devtools = self.page.context.new_cdp_session(self.page)
        return self._devtools

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def audit(self) -> dict[str, dict[str, t.Any]]:
        """Audit the current page (see the module's docstring); its fields' AX nodes by id."""
        page = self.page
        # A click that navigates returns before the next document has loaded: wait for it, so
        # the audit reads the new page rather than the blank one between the two.
        page.wait_for_load_state()
        where = page.url.removeprefix(self.base)
        self.audited.append(where)
        expect(page, f"{where}: no title").to_have_title(re.compile(r"\S"), timeout=WAIT_MS)
        headings = page.get_by_role("heading", level=1)
        expect(headings, f"{where}: one <h1>").to_have_count(1, timeout=WAIT_MS)
        violations = page.evaluate("window.__violations || []")
        assert violations == [], f"{where}: Content-Security-Policy violations {violations}"
        complaints = [
            m for m in self.console if re.search(r"Content.Security.Policy|Permissions.Policy", m)
        ]
        assert complaints == [], f"{where}: {complaints}"
        fields = accessibility_of_fields(page, self.devtools)
        for field_id, node in fields.items():
            assert node["label"], f"{where}: the field {field_id!r} has no visible label"
            assert node["name"] == node["label"], (
                f"{where}: the field {field_id!r} is announced as {node['name']!r}, "
                f"its label says {node['label']!r}"
            )
        return fields

    def sign_in(self) -> None:
        self.go("/auth/login")
        self.page.get_by_role("textbox", name="Email", exact=True).fill(self.email)
        self.page.get_by_label("Password", exact=True).fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in", exact=True).click()
        expect(self.page.get_by_role("link", name=self.username)).to_be_visible(timeout=WAIT_MS)


def accessibility_of_fields(page: Page, cdp: CDPSession) -> dict[str, dict[str, t.Any]]:
    """Each field's visible label and, from Chromium's accessibility tree (read over
    ``cdp``, a DevTools session of ``page``), its name, description and whether it is
    marked invalid; by the field's id."""
    labels = page.locator(FIELDS).evaluate_all(VISIBLE_LABELS)
    cdp.send("DOM.enable")
    cdp.send("Accessibility.enable")
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    node_ids = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": FIELDS})["nodeIds"]
    backend_ids = [
        cdp.send("DOM.describeNode", {"nodeId": node_id})["node"]["backendNodeId"]
        for node_id in node_ids
    ]
    tree = cdp.send("Accessibility.getFullAXTree")["nodes"]
    by_backend = {node.get("backendDOMNodeId"): node for node in tree}
    fields: dict[str, dict[str, t.Any]] = {}
    for label, backend_id in zip(labels, backend_ids, strict=True):
        node = by_backend[backend_id]
        properties = {p["name"]: p["value"].get("value") for p in node.get("properties", [])}
        fields[label["id"]] = {
            "label": label["label"],
            "name": " ".join(str(node.get("name", {}).get("value", "")).split()),
            "description": " ".join(str(node.get("description", {}).get("value", "")).split()),
            "invalid": properties.get("invalid", "false") not in ("false", False),
        }
    return fields


# -- the flows ----------------------------------------------------------------------------


def sign_in_flow(visitor: Visitor) -> None:
    """A wrong password is announced; the right one signs in."""
    page = visitor.page
    visitor.go("/auth/login")
    fields = visitor.audit()
    assert {"email", "password", "remember"} <= set(fields)
    page.get_by_role("textbox", name="Email", exact=True).fill(visitor.email)
    page.get_by_label("Password", exact=True).fill("not my password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("password", timeout=WAIT_MS)
    visitor.audit()
    visitor.sign_in()
    visitor.audit()


def registration_flow(visitor: Visitor) -> None:
    """Passwords that differ are announced on the confirmation field."""
    page = visitor.page
    visitor.go("/auth/register")
    fields = visitor.audit()
    assert {"email", "password", "confirm"} <= set(fields)
    page.get_by_role("textbox", name="Email", exact=True).fill(f"new-{visitor.email}")
    page.locator("#password").fill(PASSWORD)
    page.locator("#confirm").fill(PASSWORD + " but different")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("alert")).to_contain_text("The passwords differ.", timeout=WAIT_MS)
    fields = visitor.audit()
    assert fields["confirm"]["invalid"], fields["confirm"]
    assert "The passwords differ." in fields["confirm"]["description"], fields["confirm"]
    assert not fields["email"]["invalid"]


def editor_flow(visitor: Visitor) -> None:
    """An empty article is refused field by field; a complete one is published, and said so."""
    page = visitor.page
    visitor.sign_in()
    visitor.go("/editor")
    fields = visitor.audit()
    assert {"title", "description", "body", "tags"} <= set(fields)
    assert "Separate tags with spaces or commas." in fields["tags"]["description"]
    page.get_by_role("textbox", name="Article title").fill("Accessible pages")
    page.get_by_role("textbox", name="What's this article about?").fill("   ")
    page.get_by_role("textbox", name="Write your article").fill("Labels people can see.")
    page.get_by_role("button", name="Publish Article").click()
    expect(page.get_by_role("alert")).to_be_visible(timeout=WAIT_MS)
    fields = visitor.audit()
    assert fields["description"]["invalid"], fields["description"]
    assert fields["description"]["description"], fields["description"]
    page.get_by_role("textbox", name="What's this article about?").fill("Forms for everyone")
    page.get_by_role("button", name="Publish Article").click()
    expect(page.get_by_role("status")).to_have_text("Your article is published.", timeout=WAIT_MS)
    visitor.audit()
    page.get_by_role("textbox", name="Write a comment…").fill("Well said.")
    page.get_by_role("button", name="Post Comment").click()
    expect(page.get_by_role("status")).to_have_text("Your comment is posted.", timeout=WAIT_MS)
    visitor.audit()


def settings_flow(visitor: Visitor) -> None:
    """Saving the settings says so; a malformed picture address is announced on its field."""
    page = visitor.page
    visitor.sign_in()
    visitor.go("/settings")
    fields = visitor.audit()
    assert {"image", "username", "bio", "email", "password"} <= set(fields)
    picture = page.get_by_role("textbox", name="URL of profile picture")
    picture.fill("ftp://example.com/me.png")
    page.get_by_role("button", name="Update Settings").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter an http://", timeout=WAIT_MS)
    fields = visitor.audit()
    assert fields["image"]["invalid"], fields["image"]
    assert fields["image"]["description"] == "Enter an http:// or https:// address."
    picture.fill("")
    page.get_by_role("textbox", name="Short bio about you").fill("I write about forms.")
    page.get_by_role("button", name="Update Settings").click()
    expect(page.get_by_role("status")).to_have_text("Your settings are saved.", timeout=WAIT_MS)
    visitor.audit()


def error_page_flow(visitor: Visitor) -> None:
    """A missing page is flaskstack's page in Conduit's layout, with the request id."""
    page = visitor.page
    response = page.goto(visitor.base + "/article/no-such-article")
    assert response is not None
    assert response.status == 404
    request_id = response.headers["x-request-id"]
    assert "'nonce-" in response.headers["content-security-policy"]  # the policy is on
    assert "camera=()" in response.headers["permissions-policy"]
    expect(page.get_by_role("heading", level=1)).to_have_text("Not Found")
    expect(page.locator("code")).to_have_text(request_id)
    expect(page.get_by_role("link", name="conduit").first).to_be_visible()
    visitor.audit()


def password_reset_flow(visitor: Visitor) -> None:
    """Asking for a link says so; passwords that differ are announced; the new one is said set."""
    page = visitor.page
    visitor.go("/auth/login")
    page.get_by_role("link", name="Forgot your password?").click()
    fields = visitor.audit()
    assert set(fields) == {"email"}, fields
    page.get_by_role("textbox", name="Email", exact=True).fill(visitor.email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("a message with a link", timeout=WAIT_MS)
    visitor.audit()
    visitor.go(reset_link(visitor))
    fields = visitor.audit()
    assert set(fields) == {"password", "confirm"}, fields
    assert "At least" in fields["password"]["description"], fields["password"]
    page.get_by_label("New password", exact=True).fill(PASSWORD + " anew")
    page.get_by_label("Repeat the new password").fill(PASSWORD + " but different")
    page.get_by_role("button", name="Change the password").click()
    expect(page.get_by_role("alert")).to_contain_text("The passwords differ.", timeout=WAIT_MS)
    fields = visitor.audit()
    assert fields["confirm"]["invalid"], fields["confirm"]
    page.get_by_label("New password", exact=True).fill(PASSWORD + " anew")
    page.get_by_label("Repeat the new password").fill(PASSWORD + " anew")
    page.get_by_role("button", name="Change the password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password was changed", timeout=WAIT_MS)
    visitor.audit()


def reset_link(visitor: Visitor) -> str:
    """The path of the reset link the SMTP server received for the visitor."""
    assert visitor.smtp is not None, "this flow reads mail: give the visitor the SMTP server"
    seen = 0
    while True:  # wait_for fails after its timeout: the loop ends
        received = visitor.smtp.wait_for(seen + 1, timeout=WAIT_MS / 1000)
        for message in received[seen:]:
            found = RESET_LINK.search(message.part("text/plain") or "")
            if found is not None and visitor.email in message.rcpt_tos:
                return found.group(1)
        seen = len(received)


def account_flow(visitor: Visitor) -> None:
    """The account pages: a wrong current password is announced on its field; the sessions page."""
    page = visitor.page
    visitor.sign_in()
    visitor.go("/auth/account")
    visitor.audit()
    page.get_by_role("link", name="Change your password").click()
    fields = visitor.audit()
    assert set(fields) == {"current_password", "password", "confirm"}, fields
    page.get_by_label("Current password").fill("not my password at all")
    page.get_by_label("New password", exact=True).fill(PASSWORD + " anew")
    page.get_by_label("Repeat the new password").fill(PASSWORD + " anew")
    page.get_by_role("button", name="Change the password").click()
    expect(page.get_by_role("alert")).to_contain_text("current password", timeout=WAIT_MS)
    fields = visitor.audit()
    assert fields["current_password"]["invalid"], fields["current_password"]
    visitor.go("/auth/account/email")
    fields = visitor.audit()
    assert set(fields) == {"email", "current_password"}, fields
    visitor.go("/auth/confirm-email")
    visitor.audit()
    visitor.go("/auth/sessions")
    visitor.audit()
    expect(page.get_by_text("This device").first).to_be_visible(timeout=WAIT_MS)


def api_docs_flow(visitor: Visitor) -> None:
    """The API docs page runs Swagger UI under its policy."""
    page = visitor.page
    visitor.go("/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Conduit", timeout=WAIT_MS)
    violations = page.evaluate("window.__violations || []")
    assert violations == [], violations
    complaints = [m for m in visitor.console if "Content Security Policy" in m]
    assert complaints == [], complaints


def wrong_code(totp: pyotp.TOTP) -> str:
    """Six digits that are none of the codes of the time steps around now."""
    now = time.time()
    near = {totp.at(now + 30 * steps) for steps in range(-3, 4)}
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in near)


def two_factor_flow(visitor: Visitor) -> None:
    """Setting two-factor sign-in up, the recovery codes, the status page, confirming it is
    you, and the code at sign-in: a wrong code or password is announced on its field."""
    page = visitor.page
    visitor.sign_in()
    visitor.go("/auth/account")
    page.get_by_role("link", name="Two-factor sign-in").click()
    fields = visitor.audit()
    assert set(fields) == {"code"}, fields
    assert "6 digits" in fields["code"]["description"], fields["code"]
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    totp = pyotp.TOTP(page.locator("#two-factor-secret").inner_text())
    code = page.get_by_role("textbox", name="Code")
    code.fill(wrong_code(totp))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right", timeout=WAIT_MS)
    fields = visitor.audit()
    assert fields["code"]["invalid"], fields["code"]
    assert "not right" in fields["code"]["description"], fields["code"]
    code.fill(totp.now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("status")).to_contain_text("Two-factor sign-in is on")
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    expect(codes).to_have_count(10)
    visitor.audit()
    page.get_by_role("link", name="I have saved them: continue").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible(timeout=WAIT_MS)
    visitor.audit()  # the status page
    page.get_by_role("link", name="Turn two-factor sign-in off").click()
    fields = visitor.audit()
    assert set(fields) == {"password", "code"}, fields
    visitor.go("/auth/two-factor")
    page.get_by_role("link", name="Make new recovery codes").click()
    fields = visitor.audit()
    assert set(fields) == {"password", "code"}, fields
    page.get_by_label("Password", exact=True).fill("not my password at all")
    page.get_by_role("button", name="Make new codes").click()
    expect(page.get_by_role("alert")).to_contain_text("password is not right", timeout=WAIT_MS)
    fields = visitor.audit()
    assert fields["password"]["invalid"], fields["password"]
    assert "not right" in fields["password"]["description"], fields["password"]

    # Signed out, the password leads to the second step, which announces a wrong code.
    page.context.clear_cookies()
    visitor.go("/auth/login")
    page.get_by_role("textbox", name="Email", exact=True).fill(visitor.email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible(timeout=WAIT_MS)
    fields = visitor.audit()
    assert set(fields) == {"code"}, fields
    assert "recovery codes" in fields["code"]["description"], fields["code"]
    page.get_by_role("textbox", name="Code").fill(wrong_code(totp))
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("not right", timeout=WAIT_MS)
    fields = visitor.audit()
    assert fields["code"]["invalid"], fields["code"]
    assert "not right" in fields["code"]["description"], fields["code"]


FLOWS: dict[str, Callable[[Visitor], None]] = {
    "sign-in": sign_in_flow,
    "registration": registration_flow,
    "editor": editor_flow,
    "settings": settings_flow,
    "error page": error_page_flow,
    "password reset": password_reset_flow,
    "account": account_flow,
    "API docs": api_docs_flow,
    "two-factor": two_factor_flow,
}
"""Every flow the test walks, each in a fresh browser context (no cookies)."""


# -- the app ------------------------------------------------------------------------------


def new_visitor(context: BrowserContext, base: str, smtp: SMTPServer) -> Visitor:
    email, username = sign_up(base)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    visitor = Visitor(page, base, email, username, smtp)

    def listen(message: ConsoleMessage) -> None:
        visitor.console.append(message.text)

    page.on("console", listen)
    return visitor


def walk(
    browser: Browser,
    flows: dict[str, Callable[[Visitor], None]],
    visitor_in: Callable[[BrowserContext], Visitor],
) -> list[str]:
    """Walk each flow in a fresh browser context; what went wrong, flow by flow."""
    failures: list[str] = []
    for name, flow in flows.items():
        context = browser.new_context()
        try:
            flow(visitor_in(context))
        except AssertionError as exc:
            failures.append(f"flow {name!r}: {exc}")
        finally:
            context.close()
    return failures


def test_pages_people_can_use(conduit: str, smtp: SMTPServer) -> None:
    with chromium() as browser:
        failures = walk(browser, FLOWS, lambda context: new_visitor(context, conduit, smtp))
    assert failures == [], "\n".join(failures)


# -- strong sign-in with flaskstack's own templates ---------------------------------------

# The strong app's home page: like Conduit's header, a link named after the signed-in user.
HOME = """<!doctype html><html lang="en"><title>Home</title><h1>Home</h1>
{% if current_user.is_authenticated %}
<a href="{{ url_for('flaskstack_auth.account') }}">{{ current_user.email.split("@")[0] }}</a>
{% endif %}"""


@dataclasses.dataclass
class StrongSite:
    """The app with every strong sign-in on: its origin, and who may sign in."""

    origin: str
    new_user: Callable[[], tuple[str, str]]
    """A new user with :data:`PASSWORD` and an identity linked at the provider "test";
    their email and the name the home page shows."""


@pytest.fixture
def strong_site(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> Iterator[StrongSite]:
    """Two-factor sign-in, passkeys and two identity providers on, served on ``localhost``."""
    port = free_port()
    origin = f"http://localhost:{port}"
    nowhere = f"http://{HOST}:{free_port()}/.well-known/openid-configuration"  # nothing listens
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
            "FLASKSTACK_OIDC_PROVIDERS": {
                name: {"discovery_url": nowhere, "client_id": "pages", "label": label}
                for name, label in (("test", "Test ID"), ("other", "Other ID"))
            },
        },
        profile="testing",
    )

    @app.get("/")
    def home() -> str:
        return render_template_string(HOME, current_user=current_user)

    def new_user() -> tuple[str, str]:
        name = f"strong{uuid.uuid4().hex[:8]}"
        with app.app_context():
            auth = flaskstack.get_state(app).auth
            user = auth.user_model(email=f"{name}@example.com")
            user.set_password(PASSWORD)
            db.session.add(user)
            db.session.flush()
            identity = auth.identity_model(
                user_id=user.id, provider="test", subject=name, email=user.email
            )
            db.session.add(identity)
            db.session.commit()
        return f"{name}@example.com", name

    with app.app_context():
        tables = [model.__table__ for model in flaskstack.get_state(app).auth.models]
        db.metadata.create_all(bind=db.engine, tables=tables)
    with serving(app, port, HOST):
        yield StrongSite(origin, new_user)


def add_authenticator(visitor: Visitor) -> None:
    """A virtual platform authenticator in the visitor's page (DevTools' WebAuthn domain)."""
    devtools = visitor.devtools
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


def strong_sign_in_flow(visitor: Visitor) -> None:
    """The sign-in page with the passkey and provider buttons; a provider that cannot be
    reached is said so on a page of its own."""
    page = visitor.page
    visitor.go("/auth/login")
    fields = visitor.audit()
    assert set(fields) == {"email", "password", "remember"}, fields
    expect(page.get_by_role("heading", name="Or sign in with", level=2)).to_be_visible()
    expect(page.get_by_role("heading", name="Or use a passkey", level=2)).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with Other ID")).to_be_visible()
    page.get_by_role("button", name="Sign in with Test ID").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Signing in with Test ID did not work", timeout=WAIT_MS
    )
    expect(page.get_by_role("alert")).not_to_be_empty()
    visitor.audit()
    page.get_by_role("link", name="Back to the sign-in page").click()
    visitor.sign_in()
    visitor.audit()


def passkeys_flow(visitor: Visitor) -> None:
    """Adding a passkey says so in the table; one the device holds already is announced on
    the name field; removing one is said so."""
    page = visitor.page
    add_authenticator(visitor)
    visitor.sign_in()
    visitor.go("/auth/account")
    page.get_by_role("link", name="Your passkeys").click()
    fields = visitor.audit()
    assert set(fields) == {"passkey-name"}, fields
    assert "Work laptop" in fields["passkey-name"]["description"], fields["passkey-name"]
    page.get_by_role("textbox", name="Name").fill("Virtual laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("cell", name="Virtual laptop", exact=True)).to_be_visible(
        timeout=WAIT_MS
    )
    expect(page.get_by_role("table", name="Your passkeys, oldest first")).to_be_visible()
    visitor.audit()
    page.get_by_role("textbox", name="Name").fill("The same laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("already holds", timeout=WAIT_MS)
    fields = visitor.audit()
    assert fields["passkey-name"]["invalid"], fields["passkey-name"]
    assert "already holds" in fields["passkey-name"]["description"], fields["passkey-name"]
    page.get_by_role("button", name="Remove the passkey Virtual laptop").click()
    expect(page.get_by_role("status")).to_contain_text("is removed", timeout=WAIT_MS)
    visitor.audit()


def identity_providers_flow(visitor: Visitor) -> None:
    """The linked providers, with a button to unlink each and to link the others; a provider
    that cannot be reached is said so."""
    page = visitor.page
    visitor.sign_in()
    visitor.go("/auth/account")
    page.get_by_role("link", name="Sign-in providers").click()
    visitor.audit()
    expect(page.get_by_role("button", name="Unlink Test ID")).to_be_visible()
    page.get_by_role("button", name="Link Other ID").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Linking with Other ID did not work", timeout=WAIT_MS
    )
    expect(page.get_by_role("alert")).not_to_be_empty()
    visitor.audit()


STRONG_FLOWS: dict[str, Callable[[Visitor], None]] = {
    "sign-in with passkeys and providers": strong_sign_in_flow,
    "passkeys": passkeys_flow,
    "identity providers": identity_providers_flow,
    "two-factor": two_factor_flow,
}
"""The flows of strong sign-in in flaskstack's own templates, each with a new user."""


def test_strong_sign_in_pages_people_can_use(strong_site: StrongSite) -> None:
    def visitor_in(context: BrowserContext) -> Visitor:
        email, name = strong_site.new_user()
        context.add_init_script(RECORD_VIOLATIONS)
        page = context.new_page()
        visitor = Visitor(page, strong_site.origin, email, name)
        page.on("console", lambda message: visitor.console.append(message.text))
        return visitor

    with chromium() as browser:
        failures = walk(browser, STRONG_FLOWS, visitor_in)
    assert failures == [], "\n".join(failures)
