"""Roles and permissions: who may do what, in pages, in the API and in the OpenAPI document.

Apps run on a fresh PostgreSQL database with ``FLASKSTACK_ROLES = True`` and
flaskstack's default user model; people sign in through the real sign-in
form (pages) or with API tokens made by ``flask stack token create`` (API).
Roles are made and granted with ``flask stack role``, as an operator would.
"""

from __future__ import annotations

import re
import typing as t

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

import flaskstack
from flaskstack import db, rest
from flaskstack.auth import (
    UserMixin,
    auth_required,
    create_role,
    current_user,
    grant_role,
    has_permission,
    has_role,
    revoke_role,
)
from flaskstack.errors import ConfigError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

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


class Articles(rest.Resource):
    """Anyone signed in reads; deleting needs the permission ``articles.delete``."""

    method_decorators: t.ClassVar[dict[str, list[t.Any]]] = {
        "get": [auth_required],
        "delete": [auth_required(permissions="articles.delete")],
    }

    def get(self) -> dict[str, t.Any]:
        """List articles."""
        return {"articles": []}

    def delete(self) -> dict[str, t.Any]:
        """Delete every article."""
        return {"deleted": True}


class Reports(rest.Resource):
    """For editors or auditors who may also export."""

    @auth_required(roles=("editor", "auditor"), permissions=("reports.read", "reports.export"))
    def get(self) -> dict[str, t.Any]:
        """Export the reports."""
        return {"reports": [], "by": current_user.email}


def add_views(app: Flask) -> None:
    @app.get("/drafts")
    @auth_required(roles="editor")
    def drafts() -> str:
        return f"drafts of {current_user.email}"

    @app.get("/checks")
    @auth_required
    def checks() -> dict[str, t.Any]:
        # Many checks in one request: the role tables are read once.
        user = current_user._get_current_object()
        answers = [has_permission(user, f"p{n}") for n in range(5)]
        answers += [has_role(user, name) for name in ("editor", "auditor", "nobody")]
        answers.append(has_permission(user, "articles.delete"))
        return {"answers": answers}

    @app.get("/plain")
    @auth_required
    def plain() -> str:
        return "plain"


class Site:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def cli(self, *args: str) -> str:
        result = self.app.test_cli_runner().invoke(args=["stack", *args])
        assert result.exit_code == 0, result.output
        return result.output

    def cli_error(self, *args: str) -> str:
        result = self.app.test_cli_runner().invoke(args=["stack", *args])
        assert result.exit_code != 0, result.output
        return result.output

    def add_user(self, email: str) -> None:
        with self.app.app_context():
            user = flaskstack.get_state(self.app).auth.user_model(email=email)
            user.set_password(PASSWORD)
            db.session.add(user)
            db.session.commit()

    def token_for(self, email: str) -> str:
        output = self.cli("token", "create", email, "--name", "ci")
        found = re.search(r"fst_[A-Za-z0-9_-]{40,}", output)
        assert found is not None, output
        return found.group(0)

    def browser(self, email: str) -> FlaskClient:
        client = self.app.test_client()
        page = client.get("/auth/login", headers=BROWSER)
        token = CSRF_FIELD.search(page.text)
        assert token is not None, page.text
        data = {"csrf_token": token.group(1), "email": email, "password": PASSWORD}
        response = client.post("/auth/login", data=data, headers=BROWSER)
        assert response.status_code == 302, response.text
        return client


def _tables(app: Flask) -> list[sa.Table]:
    return [model.__table__ for model in flaskstack.get_state(app).auth.models]


@pytest.fixture
def build(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> Iterator[Callable[..., Site]]:
    before = list(flaskstack.api.resources)
    flaskstack.api.add_resource(Articles, "/articles")
    flaskstack.api.add_resource(Reports, "/reports")

    def factory(**config: t.Any) -> Site:
        settings = {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "FLASKSTACK_REDIS_URL": REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_PASSWORD_METHOD": FAST_HASH,
            "FLASKSTACK_ROLES": True,
            **config,
        }
        app = make_app(settings, profile="testing")
        add_views(app)
        with app.app_context():
            db.metadata.create_all(bind=db.engine, tables=_tables(app))
        return Site(app)

    yield factory
    flaskstack.api.resources[:] = before


@pytest.fixture
def site(build: Callable[..., Site]) -> Site:
    site = build()
    for email in ("alice@example.com", "bob@example.com", "carol@example.com"):
        site.add_user(email)
    site.cli("role", "create", "editor", "-p", "articles.delete", "-p", "reports.read")
    site.cli("role", "create", "auditor", "-p", "reports.read", "-p", "reports.export")
    site.cli("role", "grant", "editor", "alice@example.com")
    site.cli("role", "grant", "auditor", "carol@example.com")
    return site


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON_CLIENT}


def assert_problem(response: TestResponse, status: int, mentions: str) -> None:
    assert response.status_code == status, response.text
    assert response.mimetype == PROBLEM
    assert mentions in response.get_json()["detail"]


# -- the Done-when line: 403 without the permission, 200 with it, pages and API -------------


def test_the_api_answers_403_without_the_permission_and_200_with_it(site: Site) -> None:
    alice, bob = site.token_for("alice@example.com"), site.token_for("bob@example.com")
    client = site.app.test_client()

    assert client.get("/api/articles", headers=bearer(bob)).status_code == 200
    refused = client.delete("/api/articles", headers=bearer(bob))
    assert_problem(refused, 403, "the permission 'articles.delete'")

    allowed = client.delete("/api/articles", headers=bearer(alice))
    assert allowed.status_code == 200, allowed.text
    assert allowed.get_json() == {"deleted": True}

    # Without any credentials it is still 401, not 403.
    assert client.delete("/api/articles", headers=JSON_CLIENT).status_code == 401


def test_a_page_answers_403_without_the_role_and_200_with_it(site: Site) -> None:
    refused = site.browser("bob@example.com").get("/drafts", headers=BROWSER)
    assert refused.status_code == 403
    assert refused.mimetype == "text/html"
    assert "the role &#39;editor&#39;" in refused.text or "the role 'editor'" in refused.text

    allowed = site.browser("alice@example.com").get("/drafts", headers=BROWSER)
    assert allowed.status_code == 200
    assert allowed.text == "drafts of alice@example.com"

    anonymous = site.app.test_client().get("/drafts", headers=BROWSER)
    assert anonymous.status_code == 302
    assert "/auth/login" in anonymous.headers["Location"]


def test_roles_are_any_of_and_permissions_all_of(site: Site) -> None:
    client = site.app.test_client()
    # alice: editor (reports.read, not reports.export); carol: auditor (both).
    alice, carol = site.token_for("alice@example.com"), site.token_for("carol@example.com")
    bob = site.token_for("bob@example.com")
    assert_problem(client.get("/api/reports", headers=bearer(bob)), 403, "'editor', 'auditor'")
    assert_problem(client.get("/api/reports", headers=bearer(alice)), 403, "'reports.export'")
    answer = client.get("/api/reports", headers=bearer(carol))
    assert answer.status_code == 200, answer.text
    assert answer.get_json()["by"] == "carol@example.com"


def test_a_revoked_role_or_permission_takes_effect_at_the_next_request(site: Site) -> None:
    client = site.app.test_client()
    alice = site.token_for("alice@example.com")
    assert client.delete("/api/articles", headers=bearer(alice)).status_code == 200

    site.cli("role", "update", "editor", "-p", "reports.read")
    assert client.delete("/api/articles", headers=bearer(alice)).status_code == 403

    site.cli("role", "update", "editor", "-p", "reports.read", "-p", "articles.delete")
    assert client.delete("/api/articles", headers=bearer(alice)).status_code == 200

    site.cli("role", "revoke", "editor", "alice@example.com")
    assert client.delete("/api/articles", headers=bearer(alice)).status_code == 403


def test_the_openapi_document_says_what_each_operation_needs(site: Site) -> None:
    document = site.app.test_client().get("/api/openapi.json").get_json()
    articles = document["paths"]["/api/articles"]
    schemes = list(document["components"]["securitySchemes"])

    assert articles["get"]["security"] == [{name: []} for name in schemes]
    assert "x-flaskstack-access" not in articles["get"]

    delete = articles["delete"]
    assert delete["security"] == [{name: ["articles.delete"]} for name in schemes]
    assert delete["x-flaskstack-access"] == {"roles": [], "permissions": ["articles.delete"]}
    assert "'articles.delete'" in delete["responses"]["403"]["description"]

    reports = document["paths"]["/api/reports"]["get"]
    # Requirement objects are alternatives: one per accepted role, each with every permission.
    assert reports["security"] == [
        {name: [role, "reports.read", "reports.export"]}
        for name in schemes
        for role in ("editor", "auditor")
    ]
    assert reports["x-flaskstack-access"] == {
        "roles": [["editor", "auditor"]],
        "permissions": ["reports.read", "reports.export"],
    }
    assert "one of the roles 'editor', 'auditor'" in reports["responses"]["403"]["description"]


def test_the_openapi_document_with_roles_is_valid(site: Site) -> None:
    from openapi_spec_validator import validate

    validate(site.app.test_client().get("/api/openapi.json").get_json())


# -- one statement per request, whatever the number of checks -------------------------------


def _statements(app: Flask, client: FlaskClient, path: str, token: str) -> list[str]:
    seen: list[str] = []

    def record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get(path, headers=bearer(token))
        assert response.status_code == 200, response.text
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def test_any_number_of_checks_costs_one_statement_per_request(site: Site) -> None:
    client = site.app.test_client()
    alice = site.token_for("alice@example.com")
    client.get("/plain", headers=bearer(alice))  # warm: the first request may inspect more

    plain = _statements(site.app, client, "/plain", alice)
    checked = _statements(site.app, client, "/checks", alice)
    extra = [statement for statement in checked if "user_roles" in statement]
    assert len(extra) == 1, checked
    assert len(checked) == len(plain) + 1, (plain, checked)
    answers = client.get("/checks", headers=bearer(alice)).get_json()["answers"]
    assert answers == [False] * 5 + [True, False, False, True]

    # A view that asks nothing reads no role table.
    assert not any("roles" in statement for statement in plain)


# -- the command line --------------------------------------------------------------------


def test_role_and_user_commands(site: Site) -> None:
    listed = site.cli("role", "list")
    assert "editor  users=1  permissions=articles.delete, reports.read" in listed
    assert "auditor  users=1  permissions=reports.export, reports.read" in listed

    shown = site.cli("user", "show", "alice@example.com")
    assert re.search(r"^created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", shown, re.M), shown
    assert "roles: editor" in shown
    assert "permissions: articles.delete, reports.read" in shown

    assert "already holds the role 'editor'" in site.cli(
        "role", "grant", "editor", "alice@example.com"
    )
    assert site.cli("user", "list", "--role", "editor").strip() == (
        "alice@example.com  active  roles=editor"
    )
    everyone = site.cli("user", "list")
    assert "bob@example.com  active  roles=-" in everyone

    assert "there is no role 'owner'" in site.cli_error("role", "grant", "owner", "bob@example.com")
    assert "no user with the email 'nobody@example.com'" in site.cli_error(
        "role", "grant", "editor", "nobody@example.com"
    )
    assert "exists already" in site.cli_error("role", "create", "editor")
    assert "without spaces" in site.cli_error("role", "create", "two words")
    assert "without spaces" in site.cli_error("role", "update", "editor", "-p", "a b")
    # A refused update changes nothing.
    assert "editor  users=1  permissions=articles.delete, reports.read" in site.cli("role", "list")

    site.cli("role", "delete", "auditor")
    assert "auditor" not in site.cli("role", "list")
    assert "roles: -" in site.cli("user", "show", "carol@example.com")


def test_deactivating_a_user_signs_them_out_and_revokes_their_tokens(site: Site) -> None:
    token = site.token_for("bob@example.com")
    browser = site.browser("bob@example.com")
    assert browser.get("/plain").status_code == 200

    output = site.cli("user", "deactivate", "bob@example.com")
    assert "Deactivated bob@example.com" in output
    assert browser.get("/plain", headers=BROWSER).status_code == 302
    api = site.app.test_client().get("/api/articles", headers=bearer(token))
    assert api.status_code == 401
    assert "bob@example.com  inactive" in site.cli("user", "list")

    site.cli("user", "activate", "bob@example.com")
    assert site.browser("bob@example.com").get("/plain").status_code == 200


def test_user_create_is_create_user(site: Site) -> None:
    result = site.app.test_cli_runner().invoke(
        args=["stack", "user", "create", "dan@example.com", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created user dan@example.com" in result.output
    assert site.browser("dan@example.com").get("/plain").status_code == 200


def test_the_role_commands_say_when_roles_are_off(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_ROLES=False)
    assert "FLASKSTACK_ROLES=true" in site.cli_error("role", "list")
    assert flaskstack.get_state(site.app).auth.role_models is None


# -- functions, an app's own roles, refusals -------------------------------------------------


def test_the_functions_grant_and_revoke_in_the_callers_transaction(site: Site) -> None:
    with site.app.test_request_context():
        model = flaskstack.get_state(site.app).auth.user_model
        bob = db.session.execute(
            sa.select(model).where(model.email == "bob@example.com")
        ).scalar_one()
        create_role("support", ["tickets.read"], "Answers tickets")
        assert grant_role(bob, "support") is True
        assert has_permission(bob, "tickets.read")
        db.session.rollback()
    with site.app.test_request_context():
        bob = db.session.execute(
            sa.select(model).where(model.email == "bob@example.com")
        ).scalar_one()
        assert not has_role(bob, "support")  # rolled back with the caller's transaction
        with pytest.raises(LookupError, match="no role 'support'"):
            grant_role(bob, "support")
        assert revoke_role(bob, "editor") is False


class Librarian(UserMixin, db.Model):  # type: ignore[misc,name-defined]
    """An app's own user model answering for its roles itself."""

    __tablename__ = "roles_test_librarians"

    id: Mapped[int] = mapped_column(primary_key=True)
    badge: Mapped[str] = mapped_column(sa.String(20), default="")

    def has_role(self, name: str) -> bool:
        return name == self.badge

    def has_permission(self, name: str) -> bool:
        return self.badge == "editor" and name.startswith("articles.")


def test_an_apps_own_roles_are_asked_through_its_methods(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_ROLES=False, FLASKSTACK_USER_MODEL=Librarian)
    with site.app.app_context():
        db.session.add_all(
            [Librarian(email="ed@example.com", badge="editor"), Librarian(email="li@example.com")]
        )
        for user in db.session.new:
            user.set_password(PASSWORD)
        db.session.commit()
    ed, li = site.token_for("ed@example.com"), site.token_for("li@example.com")
    client = site.app.test_client()
    assert client.delete("/api/articles", headers=bearer(ed)).status_code == 200
    assert client.delete("/api/articles", headers=bearer(li)).status_code == 403
    assert site.browser("ed@example.com").get("/drafts").status_code == 200
    assert site.browser("li@example.com").get("/drafts").status_code == 403
    assert "auth.E011" not in site.app.test_cli_runner().invoke(args=["stack", "check"]).output


def test_check_reports_views_asking_for_roles_nobody_can_answer(
    build: Callable[..., Site],
) -> None:
    site = build(FLASKSTACK_ROLES=False)
    output = site.app.test_cli_runner().invoke(args=["stack", "check"]).output
    assert "auth.E011" in output
    assert "set FLASKSTACK_ROLES = True" in output


def test_roles_refused_beside_a_table_of_the_apps_with_the_same_name(
    make_app: AppFactory, postgres_url: str
) -> None:
    def declare(app: Flask) -> None:
        sa.Table(
            "roles_test_app_members_roles",
            db.metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            extend_existing=True,
        )

    class Member(UserMixin, db.Model):  # type: ignore[misc,name-defined]
        __tablename__ = "roles_test_app_members"
        id: Mapped[int] = mapped_column(primary_key=True)

    try:
        with pytest.raises(ConfigError) as refused:
            make_app(
                {
                    "SQLALCHEMY_DATABASE_URI": postgres_url,
                    "FLASKSTACK_ROLES": True,
                    "FLASKSTACK_USER_MODEL": Member,
                },
                before=declare,
            )
        message = str(refused.value)
        assert "[auth.E010] 'FLASKSTACK_ROLES'" in message
        assert "'roles_test_app_members_roles'" in message
        assert "turn FLASKSTACK_ROLES off" in message
    finally:
        db.metadata.remove(db.metadata.tables["roles_test_app_members_roles"])


def test_the_account_endpoint_lists_roles_and_permissions(
    site: Site, build: Callable[..., Site]
) -> None:
    browser = site.browser("alice@example.com")
    account = browser.get("/api/auth/account", headers=JSON_CLIENT)
    assert account.status_code == 200, account.text
    assert account.get_json()["roles"] == ["editor"]
    assert account.get_json()["permissions"] == ["articles.delete", "reports.read"]

    off = build(FLASKSTACK_ROLES=False)
    off.add_user("zed@example.com")
    answer = off.browser("zed@example.com").get("/api/auth/account", headers=JSON_CLIENT)
    assert answer.get_json()["roles"] is None
    assert answer.get_json()["permissions"] is None
