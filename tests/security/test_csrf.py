"""CSRF: every unsafe request needs the token of its own session, over HTTPS a same-origin
Referer too; only API-token requests, which browsers never send on their own, and HTTP Basic
requests that carry no session cookie and come from no other site, are exempt."""

from __future__ import annotations

import typing as t

import pytest
from reliability import app_endpoints
from reliability.figures import FIGURES
from reliability.scenarios import JSON

if t.TYPE_CHECKING:
    from reliability.browser import Browser, Reply
    from reliability.stackfixtures import Stack


def _signed_in(stack: Stack) -> Browser:
    browser = stack.browser()
    assert app_endpoints.register(browser, app_endpoints.write_key()).status == 302
    return browser


def _still_signed_in(browser: Browser) -> bool:
    return browser.get("/_probe/whoami", headers=JSON).status == 200


def _refused(reply: Reply, reason: str) -> None:
    assert reply.status == 400, (reply.status, reply.text[:300])
    assert reason in reply.text, reply.text[:300]
    FIGURES.add("csrf_attempts_refused")


def test_logout_without_a_token_is_refused(shared_stack: Stack) -> None:
    browser = _signed_in(shared_stack)
    _refused(browser.post("/auth/logout", form={}), "The CSRF token is missing.")
    assert _still_signed_in(browser)


@pytest.mark.parametrize(
    "token",
    ["", "x", "null", "IjAwMDAi.AAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAA", "a" * 5000, "' OR 1=1 --"],
)
def test_logout_with_an_invalid_token_is_refused(shared_stack: Stack, token: str) -> None:
    browser = _signed_in(shared_stack)
    reply = browser.post("/auth/logout", form={"csrf_token": token})
    assert reply.status == 400
    assert "CSRF" in reply.text
    FIGURES.add("csrf_attempts_refused")
    assert _still_signed_in(browser)


def test_a_token_from_another_session_is_refused(shared_stack: Stack) -> None:
    victim = _signed_in(shared_stack)
    attacker = shared_stack.browser()
    foreign = attacker.csrf_token()  # valid, but bound to the attacker's session
    _refused(victim.post("/auth/logout", form={"csrf_token": foreign}), "do not match")
    assert _still_signed_in(victim)


def test_over_https_a_missing_or_foreign_referer_is_refused(shared_stack: Stack) -> None:
    browser = _signed_in(shared_stack)
    token = browser.csrf_token()
    _refused(
        browser.post("/auth/logout", form={"csrf_token": token}, referer=False),
        "The referrer header is missing.",
    )
    _refused(
        browser.post(
            "/auth/logout",
            form={"csrf_token": token},
            referer=False,
            headers={"Referer": "https://evil.example/"},
        ),
        "The referrer does not match the host.",
    )
    assert _still_signed_in(browser)
    assert browser.post("/auth/logout", form={"csrf_token": token}).status == 302
    assert not _still_signed_in(browser)


def test_json_clients_get_a_problem_document(shared_stack: Stack) -> None:
    browser = _signed_in(shared_stack)
    reply = browser.post(app_endpoints.SESSION, json={}, headers=JSON)
    assert reply.status == 400
    assert reply.content_type == "application/problem+json"
    assert reply.json()["detail"] == "The CSRF token is missing."
    FIGURES.add("csrf_attempts_refused")
    token = browser.csrf_token()
    assert browser.post(app_endpoints.SESSION, headers={"X-CSRFToken": token, **JSON}).status == 200


def test_login_form_without_a_token_writes_nothing(shared_stack: Stack) -> None:
    before = app_endpoints.row_count(shared_stack.database_url)
    browser = shared_stack.browser()
    email = app_endpoints.write_key()
    password = app_endpoints.PASSWORD
    reply = browser.post(
        "/auth/register", form={"email": email, "password": password, "confirm": password}
    )
    _refused(reply, "The CSRF token is missing.")
    assert app_endpoints.row_count(shared_stack.database_url) == before


def test_api_token_requests_need_no_csrf_token_but_basic_auth_does(shared_stack: Stack) -> None:
    token = app_endpoints.Writer(shared_stack.browser()).token
    api = shared_stack.browser()
    reply = api.post("/_probe/cached/clear", headers={"Authorization": f"Bearer {token}"})
    assert reply.status == 200
    # HTTP Basic from a browser (credentials it cached and resends on its own): sent from
    # another site, or riding the session cookie.
    cross_site = {"Authorization": "Basic dTpw", "Origin": "https://elsewhere.example"}
    _refused(api.post("/_probe/cached/clear", headers=cross_site), "The CSRF token is missing.")
    browser = _signed_in(shared_stack)
    basic = browser.post("/_probe/cached/clear", headers={"Authorization": "Basic dTpw"})
    _refused(basic, "The CSRF token is missing.")
