"""The account flows as users meet them: password reset, email confirmation, changing credentials.

Pages are driven as a browser drives them (forms with the CSRF token scraped
from the page); the JSON endpoints as an API client calls them. Messages go
to the testing profile's in-memory outbox, read here as the user's inbox:
each link in them is followed as it was sent. ``tests/test_mail.py`` sends
through a real SMTP server; ``tests/browser/test_accounts_browser.py`` does a
reset in Chromium from a message the SMTP server received.

Every test runs on a fresh PostgreSQL database and real Redis under a
namespace of its own.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import typing as t

import pytest
import sqlalchemy as sa
from test_auth import (
    BROWSER,
    PASSWORD,
    SHARED_REDIS_URL,
    Site,
    csrf_from,
    forget,
    log_in,
    new_site,
    whoami,
)

import flaskstack
from flaskstack import db

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

NEW_PASSWORD = "a brand new passphrase 7"
LINK = re.compile(r"http://localhost(/auth/[a-z/-]+/[A-Za-z0-9_-]{20,})")
SENT_IF_EXISTS = "If an account uses that address, a message with a link is on its way to it."
JSON = {"Accept": "application/json"}


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def namespaces() -> Iterator[list[tuple[str, str]]]:
    """(Redis URL, namespace) pairs the test's apps use; their keys are deleted afterwards."""
    used: list[tuple[str, str]] = []
    yield used
    forget(used)


@pytest.fixture
def build(
    make_app: AppFactory, postgres_url: str, namespaces: list[tuple[str, str]]
) -> Callable[..., Site]:
    """``build(**config)``: an app with flaskstack's default user on this test's database."""
    return functools.partial(new_site, make_app, postgres_url, namespaces)


@pytest.fixture
def site(build: Callable[..., Site]) -> Site:
    return build()


def outbox(app: Flask) -> list[t.Any]:
    """The messages the app sent, oldest first."""
    from flaskstack._mail_backend import outbox as mail_outbox

    return mail_outbox(app)


def messages_to(app: Flask, address: str) -> list[t.Any]:
    return [message for message in outbox(app) if address in message.to]


def link_in(message: t.Any) -> str:
    """The path of the one link in ``message`` (the text part)."""
    found = LINK.findall(message.body)
    assert len(set(found)) == 1, message.body
    return str(found[0])


def flashed(response: TestResponse) -> str:
    return response.text


def submit(
    client: FlaskClient, path: str, data: dict[str, str] | None = None, **kwargs: t.Any
) -> TestResponse:
    """Open the page at ``path`` and submit its form with ``data``."""
    token = csrf_from(client.get(path, headers=BROWSER))
    return client.post(path, data={"csrf_token": token, **(data or {})}, headers=BROWSER, **kwargs)


def register(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    return submit(
        client, "/auth/register", {"email": email, "password": password, "confirm": password}
    )


def account_token_rows(app: Flask) -> list[dict[str, t.Any]]:
    with app.app_context():
        model = flaskstack.get_state(app).auth.account_models.token
        rows = db.session.execute(sa.select(model.__table__)).mappings().all()
        return [dict(row) for row in rows]


# -- password reset ---------------------------------------------------------------------


def test_a_password_reset_from_the_request_to_the_new_password(site: Site) -> None:
    site.add_user("ada@example.com")
    elsewhere = site.client()
    assert log_in(elsewhere, "ada@example.com").status_code == 302
    assert whoami(elsewhere) == "ada@example.com"

    browser = site.client()
    response = submit(browser, "/auth/reset-password", {"email": " Ada@Example.com "})
    assert response.status_code == 302
    assert response.location == "/auth/login"
    assert SENT_IF_EXISTS in browser.get("/auth/login", headers=BROWSER).text

    (message,) = outbox(site.app)
    assert message.to == ["ada@example.com"]
    assert "password" in message.subject.lower()
    path = link_in(message)
    html = dict((kind, body) for body, kind in message.alternatives)["text/html"]
    assert path in html

    page = browser.get(path, headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "same-origin"  # the token stays on the site
    token = csrf_from(page)
    response = browser.post(
        path,
        data={"csrf_token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        headers=BROWSER,
    )
    assert response.status_code == 302
    assert whoami(browser) == "ada@example.com"  # signed in with the new password set

    assert whoami(elsewhere) is None  # the other session ended
    assert log_in(site.client(), "ada@example.com", PASSWORD).status_code == 200  # refused
    assert log_in(site.client(), "ada@example.com", NEW_PASSWORD).status_code == 302

    used = site.client().get(path, headers=BROWSER)  # the link worked once
    assert used.status_code == 404
    assert "invalid or has expired" in used.text
    assert any("changed" in m.subject.lower() for m in messages_to(site.app, "ada@example.com"))


def test_asking_for_an_unknown_or_inactive_address_looks_the_same(site: Site) -> None:
    site.add_user("ada@example.com")
    site.add_user("gone@example.com", active=False)
    answers = []
    for email in ("ada@example.com", "nobody@example.com", "gone@example.com"):
        browser = site.client()
        response = submit(browser, "/auth/reset-password", {"email": email})
        page = browser.get("/auth/login", headers=BROWSER)
        answers.append((response.status_code, response.location, SENT_IF_EXISTS in page.text))
    assert answers == [(302, "/auth/login", True)] * 3
    assert [m.to for m in outbox(site.app)] == [["ada@example.com"]]


def test_only_the_newest_link_works_and_a_new_password_voids_it(site: Site) -> None:
    site.add_user("ada@example.com")
    submit(site.client(), "/auth/reset-password", {"email": "ada@example.com"})
    submit(site.client(), "/auth/reset-password", {"email": "ada@example.com"})
    first, second = (link_in(m) for m in outbox(site.app))
    assert first != second
    assert site.client().get(first, headers=BROWSER).status_code == 404
    assert site.client().get(second, headers=BROWSER).status_code == 200

    # A new password voids it, whoever sets it: here the app's own code.
    site.change_password("ada@example.com", NEW_PASSWORD)
    assert site.client().get(second, headers=BROWSER).status_code == 404

    browser = site.client()
    log_in(browser, "ada@example.com", NEW_PASSWORD)
    submit(site.client(), "/auth/reset-password", {"email": "ada@example.com"})
    third = link_in(outbox(site.app)[-1])
    response = submit(
        browser,
        "/auth/account/password",
        {"current_password": NEW_PASSWORD, "password": PASSWORD, "confirm": PASSWORD},
    )
    assert response.status_code == 302
    assert site.client().get(third, headers=BROWSER).status_code == 404


def test_an_expired_link_is_refused(site: Site) -> None:
    site.add_user("ada@example.com")
    submit(site.client(), "/auth/reset-password", {"email": "ada@example.com"})
    path = link_in(outbox(site.app)[0])
    with site.app.app_context():
        model = flaskstack.get_state(site.app).auth.account_models.token
        past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
        db.session.execute(sa.update(model).values(expires_at=past))
        db.session.commit()
    response = site.client().get(path, headers=BROWSER)
    assert response.status_code == 404
    assert "Ask for a new link" in response.text


def test_a_refused_new_password_keeps_the_link(site: Site) -> None:
    site.add_user("ada@example.com")
    submit(site.client(), "/auth/reset-password", {"email": "ada@example.com"})
    path = link_in(outbox(site.app)[0])
    browser = site.client()
    response = submit(browser, path, {"password": "short", "confirm": "short"})
    assert response.status_code == 200
    assert "Use at least 12 characters." in response.text
    response = submit(browser, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302


def test_reset_requests_are_throttled_per_address_and_per_client(
    build: Callable[..., Site],
) -> None:
    site = build(FLASKSTACK_ACCOUNT_EMAIL_LIMIT=2, FLASKSTACK_ACCOUNT_ADDRESS_LIMIT=4)
    site.add_user("ada@example.com")
    for email in ("nobody@example.com", "ada@example.com"):
        statuses = [
            submit(site.client(), "/auth/reset-password", {"email": email}).status_code
            for _ in range(2)
        ]
        assert statuses == [302, 302]
    # The client has asked 4 times, its limit: a fifth request, for a fresh address, is refused.
    response = submit(site.client(), "/auth/reset-password", {"email": "new@example.com"})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert len(outbox(site.app)) == 2


def test_a_third_request_for_the_same_address_is_refused(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_ACCOUNT_EMAIL_LIMIT=2)
    for email in ("nobody@example.com", "other@example.com"):
        statuses = [
            submit(site.client(), "/auth/reset-password", {"email": email}).status_code
            for _ in range(3)
        ]
        assert statuses == [302, 302, 429]


def test_reset_off_removes_the_page_and_the_endpoint(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_PASSWORD_RESET=False)
    client = site.client()
    assert client.get("/auth/reset-password", headers=BROWSER).status_code == 404
    response = client.post("/api/auth/password-reset", json={"email": "ada@example.com"})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


# -- email confirmation -----------------------------------------------------------------


def test_optional_confirmation_sends_a_link_and_signs_in(site: Site) -> None:
    browser = site.client()
    response = register(browser, "ada@example.com")
    assert response.status_code == 302
    assert whoami(browser) == "ada@example.com"
    (message,) = outbox(site.app)
    path = link_in(message)
    assert "not confirmed" in browser.get("/auth/account", headers=BROWSER).text

    # Opening the link changes nothing (mail scanners open links): the button does.
    page = site.client().get(path, headers=BROWSER)
    assert page.status_code == 200
    assert "not confirmed" in browser.get("/auth/account", headers=BROWSER).text
    response = submit(site.client(), path)
    assert response.status_code == 302
    assert "(confirmed)" in browser.get("/auth/account", headers=BROWSER).text
    assert site.client().get(path, headers=BROWSER).status_code == 404


def test_required_confirmation_blocks_sign_in_until_confirmed(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_EMAIL_CONFIRMATION="required")
    browser = site.client()
    response = register(browser, "ada@example.com")
    assert response.status_code == 302
    assert response.location == "/auth/login"
    assert whoami(browser) is None

    refused = log_in(site.client(), "ada@example.com")
    assert refused.status_code == 200
    assert "Confirm your email address before signing in" in refused.text
    assert "/auth/confirm-email" in refused.text  # the way to a new link
    # A wrong password says nothing about confirmation.
    wrong = log_in(site.client(), "ada@example.com", "not the password at all")
    assert "Confirm your email" not in wrong.text

    submit(site.client(), "/auth/confirm-email", {"email": "ada@example.com"})
    first, second = (link_in(m) for m in outbox(site.app))
    assert site.client().get(first, headers=BROWSER).status_code == 404  # replaced
    assert submit(site.client(), second).status_code == 302
    assert log_in(browser, "ada@example.com").status_code == 302
    assert whoami(browser) == "ada@example.com"


def test_confirmation_off_sends_nothing(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_EMAIL_CONFIRMATION="off")
    browser = site.client()
    register(browser, "ada@example.com")
    assert whoami(browser) == "ada@example.com"
    assert outbox(site.app) == []
    assert browser.get("/auth/confirm-email", headers=BROWSER).status_code == 404
    assert "confirmed" not in browser.get("/auth/account", headers=BROWSER).text


def test_a_confirmation_link_for_an_old_address_does_not_confirm_the_new_one(site: Site) -> None:
    browser = site.client()
    register(browser, "ada@example.com")
    confirm_old = link_in(outbox(site.app)[0])
    submit(
        browser,
        "/auth/account/email",
        {"email": "ada@new.example.com", "current_password": PASSWORD},
    )
    change = link_in(messages_to(site.app, "ada@new.example.com")[0])
    assert submit(site.client(), change).status_code == 302
    assert site.client().get(confirm_old, headers=BROWSER).status_code == 404


# -- changing the password --------------------------------------------------------------


def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(site: Site) -> None:
    site.add_user("ada@example.com")
    browser, elsewhere = site.client(), site.client()
    log_in(browser, "ada@example.com")
    log_in(elsewhere, "ada@example.com")

    wrong = submit(
        browser,
        "/auth/account/password",
        {"current_password": "not it at all", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert wrong.status_code == 200
    assert "The current password is wrong." in wrong.text
    assert whoami(elsewhere) == "ada@example.com"

    response = submit(
        browser,
        "/auth/account/password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert whoami(browser) == "ada@example.com"  # this session stays
    assert whoami(elsewhere) is None
    assert log_in(site.client(), "ada@example.com", NEW_PASSWORD).status_code == 302
    assert any("changed" in m.subject.lower() for m in outbox(site.app))


def test_the_account_pages_need_a_signed_in_user(site: Site) -> None:
    client = site.client()
    for path in ("/auth/account", "/auth/account/password", "/auth/account/email"):
        response = client.get(path, headers=BROWSER)
        assert response.status_code == 302
        assert response.location.startswith("/auth/login?next=")


# -- changing the address ---------------------------------------------------------------


def test_changing_the_address_confirms_the_new_one_and_tells_the_old_one(site: Site) -> None:
    site.add_user("ada@example.com")
    site.add_user("taken@example.com")
    browser = site.client()
    log_in(browser, "ada@example.com")
    taken = submit(
        browser, "/auth/account/email", {"email": "taken@example.com", "current_password": PASSWORD}
    )
    assert "An account with this email already exists." in taken.text
    wrong = submit(
        browser, "/auth/account/email", {"email": "new@example.com", "current_password": "nope"}
    )
    assert "The current password is wrong." in wrong.text

    submit(site.client(), "/auth/reset-password", {"email": "ada@example.com"})
    reset_link = link_in(messages_to(site.app, "ada@example.com")[-1])
    response = submit(
        browser, "/auth/account/email", {"email": "New@Example.com", "current_password": PASSWORD}
    )
    assert response.status_code == 302
    (confirm,) = messages_to(site.app, "new@example.com")
    assert site.stored_user("ada@example.com")["email"] == "ada@example.com"  # not yet

    assert submit(site.client(), link_in(confirm)).status_code == 302
    assert site.stored_user("new@example.com")["email"] == "new@example.com"
    told = messages_to(site.app, "ada@example.com")[-1]
    assert "new@example.com" in told.body
    assert site.client().get(reset_link, headers=BROWSER).status_code == 404  # sent to the old
    assert log_in(site.client(), "new@example.com").status_code == 302


# -- the JSON endpoints -----------------------------------------------------------------


def test_the_json_reset_flow(site: Site) -> None:
    site.add_user("ada@example.com")
    client = site.client()
    answers = [
        client.post("/api/auth/password-reset", json={"email": email})
        for email in ("ada@example.com", "nobody@example.com")
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].get_json() == answers[1].get_json()
    token = link_in(outbox(site.app)[0]).rsplit("/", 1)[1]

    weak = client.post("/api/auth/password-reset/confirm", json={"token": token, "password": "x"})
    assert weak.status_code == 422
    assert "password" in weak.get_json()["errors"]
    response = client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert response.status_code == 200, response.text
    again = client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert again.status_code == 422
    assert again.mimetype == "application/problem+json"
    assert "invalid or has expired" in again.get_json()["errors"]["token"][0]
    assert log_in(site.client(), "ada@example.com", NEW_PASSWORD).status_code == 302


def test_the_json_account_endpoints_with_an_api_token(site: Site) -> None:
    site.add_user("ada@example.com")
    with site.app.app_context():
        from flaskstack.auth import create_token

        user = (
            flaskstack.get_state(site.app)
            .auth.user_model.query.filter_by(email="ada@example.com")
            .one()
        )
        token, _record = create_token(user, "test")
        db.session.commit()
    client = site.client()
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/auth/account").status_code == 401
    info = client.get("/api/auth/account", headers=auth)
    assert info.get_json() == {
        "email": "ada@example.com",
        "email_confirmed": False,
        "roles": None,  # FLASKSTACK_ROLES is off
        "permissions": None,
    }

    wrong = client.put(
        "/api/auth/account/password",
        json={"current_password": "nope", "password": NEW_PASSWORD},
        headers=auth,
    )
    assert wrong.status_code == 422
    assert "current_password" in wrong.get_json()["errors"]
    changed = client.put(
        "/api/auth/account/password",
        json={"current_password": PASSWORD, "password": NEW_PASSWORD},
        headers=auth,
    )
    assert changed.status_code == 200, changed.text

    moved = client.post(
        "/api/auth/account/email",
        json={"email": "ada@new.example.com", "current_password": NEW_PASSWORD},
        headers=auth,
    )
    assert moved.status_code == 202
    link = link_in(messages_to(site.app, "ada@new.example.com")[0]).rsplit("/", 1)[1]
    done = client.post("/api/auth/account/email/confirm", json={"token": link})
    assert done.status_code == 200
    info = client.get("/api/auth/account", headers=auth)
    assert info.get_json() == {
        "email": "ada@new.example.com",
        "email_confirmed": True,
        "roles": None,
        "permissions": None,
    }


def test_a_cookie_authenticated_change_needs_the_csrf_header(site: Site) -> None:
    site.add_user("ada@example.com")
    browser = site.client()
    log_in(browser, "ada@example.com")
    body = {"current_password": PASSWORD, "password": NEW_PASSWORD}
    refused = browser.put("/api/auth/account/password", json=body)
    assert refused.status_code == 400
    token = browser.get("/csrf-token").get_json()["csrf_token"]
    accepted = browser.put("/api/auth/account/password", json=body, headers={"X-CSRFToken": token})
    assert accepted.status_code == 200


def test_the_openapi_document_describes_the_account_endpoints(site: Site) -> None:
    document = site.client().get("/api/openapi.json").get_json()
    paths = document["paths"]
    for path in (
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/register",
        "/api/auth/password-reset",
        "/api/auth/password-reset/confirm",
        "/api/auth/email-confirmation",
        "/api/auth/email-confirmation/confirm",
        "/api/auth/account",
        "/api/auth/account/password",
        "/api/auth/account/email",
        "/api/auth/account/email/confirm",
    ):
        assert path in paths, sorted(paths)
    assert "429" in paths["/api/auth/password-reset"]["post"]["responses"]
    assert "security" not in paths["/api/auth/password-reset"]["post"]
    assert "security" in paths["/api/auth/account/password"]["put"]
    assert "422" in paths["/api/auth/account/email"]["post"]["responses"]


def test_an_app_route_where_an_account_page_goes_is_refused(make_app: AppFactory) -> None:
    def before(app: Flask) -> None:
        app.add_url_rule("/auth/reset-password", "mine", lambda: "mine")

    with pytest.raises(flaskstack.ConfigError) as raised:
        make_app(profile="testing", before=before)
    assert "FLASKSTACK_AUTH_URL_PREFIX" in str(raised.value)


def test_production_refuses_account_flows_without_mail(make_app: AppFactory) -> None:
    settings = {
        "SECRET_KEY": "k" * 48,
        "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
    }
    with pytest.raises(flaskstack.ConfigError) as raised:
        make_app(settings, profile="production")
    message = str(raised.value)
    assert "MAIL_URL" in message
    assert "FLASKSTACK_PASSWORD_RESET" in message
    # With both flows off, nothing needs mail.
    make_app(
        {
            **settings,
            "FLASKSTACK_PASSWORD_RESET": False,
            "FLASKSTACK_EMAIL_CONFIRMATION": "off",
        },
        profile="production",
        name="nomail",
    )


def test_changing_the_address_needs_confirmation_on(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_EMAIL_CONFIRMATION="off")
    site.add_user("ada@example.com")
    browser = site.client()
    log_in(browser, "ada@example.com")
    assert browser.get("/auth/account/email", headers=BROWSER).status_code == 404
    assert "Change your email address" not in browser.get("/auth/account", headers=BROWSER).text


def test_an_app_template_replaces_one_block_of_a_page(
    make_app: AppFactory, tmp_path: t.Any
) -> None:
    folder = tmp_path / "templates" / "flaskstack" / "auth"
    folder.mkdir(parents=True)
    (folder / "reset_request.html").write_text(
        '{% extends "flaskstack-original/auth/reset_request.html" %}'
        "{% block intro %}<p>Forgot it? It happens.</p>{% endblock %}"
    )

    def before(app: Flask) -> None:
        app.template_folder = str(tmp_path / "templates")

    app = make_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}, profile="testing", before=before)
    page = app.test_client().get("/auth/reset-password", headers=BROWSER)
    assert page.status_code == 200
    assert "Forgot it? It happens." in page.text  # the app's block
    assert "Enter the email address of your account" not in page.text
    assert 'name="email"' in page.text  # the rest is flaskstack's page
    assert page.text.count("<h1>") == 1


def test_a_script_signs_up_in_and_out_with_the_session_cookie(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_EMAIL_CONFIRMATION="off")
    client = site.client()
    body = {"email": "Ada@Example.com", "password": PASSWORD}
    assert client.post("/api/auth/register", json=body).status_code == 400  # no CSRF token
    csrf = {"X-CSRFToken": client.get("/csrf-token").get_json()["csrf_token"]}
    created = client.post("/api/auth/register", json=body, headers=csrf)
    assert created.status_code == 201, created.text
    assert created.get_json()["email"] == "ada@example.com"
    assert whoami(client) == "ada@example.com"
    taken = client.post("/api/auth/register", json=body, headers=csrf)
    assert taken.status_code == 422
    assert "email" in taken.get_json()["errors"]

    csrf = {"X-CSRFToken": client.get("/csrf-token").get_json()["csrf_token"]}
    assert client.post("/api/auth/logout", headers=csrf).status_code == 200
    assert whoami(client) is None

    other = site.client()
    csrf = {"X-CSRFToken": other.get("/csrf-token").get_json()["csrf_token"]}
    wrong = other.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": "nope"}, headers=csrf
    )
    assert wrong.status_code == 401
    assert wrong.mimetype == "application/problem+json"
    unknown = other.post(
        "/api/auth/login", json={"email": "bob@example.com", "password": "nope"}, headers=csrf
    )
    assert unknown.get_json()["detail"] == wrong.get_json()["detail"]
    signed_in = other.post(
        "/api/auth/login",
        json={"email": "ada@example.com", "password": PASSWORD, "remember": True},
        headers=csrf,
    )
    assert signed_in.status_code == 200, signed_in.text
    assert whoami(other) == "ada@example.com"
    assert other.get_cookie("remember_token") is not None


def test_json_sign_in_waits_for_a_required_confirmation(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_EMAIL_CONFIRMATION="required")
    client = site.client()
    csrf = {"X-CSRFToken": client.get("/csrf-token").get_json()["csrf_token"]}
    body = {"email": "ada@example.com", "password": PASSWORD}
    created = client.post("/api/auth/register", json=body, headers=csrf)
    assert created.status_code == 201
    assert created.get_json()["email"] is None
    assert whoami(client) is None
    refused = client.post("/api/auth/login", json=body, headers=csrf)
    assert refused.status_code == 403
    assert "Confirm your email address" in refused.get_json()["detail"]
    token = link_in(outbox(site.app)[0]).rsplit("/", 1)[1]
    assert (
        client.post("/api/auth/email-confirmation/confirm", json={"token": token}).status_code
        == 200
    )
    assert client.post("/api/auth/login", json=body, headers=csrf).status_code == 200
