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
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from chromium import chromium
from playwright.sync_api import expect

from browser.conduit import PASSWORD, sign_up

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import BrowserContext, ConsoleMessage, Page
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
    smtp: SMTPServer
    console: list[str] = dataclasses.field(default_factory=list)
    audited: list[str] = dataclasses.field(default_factory=list)

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def audit(self) -> dict[str, dict[str, t.Any]]:
        """Audit the current page (see the module's docstring); its fields' AX nodes by id."""
        page = self.page
        where = page.url.removeprefix(self.base)
        self.audited.append(where)
        assert page.title().strip(), f"{where}: no title"
        headings = page.get_by_role("heading", level=1)
        expect(headings, f"{where}: one <h1>").to_have_count(1, timeout=WAIT_MS)
        violations = page.evaluate("window.__violations || []")
        assert violations == [], f"{where}: Content-Security-Policy violations {violations}"
        complaints = [
            m for m in self.console if re.search(r"Content.Security.Policy|Permissions.Policy", m)
        ]
        assert complaints == [], f"{where}: {complaints}"
        fields = accessibility_of_fields(page)
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
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("link", name=self.username)).to_be_visible(timeout=WAIT_MS)


def accessibility_of_fields(page: Page) -> dict[str, dict[str, t.Any]]:
    """Each field's visible label and, from Chromium's accessibility tree, its name,
    description and whether it is marked invalid; by the field's id."""
    labels = page.locator(FIELDS).evaluate_all(VISIBLE_LABELS)
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("Accessibility.enable")
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node_ids = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": FIELDS})["nodeIds"]
        backend_ids = [
            cdp.send("DOM.describeNode", {"nodeId": node_id})["node"]["backendNodeId"]
            for node_id in node_ids
        ]
        tree = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
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


FLOWS: dict[str, Callable[[Visitor], None]] = {
    "sign-in": sign_in_flow,
    "registration": registration_flow,
    "editor": editor_flow,
    "settings": settings_flow,
    "error page": error_page_flow,
    "password reset": password_reset_flow,
    "account": account_flow,
    "API docs": api_docs_flow,
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


def test_pages_people_can_use(conduit: str, smtp: SMTPServer) -> None:
    failures: list[str] = []
    with chromium() as browser:
        for name, flow in FLOWS.items():
            context = browser.new_context()
            try:
                visitor = new_visitor(context, conduit, smtp)
                flow(visitor)
            except AssertionError as exc:
                failures.append(f"flow {name!r}: {exc}")
            finally:
                context.close()
    assert failures == [], "\n".join(failures)
