"""Signed-in devices: sign-out that sticks, remember-me per device, sign out everywhere.

Each test signs people in through the real sign-in form on a fresh PostgreSQL
database (a few on SQLite too) with sessions in the shared Redis under a
namespace of the test's own. A "copied cookie" is a cookie value set on a new
test client: exactly what someone who read it off a device can do.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import typing as t
import uuid

import flask_login
import psycopg
import pytest
import sqlalchemy as sa
from pg_support import session_backend_state
from sqlalchemy.orm import Mapped, mapped_column

import flaskstack
from flaskstack import db
from flaskstack.auth import auth_required, current_user
from flaskstack.testing._database import TestDatabases, isolate

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

REDIS_URL = "redis://127.0.0.1:6379/0"
FAST_HASH = "pbkdf2:sha256:1000"
PASSWORD = "correct horse battery staple"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON_CLIENT = {"Accept": "application/json"}
PROBLEM = "application/problem+json"
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
COOKIE = "remember_token"


class Site:
    """One app with its clients."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def client(self, user_agent: str = "TestBrowser/1.0") -> FlaskClient:
        client = self.app.test_client()
        client.environ_base["HTTP_USER_AGENT"] = user_agent
        return client

    def copy_with(self, cookie: str) -> FlaskClient:
        """A new browser holding only a copy of a remember-me cookie."""
        client = self.client("Thief/6.6")
        client.set_cookie(COOKIE, cookie)
        return client

    def add_user(self, email: str) -> None:
        with self.app.app_context():
            user = flaskstack.get_state(self.app).auth.user_model(email=email)
            user.set_password(PASSWORD)
            db.session.add(user)
            db.session.commit()

    def logins(self, email: str) -> list[dict[str, t.Any]]:
        """The user's rows in the login table."""
        with self.app.app_context():
            auth = flaskstack.get_state(self.app).auth
            users, logins = auth.user_model, auth.login_model
            rows = db.session.execute(
                sa.select(logins.__table__)
                .join(users.__table__, logins.user_id == users.id)
                .where(users.email == email)
                .order_by(logins.id)
            )
            return [dict(row._mapping) for row in rows]

    def token_for(self, email: str) -> str:
        result = self.app.test_cli_runner().invoke(
            args=["stack", "token", "create", email, "--name", "ci"]
        )
        assert result.exit_code == 0, result.output
        found = re.search(r"fst_[A-Za-z0-9_-]{40,}", result.output)
        assert found is not None, result.output
        return found.group(0)


def add_views(app: Flask) -> None:
    @app.get("/whoami")
    def whoami() -> dict[str, t.Any]:
        return {"user": current_user.email if current_user.is_authenticated else None}

    @app.get("/legacy-sign-in/<email>")
    def legacy_sign_in(email: str) -> str:
        # What the app's code did before flaskstack tracked logins.
        model = flaskstack.get_state(app).auth.user_model
        user = db.session.execute(sa.select(model).where(model.email == email)).scalar_one()
        flask_login.login_user(user, remember=True)
        return "signed in"

    @app.get("/settings")
    @auth_required
    def settings() -> str:
        return f"settings of {current_user.email}"


def _auth_tables(app: Flask) -> list[sa.Table]:
    auth = flaskstack.get_state(app).auth
    models = getattr(auth, "models", None)  # every model auth uses, where it says so
    if models is None:
        models = [auth.user_model, auth.token_model]
    return [model.__table__ for model in models]


@pytest.fixture
def build(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> Callable[..., Site]:
    def factory(**config: t.Any) -> Site:
        settings = {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "FLASKSTACK_REDIS_URL": REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_PASSWORD_METHOD": FAST_HASH,
            **config,
        }
        app = make_app(settings, profile="testing")
        add_views(app)
        with app.app_context():
            db.metadata.create_all(bind=db.engine, tables=_auth_tables(app))
        return Site(app)

    return factory


@pytest.fixture
def site(build: Callable[..., Site]) -> Site:
    site = build()
    site.add_user("alice@example.com")
    site.add_user("bob@example.com")
    return site


# -- helpers ---------------------------------------------------------------------------


def csrf_of(client: FlaskClient) -> str:
    page = client.get("/auth/login", headers=BROWSER)
    found = CSRF_FIELD.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def sign_in(client: FlaskClient, email: str, *, remember: bool = False) -> TestResponse:
    data = {"csrf_token": csrf_of(client), "email": email, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    response = client.post("/auth/login", data=data, headers=BROWSER)
    assert response.status_code == 302, response.text
    return response


def sign_out(client: FlaskClient) -> TestResponse:
    # The sign-in page's token is the session's: any page's form would do.
    token = csrf_of(client)
    return client.post("/auth/logout", data={"csrf_token": token}, headers=BROWSER)


def whoami(client: FlaskClient) -> str | None:
    response = client.get("/whoami")
    assert response.status_code == 200
    user: str | None = response.get_json()["user"]
    return user


def remember_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def sessions_page(client: FlaskClient) -> TestResponse:
    page = client.get("/auth/sessions", headers=BROWSER)
    assert page.status_code == 200, page.text
    return page


def page_token(page: TestResponse) -> str:
    found = CSRF_INPUT.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def api_sessions(client: FlaskClient, **headers: str) -> list[dict[str, t.Any]]:
    response = client.get("/api/auth/sessions", headers={**JSON_CLIENT, **headers})
    assert response.status_code == 200, response.text
    sessions: list[dict[str, t.Any]] = response.get_json()["sessions"]
    return sessions


def api_csrf(client: FlaskClient) -> dict[str, str]:
    token = client.get("/csrf-token").get_json()["csrf_token"]
    return {"X-CSRFToken": token}


# -- 1. sign-out that sticks -------------------------------------------------------------


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_a_copied_remember_me_cookie_is_refused_after_sign_out(
    build: Callable[..., Site], database: str, tmp_path: t.Any
) -> None:
    sqlite = f"sqlite:///{tmp_path / 'logins.sqlite3'}"
    config = {} if database == "postgresql" else {"SQLALCHEMY_DATABASE_URI": sqlite}
    site = build(**config)
    site.add_user("alice@example.com")
    laptop = site.client()
    sign_in(laptop, "alice@example.com", remember=True)
    copied = remember_cookie(laptop)
    assert laptop.get("/settings").text == "settings of alice@example.com"

    signed_out = sign_out(laptop)
    assert signed_out.status_code == 302
    assert laptop.get_cookie(COOKIE) is None
    assert whoami(laptop) is None

    thief = site.copy_with(copied)
    assert thief.get("/settings", headers=BROWSER).status_code == 302  # to the sign-in page
    assert thief.get("/settings", headers=JSON_CLIENT).status_code == 401
    assert whoami(thief) is None


def test_a_copied_session_cookie_is_refused_after_sign_out(site: Site) -> None:
    laptop = site.client()
    sign_in(laptop, "alice@example.com")
    copied = laptop.get_cookie("session")
    assert copied is not None
    sign_out(laptop)
    thief = site.client()
    thief.set_cookie("session", copied.value)
    assert whoami(thief) is None
    assert site.logins("alice@example.com") == []


# -- 2. remember-me per device, rotated on use ---------------------------------------------


def test_each_device_gets_its_own_remember_me_cookie(site: Site) -> None:
    laptop, phone = site.client("Laptop/1"), site.client("Phone/1")
    sign_in(laptop, "alice@example.com", remember=True)
    sign_in(phone, "alice@example.com", remember=True)
    laptop_cookie, phone_cookie = remember_cookie(laptop), remember_cookie(phone)
    assert laptop_cookie != phone_cookie

    rows = site.logins("alice@example.com")
    assert [row["user_agent"] for row in rows] == ["Laptop/1", "Phone/1"]
    for row, cookie in zip(rows, (laptop_cookie, phone_cookie), strict=True):
        assert row["remember_hash"] is not None
        assert row["remember_hash"] not in cookie  # only a hash is stored
        assert row["key"] in cookie  # the cookie names its device's login
    with site.app.app_context():
        model = flaskstack.get_state(site.app).auth.user_model
        session_token = db.session.execute(
            sa.select(model.session_token).where(model.email == "alice@example.com")
        ).scalar_one()
    assert session_token not in laptop_cookie  # no longer the user-wide id

    # Signing out on the laptop leaves the phone's cookie working.
    sign_out(laptop)
    assert whoami(site.copy_with(phone_cookie)) == "alice@example.com"
    assert whoami(site.copy_with(laptop_cookie)) is None


def test_a_remember_me_cookie_is_replaced_each_time_it_signs_in(site: Site) -> None:
    laptop = site.client()
    sign_in(laptop, "alice@example.com", remember=True)
    first = remember_cookie(laptop)

    restarted = site.copy_with(first)  # the browser was closed: only the cookie is left
    assert whoami(restarted) == "alice@example.com"
    second = remember_cookie(restarted)
    assert second != first
    (row,) = site.logins("alice@example.com")
    assert row["remember_hash"] is not None

    # The old value signs nobody in any more; the new one does, once.
    assert whoami(site.copy_with(first)) is None
    again = site.copy_with(second)
    assert whoami(again) == "alice@example.com"
    assert remember_cookie(again) not in (first, second)


def test_a_replayed_old_cookie_revokes_the_device(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    laptop = site.client()
    sign_in(laptop, "alice@example.com", remember=True)
    stolen = remember_cookie(laptop)
    thief = site.copy_with(stolen)
    assert whoami(thief) == "alice@example.com"  # the thief was first
    # Some time later, the laptop comes back with the value the thief replaced.
    with site.app.app_context():
        logins = flaskstack.get_state(site.app).auth.login_model
        db.session.execute(
            sa.update(logins).values(last_used_at=logins.last_used_at - dt.timedelta(minutes=5))
        )
        db.session.commit()
    laptop.delete_cookie("session")

    with caplog.at_level(logging.WARNING, logger="flaskstack.auth"):
        assert whoami(laptop) is None
    assert any("copied" in record.getMessage() for record in caplog.records), caplog.text
    assert site.logins("alice@example.com") == []
    # The thief's session and cookie die with the login.
    assert whoami(thief) is None
    thief.delete_cookie("session")
    assert whoami(thief) is None


# -- 3. sign out everywhere, and one device from another -----------------------------------


def test_signing_out_everywhere_ends_every_session_cookie_and_asked_for_tokens(
    site: Site,
) -> None:
    laptop, phone, tablet = site.client("Laptop/1"), site.client("Phone/1"), site.client()
    sign_in(laptop, "alice@example.com", remember=True)
    sign_in(phone, "alice@example.com")
    sign_in(tablet, "alice@example.com", remember=True)
    tablet_cookie = remember_cookie(tablet)
    bob = site.client()
    sign_in(bob, "bob@example.com")
    token = site.token_for("alice@example.com")
    bearer = {"Authorization": f"Bearer {token}"}

    page = sessions_page(laptop)
    done = laptop.post(
        "/auth/sessions/revoke-all",
        data={"csrf_token": page_token(page), "api_tokens": "y"},
        headers=BROWSER,
    )
    assert done.status_code == 302
    assert done.headers["Location"].endswith("/auth/login")
    assert "signed out everywhere (3 devices)" in laptop.get("/auth/login").text

    for client in (laptop, phone, tablet, site.copy_with(tablet_cookie)):
        assert whoami(client) is None
    assert (
        site.app.test_client().get("/settings", headers={**JSON_CLIENT, **bearer}).status_code
        == 401
    )
    assert site.logins("alice@example.com") == []
    assert whoami(bob) == "bob@example.com"  # nobody else's


def test_signing_out_everywhere_keeps_api_tokens_unless_asked(site: Site) -> None:
    laptop = site.client()
    sign_in(laptop, "alice@example.com")
    token = site.token_for("alice@example.com")
    page = sessions_page(laptop)
    laptop.post("/auth/sessions/revoke-all", data={"csrf_token": page_token(page)})
    response = site.app.test_client().get("/settings", headers={"Authorization": f"Bearer {token}"})
    assert response.text == "settings of alice@example.com"


def test_one_device_signs_another_out(site: Site) -> None:
    laptop, phone = site.client("Laptop/1"), site.client("Phone/1")
    sign_in(laptop, "alice@example.com")
    sign_in(phone, "alice@example.com", remember=True)
    phone_cookie = remember_cookie(phone)
    phone_key = next(
        row["key"] for row in site.logins("alice@example.com") if row["user_agent"] == "Phone/1"
    )

    page = sessions_page(laptop)
    assert "Phone/1" in page.text
    done = laptop.post(
        f"/auth/sessions/{phone_key}/revoke",
        data={"csrf_token": page_token(page)},
        headers=BROWSER,
    )
    assert done.status_code == 302
    assert done.headers["Location"].endswith("/auth/sessions")
    after = sessions_page(laptop)
    assert "The device is signed out." in after.text
    assert "Phone/1" not in after.text
    assert whoami(phone) is None
    assert whoami(site.copy_with(phone_cookie)) is None
    assert whoami(laptop) == "alice@example.com"


# -- 4. the page and the JSON list -----------------------------------------------------------


def test_the_page_lists_the_users_devices_and_marks_this_one(site: Site) -> None:
    laptop, phone = site.client("Laptop/1"), site.client("Phone/1")
    sign_in(laptop, "alice@example.com")
    sign_in(phone, "alice@example.com")
    bob = site.client("Bobs/1")
    sign_in(bob, "bob@example.com")

    page = sessions_page(laptop)
    assert page.text.count("<h1>") == 1
    assert page.text.count("Sign out</button>") == 2
    assert "Bobs/1" not in page.text
    (current_row,) = re.findall(r"<tr aria-current=\"true\">.*?</tr>", page.text, re.S)
    assert "Laptop/1" in current_row
    assert "(this device)" in current_row
    assert '<label for="revoke-api-tokens">' in page.text

    anonymous = site.client()
    assert anonymous.get("/auth/sessions", headers=BROWSER).status_code == 302
    assert anonymous.get("/api/auth/sessions", headers=JSON_CLIENT).status_code == 401


def test_the_json_list_marks_the_current_device_and_is_per_user(site: Site) -> None:
    laptop, phone = site.client("Laptop/1"), site.client("Phone/1")
    sign_in(laptop, "alice@example.com", remember=True)
    sign_in(phone, "alice@example.com")
    bob = site.client("Bobs/1")
    sign_in(bob, "bob@example.com")

    listed = api_sessions(laptop)
    assert [(s["user_agent"], s["current"], s["remembered"]) for s in listed] == [
        ("Phone/1", False, False),
        ("Laptop/1", True, True),
    ]
    assert all(s["address"] == "127.0.0.1" and s["created_at"] for s in listed)
    (bobs,) = api_sessions(bob)

    # Another user's key is unknown here: 404, and bob stays signed in.
    gone = laptop.delete(
        f"/api/auth/sessions/{bobs['key']}", headers={**JSON_CLIENT, **api_csrf(laptop)}
    )
    assert gone.status_code == 404
    assert gone.mimetype == PROBLEM
    page_gone = laptop.post(
        f"/auth/sessions/{bobs['key']}/revoke",
        data={"csrf_token": page_token(sessions_page(laptop))},
        headers=BROWSER,
    )
    assert page_gone.status_code == 404
    assert whoami(bob) == "bob@example.com"

    phone_key = listed[0]["key"]
    deleted = laptop.delete(
        f"/api/auth/sessions/{phone_key}", headers={**JSON_CLIENT, **api_csrf(laptop)}
    )
    assert deleted.status_code == 204
    assert whoami(phone) is None
    assert [s["user_agent"] for s in api_sessions(laptop)] == ["Laptop/1"]

    # With an API token: nothing is "current"; sign out everywhere else, keeping nothing.
    token = site.token_for("alice@example.com")
    bearer = {"Authorization": f"Bearer {token}"}
    client = site.app.test_client()
    assert [s["current"] for s in api_sessions(client, **bearer)] == [False]
    revoked = client.post("/api/auth/logout-everywhere", json={}, headers=bearer)
    assert revoked.status_code == 200
    assert revoked.get_json() == {"revoked": 1}
    assert whoami(laptop) is None
    assert api_sessions(client, **bearer) == []  # the token itself was kept


def test_sign_out_everywhere_by_json_can_keep_this_device(site: Site) -> None:
    laptop, phone = site.client("Laptop/1"), site.client("Phone/1")
    sign_in(laptop, "alice@example.com", remember=True)
    sign_in(phone, "alice@example.com", remember=True)
    phone_cookie = remember_cookie(phone)
    laptop_cookie = remember_cookie(laptop)
    response = laptop.post(
        "/api/auth/logout-everywhere",
        json={"keep_current": True},
        headers={**JSON_CLIENT, **api_csrf(laptop)},
    )
    assert response.get_json() == {"revoked": 1}
    assert whoami(laptop) == "alice@example.com"
    assert whoami(site.copy_with(laptop_cookie)) == "alice@example.com"
    assert whoami(phone) is None
    assert whoami(site.copy_with(phone_cookie)) is None


def test_the_openapi_document_shows_the_endpoints_with_auth(site: Site) -> None:
    document = site.app.test_client().get("/api/openapi.json").get_json()
    paths = document["paths"]
    assert set(paths["/api/auth/sessions"]) == {"get"}
    assert set(paths["/api/auth/sessions/{key}"]) >= {"delete"}
    assert set(paths["/api/auth/logout-everywhere"]) == {"post"}
    for operation in (
        paths["/api/auth/sessions"]["get"],
        paths["/api/auth/sessions/{key}"]["delete"],
        paths["/api/auth/logout-everywhere"]["post"],
    ):
        assert operation["security"], operation
        assert "401" in operation["responses"]


# -- 5. CSRF ---------------------------------------------------------------------------------


def test_the_posts_need_a_csrf_token(site: Site) -> None:
    laptop, phone = site.client(), site.client("Phone/1")
    sign_in(laptop, "alice@example.com")
    sign_in(phone, "alice@example.com")
    phone_key = next(
        row["key"] for row in site.logins("alice@example.com") if row["user_agent"] == "Phone/1"
    )

    assert laptop.post("/auth/sessions/revoke-all", headers=BROWSER).status_code == 400
    assert laptop.post(f"/auth/sessions/{phone_key}/revoke", headers=BROWSER).status_code == 400
    refused = laptop.delete(f"/api/auth/sessions/{phone_key}", headers=JSON_CLIENT)
    assert refused.status_code == 400
    assert refused.mimetype == PROBLEM
    assert laptop.post("/api/auth/logout-everywhere", json={}).status_code == 400
    assert whoami(phone) == "alice@example.com"
    assert len(site.logins("alice@example.com")) == 2


# -- 6. adoption: cookies and sessions from before ---------------------------------------------


def test_a_flask_login_cookie_from_before_signs_in_and_is_converted(site: Site) -> None:
    with site.app.test_request_context():
        auth = flaskstack.get_state(site.app).auth
        alice = db.session.execute(
            sa.select(auth.user_model).where(auth.user_model.email == "alice@example.com")
        ).scalar_one()
        legacy = flask_login.encode_cookie(alice.session_token)  # what Flask-Login wrote

    browser = site.copy_with(legacy)
    assert browser.get("/settings").text == "settings of alice@example.com"
    converted = remember_cookie(browser)
    assert converted != legacy
    assert alice.session_token not in converted
    (row,) = site.logins("alice@example.com")
    assert row["key"] in converted
    assert row["remember_hash"] is not None

    # From now on the device is a login like any other: signing out ends it.
    browser.delete_cookie("session")
    assert whoami(browser) == "alice@example.com"
    copy = remember_cookie(browser)
    sign_out(browser)
    assert whoami(site.copy_with(copy)) is None


def test_signing_out_a_session_from_before_also_kills_its_old_cookie(site: Site) -> None:
    browser = site.client()
    # Signed in before logins existed: Flask-Login's session keys and its cookie.
    assert browser.get("/legacy-sign-in/alice@example.com").status_code == 200
    legacy = remember_cookie(browser)
    assert site.logins("alice@example.com") == []
    assert whoami(browser) == "alice@example.com"

    sign_out(browser)
    assert whoami(browser) is None
    assert whoami(site.copy_with(legacy)) is None


# -- 7. cost and scope ----------------------------------------------------------------------


def test_a_signed_in_request_runs_one_sql_statement(site: Site) -> None:
    laptop = site.client()
    sign_in(laptop, "alice@example.com")
    assert whoami(laptop) == "alice@example.com"  # warm-up
    statements: list[str] = []

    def record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        statements.append(statement)

    with site.app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert whoami(laptop) == "alice@example.com"
        assert laptop.get("/settings").status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 2, statements  # one per request
    assert all("_logins" in statement for statement in statements)


class TransactionProbe:
    """A view that reports the server's state of its connection around a write of its own."""

    TABLE = "signin_read_log"

    def __init__(self, site: Site, url: str) -> None:
        self.url = url
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (note text NOT NULL)")

        @site.app.get("/probe")
        @auth_required
        def probe() -> dict[str, str]:
            user = current_user.email  # the sign-in read has run
            before = session_backend_state(url)
            db.session.execute(sa.text(f"INSERT INTO {self.TABLE} VALUES (:note)"), {"note": user})
            return {"before": before, "after": session_backend_state(url)}

    def notes(self) -> list[str]:
        with psycopg.connect(self.url, autocommit=True) as admin:
            return [row[0] for row in admin.execute(f"SELECT note FROM {self.TABLE}")]


@pytest.mark.parametrize("credential", ["session", "token"])
def test_the_sign_in_read_opens_no_transaction_and_the_view_keeps_its_own(
    site: Site, postgres_url: str, credential: str
) -> None:
    """Loading the user before the view costs no BEGIN or ROLLBACK; the view's statements are
    one transaction, rolled back at the end of a request that does not commit."""
    probe = TransactionProbe(site, postgres_url)
    client = site.client()
    headers = {}
    if credential == "session":
        sign_in(client, "alice@example.com")
    else:
        headers = {"Authorization": f"Bearer {site.token_for('alice@example.com')}"}
    for _ in range(2):  # the first request of a token records its use and commits
        response = client.get("/probe", headers=headers)
        assert response.status_code == 200, response.text
    assert response.json == {"before": "idle", "after": "idle in transaction"}
    assert probe.notes() == []


def test_a_sign_in_read_that_fails_leaves_the_next_request_in_a_transaction(
    site: Site, postgres_url: str
) -> None:
    probe = TransactionProbe(site, postgres_url)
    client = site.client()
    sign_in(client, "alice@example.com")
    table = flaskstack.get_state(site.app).auth.user_model.__tablename__
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
        with pytest.raises(sa.exc.ProgrammingError, match="does not exist"):
            client.get("/probe")
        admin.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
    # The same pooled connection serves the next request, in a transaction as always.
    assert client.get("/probe").json == {"before": "idle", "after": "idle in transaction"}
    assert probe.notes() == []


def test_the_sign_in_read_stays_in_a_transaction_at_a_chosen_isolation_level(
    build: Callable[..., Site], postgres_url: str
) -> None:
    site = build(SQLALCHEMY_ENGINE_OPTIONS={"isolation_level": "REPEATABLE READ"})
    site.add_user("alice@example.com")
    probe = TransactionProbe(site, postgres_url)
    client = site.client()
    sign_in(client, "alice@example.com")
    response = client.get("/probe")
    assert response.json == {"before": "idle in transaction", "after": "idle in transaction"}
    assert probe.notes() == []


def test_under_the_test_plugin_the_sign_in_read_stays_in_the_tests_transaction(
    site: Site, postgres_url: str
) -> None:
    """A test's requests sign in inside its transaction, so nothing they write outlives it:
    not the view's row, not the token's first-use time (which the sign-in commits)."""
    probe = TransactionProbe(site, postgres_url)
    token = site.token_for("alice@example.com")
    databases = TestDatabases()
    try:
        with isolate(site.app, databases):
            response = site.client().get("/probe", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            in_the_tests = {"before": "idle in transaction", "after": "idle in transaction"}
            assert response.json == in_the_tests
    finally:
        databases.dispose()
    assert probe.notes() == []
    with site.app.app_context():
        tokens = flaskstack.get_state(site.app).auth.token_model
        assert db.session.scalars(sa.select(tokens.last_used_at)).all() == [None]


def test_an_app_with_its_own_login_manager_is_untouched(make_app: AppFactory) -> None:
    class Person(flask_login.UserMixin):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            self.id = name

    def before(app: Flask) -> None:
        manager = flask_login.LoginManager(app)
        manager.user_loader(lambda name: Person(name))

    app = make_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}, profile="testing", before=before)

    @app.get("/in/<name>")
    def sign_in_as(name: str) -> str:
        flaskstack.auth.login_user(Person(name), remember=True)
        return "in"

    @app.get("/me")
    def me() -> str:
        return str(flask_login.current_user.get_id())

    assert flaskstack.get_state(app).auth.login_model is None
    client = app.test_client()
    assert client.get("/in/ada").status_code == 200
    cookie = remember_cookie(client)
    with app.test_request_context():
        assert flask_login.decode_cookie(cookie) == "ada"  # Flask-Login's own cookie
    copy = app.test_client()
    copy.set_cookie(COOKIE, cookie)
    assert copy.get("/me").text == "ada"
    assert app.url_map.bind("localhost").test("/auth/sessions") is False


class ComposedKeyUser(flask_login.UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """A user model with a two-column primary key: logins are off for it."""

    __tablename__ = f"composed_users_{uuid.uuid4().hex[:6]}"
    realm: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(20), primary_key=True)


def test_without_a_single_column_primary_key_logins_are_off_and_check_says_so(
    make_app: AppFactory,
) -> None:
    app = make_app(
        {"SQLALCHEMY_DATABASE_URI": "sqlite://", "FLASKSTACK_USER_MODEL": ComposedKeyUser},
        profile="testing",
    )
    assert flaskstack.get_state(app).auth.login_model is None
    checked = app.test_cli_runner().invoke(args=["stack", "check"])
    assert "auth.I005" in checked.output


def test_the_test_login_helper_signs_in_as_a_device(site: Site) -> None:
    from flaskstack.testing._clients import login

    with site.app.app_context():
        model = flaskstack.get_state(site.app).auth.user_model
        alice = db.session.execute(
            sa.select(model).where(model.email == "alice@example.com")
        ).scalar_one()
    client = login(site.client("Pytest/1"), alice)
    assert whoami(client) == "alice@example.com"
    assert [row["user_agent"] for row in site.logins("alice@example.com")] == ["Pytest/1"]
    sign_out(client)
    assert site.logins("alice@example.com") == []
