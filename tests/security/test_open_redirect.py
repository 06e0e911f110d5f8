"""Open redirects: no ``next`` parameter can send a browser to another site.

Every payload goes through every place a ``next`` is followed (sign-in,
registration, sign-out; query string and form field); the ``Location`` the
app answers with is resolved the way browsers do (tabs and newlines dropped,
backslashes read as slashes) and must stay on this site.
"""

from __future__ import annotations

import typing as t
import urllib.parse

import pytest
from reliability import app_endpoints
from reliability.figures import FIGURES

if t.TYPE_CHECKING:
    from reliability.browser import Browser, Reply
    from reliability.stackfixtures import Stack

EVIL = "evil.example"
PAYLOADS: tuple[str, ...] = (
    "https://evil.example",
    "http://evil.example/",
    "//evil.example",
    "///evil.example",
    "////evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "https:evil.example",
    "http:/evil.example",
    "https:/\\evil.example",
    "//evil.example/%2f..",
    "//evil.example@127.0.0.1",
    "https://127.0.0.1@evil.example",
    "https://evil.example#@127.0.0.1",
    "https://evil.example?@127.0.0.1",
    "@evil.example",
    "evil.example",
    "evil.example/path",
    ".evil.example",
    "/%2Fevil.example",
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "/%25252F%25252Fevil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "%5C%5Cevil.example",
    "/%09/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "\t//evil.example",
    " //evil.example",
    "//evil.example ",
    "/ /evil.example",
    "/%20/evil.example",
    "/%0a/evil.example",
    "/%0d/evil.example",
    "/%00/evil.example",
    "/.//evil.example",
    "/./evil.example/..//evil.example",
    "/a/..//evil.example",
    "/a/%2e%2e//evil.example",
    "/%2e%2e//evil.example",
    "/%2E/%2Fevil.example",
    "/..;/evil.example",
    "/\u2215\u2215evil.example",
    "/\u2044\u2044evil.example",
    "/\uff0f\uff0fevil.example",
    "/\uff3cevil.example",
    "\uff0f\uff0fevil.example",
    "/\u200b/evil.example",
    "/\u202e/evil.example",
    "/\u3000/evil.example",
    "/\u00a0/evil.example",
    "/%E2%88%95%E2%88%95evil.example",
    "/%EF%BC%8F%EF%BC%8Fevil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "javascript://%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "ftp://evil.example",
    "file:///etc/passwd",
    "mailto:a@evil.example",
    "https://evil.example:443",
    "https://evil.example%2f@127.0.0.1",
    "https://127.0.0.1.evil.example/",
    "https://evil.example\\@127.0.0.1",
    "/redirect?url=https://evil.example\r\nLocation: https://evil.example",
    "/\r\nLocation: https://evil.example",
    "%0d%0aLocation:%20https://evil.example",
    "/%0d%0aSet-Cookie:%20session=evil",
    "?next=//evil.example",
    "#//evil.example",
    "..//evil.example",
    "./evil.example",
    "~/evil.example",
    "/〱evil.example",
    "/\x00//evil.example",
    "/%ff/%2f/evil.example",
    "http://[::1]@evil.example",
    "http://evil.example\x00.127.0.0.1",
    "//%65vil.example",
    "/%2f%65vil.example",
    "\x7f//evil.example",
    "http%3A%2F%2Fevil.example",
    "https%3a//evil.example",
)


def _browser_target(location: str, base: str) -> urllib.parse.SplitResult:
    """Where a browser goes for ``location`` from ``base``."""
    cleaned = "".join(ch for ch in location if ch not in "\t\n\r").strip("\x00 ")
    cleaned = cleaned.replace("\\", "/")
    return urllib.parse.urlsplit(urllib.parse.urljoin(base, cleaned))


def _assert_stays(reply: Reply, browser: Browser, payload: str) -> None:
    assert reply.status in (302, 303), (payload, reply.status, reply.text[:200])
    location = reply.header("Location") or ""
    assert location.startswith("/"), (payload, location)
    assert not location.startswith(("//", "/\\")), (payload, location)
    target = _browser_target(location, browser.origin + "/auth/login")
    assert (target.scheme, target.netloc) == ("https", f"{browser.host}:{browser.port}"), (
        payload,
        location,
    )
    assert EVIL not in target.netloc
    assert not any(ord(ch) < 32 for ch in location), (payload, location)
    FIGURES.add("redirect_payloads_refused")


@pytest.fixture(scope="module")
def account(shared_stack: Stack) -> str:
    email = app_endpoints.write_key()
    assert app_endpoints.register(shared_stack.browser(), email).status == 302
    return email


def _quoted(payload: str) -> str:
    return urllib.parse.quote(payload, safe="")


def test_payloads_through_logout_next(shared_stack: Stack) -> None:
    browser = shared_stack.browser()
    for payload in PAYLOADS:
        token = browser.csrf_token()
        reply = browser.post(f"/auth/logout?next={_quoted(payload)}", form={"csrf_token": token})
        _assert_stays(reply, browser, payload)
        # In the form body too.
        token = browser.csrf_token()
        reply = browser.post("/auth/logout", form={"csrf_token": token, "next": payload})
        _assert_stays(reply, browser, payload)


def test_payloads_through_login_next(shared_stack: Stack, account: str) -> None:
    # Each sign-in hashes a password; every payload goes through logout (the same
    # rule, without the hashing), a quarter of them through sign-in.
    browser = shared_stack.browser()
    for payload in PAYLOADS[::4]:
        reply = app_endpoints.login(browser, account, path=f"/auth/login?next={_quoted(payload)}")
        _assert_stays(reply, browser, payload)


def test_payloads_through_register_next(shared_stack: Stack) -> None:
    browser = shared_stack.browser()
    for payload in PAYLOADS[1::12]:  # each registration hashes a password: a sample is enough
        token = browser.csrf_token()
        email = app_endpoints.write_key()
        password = app_endpoints.PASSWORD
        reply = browser.post(
            f"/auth/register?next={_quoted(payload)}",
            form={"email": email, "password": password, "confirm": password, "csrf_token": token},
        )
        _assert_stays(reply, browser, payload)


def test_safe_targets_are_followed(shared_stack: Stack, account: str) -> None:
    browser = shared_stack.browser()
    for target in ("/notes", "/_probe/session?x=1#top", "/search?q=%2F%2Fevil.example"):
        reply = app_endpoints.login(browser, account, path=f"/auth/login?next={_quoted(target)}")
        assert reply.header("Location") == target


def test_the_login_redirect_carries_a_relative_next(shared_stack: Stack) -> None:
    browser = shared_stack.browser()
    reply = browser.get("//evil.example/%2e%2e/_probe/whoami", headers={"Accept": "text/html"})
    assert reply.status in (302, 404)
    if reply.status == 302:
        _assert_stays(reply, browser, "//evil.example/_probe/whoami")
    reply = browser.get("/_probe/whoami?next=//evil.example", headers={"Accept": "text/html"})
    assert reply.status == 302
    location = reply.header("Location") or ""
    assert location.startswith("/auth/login?next=")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["next"] == [
        "/_probe/whoami?next=//evil.example"
    ]
