"""Session fixation and forged cookies; cookie flags per profile."""

from __future__ import annotations

import typing as t

import pytest
from reliability import app_endpoints
from reliability.figures import FIGURES
from reliability.scenarios import JSON

if t.TYPE_CHECKING:
    from conftest import AppFactory
    from redis_servers import RedisServer
    from reliability.stackfixtures import Stack

SESSION_COOKIE = "session"


def _sid(cookie: str) -> str:
    return cookie.rpartition(".")[0]


def _session_key(stack: Stack, cookie: str) -> str:
    return f"{stack.env['FLASKSTACK_NAMESPACE']}:session:{_sid(cookie)}"


def test_a_planted_session_id_is_worthless_after_login(
    shared_stack: Stack, stack_redis: RedisServer
) -> None:
    email = app_endpoints.write_key()
    assert app_endpoints.register(shared_stack.browser(), email).status == 302
    attacker = shared_stack.browser()
    attacker.csrf_token()  # a real session id, issued by the site
    planted = attacker.cookies[SESSION_COOKIE]

    victim = shared_stack.browser()
    victim.cookies[SESSION_COOKIE] = planted
    assert app_endpoints.login(victim, email).status == 302
    assert victim.cookies[SESSION_COOKIE] != planted  # a new id at login
    with stack_redis.client() as redis:
        assert redis.exists(_session_key(shared_stack, planted)) == 0  # the old one is gone
        assert redis.exists(_session_key(shared_stack, victim.cookies[SESSION_COOKIE])) == 1
    # The attacker's copy of the id does not carry the login.
    assert attacker.get(app_endpoints.SESSION, headers=JSON).json()["user"] is None
    assert attacker.get("/_probe/whoami", headers=JSON).status == 401
    FIGURES.add("session_fixation_attempts_refused")


@pytest.mark.parametrize(
    "cookie",
    [
        "attacker-chosen-id",
        "attacker-chosen-id.forgedsignature",
        "..",
        "a" * 4000,
        "%00%ff",
        '"quoted"',
        "x.y.z.w",
    ],
)
def test_a_forged_session_cookie_is_never_adopted(
    shared_stack: Stack, stack_redis: RedisServer, cookie: str
) -> None:
    browser = shared_stack.browser()
    browser.cookies[SESSION_COOKIE] = cookie
    token = browser.csrf_token()
    assert token
    issued = browser.cookies[SESSION_COOKIE]
    assert issued != cookie
    with stack_redis.client() as redis:
        assert redis.exists(_session_key(shared_stack, cookie)) == 0
        assert redis.exists(f"{shared_stack.env['FLASKSTACK_NAMESPACE']}:session:{cookie}") == 0
    FIGURES.add("forged_cookies_refused")


def test_production_cookies_are_secure_httponly_and_lax(shared_stack: Stack) -> None:
    email = app_endpoints.write_key()
    assert app_endpoints.register(shared_stack.browser(), email).status == 302
    browser = shared_stack.browser()
    token = browser.csrf_token()
    reply = browser.post(
        "/auth/login",
        form={
            "email": email,
            "password": app_endpoints.PASSWORD,
            "remember": "y",
            "csrf_token": token,
        },
    )
    assert reply.status == 302
    cookies = reply.cookies()
    assert set(cookies) == {SESSION_COOKIE, "remember_token"}
    for name, morsel in cookies.items():
        assert morsel["secure"] is True, name
        assert morsel["httponly"] is True, name
        assert morsel["samesite"] == "Lax", name
        assert morsel["path"] == "/", name


@pytest.mark.parametrize("profile", ["development", "testing"])
def test_other_profiles_send_httponly_lax_cookies_without_secure(
    make_app: AppFactory, profile: str
) -> None:
    app = make_app({"FLASKSTACK_PROFILE": profile, "SECRET_KEY": "k" * 40})
    client = app.test_client()
    reply = client.get("/csrf-token")
    assert reply.status_code == 200
    (header,) = reply.headers.getlist("Set-Cookie")
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert {"httponly", "samesite", "path"} <= attributes
    assert "secure" not in attributes
    assert "SameSite=Lax" in header
