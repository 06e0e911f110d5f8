"""Authentication as users see it: the forms, sessions, throttles, API tokens and the CLI.

Every test runs on a fresh PostgreSQL database and real Redis: the shared
server on 127.0.0.1:6379 under a namespace of the test's own (its keys are
deleted afterwards with SCAN and DEL), or the ``redis_server`` fixture where
Redis commands are counted. Browsers go through the HTML forms with the CSRF
token scraped from the page; API clients send ``Authorization: Bearer``.

Passwords are hashed with ``pbkdf2:sha256:1000`` (:data:`FAST_HASH`) except
where hashing itself is under test: scrypt, the default, costs 50-100 ms a
hash, and the open-redirect test alone signs in over a hundred times.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import typing as t
import uuid
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import redis
import sqlalchemy as sa
from flask import Flask, render_template_string, request
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

import flaskstack
from flaskstack import db
from flaskstack.auth import UserMixin, auth_required, current_user
from flaskstack.throttle import _LOGIN_THROTTLED_MESSAGE

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from click.testing import Result
    from conftest import AppFactory
    from flask.testing import FlaskClient
    from redis_servers import RedisServer
    from werkzeug.test import TestResponse

SHARED_REDIS_URL = os.environ.get("FLASKSTACK_TEST_REDIS", "redis://127.0.0.1:6379/0")
FAST_HASH = "pbkdf2:sha256:1000"  # keeps the suite fast; see the module docstring
PASSWORD = "correct horse battery staple"
OTHER_PASSWORD = "a different passphrase 42"
GENERIC_FAILURE = "Invalid email or password."
DONE = "/auth/done"  # where a login without a usable ``next`` lands
PROBLEM = "application/problem+json"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON_CLIENT = {"Accept": "application/json"}
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
TOKEN = re.compile(r"^fst_[A-Za-z0-9_-]{40,}$", re.MULTILINE)


class Member(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """An app's own user model."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(80))


ACCOUNT_PAGE = """<!doctype html>
<p>Signed in as {{ current_user.email }}</p>
<form method="post" action="{{ url_for('flaskstack_auth.logout') }}">
  <input name="csrf_token" type="hidden" value="{{ csrf_token() }}">
  <button type="submit">Sign out</button>
</form>
"""


def add_views(app: Flask) -> None:
    """Pages a typical app has: protected ones, one that reads the user, one that doesn't."""

    @app.get("/account")
    @auth_required
    def account() -> str:
        return render_template_string(ACCOUNT_PAGE)

    @app.get("/private")
    @auth_required
    def private() -> str:
        return f"private page of {current_user.email}, x={request.args.get('x')}"

    @app.get("/whoami")
    def whoami() -> dict[str, t.Any]:
        return {"user": current_user.email if current_user.is_authenticated else None}

    @app.get("/plain")
    def plain() -> str:
        return "nothing about you"

    @app.get("/api/me")
    @auth_required
    def api_me() -> dict[str, t.Any]:
        return {"email": current_user.email}

    @app.post("/api/notes")
    @auth_required
    def api_notes() -> tuple[dict[str, t.Any], int]:
        return {"saved": request.get_json()["title"], "by": current_user.email}, 201


class Site:
    """One test app with its database, its Redis namespace and its CLI."""

    def __init__(self, app: Flask, redis_url: str, namespace: str) -> None:
        self.app = app
        self.redis_url = redis_url
        self.namespace = namespace

    def client(self, address: str = "127.0.0.1") -> FlaskClient:
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return client

    def keys(self, kind: str = "session") -> set[str]:
        """The names of this app's Redis keys of one kind (``session``, ``throttle``)."""
        with redis.Redis.from_url(self.redis_url, decode_responses=True) as client:
            return set(client.scan_iter(match=f"{self.namespace}:{kind}:*"))

    def session_key(self, sid: str) -> str:
        return f"{self.namespace}:session:{sid}"

    def add_user(
        self,
        email: str,
        password: str = PASSWORD,
        *,
        active: bool = True,
        password_hash: str | None = None,
    ) -> None:
        with self.app.app_context():
            user = flaskstack.get_state(self.app).auth.user_model(email=email, active=active)
            if password_hash is None:
                user.set_password(password)
            else:
                user.password_hash = password_hash
            db.session.add(user)
            db.session.commit()

    def stored_user(self, email: str) -> dict[str, t.Any]:
        """The user's row as PostgreSQL holds it."""
        with self.app.app_context():
            table = flaskstack.get_state(self.app).auth.user_model.__table__
            row = db.session.execute(sa.select(table).where(table.c.email == email)).one()
            return dict(row._mapping)

    def change_password(self, email: str, password: str) -> None:
        with self.app.app_context():
            model = flaskstack.get_state(self.app).auth.user_model
            user = db.session.execute(sa.select(model).where(model.email == email)).scalar_one()
            user.set_password(password)
            db.session.commit()

    def cli(self, *args: str, input: str | None = None) -> Result:
        return self.app.test_cli_runner().invoke(args=["stack", *args], input=input)


@pytest.fixture
def namespaces() -> Iterator[list[tuple[str, str]]]:
    """(Redis URL, namespace) pairs this test used; their keys are deleted afterwards."""
    used: list[tuple[str, str]] = []
    yield used
    forget(used)


def forget(namespaces: list[tuple[str, str]]) -> None:
    """Delete the keys of each (Redis URL, namespace) pair, with SCAN and DEL."""
    for url, namespace in namespaces:
        with redis.Redis.from_url(url) as client:
            keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
            if keys:
                client.delete(*keys)


def new_site(
    make_app: AppFactory,
    database_url: str,
    namespaces: list[tuple[str, str]],
    redis_url: str = SHARED_REDIS_URL,
    user_model: type[t.Any] | None = None,
    **config: t.Any,
) -> Site:
    """An app with :func:`add_views` on ``database_url``, its auth tables created."""
    namespace = f"test-auth-{uuid.uuid4().hex[:12]}"
    namespaces.append((redis_url, namespace))
    settings = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "FLASKSTACK_REDIS_URL": redis_url,
        "FLASKSTACK_NAMESPACE": namespace,
        "FLASKSTACK_PASSWORD_METHOD": FAST_HASH,
        **config,
    }
    options = {} if user_model is None else {"user_model": user_model}
    app = make_app(settings, profile="testing", **options)
    add_views(app)
    with app.app_context():
        # Only the auth tables of this app, not every model of the test process.
        auth = flaskstack.get_state(app).auth
        tables = [model.__table__ for model in auth.models]
        db.metadata.create_all(bind=db.engine, tables=tables)
    return Site(app, redis_url, namespace)


@pytest.fixture
def build(
    make_app: AppFactory, postgres_url: str, namespaces: list[tuple[str, str]]
) -> Callable[..., Site]:
    """``build(redis_url=..., user_model=..., **config)``: an app on this test's database."""
    return functools.partial(new_site, make_app, postgres_url, namespaces)


@pytest.fixture
def site(build: Callable[..., Site]) -> Site:
    return build()


# -- helpers -----------------------------------------------------------------------


def csrf_from(response: TestResponse) -> str:
    """The CSRF token of the form in a rendered page."""
    assert response.status_code == 200, response.text
    found = CSRF_FIELD.search(response.text)
    assert found is not None, response.text
    return found.group(1)


def log_in(
    client: FlaskClient,
    email: str,
    password: str = PASSWORD,
    *,
    next: str | None = None,
    remember: bool = False,
    token: str | None = None,
) -> TestResponse:
    """Submit the sign-in form (fetched first unless its CSRF ``token`` is given)."""
    query = {} if next is None else {"next": next}
    if token is None:
        token = csrf_from(client.get("/auth/login", query_string=query, headers=BROWSER))
    data = {"csrf_token": token, "email": email, "password": password}
    if remember:
        data["remember"] = "y"
    return client.post("/auth/login", query_string=query, data=data, headers=BROWSER)


def log_out(client: FlaskClient) -> TestResponse:
    """Press "Sign out" on the account page."""
    token = csrf_from(client.get("/account", headers=BROWSER))
    return client.post("/auth/logout", data={"csrf_token": token}, headers=BROWSER)


def whoami(client: FlaskClient) -> str | None:
    response = client.get("/whoami")
    assert response.status_code == 200
    user: str | None = response.get_json()["user"]
    return user


def session_cookie(client: FlaskClient) -> str | None:
    found = client.get_cookie("session")
    return None if found is None else found.value


def sid_of(cookie: str) -> str:
    """The session id a signed session cookie carries."""
    return cookie.rsplit(".", 1)[0]


def fresh_client_with(site: Site, **cookies: str) -> FlaskClient:
    """A new browser holding only ``cookies``: a replayed or stolen cookie."""
    client = site.client()
    for name, value in cookies.items():
        client.set_cookie(name, value)
    return client


def set_cookies(response: TestResponse) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def form_page(response: TestResponse) -> str:
    """A rendered form without what legitimately differs: the CSRF token and typed email."""
    text = CSRF_FIELD.sub('name="csrf_token" type="hidden" value="-"', response.text)
    return re.sub(r'(name="email"[^>]*value=")[^"]*"', r'\1-"', text)


def created_token(result: Result) -> tuple[int, str]:
    """The id and the token ``flask stack token create`` printed."""
    assert result.exit_code == 0, result.output
    number = re.search(r"Created token (\d+)", result.output)
    token = TOKEN.search(result.output)
    assert number is not None, result.output
    assert token is not None, result.output
    return int(number.group(1)), token.group(0)


def assert_unauthorized_problem(response: TestResponse) -> None:
    """A 401 problem; ``invalid_token`` (RFC 6750) exactly when the request sent a Bearer token."""
    authorization = response.request.headers.get("Authorization", "")
    scheme, _, credential = authorization.strip().partition(" ")
    token_sent = scheme.lower() == "bearer" and bool(credential.strip())
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    challenge = 'Bearer realm="testapp"' + (', error="invalid_token"' if token_sent else "")
    assert response.headers["WWW-Authenticate"] == challenge
    body = json.loads(response.text)
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert body.get("error") == ("invalid_token" if token_sent else None)
    expected = "is invalid, expired or revoked" if token_sent else "Authentication is required"
    assert expected in body["detail"]
    assert set_cookies(response) == []


# -- 1. register, sign out, sign in through the forms ----------------------------


def test_register_logout_and_login_through_the_forms(site: Site) -> None:
    browser = site.client()
    form = browser.get("/auth/register", headers=BROWSER)
    registered = browser.post(
        "/auth/register",
        data={
            "csrf_token": csrf_from(form),
            "email": "Alice@Example.COM",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
        headers=BROWSER,
    )
    assert registered.status_code == 302, registered.text
    assert registered.headers["Location"] == DONE
    stored = site.stored_user("alice@example.com")  # stored lower-cased
    assert stored["active"] is True
    assert stored["password_hash"].startswith("pbkdf2:sha256:1000$")
    assert PASSWORD not in stored["password_hash"]

    page = browser.get("/account", headers=BROWSER)
    assert page.status_code == 200
    assert "Signed in as alice@example.com" in page.text

    # Signing out is a POST with the CSRF token: a GET, or a POST without it, does nothing.
    assert browser.get("/auth/logout", headers=BROWSER).status_code == 405
    forged = browser.post("/auth/logout", headers=BROWSER)
    assert forged.status_code == 400
    assert "The CSRF token is missing." in forged.text
    assert whoami(browser) == "alice@example.com"

    signed_out = log_out(browser)
    assert signed_out.status_code == 302
    assert signed_out.headers["Location"] == "/auth/login"
    assert whoami(browser) is None

    refused = browser.get("/private?x=1", headers=BROWSER)
    assert refused.status_code == 302
    login_url = refused.headers["Location"]
    assert urlsplit(login_url).path == "/auth/login"
    assert parse_qs(urlsplit(login_url).query) == {"next": ["/private?x=1"]}

    # The browser follows the redirect and submits the form to the same URL.
    form = browser.get(login_url, headers=BROWSER)
    assert "Please sign in to continue." in form.text
    signed_in = browser.post(
        login_url,
        data={"csrf_token": csrf_from(form), "email": "ALICE@example.com", "password": PASSWORD},
        headers=BROWSER,
    )
    assert signed_in.status_code == 302, signed_in.text
    assert signed_in.headers["Location"] == "/private?x=1"
    landed = browser.get(signed_in.headers["Location"], headers=BROWSER)
    assert landed.status_code == 200
    assert landed.text == "private page of alice@example.com, x=1"


def test_registration_explains_what_is_wrong(site: Site) -> None:
    site.add_user("taken@example.com")
    browser = site.client()
    token = csrf_from(browser.get("/auth/register", headers=BROWSER))

    def register(email: str, password: str, confirm: str) -> TestResponse:
        data = {"csrf_token": token, "email": email, "password": password, "confirm": confirm}
        return browser.post("/auth/register", data=data, headers=BROWSER)

    duplicate = register("TAKEN@example.com", PASSWORD, PASSWORD)
    assert duplicate.status_code == 200
    assert "An account with this email already exists." in duplicate.text
    short = register("new@example.com", "short", "short")
    assert "Use at least 12 characters." in short.text
    differing = register("new@example.com", PASSWORD, OTHER_PASSWORD)
    assert "The passwords differ." in differing.text
    assert whoami(browser) is None
    with site.app.app_context():
        model = flaskstack.get_state(site.app).auth.user_model
        emails = db.session.execute(sa.select(model.email)).scalars().all()
    assert emails == ["taken@example.com"]


# -- 2. the session id changes at login; logout kills it ---------------------------


def test_login_rotates_the_session_and_logout_deletes_it(site: Site) -> None:
    site.add_user("alice@example.com")
    browser = site.client()
    token = csrf_from(browser.get("/auth/login", headers=BROWSER))
    anonymous_cookie = session_cookie(browser)
    assert anonymous_cookie is not None  # the form's CSRF token lives in the session...
    assert site.keys() == set()  # ...which a visitor who is not signed in keeps in the cookie

    response = log_in(browser, "alice@example.com", token=token)
    assert response.status_code == 302
    login_cookie = session_cookie(browser)
    assert login_cookie is not None
    assert sid_of(login_cookie) != sid_of(anonymous_cookie)
    assert site.keys() == {site.session_key(sid_of(login_cookie))}  # the old key is gone
    assert whoami(browser) == "alice@example.com"

    # Whoever knew the id before login (a planted cookie) has nothing.
    replayed = fresh_client_with(site, session=anonymous_cookie)
    assert whoami(replayed) is None
    assert replayed.get("/private", headers=BROWSER).status_code == 302

    assert log_out(browser).status_code == 302
    assert session_cookie(browser) is None  # the browser was told to drop it
    assert site.keys() == set()  # and the server-side session is deleted
    stolen = fresh_client_with(site, session=login_cookie)
    assert whoami(stolen) is None
    assert stolen.get("/api/me", headers=JSON_CLIENT).status_code == 401
    assert site.keys() == set()  # replaying it created nothing either


# -- 3. a password change ends every other session and remember-me cookie ----------


def test_a_password_change_ends_other_sessions_and_remember_me(site: Site) -> None:
    site.add_user("alice@example.com")
    laptop, phone = site.client(), site.client()
    remembered = log_in(laptop, "alice@example.com", remember=True)
    assert remembered.status_code == 302
    remember_header = next(c for c in set_cookies(remembered) if c.startswith("remember_token="))
    assert "HttpOnly" in remember_header
    assert "SameSite=Lax" in remember_header
    remember_cookie = laptop.get_cookie("remember_token")
    assert remember_cookie is not None
    assert log_in(phone, "alice@example.com").status_code == 302
    assert whoami(laptop) == whoami(phone) == "alice@example.com"

    # The remember-me cookie alone signs the browser in (once its session is gone).
    restarted = fresh_client_with(site, remember_token=remember_cookie.value)
    assert whoami(restarted) == "alice@example.com"

    site.change_password("alice@example.com", OTHER_PASSWORD)

    assert whoami(phone) is None
    assert phone.get("/private", headers=BROWSER).status_code == 302
    assert whoami(laptop) is None  # its session and its remember-me cookie are both dead
    assert whoami(restarted) is None
    only_remember = fresh_client_with(site, remember_token=remember_cookie.value)
    assert whoami(only_remember) is None
    assert only_remember.get("/api/me", headers=JSON_CLIENT).status_code == 401

    assert log_in(site.client(), "alice@example.com", PASSWORD).status_code == 200
    assert log_in(phone, "alice@example.com", OTHER_PASSWORD).status_code == 302
    assert whoami(phone) == "alice@example.com"


def test_logout_also_forgets_the_remember_me_cookie(site: Site) -> None:
    site.add_user("alice@example.com")
    browser = site.client()
    assert log_in(browser, "alice@example.com", remember=True).status_code == 302
    assert browser.get_cookie("remember_token") is not None

    signed_out = log_out(browser)
    cleared = [c for c in set_cookies(signed_out) if "Max-Age=0" in c]
    assert sorted(c.split("=", 1)[0] for c in cleared) == ["remember_token", "session"]
    assert browser.get_cookie("remember_token") is None
    assert whoami(browser) is None
    assert site.keys() == set()


def test_deactivating_a_user_ends_their_sessions(site: Site) -> None:
    site.add_user("alice@example.com")
    browser = site.client()
    assert log_in(browser, "alice@example.com", remember=True).status_code == 302
    with site.app.app_context():
        model = flaskstack.get_state(site.app).auth.user_model
        user = db.session.execute(
            sa.select(model).where(model.email == "alice@example.com")
        ).scalar_one()
        user.active = False
        db.session.commit()
    assert whoami(browser) is None
    assert browser.get("/account", headers=BROWSER).status_code == 302


def test_signing_in_by_remember_me_cookie_rotates_the_session(site: Site) -> None:
    """A remember-me login is a login: a session id planted before it must not carry it."""
    site.add_user("alice@example.com")
    victim = site.client()
    assert log_in(victim, "alice@example.com", remember=True).status_code == 302
    remember_cookie = victim.get_cookie("remember_token")
    assert remember_cookie is not None

    attacker = site.client()
    csrf_from(attacker.get("/auth/login", headers=BROWSER))  # a valid, anonymous session
    planted = session_cookie(attacker)
    assert planted is not None

    # The victim's browser session ended; the attacker plants their session cookie.
    victim.delete_cookie("session")
    victim.set_cookie("session", planted)
    assert whoami(victim) == "alice@example.com"  # signed in by the remember-me cookie
    victim_cookie = session_cookie(victim)
    assert victim_cookie is not None
    assert sid_of(victim_cookie) != sid_of(planted)
    assert whoami(attacker) is None


# -- 4. the same answer for unknown emails, wrong passwords and inactive users ------


def test_failed_logins_all_look_the_same(site: Site) -> None:
    site.add_user("alice@example.com")
    site.add_user("dormant@example.com", active=False)
    browser = site.client()
    token = csrf_from(browser.get("/auth/login", headers=BROWSER))

    answers = {
        "unknown email": log_in(browser, "nobody@example.com", token=token),
        "wrong password": log_in(browser, "alice@example.com", "wrong password!!", token=token),
        "inactive user": log_in(browser, "dormant@example.com", token=token),
        "huge password": log_in(browser, "alice@example.com", "x" * 10_000, token=token),
    }
    for answer in answers.values():
        assert answer.status_code == 200
        assert GENERIC_FAILURE in answer.text
        assert set_cookies(answer) == []  # no login, no rotation
    pages = {form_page(answer) for answer in answers.values()}
    assert len(pages) == 1, answers.keys()
    assert whoami(browser) is None


# -- 5. open redirects --------------------------------------------------------------

OPEN_REDIRECTS = [
    "https://evil.example/",
    "http://evil.example",
    "HTTPS://EVIL.EXAMPLE",
    "ftp://evil.example/",
    "//evil.example",
    "///evil.example",
    "////evil.example/x",
    "//evil.example@localhost/",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "https:evil.example",
    "http:/evil.example",
    "http:\\\\evil.example",
    "https://localhost@evil.example/",
    "https://evil.example\\@localhost/",
    "http://localhost/private",  # absolute, even to this host
    "//localhost/private",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.domain)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "evil.example",
    "evil.example/private",
    "@evil.example",
    "private",
    "?next=/private",
    "#/private",
    " //evil.example",
    "\t//evil.example",
    "\n//evil.example",
    "\u00a0//evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\x00/evil.example",
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "/%252F%252Fevil.example",
    "/%09/evil.example",
    "/%0d%0a/evil.example",
    "/.//evil.example",
    "/a/..//evil.example",
    "/%2e%2e//evil.example",
    "/\uff0f\uff0fevil.example",  # full-width solidus
    "/\u2215\u2215evil.example",  # division slash
    "/\u2044evil.example",  # fraction slash
    "/\u200b/evil.example",  # zero-width space
    "/\u202e/evil.example",  # right-to-left override
    "/%E2%88%95%E2%88%95evil.example",
    "/private?x=1\r\nSet-Cookie: a=b",
]


def stays_on_site(location: str) -> bool:
    """Whether a browser following ``location`` from the login page stays on this site."""
    parts = urlsplit(location)
    resolved = urlsplit(urljoin("http://localhost/auth/login", location))
    return (
        not parts.scheme
        and not parts.netloc
        and location.startswith("/")
        and not location.startswith("//")
        and "\\" not in location
        and resolved.netloc == "localhost"
    )


def test_login_never_redirects_off_site(site: Site) -> None:
    assert len(set(OPEN_REDIRECTS)) == len(OPEN_REDIRECTS) >= 40
    site.add_user("alice@example.com")
    browser = site.client()
    token = csrf_from(browser.get("/auth/login", headers=BROWSER))

    followed: list[tuple[str, str, str, bool]] = []
    for payload in OPEN_REDIRECTS:
        # ``next`` in the query string (how the login page is linked) and as a form field.
        by_query = log_in(browser, "alice@example.com", next=payload, token=token)
        by_form = browser.post(
            "/auth/login",
            data={
                "csrf_token": token,
                "email": "alice@example.com",
                "password": PASSWORD,
                "next": payload,
            },
            headers=BROWSER,
        )
        for how, response in (("query", by_query), ("form", by_form)):
            assert response.status_code == 302, (payload, response.text)
            location = response.headers["Location"]
            if location != DONE:  # followed: (how, payload, where to, still on this site?)
                followed.append((how, payload, location, stays_on_site(location)))
    assert followed == []


def test_login_follows_a_relative_next_on_this_site(site: Site) -> None:
    site.add_user("alice@example.com")
    browser = site.client()
    response = log_in(browser, "alice@example.com", next="/private?x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/private?x=1"
    assert browser.get("/private?x=1").text == "private page of alice@example.com, x=1"

    token = csrf_from(browser.get("/auth/login"))
    by_form = browser.post(
        "/auth/login",
        data={
            "csrf_token": token,
            "email": "alice@example.com",
            "password": PASSWORD,
            "next": "/account",
        },
    )
    assert by_form.headers["Location"] == "/account"
    assert log_in(browser, "alice@example.com").headers["Location"] == DONE


# -- 6. throttling ------------------------------------------------------------------


def assert_throttled(response: TestResponse, window: float = 900) -> None:
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= window
    assert _LOGIN_THROTTLED_MESSAGE in response.text
    assert set_cookies(response) == []


def test_the_account_throttle_answers_429_after_the_limit(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_LOGIN_ACCOUNT_LIMIT=3)
    site.add_user("alice@example.com")
    site.add_user("bob@example.com")
    attacker = site.client("192.0.2.10")
    token = csrf_from(attacker.get("/auth/login", headers=BROWSER))

    for _ in range(3):
        failed = log_in(attacker, "alice@example.com", "wrong password!!", token=token)
        assert failed.status_code == 200
        assert GENERIC_FAILURE in failed.text
    throttled = log_in(attacker, "Alice@Example.com", "wrong password!!", token=token)
    assert_throttled(throttled)
    # The right password is refused too while the account is throttled.
    assert_throttled(log_in(attacker, "alice@example.com", token=token))
    assert whoami(attacker) is None
    assert_throttled(log_in(site.client("198.51.100.20"), "alice@example.com"))

    # Unknown emails are throttled alike, with the very same answer.
    for _ in range(3):
        assert log_in(attacker, "ghost@example.com", "whatever", token=token).status_code == 200
    ghost = log_in(attacker, "ghost@example.com", "whatever", token=token)
    assert_throttled(ghost)
    # The same page but for each request's own id.
    assert ghost.text.replace(ghost.headers["X-Request-ID"], "") == throttled.text.replace(
        throttled.headers["X-Request-ID"], ""
    )

    # Another account from another address is unaffected.
    bob = site.client("203.0.113.7")
    assert log_in(bob, "bob@example.com", "wrong password!!").status_code == 200
    assert log_in(bob, "bob@example.com").status_code == 302
    assert whoami(bob) == "bob@example.com"

    # The counters are in Redis, and no key names an account or an address.
    keys = site.keys("throttle")
    assert keys
    assert not any("example" in key or "192.0.2" in key for key in keys)


def test_a_successful_login_resets_the_account_counter(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_LOGIN_ACCOUNT_LIMIT=3)
    site.add_user("alice@example.com")
    browser = site.client()
    token = csrf_from(browser.get("/auth/login", headers=BROWSER))
    for _ in range(2):
        assert log_in(browser, "alice@example.com", "wrong!", token=token).status_code == 200
    assert log_in(browser, "alice@example.com", token=token).status_code == 302
    for _ in range(3):  # three more failures are allowed again
        assert log_in(browser, "alice@example.com", "wrong!", token=token).status_code == 200
    assert_throttled(log_in(browser, "alice@example.com", "wrong!", token=token))


def test_the_address_throttle_counts_failures_across_emails(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_LOGIN_ADDRESS_LIMIT=3)
    site.add_user("alice@example.com")
    sprayer = site.client("192.0.2.66")
    token = csrf_from(sprayer.get("/auth/login", headers=BROWSER))
    for email in ("a@example.com", "b@example.com", "alice@example.com"):
        assert log_in(sprayer, email, "Winter2025!", token=token).status_code == 200
    assert_throttled(log_in(sprayer, "c@example.com", "Winter2025!", token=token))
    assert_throttled(log_in(sprayer, "alice@example.com", token=token))

    # Alice herself, from her own address, is not locked out by the sprayer.
    alice = site.client("198.51.100.1")
    assert log_in(alice, "alice@example.com").status_code == 302


# -- 7. API tokens --------------------------------------------------------------------


def test_api_tokens_from_creation_to_revocation(site: Site) -> None:
    site.add_user("alice@example.com")
    created = site.cli("token", "create", "alice@example.com", "--name", "ci")
    token_id, token = created_token(created)
    with site.app.app_context():
        table = flaskstack.get_state(site.app).auth.token_model.__table__
        row = db.session.execute(sa.select(table).where(table.c.id == token_id)).one()
    assert row.name == "ci"
    assert row.user_id is not None
    assert row.revoked_at is None
    assert token.startswith(row.prefix)
    assert all(token not in str(value) for value in row)  # only its hash is kept
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()

    api = site.client()
    response = api.get("/api/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"email": "alice@example.com"}
    assert set_cookies(response) == []
    assert api.get_cookie("session") is None
    assert site.keys() == set()  # no session was created

    # An unsafe method needs no CSRF token with an API token.
    posted = api.post("/api/notes", json={"title": "hi"}, headers=bearer(token))
    assert posted.status_code == 201
    assert posted.get_json() == {"saved": "hi", "by": "alice@example.com"}
    assert set_cookies(posted) == []
    assert site.keys() == set()

    listed = site.cli("token", "list", "alice@example.com")
    assert listed.exit_code == 0, listed.output
    assert f"{token_id}  " in listed.output
    assert "'ci'" in listed.output
    assert " active " in listed.output

    revoked = site.cli("token", "revoke", str(token_id))
    assert revoked.exit_code == 0, revoked.output
    assert_unauthorized_problem(api.get("/api/me", headers=bearer(token)))
    assert_unauthorized_problem(
        api.post("/api/notes", json={"title": "again"}, headers=bearer(token))
    )
    listed = site.cli("token", "list")
    assert listed.exit_code == 0, listed.output
    assert " revoked " in listed.output
    assert site.keys() == set()


def test_expired_and_inactive_users_tokens_are_refused(site: Site) -> None:
    site.add_user("alice@example.com")
    site.add_user("bob@example.com")
    expiring_id, expiring = created_token(
        site.cli("token", "create", "alice@example.com", "--name", "d", "--expires-in-days", "1")
    )
    _, bobs = created_token(site.cli("token", "create", "bob@example.com", "--name", "b"))
    api = site.client()
    assert api.get("/api/me", headers=bearer(expiring)).status_code == 200
    assert api.get("/api/me", headers=bearer(bobs)).status_code == 200

    with site.app.app_context():
        state = flaskstack.get_state(site.app).auth
        record = db.session.get_one(state.token_model, expiring_id)
        record.expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
        bob = db.session.execute(
            sa.select(state.user_model).where(state.user_model.email == "bob@example.com")
        ).scalar_one()
        bob.active = False
        db.session.commit()

    assert_unauthorized_problem(api.get("/api/me", headers=bearer(expiring)))
    assert_unauthorized_problem(api.get("/api/me", headers=bearer(bobs)))


def test_a_tokens_last_use_is_recorded_at_most_once_a_minute(site: Site) -> None:
    site.add_user("alice@example.com")
    token_id, token = created_token(
        site.cli("token", "create", "alice@example.com", "--name", "ci")
    )
    api = site.client()

    def last_used() -> dt.datetime | None:
        with site.app.app_context():
            record = db.session.get_one(flaskstack.get_state(site.app).auth.token_model, token_id)
            return t.cast("dt.datetime | None", record.last_used_at)

    def set_last_used(moment: dt.datetime) -> None:
        with site.app.app_context():
            table = flaskstack.get_state(site.app).auth.token_model.__table__
            db.session.execute(
                sa.update(table).where(table.c.id == token_id).values(last_used_at=moment)
            )
            db.session.commit()

    assert last_used() is None
    assert api.get("/api/me", headers=bearer(token)).status_code == 200
    first = last_used()
    assert first is not None
    assert abs(dt.datetime.now(dt.timezone.utc) - first) < dt.timedelta(seconds=30)

    assert api.get("/api/me", headers=bearer(token)).status_code == 200
    assert last_used() == first  # within the minute: not written again

    two_minutes_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2)
    set_last_used(two_minutes_ago)
    assert api.get("/api/me", headers=bearer(token)).status_code == 200
    recorded = last_used()
    assert recorded is not None
    assert recorded > two_minutes_ago + dt.timedelta(minutes=1)


def test_a_token_under_another_scheme_is_ignored(site: Site) -> None:
    site.add_user("alice@example.com")
    _, token = created_token(site.cli("token", "create", "alice@example.com", "--name", "ci"))
    api = site.client()
    for header in (f"Basic {token}", token, f"Bearer{token}", "Bearer fst_" + "x" * 43):
        assert_unauthorized_problem(
            api.get("/api/me", headers={"Authorization": header, **JSON_CLIENT})
        )
    # A browser behind HTTP Basic auth is still a browser: sent to the login page.
    behind_basic = api.get("/private", headers={"Authorization": f"Basic {token}", **BROWSER})
    assert behind_basic.status_code == 302
    assert urlsplit(behind_basic.headers["Location"]).path == "/auth/login"
    # ``Basic`` is no API token: it authenticates nobody here, and with the
    # browser's session cookie an unsafe request still needs a CSRF token.
    basic = {"Authorization": f"Basic {token}"}
    assert_unauthorized_problem(
        api.post("/api/notes", json={"title": "x"}, headers={**basic, **JSON_CLIENT})
    )
    assert site.keys() == set()
    browser = site.client()
    assert log_in(browser, "alice@example.com").status_code == 302
    refused = browser.post("/api/notes", json={"title": "x"}, headers=basic)
    assert refused.status_code == 400


def test_a_bad_token_does_not_fall_back_to_the_session_cookie(site: Site) -> None:
    """A Bearer header skips the CSRF check, so it must not ride on the cookie either."""
    site.add_user("alice@example.com")
    browser = site.client()
    assert log_in(browser, "alice@example.com").status_code == 302
    assert whoami(browser) == "alice@example.com"

    forged = browser.post("/api/notes", json={"title": "x"}, headers=bearer("fst_forged"))
    assert_unauthorized_problem(forged)
    no_csrf = browser.post("/api/notes", json={"title": "x"})
    assert no_csrf.status_code == 400  # the cookie alone needs the CSRF token
    assert whoami(browser) == "alice@example.com"


# -- 8. unauthenticated requests ---------------------------------------------------------


def test_unauthenticated_requests_get_401_or_a_redirect_and_no_session(site: Site) -> None:
    client = site.client()
    for headers in (JSON_CLIENT, {"Authorization": "Bearer fst_nothing"}, {"Accept": PROBLEM}):
        assert_unauthorized_problem(client.get("/api/me", headers=headers))
        assert_unauthorized_problem(client.get("/private", headers=headers))

    redirected = client.get("/private?x=1&y=%2F", headers=BROWSER)
    assert redirected.status_code == 302
    location = redirected.headers["Location"]
    assert stays_on_site(location)
    assert urlsplit(location).path == "/auth/login"
    assert parse_qs(urlsplit(location).query) == {"next": ["/private?x=1&y=%2F"]}
    assert set_cookies(redirected) == []
    assert client.get_cookie("session") is None
    assert site.keys() == set()  # no flashed message, no session

    page = client.get(location, headers=BROWSER)
    assert "Please log in to access this page." not in page.text  # Flask-Login's flash


# -- 9. the CLI -----------------------------------------------------------------------------


def test_create_user_reads_the_password_from_stdin(site: Site) -> None:
    created = site.cli(
        "create-user", "Carol@Example.com", "--password-stdin", input=PASSWORD + "\n"
    )
    assert created.exit_code == 0, created.output
    assert "carol@example.com" in created.output
    assert PASSWORD not in created.output
    assert log_in(site.client(), "carol@example.com").status_code == 302

    duplicate = site.cli(
        "create-user", "CAROL@example.com", "--password-stdin", input=OTHER_PASSWORD + "\n"
    )
    assert duplicate.exit_code != 0
    assert "'carol@example.com' already exists" in duplicate.output

    short = site.cli("create-user", "dave@example.com", "--password-stdin", input="short\n")
    assert short.exit_code != 0
    assert "the password was refused: Use at least 12 characters." in short.output

    on_argv = site.cli("create-user", "erin@example.com", "--password", PASSWORD)
    assert on_argv.exit_code == 2
    assert re.search(r"No such option:? '?--password\b", on_argv.output), on_argv.output
    positional = site.cli("create-user", "erin@example.com", PASSWORD)
    assert positional.exit_code == 2
    assert "unexpected extra argument" in positional.output

    inactive = site.cli(
        "create-user", "frank@example.com", "--password-stdin", "--inactive", input=PASSWORD
    )
    assert inactive.exit_code == 0, inactive.output
    assert GENERIC_FAILURE in log_in(site.client(), "frank@example.com").text

    with site.app.app_context():
        model = flaskstack.get_state(site.app).auth.user_model
        emails = db.session.execute(sa.select(model.email).order_by(model.email)).scalars().all()
    assert emails == ["carol@example.com", "frank@example.com"]


def test_token_commands_name_what_is_missing(site: Site) -> None:
    missing_user = site.cli("token", "create", "nobody@example.com", "--name", "ci")
    assert missing_user.exit_code != 0
    assert "nobody@example.com" in missing_user.output
    missing_token = site.cli("token", "revoke", "999")
    assert missing_token.exit_code != 0
    assert "999" in missing_token.output
    assert site.cli("token", "list").output.strip() == "No tokens."


# -- 10. rehashing ---------------------------------------------------------------------------


def test_an_outdated_hash_is_redone_at_login(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_PASSWORD_METHOD="scrypt")  # the default: hashing is under test
    old_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    site.add_user("alice@example.com", password_hash=old_hash)
    before = site.stored_user("alice@example.com")

    assert GENERIC_FAILURE in log_in(site.client(), "alice@example.com", "wrong!").text
    assert site.stored_user("alice@example.com")["password_hash"] == old_hash

    browser = site.client()
    assert log_in(browser, "alice@example.com").status_code == 302
    after = site.stored_user("alice@example.com")
    assert after["password_hash"].startswith("scrypt:")
    assert check_password_hash(after["password_hash"], PASSWORD)
    assert after["session_token"] == before["session_token"]  # other sessions live on
    assert log_in(site.client(), "alice@example.com").status_code == 302


# -- 11. what a request costs in Redis ------------------------------------------------------


def test_requests_cost_one_redis_command_or_none(
    build: Callable[..., Site], redis_server: RedisServer
) -> None:
    site = build(redis_url=redis_server.url)
    site.add_user("alice@example.com")
    browser = site.client()
    assert log_in(browser, "alice@example.com").status_code == 302
    assert whoami(browser) == "alice@example.com"  # warm-up: the connection is open

    redis_server.reset_stats()
    assert whoami(browser) == "alice@example.com"
    assert redis_server.command_counts() == {"getex": 1}

    redis_server.reset_stats()
    assert browser.get("/private").status_code == 200
    assert redis_server.command_counts() == {"getex": 1}

    redis_server.reset_stats()
    plain = browser.get("/plain")
    assert plain.status_code == 200
    assert browser.get_cookie("session") is not None
    assert redis_server.command_counts() == {}
    assert set_cookies(plain) == []

    redis_server.reset_stats()
    assert whoami(site.client()) is None  # no cookie: nothing to read
    assert redis_server.command_counts() == {}


# -- 12. switches and custom user models ------------------------------------------------------


def test_registration_can_be_switched_off(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_REGISTRATION=False)
    browser = site.client()
    assert browser.get("/auth/register", headers=BROWSER).status_code == 404
    token = csrf_from(browser.get("/auth/login", headers=BROWSER))
    data = {"csrf_token": token, "email": "a@example.com", "password": PASSWORD}
    posted = browser.post("/auth/register", data={**data, "confirm": PASSWORD}, headers=BROWSER)
    assert posted.status_code == 404
    assert "/auth/register" not in browser.get("/auth/login", headers=BROWSER).text


def test_a_custom_user_model_signs_in_and_gets_tokens(build: Callable[..., Site]) -> None:
    site = build(user_model=Member)
    auth = flaskstack.get_state(site.app).auth
    assert auth.user_model is Member
    assert auth.token_model.__tablename__ == "members_api_tokens"
    (foreign_key,) = auth.token_model.__table__.c.user_id.foreign_keys
    assert foreign_key.target_fullname == "members.id"

    created = site.cli("create-user", "Mia@Example.com", "--password-stdin", input=PASSWORD)
    assert created.exit_code == 0, created.output
    with site.app.app_context():
        rows = db.session.execute(sa.text("SELECT email FROM members")).scalars().all()
    assert rows == ["mia@example.com"]

    browser = site.client()
    assert log_in(browser, "mia@example.com", next="/account").headers["Location"] == "/account"
    assert "Signed in as mia@example.com" in browser.get("/account").text
    assert log_out(browser).status_code == 302
    assert whoami(browser) is None

    _, token = created_token(site.cli("token", "create", "mia@example.com", "--name", "ci"))
    assert site.client().get("/api/me", headers=bearer(token)).get_json() == {
        "email": "mia@example.com"
    }
    with site.app.app_context():
        count = db.session.execute(sa.text("SELECT count(*) FROM members_api_tokens")).scalar()
    assert count == 1


def test_the_user_model_can_be_named_by_its_import_path(make_app: t.Any) -> None:
    from flaskstack import get_state
    from flaskstack.auth import User

    app = make_app({"FLASKSTACK_USER_MODEL": "flaskstack.auth:User"})
    assert get_state(app).auth.user_model is User
    with pytest.raises(flaskstack.ConfigError, match="FLASKSTACK_USER_MODEL"):
        make_app({"FLASKSTACK_USER_MODEL": "no_such_module:User"})
    with pytest.raises(flaskstack.ConfigError, match=r"expected a db\.Model class"):
        make_app({"FLASKSTACK_USER_MODEL": "flaskstack.database:NAMING_CONVENTION"})


def test_an_apps_own_login_view_receives_the_redirect(
    make_app: AppFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app({"SQLALCHEMY_DATABASE_URI": postgres_url})

    @app.get("/sign-in")
    def sign_in() -> str:
        return "our sign-in page"

    add_views(app)
    monkeypatch.setattr(flaskstack.login_manager, "login_view", "sign_in")
    response = app.test_client().get("/account", headers=BROWSER)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/sign-in"
    assert parse_qs(urlsplit(response.headers["Location"]).query) == {"next": ["/account"]}


def test_an_app_with_its_own_user_model_gets_no_default_users_table(tmp_path: t.Any) -> None:
    # A fresh interpreter: in this one other tests have declared the default model.
    (tmp_path / "ownusers.py").write_text(
        "import sqlalchemy as sa\n"
        "from flask import Flask\n"
        "from sqlalchemy.orm import Mapped, mapped_column\n"
        "import flaskstack\n"
        "from flaskstack import db\n"
        "from flaskstack.auth import UserMixin\n"
        "class User(UserMixin, db.Model):\n"
        "    __tablename__ = 'people'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    nickname: Mapped[str] = mapped_column(sa.String(40), default='')\n"
        "app = Flask('ownusers')\n"
        "flaskstack.init_app(app, {'SQLALCHEMY_DATABASE_URI': 'sqlite://',\n"
        "                          'FLASKSTACK_USER_MODEL': 'ownusers:User'})\n"
        "print(sorted(db.metadata.tables))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import ownusers"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "['people', 'people_account_tokens', 'people_api_tokens', 'people_confirmed_emails', "
        "'people_logins']"
    )


# -- 13. the promises kept on Flask-Login's public hooks ---------------------------------------


def test_a_token_request_is_the_tokens_user_whatever_cookies_it_carries(
    build: Callable[..., Site], redis_server: RedisServer
) -> None:
    """Alice's browser cookies (session and remember-me) ride along with Bob's token."""
    site = build(redis_url=redis_server.url)
    site.add_user("alice@example.com")
    site.add_user("bob@example.com")
    _, token = created_token(site.cli("token", "create", "bob@example.com", "--name", "ci"))
    browser = site.client()
    assert log_in(browser, "alice@example.com", remember=True).status_code == 302
    remember_cookie = browser.get_cookie("remember_token")
    assert remember_cookie is not None
    assert session_cookie(browser) is not None
    keys_before = site.keys()
    remembered_only = fresh_client_with(site, remember_token=remember_cookie.value)

    for client in (browser, remembered_only):
        redis_server.reset_stats()
        read = client.get("/whoami", headers=bearer(token))
        assert read.get_json() == {"user": "bob@example.com"}
        written = client.post("/api/notes", json={"title": "t"}, headers=bearer(token))
        assert written.status_code == 201  # no CSRF token needed: the token authenticates
        assert written.get_json() == {"saved": "t", "by": "bob@example.com"}
        assert redis_server.command_counts() == {}  # the session was never read or written
        for response in (read, written):
            assert set_cookies(response) == []
            assert "Cookie" not in response.vary
    assert site.keys() == keys_before

    # The browser itself is still Alice's, and the remember-me cookie still signs in.
    assert whoami(browser) == "alice@example.com"
    assert whoami(remembered_only) == "alice@example.com"


def test_an_anonymous_visit_without_cookies_costs_no_redis_command(
    build: Callable[..., Site], redis_server: RedisServer
) -> None:
    site = build(redis_url=redis_server.url)

    @site.app.get("/page")
    def page() -> str:
        return render_template_string(
            "{% if current_user.is_authenticated %}hi {{ current_user.email }}"
            "{% else %}hello{% endif %}"
        )

    visitor = site.client()
    assert visitor.get("/plain").status_code == 200  # warm-up: the connection is open
    redis_server.reset_stats()
    responses = [
        visitor.get("/plain"),
        visitor.get("/page"),
        visitor.get("/whoami"),
        visitor.get("/private", headers=BROWSER),
        visitor.get("/api/me", headers=JSON_CLIENT),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 302, 401]
    assert responses[1].text == "hello"
    assert redis_server.command_counts() == {}
    assert all(set_cookies(r) == [] for r in responses)
    assert "Cookie" not in responses[0].vary  # nothing looked at the session
    assert site.keys() == set()


def test_a_remember_me_sign_in_moves_the_session_to_a_new_id_in_redis(site: Site) -> None:
    site.add_user("alice@example.com")
    victim = site.client()
    assert log_in(victim, "alice@example.com", remember=True).status_code == 302
    remember_cookie = victim.get_cookie("remember_token")
    assert remember_cookie is not None

    attacker = site.client()
    csrf_from(attacker.get("/auth/login", headers=BROWSER))
    planted = session_cookie(attacker)
    assert planted is not None
    before = site.keys()  # the victim's earlier session; the attacker's is in its cookie

    # The victim's session is gone (browser restarted); the attacker's id is planted.
    victim.delete_cookie("session")
    victim.set_cookie("session", planted)
    signed_in = victim.get("/whoami")
    assert signed_in.get_json() == {"user": "alice@example.com"}
    rotated = session_cookie(victim)
    assert rotated is not None
    assert sid_of(rotated) != sid_of(planted)
    assert site.keys() == {*before, site.session_key(sid_of(rotated))}  # a new id in Redis
    assert whoami(attacker) is None

    # From now on the session carries the user; the remember-me cookie is not needed.
    victim.delete_cookie("remember_token")
    assert whoami(victim) == "alice@example.com"
    assert session_cookie(victim) == rotated  # no second rotation


def test_a_stale_login_on_a_fresh_login_view_is_asked_to_sign_in_again(site: Site) -> None:
    from flask_login import fresh_login_required

    @site.app.get("/settings")
    @fresh_login_required
    def settings() -> str:
        return "settings"

    site.add_user("alice@example.com")
    fresh = site.client()
    assert log_in(fresh, "alice@example.com", remember=True).status_code == 302
    assert fresh.get("/settings").text == "settings"

    remember_cookie = fresh.get_cookie("remember_token")
    assert remember_cookie is not None
    stale = fresh_client_with(site, remember_token=remember_cookie.value)
    assert whoami(stale) == "alice@example.com"  # signed in by the cookie: not fresh
    page = stale.get("/settings?tab=2", headers=BROWSER)
    assert page.status_code == 302
    location = page.headers["Location"]
    assert urlsplit(location).path == "/auth/login"
    assert parse_qs(urlsplit(location).query) == {"next": ["/settings?tab=2"]}
    assert "Please reauthenticate" not in stale.get(location, headers=BROWSER).text  # no flash
    api = stale.get("/settings", headers=JSON_CLIENT)
    assert api.status_code == 401
    assert api.mimetype == PROBLEM
    assert "sign in again" in api.get_json()["detail"]


@pytest.mark.parametrize(
    ("authorization", "is_token"),
    [
        ("Bearer fst_forged", True),
        ("bearer fst_forged", True),
        ("BEARER   fst_forged  ", True),
        ("Bearer", False),
        ("Bearer   ", False),
        ("Basic YWxpY2U6cHc=", False),
        ("Bearerfst_forged", False),
        ("Token fst_forged", False),  # not among this app's schemes
    ],
)
def test_csrf_and_authentication_agree_on_what_an_api_token_is(
    site: Site, authorization: str, is_token: bool
) -> None:
    """Exempt from CSRF exactly when authenticated by the token alone (here: as nobody)."""
    site.add_user("alice@example.com")
    browser = site.client()
    assert log_in(browser, "alice@example.com").status_code == 302
    headers = {"Authorization": authorization, **JSON_CLIENT}
    posted = browser.post("/api/notes", json={"title": "x"}, headers=headers)
    read = browser.get("/whoami", headers=headers).get_json()
    if is_token:
        assert_unauthorized_problem(posted)  # no CSRF check, and not Alice's cookie either
        assert read == {"user": None}
    else:
        assert posted.status_code == 400  # the cookie authenticates, so CSRF applies
        assert "CSRF" in posted.get_json()["detail"]
        assert read == {"user": "alice@example.com"}


def test_emails_match_in_any_case_and_only_their_own_address(site: Site) -> None:
    from flaskstack.auth import normalise_email

    assert normalise_email("  Alice@Example.COM ") == "alice@example.com"
    # Lower-cased, not case-folded: ß and ss are different mailboxes.
    assert normalise_email("Straße@Example.com") == "straße@example.com"

    browser = site.client()
    token = csrf_from(browser.get("/auth/register", headers=BROWSER))
    registered = browser.post(
        "/auth/register",
        data={
            "csrf_token": token,
            "email": "Straße@Example.COM",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
        headers=BROWSER,
    )
    assert registered.status_code == 302, registered.text
    assert site.stored_user("straße@example.com")["email"] == "straße@example.com"
    assert log_in(site.client(), "STRASSE@example.com").status_code == 200  # another address
    assert log_in(site.client(), "STRAßE@EXAMPLE.com").status_code == 302
    assert site.cli("token", "create", "Straße@example.COM", "--name", "ci").exit_code == 0
