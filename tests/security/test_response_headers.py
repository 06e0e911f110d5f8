"""Security headers on every kind of response the running stack gives, errors included."""

from __future__ import annotations

import typing as t

import pytest
from reliability import app_endpoints
from reliability.figures import FIGURES
from reliability.scenarios import JSON

if t.TYPE_CHECKING:
    from reliability.browser import Reply
    from reliability.stackfixtures import Stack

HSTS = "max-age=31536000; includeSubDomains"
HTML = {"Accept": "text/html"}

#: (method, path, headers, expected status)
REQUESTS: tuple[tuple[str, str, dict[str, str], int], ...] = (
    ("GET", "/healthz", {}, 200),
    ("GET", "/readyz", {}, 200),
    ("GET", app_endpoints.DB_READ, JSON, 200),
    ("GET", "/auth/login", HTML, 200),
    ("GET", "/csrf-token", JSON, 200),
    ("GET", "/no/such/page", HTML, 404),
    ("GET", "/no/such/page", JSON, 404),
    ("DELETE", "/healthz", {}, 405),
    ("POST", "/auth/logout", HTML, 400),
    ("POST", app_endpoints.SESSION, JSON, 400),
    ("GET", "/_probe/whoami", JSON, 401),
    ("GET", "/_probe/whoami", HTML, 302),
    ("GET", "/static/../../etc/passwd", HTML, 404),
)


def _check(reply: Reply, https: bool) -> None:
    assert reply.header("X-Frame-Options") == "DENY"
    assert reply.header("X-Content-Type-Options") == "nosniff"
    assert reply.header("Referrer-Policy") == "strict-origin-when-cross-origin"
    assert reply.header("Strict-Transport-Security") == (HSTS if https else None)
    if reply.body:
        content_type = reply.header("Content-Type") or ""
        assert content_type, "a body without a Content-Type"
        if content_type.startswith("text/"):
            assert "charset=utf-8" in content_type.lower()


@pytest.mark.parametrize(("method", "path", "headers", "status"), REQUESTS)
@pytest.mark.parametrize("https", [True, False], ids=["https", "http"])
def test_every_response_carries_the_security_headers(
    shared_stack: Stack,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    https: bool,
) -> None:
    browser = shared_stack.browser(https=https)
    reply = browser.request(method, path, headers=headers)
    assert reply.status == status, (reply.status, reply.text[:300])
    _check(reply, https)
    FIGURES.add("header_checks")


def test_throttled_and_oversize_answers_carry_them_too(shared_stack: Stack) -> None:
    browser = shared_stack.browser(client_address="203.0.113.250")
    for _ in range(5):
        app_endpoints.login(browser, "throttled@example.test", "w" * 300)
    throttled = app_endpoints.login(browser, "throttled@example.test", "w" * 300)
    assert throttled.status == 429
    _check(throttled, https=True)
    token = browser.csrf_token()
    big = browser.announce(
        "POST",
        app_endpoints.SESSION,
        16 * 1024 * 1024 + 1,
        headers={"Content-Type": "application/octet-stream", "X-CSRFToken": token},
    )
    assert big is not None
    assert big.status == 413
    _check(big, https=True)


def test_token_endpoint_and_session_pages_are_not_cached(shared_stack: Stack) -> None:
    browser = shared_stack.browser()
    assert browser.get("/csrf-token").header("Cache-Control") == "no-store"
    session_page = browser.get(app_endpoints.SESSION, headers=JSON)
    assert "Cookie" in (session_page.header("Vary") or "")


def test_every_response_names_its_request_id(shared_stack: Stack) -> None:
    """DESIGN.md: every response returns the request id it was logged under."""
    browser = shared_stack.browser()
    seen = set()
    for method, path, headers, _ in REQUESTS:
        reply = browser.request(method, path, headers=headers)
        request_id = reply.header("X-Request-ID")
        assert request_id, (method, path)
        seen.add(request_id)
    assert len(seen) == len(REQUESTS)
