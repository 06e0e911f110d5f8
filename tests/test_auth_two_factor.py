"""Two-factor sign-in with TOTP: set-up, codes at sign-in, recovery codes, throttles, the API.

Each test runs an app with FLASKSTACK_TWO_FACTOR on a fresh PostgreSQL
database (one on SQLite) and sessions in the shared Redis under a namespace
of its own. Codes are computed with pyotp from the secret the page or the
endpoint shows, as an authenticator app would.
"""

from __future__ import annotations

import re
import time
import typing as t

import pyotp
import pytest
import sqlalchemy as sa

import flaskstack
from flaskstack import db
from flaskstack.auth import auth_required, current_user
from flaskstack.errors import ConfigError

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
JSON = {"Accept": "application/json"}
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SECRET = re.compile(r'id="two-factor-secret">([A-Z2-7]+)<')
RECOVERY = re.compile(r"<code>([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})</code>")


class Site:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def add_user(self, email: str = "ada@example.com") -> None:
        with self.app.app_context():
            user = flaskstack.get_state(self.app).auth.user_model(email=email)
            user.set_password(PASSWORD)
            db.session.add(user)
            db.session.commit()

    def rows(self, which: str) -> list[dict[str, t.Any]]:
        with self.app.app_context():
            model = getattr(flaskstack.get_state(self.app).auth.two_factor, which)
            result = db.session.execute(sa.select(model.__table__).order_by(model.id))
            return [dict(row._mapping) for row in result]


def add_views(app: Flask) -> None:
    @app.get("/whoami")
    def whoami() -> dict[str, t.Any]:
        return {"user": current_user.email if current_user.is_authenticated else None}

    @app.get("/settings")
    @auth_required
    def settings() -> str:
        return f"settings of {current_user.email}"


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
            "FLASKSTACK_TWO_FACTOR": True,
            **config,
        }
        app = make_app(settings, profile="testing")
        add_views(app)
        with app.app_context():
            tables = [model.__table__ for model in flaskstack.get_state(app).auth.models]
            db.metadata.create_all(bind=db.engine, tables=tables)
        return Site(app)

    return factory


@pytest.fixture
def site(build: Callable[..., Site]) -> Site:
    site = build()
    site.add_user()
    return site


# -- helpers ---------------------------------------------------------------------------


def csrf_from(page: TestResponse) -> str:
    found = CSRF_FIELD.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def submit(client: FlaskClient, path: str, data: dict[str, str]) -> TestResponse:
    token = csrf_from(client.get(path, headers=BROWSER))
    return client.post(path, data={"csrf_token": token, **data}, headers=BROWSER)


def sign_in(client: FlaskClient, email: str = "ada@example.com", **extra: str) -> TestResponse:
    return submit(client, "/auth/login", {"email": email, "password": PASSWORD, **extra})


def sign_out(client: FlaskClient) -> None:
    token = csrf_from(client.get("/auth/login", headers=BROWSER))
    client.post("/auth/logout", data={"csrf_token": token}, headers=BROWSER)


def whoami(client: FlaskClient) -> str | None:
    user: str | None = client.get("/whoami").get_json()["user"]
    return user


def enrol(client: FlaskClient) -> tuple[pyotp.TOTP, list[str]]:
    """Set two-factor up on the page (signed in); the app's TOTP and the recovery codes."""
    page = client.get("/auth/two-factor", headers=BROWSER)
    assert page.status_code == 200, page.text
    found = SECRET.search(page.text)
    assert found is not None, page.text
    totp = pyotp.TOTP(found.group(1))
    done = client.post(
        "/auth/two-factor",
        data={"csrf_token": csrf_from(page), "code": code_at(totp, -1)},
        headers=BROWSER,
    )
    assert done.status_code == 200, done.text
    codes = RECOVERY.findall(done.text)
    assert len(codes) == 10
    return totp, codes


def csrf_header(client: FlaskClient) -> dict[str, str]:
    return {"X-CSRFToken": client.get("/csrf-token").get_json()["csrf_token"]}


def code_at(totp: pyotp.TOTP, steps: int = 0) -> str:
    """The code of the time step ``steps`` away from now."""
    return str(totp.at(time.time() + steps * 30))


def enrolled(site: Site) -> tuple[FlaskClient, pyotp.TOTP, list[str]]:
    client = site.client()
    sign_in(client)
    totp, codes = enrol(client)
    sign_out(client)
    return client, totp, codes


def give_code(client: FlaskClient, code: str) -> TestResponse:
    return submit(client, "/auth/two-factor/verify", {"code": code})


# -- set-up and sign-in ----------------------------------------------------------------


def test_setting_it_up_then_signing_in_takes_a_code(site: Site) -> None:
    browser = site.client()
    assert sign_in(browser).status_code == 302
    page = browser.get("/auth/two-factor", headers=BROWSER)
    assert "<svg" in page.text
    assert "<title>QR code for your authenticator app</title>" in page.text
    assert 'autocomplete="one-time-code"' in page.text
    secret = SECRET.search(page.text)
    assert secret is not None
    wrong = browser.post(
        "/auth/two-factor", data={"csrf_token": csrf_from(page), "code": "000000"}, headers=BROWSER
    )
    assert wrong.status_code == 422
    assert 'aria-invalid="true"' in wrong.text
    assert "not right" in wrong.text
    assert site.rows("secret")[0]["confirmed_at"] is None  # not on before a right code
    totp, codes = enrol(browser)
    assert totp.secret == secret.group(1)  # the same secret until it is confirmed
    assert site.rows("secret")[0]["confirmed_at"] is not None
    stored = {row["code_hash"] for row in site.rows("recovery_code")}
    assert len(stored) == 10
    assert not stored & set(codes)
    assert "Two-factor sign-in</a>" in browser.get("/auth/account", headers=BROWSER).text

    sign_out(browser)
    held = submit(
        browser, "/auth/login?next=/settings", {"email": "ada@example.com", "password": PASSWORD}
    )
    assert held.status_code == 302
    assert held.headers["Location"].endswith("/auth/two-factor/verify")
    assert whoami(browser) is None
    done = give_code(browser, code_at(totp))
    assert done.status_code == 302
    assert done.headers["Location"].endswith("/settings")
    assert whoami(browser) == "ada@example.com"


def test_a_half_signed_in_client_reaches_nothing(site: Site) -> None:
    _, _totp, _ = enrolled(site)
    browser = site.client()
    before = browser.get_cookie("session")
    sign_in(browser)
    after = browser.get_cookie("session")
    assert after is not None
    assert before is None or before.value != after.value
    assert whoami(browser) is None
    assert browser.get("/auth/account", headers=BROWSER).status_code == 302
    assert browser.get("/settings", headers=BROWSER).status_code == 302
    assert browser.get("/auth/sessions", headers=BROWSER).status_code == 302
    assert browser.get("/api/auth/account", headers=JSON).status_code == 401
    assert browser.get("/api/auth/two-factor", headers=JSON).status_code == 401
    assert browser.get("/auth/two-factor", headers=BROWSER).status_code == 302


def test_a_code_works_once_and_within_one_step_of_drift(site: Site) -> None:
    browser, totp, _ = enrolled(site)
    sign_in(browser)
    used = code_at(totp, 1)  # the phone's clock is 30 s ahead
    assert give_code(browser, used).status_code == 302
    sign_out(browser)

    sign_in(browser)
    again = give_code(browser, used)
    assert again.status_code == 422
    assert "used already" in again.text
    assert give_code(browser, code_at(totp, -1)).status_code == 422  # older than the last used
    assert give_code(browser, code_at(totp, 3)).status_code == 422  # too far off
    assert give_code(browser, "12345a").status_code == 422
    assert whoami(browser) is None


def test_a_recovery_code_signs_in_once(site: Site) -> None:
    browser, _totp, codes = enrolled(site)
    sign_in(browser)
    assert give_code(browser, codes[3].upper().replace("-", " ")).status_code == 302
    assert whoami(browser) == "ada@example.com"
    sign_out(browser)
    sign_in(browser)
    assert give_code(browser, codes[3]).status_code == 422
    assert give_code(browser, codes[4]).status_code == 302
    assert sum(row["used_at"] is not None for row in site.rows("recovery_code")) == 2


def test_wrong_codes_are_throttled(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_TWO_FACTOR_ACCOUNT_LIMIT=3)
    site.add_user()
    browser, totp, _ = enrolled(site)
    sign_in(browser)
    for _ in range(3):
        assert give_code(browser, "000000").status_code == 422
    refused = give_code(browser, code_at(totp))  # even a right code, until the window ends
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert whoami(browser) is None


def test_a_held_sign_in_expires(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_TWO_FACTOR_PENDING_TIMEOUT=1)
    site.add_user()
    browser, _totp, _ = enrolled(site)
    sign_in(browser)
    time.sleep(1.2)
    late = browser.get("/auth/two-factor/verify", headers=BROWSER)
    assert late.status_code == 302
    assert late.headers["Location"].endswith("/auth/login")
    assert whoami(browser) is None


def test_turning_it_off_asks_again_and_tells_by_mail(site: Site) -> None:
    from flaskstack._mail_backend import outbox

    browser, totp, _ = enrolled(site)
    sign_in(browser)
    give_code(browser, code_at(totp))
    nothing = submit(browser, "/auth/two-factor/disable", {})
    assert nothing.status_code == 422
    assert "enter your password, or a code" in nothing.text.lower()
    wrong = submit(browser, "/auth/two-factor/disable", {"password": "wrong password!"})
    assert wrong.status_code == 422
    assert "The password is not right." in wrong.text
    assert site.rows("secret")
    done = submit(browser, "/auth/two-factor/disable", {"password": PASSWORD})
    assert done.status_code == 302
    assert site.rows("secret") == []
    assert site.rows("recovery_code") == []
    (message,) = [m for m in outbox(site.app) if "ada@example.com" in m.to]
    assert message.subject == "Two-factor sign-in was turned off"
    sign_out(browser)
    assert sign_in(browser).headers["Location"].endswith("/auth/done")  # the password is enough
    assert whoami(browser) == "ada@example.com"


def test_new_recovery_codes_replace_the_old_ones(site: Site) -> None:
    browser, totp, old = enrolled(site)
    sign_in(browser)
    give_code(browser, code_at(totp))
    page = submit(browser, "/auth/two-factor/recovery-codes", {"code": code_at(totp, 1)})
    assert page.status_code == 200
    new = RECOVERY.findall(page.text)
    assert len(new) == 10
    assert not set(new) & set(old)
    sign_out(browser)
    sign_in(browser)
    assert give_code(browser, old[0]).status_code == 422
    assert give_code(browser, new[0]).status_code == 302


def test_a_role_that_requires_it_allows_only_the_set_up(build: Callable[..., Site]) -> None:
    from flaskstack.auth import create_role, grant_role

    site = build(FLASKSTACK_ROLES=True, FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES=["admin"])
    site.add_user()
    with site.app.app_context():
        create_role("admin")
        user = flaskstack.get_state(site.app).auth.user_model
        grant_role(db.session.execute(sa.select(user)).scalar_one(), "admin")
        db.session.commit()
    browser = site.client()
    held = sign_in(browser)
    assert held.headers["Location"].endswith("/auth/two-factor")
    assert whoami(browser) is None
    assert browser.get("/settings", headers=BROWSER).status_code == 302
    assert browser.get("/api/auth/account", headers=JSON).status_code == 401
    api = browser.post("/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert api.status_code in (400, 403)  # no CSRF header: refused either way
    page = browser.get("/auth/two-factor", headers=BROWSER)
    assert "must use two-factor" in page.text
    _totp, codes = enrol(browser)
    assert codes
    assert whoami(browser) == "ada@example.com"
    assert "Turn two-factor sign-in off" not in browser.get("/auth/two-factor").text
    assert browser.get("/auth/two-factor/disable", headers=BROWSER).status_code == 403


# -- the JSON endpoints ----------------------------------------------------------------


def test_the_api_sets_it_up_and_the_json_sign_in_asks_for_a_code(site: Site) -> None:
    client = site.client()
    csrf = csrf_header(client)
    credentials = {"email": "ada@example.com", "password": PASSWORD}
    assert client.post("/api/auth/login", json=credentials, headers=csrf).status_code == 200
    assert client.get("/api/auth/two-factor").get_json() == {
        "enabled": False,
        "required": False,
        "recovery_codes_left": 0,
    }
    started = client.post("/api/auth/two-factor/enrolment", headers=csrf).get_json()
    assert started["otpauth_uri"].startswith("otpauth://totp/")
    assert started["qr_svg"].startswith("<svg")
    totp = pyotp.TOTP(started["secret"])
    wrong = client.post("/api/auth/two-factor/confirmation", json={"code": "000000"}, headers=csrf)
    assert wrong.status_code == 422
    assert "code" in wrong.get_json()["errors"]
    confirmed = client.post(
        "/api/auth/two-factor/confirmation", json={"code": totp.now()}, headers=csrf
    )
    assert confirmed.status_code == 200
    codes = confirmed.get_json()["recovery_codes"]
    assert len(codes) == 10
    again = client.post("/api/auth/two-factor/enrolment", headers=csrf)
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"

    client.post("/api/auth/logout", headers=csrf)
    csrf = csrf_header(client)
    asked = client.post("/api/auth/login", json=credentials, headers=csrf)
    assert asked.status_code == 401
    assert asked.mimetype == "application/problem+json"
    assert asked.get_json()["errors"] == {"code": ["required"]}
    assert whoami(client) is None
    replay = client.post("/api/auth/login", json={**credentials, "code": totp.now()}, headers=csrf)
    assert replay.status_code == 401  # the confirmation used this step's code
    signed = client.post(
        "/api/auth/login", json={**credentials, "recovery_code": codes[0]}, headers=csrf
    )
    assert signed.status_code == 200, signed.text
    assert whoami(client) == "ada@example.com"

    csrf = csrf_header(client)
    refused = client.post("/api/auth/two-factor/disable", json={"password": "nope"}, headers=csrf)
    assert refused.status_code == 422
    assert "password" in refused.get_json()["errors"]
    off = client.post("/api/auth/two-factor/disable", json={"password": PASSWORD}, headers=csrf)
    assert off.status_code == 200
    assert client.get("/api/auth/two-factor").get_json()["enabled"] is False


def test_the_openapi_document_describes_the_endpoints(site: Site) -> None:
    document = site.client().get("/api/openapi.json").get_json()
    paths = document["paths"]
    for path in ("enrolment", "confirmation", "recovery-codes", "disable"):
        assert f"/api/auth/two-factor/{path}" in paths
    login = paths["/api/auth/login"]["post"]
    assert "401" in login["responses"]


# -- settings and refusals -------------------------------------------------------------


def test_off_by_default_no_pages_and_no_tables(make_app: AppFactory, postgres_url: str) -> None:
    app = make_app({"SQLALCHEMY_DATABASE_URI": postgres_url}, profile="testing")
    assert flaskstack.get_state(app).auth.two_factor is None
    assert app.test_client().get("/auth/two-factor").status_code == 404
    assert app.test_client().get("/api/auth/two-factor").status_code == 404
    names = {model.__table__.name for model in flaskstack.get_state(app).auth.models}
    assert not {"user_two_factor", "user_recovery_codes"} & names


def test_it_needs_the_auth_pages(make_app: AppFactory) -> None:
    with pytest.raises(ConfigError) as caught:
        make_app(
            {"FLASKSTACK_TWO_FACTOR": True, "FLASKSTACK_AUTH_URL_PREFIX": None}, profile="testing"
        )
    assert "auth.E021" in str(caught.value)


def test_required_roles_need_roles(make_app: AppFactory) -> None:
    with pytest.raises(ConfigError) as caught:
        make_app(
            {"FLASKSTACK_TWO_FACTOR": True, "FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES": ["admin"]},
            profile="testing",
        )
    assert "auth.E022" in str(caught.value)
    assert "FLASKSTACK_ROLES = True" in str(caught.value)


def test_stack_check_says_whether_a_role_requires_it(build: Callable[..., Site]) -> None:
    site = build()
    result = site.app.test_cli_runner().invoke(args=["stack", "check"])
    assert "auth.W020" not in result.output  # optional for everyone: nothing to report
    site = build(FLASKSTACK_ROLES=True, FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES=["admni"])
    result = site.app.test_cli_runner().invoke(args=["stack", "check"])
    assert "auth.W020" in result.output
    assert "'admni'" in result.output


def test_a_password_reset_link_does_not_skip_the_code(site: Site) -> None:
    from flaskstack._mail_backend import outbox

    _browser, _totp, _ = enrolled(site)
    other = site.client()
    submit(other, "/auth/reset-password", {"email": "ada@example.com"})
    link = re.search(r"http://localhost(/auth/reset-password/\S+)", outbox(site.app)[-1].body)
    assert link is not None
    new = "a brand new password 1"
    done = submit(other, link.group(1), {"password": new, "confirm": new})
    assert done.status_code == 302
    assert done.headers["Location"].endswith("/auth/two-factor/verify")
    assert whoami(other) is None


def test_on_sqlite_too(make_app: AppFactory, tmp_path: t.Any) -> None:
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'two-factor.db'}",
            "FLASKSTACK_PASSWORD_METHOD": FAST_HASH,
            "FLASKSTACK_TWO_FACTOR": True,
        },
        profile="testing",
    )
    add_views(app)
    with app.app_context():
        db.create_all()
    site = Site(app)
    site.add_user()
    browser, totp, _ = enrolled(site)
    sign_in(browser)
    assert whoami(browser) is None
    code = code_at(totp)
    assert give_code(browser, code).status_code == 302
    assert whoami(browser) == "ada@example.com"
    sign_out(browser)
    sign_in(browser)
    assert give_code(browser, code).status_code == 422
