"""The interactive API docs in Chromium, on the reference app served by gunicorn.

The docs page of Conduit (``/api/docs``) is opened the way a developer does:
it lists the operations of the OpenAPI document, a token pasted into the
*Authorize* dialog makes *Try it out* → *Execute* of ``GET /api/user``
answer 200 with the user's name, and a browser signed in on the app's pages
changes its profile with ``PUT /api/user`` (the page adds the CSRF token).
It does so under the app's own strict Content-Security-Policy and under the
one the page sends when the app has none, with flaskstack's security headers,
and without a single request to another host, a console error or a policy
violation.
"""

from __future__ import annotations

import json
import secrets
import typing as t
import urllib.request
from pathlib import Path

import pytest
from chromium import chromium
from reliability.stackrun import AppServer, flask_command

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from flask import Flask
    from playwright.sync_api import Page

TESTS = Path(__file__).resolve().parent.parent
APP_POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'"
)
PASSWORD = "correct horse battery"

_COLLECT_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def conduit_with_policy() -> Flask:
    """Conduit with a strict Content-Security-Policy of its own on every response."""
    from example import create_app

    app = create_app()

    @app.after_request
    def content_security_policy(response: t.Any) -> t.Any:
        response.headers["Content-Security-Policy"] = APP_POLICY
        return response

    return app


@pytest.fixture(params=["app policy", "page policy"])
def server(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path
) -> Iterator[tuple[AppServer, str]]:
    """Conduit under gunicorn (development profile, PostgreSQL), and the policy it sends."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(TESTS),
        "PYTHONUNBUFFERED": "1",
        "FLASKSTACK_PROFILE": "development",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": postgres_url,
    }
    flask_command("example:create_app", env, "db", "upgrade")
    if request.param == "app policy":
        app, policy = "browser.test_api_docs_ui:conduit_with_policy()", APP_POLICY
    else:
        app, policy = "example:create_app()", PAGE_POLICY
    with AppServer(tmp_path, app, env, workers=1, name="conduit") as running:
        yield running, policy


def _sign_up(base: str, username: str) -> str:
    body = {
        "user": {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    }
    sent = urllib.request.Request(
        f"{base}/api/users",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(sent, timeout=15) as answer:
        assert answer.status == 201
        token: str = json.load(answer)["user"]["token"]
    return token


def _open_operation(page: Page, operation_id: str) -> t.Any:
    operation = page.locator(f"#operations-CurrentUser-{operation_id}")
    operation.locator(".opblock-summary-control").click()
    operation.get_by_role("button", name="Try it out").click()
    return operation


def _execute(operation: t.Any) -> tuple[str, str]:
    """Click *Execute*; the status and the text of the answer Swagger UI shows."""
    operation.get_by_role("button", name="Execute").click()
    response = operation.locator(".live-responses-table .response")
    status = response.locator(".response-col_status")
    status.wait_for()
    return status.inner_text().strip(), response.inner_text()


def test_the_docs_page_authorises_with_a_token_and_tries_requests(
    server: tuple[AppServer, str],
) -> None:
    app_server, policy = server
    host, port = app_server.address
    base = f"http://{host}:{port}"
    token = _sign_up(base, "docsreader")

    problems: list[str] = []
    elsewhere: list[str] = []
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.add_init_script(_COLLECT_VIOLATIONS)
        page.on(
            "console",
            lambda message: (
                problems.append(
                    f"console {message.type}: {message.text} ({message.location['url']})"
                )
                if message.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda sent: problems.append(f"failed: {sent.url}"))
        page.on(
            "response",
            lambda answer: (
                problems.append(f"{answer.status}: {answer.url}") if answer.status >= 400 else None
            ),
        )
        page.on(
            "request",
            lambda sent: (
                None if sent.url.startswith((base, "data:")) else elsewhere.append(sent.url)
            ),
        )

        answer = page.goto(f"{base}/api/docs")
        assert answer is not None
        assert answer.status == 200
        headers = answer.headers
        assert headers["content-security-policy"] == policy
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"

        # Every operation of the document is listed, the ones behind auth with a lock.
        page.locator(".opblock").first.wait_for()
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/api/user" in paths
        assert "/api/articles/{slug}" in paths
        assert page.locator(".info .title").inner_text().startswith("Conduit")
        assert page.locator("#operations-CurrentUser-CurrentUser_get .authorization__btn").count()
        public = page.locator("#operations-Tags-Tags_get")
        assert public.count() == 1
        assert public.locator(".authorization__btn").count() == 0

        # Authorize: paste the token for the Bearer scheme.
        page.locator(".auth-wrapper .authorize").click()
        dialog = page.locator(".dialog-ux .modal-ux")
        form = dialog.locator(".auth-container").filter(has_text="bearerToken")
        form.locator("input").fill(token)
        form.get_by_role("button", name="Apply credentials").click()
        form.get_by_role("button", name="Remove authorization").wait_for()
        form.get_by_role("button", name="Close", exact=True).click()

        operation = _open_operation(page, "CurrentUser_get")
        status, answer_text = _execute(operation)
        assert status == "200", answer_text
        assert '"username": "docsreader"' in answer_text

        # Signed in on the app's pages instead (a session cookie, no token), an
        # unsafe request from the docs page carries the CSRF token and succeeds.
        sign_in = context.new_page()
        sign_in.goto(f"{base}/auth/login")
        sign_in.locator("input[name=email]").fill("docsreader@example.com")
        sign_in.locator("input[name=password]").fill(PASSWORD)
        sign_in.get_by_role("button", name="Sign in").click()
        sign_in.wait_for_url(f"{base}/")
        sign_in.close()
        page.goto(f"{base}/api/docs")
        operation = _open_operation(page, "CurrentUser_put")
        operation.locator("textarea.body-param__text").fill(
            json.dumps({"user": {"bio": "Reads the docs."}})
        )
        status, answer_text = _execute(operation)
        assert status == "200", answer_text
        assert '"bio": "Reads the docs."' in answer_text

        violations = page.evaluate("window.__violations")

    assert violations == []
    assert problems == []
    assert elsewhere == []
