"""The admin (``FLASKSTACK_ADMIN``): who gets in, what they may do, and the audit log.

Each test builds an app with the admin on, on a fresh PostgreSQL database,
with flaskstack's default user model and roles; people sign in through the
real sign-in form. The guard tests enumerate the admin's rules in
``app.url_map``, so a view Flask-Admin adds in a later release is covered
without editing them.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import typing as t

import pytest
import sqlalchemy as sa
from admin_support import PASSWORD, admin_settings
from sqlalchemy.orm import Mapped, mapped_column

import flaskstack
import flaskstack.admin
from flaskstack import db
from flaskstack.auth import create_role, grant_role

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient
    from werkzeug.routing import Rule
    from werkzeug.test import TestResponse

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CSRF_FIELD = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')
EVERYTHING = ["admin.access", *flaskstack.admin.permissions_for("story"), "audit.view"]


class Story(db.Model):  # type: ignore[misc,name-defined]
    """A model an app gives the admin."""

    __tablename__ = "admin_test_stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    published: Mapped[bool] = mapped_column(default=False)


flaskstack.admin.register(Story, column_list=["title", "published"])


class Ledger(db.Model):  # type: ignore[misc,name-defined]
    """Entries that may point to an earlier one, checked at commit: a change can flush and
    still be rolled back."""

    __tablename__ = "admin_test_ledgers"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    previous_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("admin_test_ledgers.id", deferrable=True, initially="DEFERRED")
    )


flaskstack.admin.register(Ledger, form_columns=["title", "previous_id"])


class Site:
    """An app with the admin on, and its people."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def add_user(self, email: str, *roles: str) -> None:
        with self.app.app_context():
            user = flaskstack.get_state(self.app).auth.user_model(email=email)
            user.set_password(PASSWORD)
            db.session.add(user)
            db.session.commit()
            for role in roles:
                grant_role(user, role)
            db.session.commit()

    def signed_in(self, email: str) -> FlaskClient:
        client = self.app.test_client()
        page = client.get("/auth/login", headers=BROWSER)
        data = {"csrf_token": token_in(page), "email": email, "password": PASSWORD}
        response = client.post("/auth/login", data=data, headers=BROWSER)
        assert response.status_code == 302, response.text
        return client

    def signed_in_fails(self, email: str) -> bool:
        """Whether the sign-in form refuses ``email`` with the right password."""
        client = self.app.test_client()
        page = client.get("/auth/login", headers=BROWSER)
        data = {"csrf_token": token_in(page), "email": email, "password": PASSWORD}
        return client.post("/auth/login", data=data, headers=BROWSER).status_code != 302

    def stories(self) -> list[tuple[str, str]]:
        with self.app.app_context():
            rows = db.session.execute(sa.select(Story.title, Story.body).order_by(Story.id))
            return [(title, body) for title, body in rows]

    def add_story(self, title: str) -> int:
        with self.app.app_context():
            story = Story(title=title, body="")
            db.session.add(story)
            db.session.commit()
            return story.id

    def audit(self) -> list[t.Any]:
        from flaskstack.admin._setup import admin_of

        with self.app.app_context():
            model = admin_of(self.app).audit_model
            rows = db.session.scalars(sa.select(model).order_by(model.id)).all()
            db.session.expunge_all()
            return list(rows)


def token_in(page: TestResponse) -> str:
    found = CSRF_FIELD.search(page.text)
    assert found is not None, page.text
    return found.group(1)


@pytest.fixture
def build(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> Callable[..., Site]:
    def factory(**config: t.Any) -> Site:
        app = make_app(admin_settings(postgres_url, namespace(), **config), profile="testing")
        with app.app_context():
            db.metadata.create_all(bind=db.engine, tables=tables(app))
        return Site(app)

    return factory


def tables(app: Flask) -> list[sa.Table]:
    from flaskstack.admin._setup import admin_of

    models = [*flaskstack.get_state(app).auth.models, admin_of(app).audit_model, Story, Ledger]
    return [model.__table__ for model in models]


@pytest.fixture
def site(build: Callable[..., Site]) -> Site:
    site = build()
    with site.app.app_context():
        create_role("admin", EVERYTHING)
        create_role("reader", ["admin.access", "story.view"])
        create_role("member", ["story.view", "story.add", "story.change", "story.delete"])
        db.session.commit()
    site.add_user("alice@example.com", "admin")
    site.add_user("bob@example.com", "member")
    site.add_user("carol@example.com", "reader")
    return site


# -- every admin URL, from the url map -----------------------------------------------------


def admin_rules(app: Flask) -> list[Rule]:
    path = app.config["FLASKSTACK_ADMIN_PATH"]
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith(path + "/")]
    assert len(rules) > 20, rules  # the index, static files, the audit log, Story's views
    return sorted(rules, key=lambda rule: rule.rule)


def url_of(rule: Rule) -> str:
    values = {"filename": "admin.js", "export_type": "csv"}
    if rule.endpoint == "flaskstack_admin.static":
        values["filename"] = "admin/js/helpers.js"
    url = rule.rule
    for argument in rule.arguments:
        url = re.sub(rf"<(?:[^:<>]+:)?{argument}>", values[argument], url)
    return url + ("?id=1" if "/edit/" in url or "/details/" in url else "")


def targets(app: Flask) -> list[tuple[str, str, str]]:
    """(method, url, endpoint) for every admin rule and each of its GET and POST."""
    found = []
    for rule in admin_rules(app):
        for method in ("GET", "POST"):
            if method in (rule.methods or ()):
                found.append((method, url_of(rule), rule.endpoint))
    return found


def story_form(token: str | None, title: str = "Changed", **more: str) -> dict[str, str]:
    form = {"title": title, "body": "text", "id": "1", "rowid": "1", "action": "delete", **more}
    if token is not None:
        form["csrf_token"] = token
    return form


def test_an_anonymous_request_to_any_admin_url_never_reaches_a_view(site: Site) -> None:
    site.add_story("Untouched")
    client = site.app.test_client()
    token = token_in(client.get("/auth/login", headers=BROWSER))  # a real token, still anonymous
    seen = []
    for method, url, endpoint in targets(site.app):
        data = story_form(token) if method == "POST" else None
        response = client.open(url, method=method, data=data, headers=BROWSER)
        seen.append((method, url, endpoint, response.status_code, response.location))
        assert response.status_code == 302, (method, url, response.text)
        assert response.location.startswith("/auth/login?next="), (method, url)
        json_client = client.open(
            url, method=method, data=data, headers={"Accept": "application/json"}
        )
        assert json_client.status_code == 401, (method, url, json_client.text)
    assert {endpoint for _, _, endpoint, _, _ in seen} >= {
        "flaskstack_admin.index",
        "flaskstack_admin.static",
        "flaskstack_admin_assets.static",
        "admin_story.create_view",
        "admin_story.delete_view",
        "admin_story.action_view",
        "admin_audit.edit_view",
    }
    assert site.stories() == [("Untouched", "")]
    assert site.audit() == []


def test_a_user_without_the_admin_permission_gets_403_on_every_admin_url(site: Site) -> None:
    site.add_story("Untouched")
    client = site.signed_in("bob@example.com")  # every story permission, not admin.access
    token = token_in(client.get("/auth/login", headers=BROWSER))
    for method, url, _endpoint in targets(site.app):
        data = story_form(token) if method == "POST" else None
        response = client.open(url, method=method, data=data, headers=BROWSER)
        assert response.status_code == 403, (method, url, response.text)
        assert "admin.access" in response.text, (method, url)
    assert site.stories() == [("Untouched", "")]
    assert site.audit() == []


def test_a_post_without_a_csrf_token_is_refused_on_every_admin_form(site: Site) -> None:
    site.add_story("Untouched")
    client = site.signed_in("alice@example.com")
    posts = [(url, endpoint) for method, url, endpoint in targets(site.app) if method == "POST"]
    assert {endpoint for _, endpoint in posts} >= {
        "admin_story.create_view",
        "admin_story.edit_view",
        "admin_story.delete_view",
        "admin_story.action_view",
        "admin_story.ajax_update",
    }
    for url, _endpoint in posts:
        response = client.post(url, data=story_form(None), headers=BROWSER)
        assert response.status_code == 400, (url, response.text)
        assert "CSRF token is missing" in response.text, url
    assert site.stories() == [("Untouched", "")]
    assert site.audit() == []


def test_every_form_and_list_button_of_the_admin_carries_the_csrf_token(site: Site) -> None:
    site.add_story("One")
    client = site.signed_in("alice@example.com")
    listing = client.get("/admin/story/", headers=BROWSER)
    forms = re.findall(r'<form[^>]*method="POST".*?</form>', listing.text, flags=re.S | re.I)
    assert len(forms) >= 2, listing.text  # the row's delete button, the bulk-action form
    for form in forms:
        assert 'name="csrf_token"' in form, form
    for url in ("/admin/story/new/", "/admin/story/edit/?id=1"):
        page = client.get(url, headers=BROWSER)
        assert page.status_code == 200
        assert 'name="csrf_token"' in page.text, url


# -- per-model permissions -------------------------------------------------------------------


def test_a_reader_sees_the_model_and_may_change_nothing(site: Site) -> None:
    story = site.add_story("Read only")
    client = site.signed_in("carol@example.com")  # admin.access and story.view
    listing = client.get("/admin/story/", headers=BROWSER)
    assert listing.status_code == 200
    assert "Read only" in listing.text
    assert "/admin/story/new/" not in listing.text  # no Create tab
    assert "/admin/story/delete/" not in listing.text  # no delete buttons
    assert "/admin/story/edit/" not in listing.text
    assert client.get(f"/admin/story/details/?id={story}", headers=BROWSER).status_code == 200
    token = token_in(client.get("/auth/login", headers=BROWSER))  # the list page has no form
    for method, url, form in [
        ("GET", "/admin/story/new/", None),
        ("POST", "/admin/story/new/", story_form(token, "New")),
        ("GET", f"/admin/story/edit/?id={story}", None),
        ("POST", f"/admin/story/edit/?id={story}", story_form(token, "Edited")),
        ("POST", "/admin/story/delete/", story_form(token, id=str(story))),
        ("POST", "/admin/story/action/", story_form(token, rowid=str(story))),
    ]:
        response = client.open(url, method=method, data=form, headers=BROWSER)
        assert response.status_code == 403, (method, url, response.text)
        assert "story." in response.text
    # The audit log is a model of its own: audit.view, which carol lacks.
    assert client.get("/admin/audit/", headers=BROWSER).status_code == 403
    home = client.get("/admin/", headers=BROWSER)
    assert "/admin/story/" in home.text
    assert "/admin/audit/" not in home.text
    assert site.stories() == [("Read only", "")]


def test_admin_pages_are_never_stored_and_vary_on_the_cookie(site: Site) -> None:
    alice = site.signed_in("alice@example.com")
    carol = site.signed_in("carol@example.com")
    anonymous = site.app.test_client()
    for client, url, cache_control in [
        (alice, "/admin/", "private, no-store"),
        (alice, "/admin/story/", "private, no-store"),
        (alice, "/admin/story/details/?id=1", "private, no-store"),  # 302: no such story
        (carol, "/admin/audit/", "private, no-store"),  # 403
        (anonymous, "/admin/story/", "private, no-store"),  # the redirect to sign in
        # Scripts and styles: kept by the browser alone, revalidated at each use.
        (alice, "/admin/static/admin/js/helpers.js", "private, no-cache"),
        (alice, "/admin/_flaskstack/static/admin.js", "private, no-cache"),
    ]:
        response = client.get(url, headers=BROWSER)
        response.close()  # static files are streamed
        assert response.headers["Cache-Control"] == cache_control, (url, response.status_code)
        assert "Cookie" in response.headers["Vary"], url


# -- the audit log ---------------------------------------------------------------------------


def test_changes_made_in_the_admin_are_in_the_audit_log_with_the_request_id(site: Site) -> None:
    client = site.signed_in("alice@example.com")
    token = token_in(client.get("/admin/story/new/", headers=BROWSER))
    created = client.post(
        "/admin/story/new/", data={"csrf_token": token, "title": "First", "body": "one"}
    )
    assert created.status_code == 302, created.text
    (story,) = site.stories()
    assert story == ("First", "one")
    edited = client.post(
        "/admin/story/edit/?id=1", data={"csrf_token": token, "title": "Second", "body": "one"}
    )
    assert edited.status_code == 302, edited.text
    searched = client.get("/admin/story/?search=Second", headers=BROWSER)
    assert "Second" in searched.text
    deleted = client.post("/admin/story/delete/", data={"csrf_token": token, "id": "1"})
    assert deleted.status_code == 302, deleted.text
    assert site.stories() == []

    entries = site.audit()
    assert [(e.action, e.model, e.primary_key) for e in entries] == [
        ("create", "Story", "1"),
        ("change", "Story", "1"),
        ("delete", "Story", "1"),
    ]
    create, change, delete = entries
    assert create.changes["title"] == {"new": "First"}
    assert change.changes == {"title": {"old": "First", "new": "Second"}}
    assert delete.changes["title"] == {"old": "Second"}
    assert [e.request_id for e in entries] == [
        created.headers["X-Request-ID"],
        edited.headers["X-Request-ID"],
        deleted.headers["X-Request-ID"],
    ]
    assert {e.user_email for e in entries} == {"alice@example.com"}
    assert all(e.table_name == "admin_test_stories" for e in entries)

    # Viewable and filterable in the admin, by request id.
    log = client.get(f"/admin/audit/?search={edited.headers['X-Request-ID']}", headers=BROWSER)
    assert log.status_code == 200
    assert "&#39;First&#39; → &#39;Second&#39;" in log.text
    assert created.headers["X-Request-ID"] not in log.text


def test_a_bulk_delete_is_audited_row_by_row(site: Site) -> None:
    first, second = site.add_story("A"), site.add_story("B")
    client = site.signed_in("alice@example.com")
    token = token_in(client.get("/admin/story/", headers=BROWSER))
    response = client.post(
        "/admin/story/action/",
        data={"csrf_token": token, "action": "delete", "rowid": [str(first), str(second)]},
    )
    assert response.status_code == 302, response.text
    assert site.stories() == []
    entries = site.audit()
    assert sorted((e.action, e.primary_key) for e in entries) == [
        ("delete", str(first)),
        ("delete", str(second)),
    ]
    assert {e.request_id for e in entries} == {response.headers["X-Request-ID"]}


def ledger_clerk(site: Site) -> tuple[FlaskClient, str]:
    """A client signed in with Ledger's permissions, and the CSRF token of its session."""
    with site.app.app_context():
        create_role("clerk", ["admin.access", *flaskstack.admin.permissions_for(Ledger)])
        db.session.commit()
    site.add_user("dave@example.com", "clerk")
    client = site.signed_in("dave@example.com")
    return client, token_in(client.get("/admin/ledger/new/", headers=BROWSER))


def test_a_change_rolled_back_at_commit_leaves_no_audit_entry(site: Site) -> None:
    client, token = ledger_clerk(site)
    # The row is flushed (and its entry written); the database refuses it at commit.
    refused = client.post(
        "/admin/ledger/new/", data={"csrf_token": token, "title": "Lost", "previous_id": "999"}
    )
    assert refused.status_code == 200, refused.text
    assert "The database refused the change, so nothing was saved" in refused.text
    assert site.audit() == []
    made = client.post("/admin/ledger/new/", data={"csrf_token": token, "title": "Free"})
    assert made.status_code == 302, made.text
    assert [(e.action, e.model, e.changes["title"]) for e in site.audit()] == [
        ("create", "Ledger", {"new": "Free"})
    ]


def test_a_database_error_is_one_line_on_the_page_and_the_whole_of_it_in_the_log(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    client, token = ledger_clerk(site)
    form = {"csrf_token": token, "title": "Entry with a secret-ish title", "previous_id": "999"}
    with caplog.at_level(logging.ERROR, logger="flaskstack.admin"):
        refused = client.post("/admin/ledger/new/", data=form, headers=BROWSER)
    assert refused.status_code == 200, refused.text
    page = html.unescape(refused.text)
    request_id = refused.headers["X-Request-ID"]
    assert (
        "The database refused the change, so nothing was saved: insert or update on table "
        '"admin_test_ledgers" violates foreign key constraint'
    ) in page
    assert f"The log has the details under request id {request_id}." in page
    # Not the statement, its parameters or the row's values (DETAIL): those are for the log.
    for leaked in ("INSERT INTO", "[SQL:", "[parameters:", "DETAIL", "psycopg"):
        assert leaked not in page, leaked
    # What the user typed is still in the form.
    assert 'value="Entry with a secret-ish title"' in page
    (record,) = [r for r in caplog.records if r.name == "flaskstack.admin"]
    assert record.exc_info is not None
    assert "Key (previous_id)=(999) is not present" in str(record.exc_info[1])
    with site.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Ledger)) == 0


@pytest.mark.parametrize(
    "setting", ["FLASK_ADMIN_RAISE_ON_VIEW_EXCEPTION", "FLASK_ADMIN_RAISE_ON_INTEGRITY_ERROR"]
)
def test_flask_admins_settings_to_raise_view_errors_still_raise(
    build: Callable[..., Site], setting: str
) -> None:
    site = build(**{setting: True, "PROPAGATE_EXCEPTIONS": True})
    client, token = ledger_clerk(site)
    with pytest.raises(sa.exc.IntegrityError):
        client.post(
            "/admin/ledger/new/", data={"csrf_token": token, "title": "x", "previous_id": "999"}
        )


def test_changes_outside_the_admin_are_not_audited(site: Site) -> None:
    site.add_story("Made by the app")
    client = site.signed_in("alice@example.com")  # the sign-in itself changes rows
    assert client.get("/admin/story/", headers=BROWSER).status_code == 200
    assert site.audit() == []


def test_the_audit_log_cannot_be_changed_in_the_admin(site: Site) -> None:
    with site.app.app_context():
        create_role(
            "auditor",
            [
                "admin.access",
                "audit.view",
                "audit.add",
                "audit.change",
                "audit.delete",
                *flaskstack.admin.permissions_for("story"),
            ],
        )
        db.session.commit()
    site.add_user("dave@example.com", "auditor")
    client = site.signed_in("dave@example.com")
    token = token_in(client.get("/admin/story/new/", headers=BROWSER))
    client.post("/admin/story/new/", data={"csrf_token": token, "title": "T", "body": ""})
    (entry,) = site.audit()
    log = client.get("/admin/audit/", headers=BROWSER)
    assert "/admin/audit/new/" not in log.text
    assert "/admin/audit/edit/" not in log.text
    assert "/admin/audit/delete/" not in log.text
    for url, form in [
        ("/admin/audit/new/", {"action": "create", "model": "Forged"}),
        (f"/admin/audit/edit/?id={entry.id}", {"model": "Forged", "user": "nobody"}),
        ("/admin/audit/delete/", {"id": str(entry.id)}),
        ("/admin/audit/action/", {"action": "delete", "rowid": str(entry.id)}),
    ]:
        client.post(url, data={"csrf_token": token, **form}, headers=BROWSER)
    (after,) = site.audit()
    assert (after.id, after.model, after.user_email, after.changes) == (
        entry.id,
        "Story",
        "dave@example.com",
        entry.changes,
    )


# -- two-factor, off, refusals ----------------------------------------------------------------


def test_a_role_that_requires_two_factor_is_refused_until_it_is_set_up(
    build: Callable[..., Site],
) -> None:
    site = build(
        FLASKSTACK_TWO_FACTOR=True,
        FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES=["admin"],
        MAIL_URL="smtp://127.0.0.1:9",
        FLASKSTACK_MAIL_FROM="app@example.com",
    )
    with site.app.app_context():
        create_role("admin", EVERYTHING)
        db.session.commit()
    site.add_user("erin@example.com")
    client = site.signed_in("erin@example.com")  # no role yet: no second factor asked
    assert client.get("/admin/", headers=BROWSER).status_code == 403
    with site.app.app_context():
        user = flaskstack.get_state(site.app).auth.user_model
        grant_role(db.session.scalars(sa.select(user)).one(), "admin")
        db.session.commit()
    refused = client.get("/admin/story/", headers=BROWSER)
    assert refused.status_code == 403
    assert "two-factor" in refused.text
    assert "/auth/two-factor" in refused.text


def test_deploy_checks_name_the_roles_that_open_the_admin_without_two_factor(
    site: Site, build: Callable[..., Site]
) -> None:
    from flaskstack.checks import run_checks

    def admin_findings(app: Flask, deploy: bool = True) -> dict[str, str]:
        return {f.id: f.msg for f in run_checks(app, deploy=deploy, tags=["admin"])}

    found = admin_findings(site.app)
    assert set(found) == {"admin.W001"}, found
    # "admin" and "reader" hold admin.access; "member" does not.
    assert "The roles 'admin', 'reader' grant 'admin.access'" in found["admin.W001"]
    assert "FLASKSTACK_TWO_FACTOR is off" in found["admin.W001"]
    assert admin_findings(site.app, deploy=False) == {}

    guarded = build(
        FLASKSTACK_TWO_FACTOR=True,
        FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES=["admin"],
        MAIL_URL="smtp://127.0.0.1:9",
        FLASKSTACK_MAIL_FROM="app@example.com",
    )
    found = admin_findings(guarded.app)  # the same database: the same roles
    assert "The roles 'reader' grant" in found["admin.W001"], found
    assert "(FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES)" in found["admin.W001"]
    with guarded.app.app_context():
        role = flaskstack.get_state(guarded.app).auth.role_models.role
        db.session.delete(db.session.scalars(sa.select(role).where(role.name == "reader")).one())
        db.session.commit()
    assert admin_findings(guarded.app) == {}


OFF_APP = textwrap.dedent(
    """
    import json, sys

    from flask import Flask

    import flaskstack
    import flaskstack.admin
    from flaskstack import db

    class Note(db.Model):
        __tablename__ = "notes"
        id = db.Column(db.Integer, primary_key=True)

    flaskstack.admin.register(Note)
    app = Flask("offapp", instance_path=sys.argv[1])
    flaskstack.init_app(app, {"FLASKSTACK_ROLES": True}, profile="testing")
    client = app.test_client()
    seen = {
        "status": client.get("/admin/").status_code,
        "rules": [r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/admin")],
        "imported": sorted(m for m in sys.modules if m.startswith("flask_admin")),
        "internals": sorted(m for m in sys.modules if m.startswith("flaskstack.admin.")),
        "setting": app.config["FLASKSTACK_ADMIN"],
    }
    print(json.dumps(seen))
    """
)


def test_the_admin_is_off_by_default_and_flask_admin_is_not_imported(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", OFF_APP, str(tmp_path / "instance")],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen == {"status": 404, "rules": [], "imported": [], "internals": [], "setting": False}


def test_the_admin_needs_permissions(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> None:
    with pytest.raises(flaskstack.ConfigError) as refused:
        make_app(
            admin_settings(postgres_url, namespace(), FLASKSTACK_ROLES=False), profile="testing"
        )
    assert "[admin.E002] 'FLASKSTACK_ADMIN'" in str(refused.value)
    assert "FLASKSTACK_ROLES = True" in str(refused.value)


def test_an_unknown_option_is_refused_naming_it(site: Site) -> None:
    class Draft(db.Model):  # type: ignore[misc,name-defined]
        __tablename__ = "admin_test_drafts"
        id: Mapped[int] = mapped_column(primary_key=True)

    with pytest.raises(TypeError, match="'colum_list'"):
        flaskstack.admin.register(Draft, colum_list=["id"])
    assert "draft" not in [r.name for r in flaskstack.admin.registrations()]


def test_the_admin_refuses_the_path_of_the_apps_own_flask_admin(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> None:
    from flask_admin import Admin  # type: ignore[import-untyped]

    def own_admin(app: Flask) -> None:
        Admin(app, name="Own", url="/admin", endpoint="own_admin")

    with pytest.raises(flaskstack.ConfigError) as refused:
        make_app(admin_settings(postgres_url, namespace()), profile="testing", before=own_admin)
    assert "[admin.E003] 'FLASKSTACK_ADMIN_PATH' = '/admin'" in str(refused.value)
    assert "FLASKSTACK_ADMIN_PATH to another path" in str(refused.value)


def test_the_admin_moves_with_its_path(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_ADMIN_PATH="/staff")
    with site.app.app_context():
        create_role("admin", EVERYTHING)
        db.session.commit()
    site.add_user("alice@example.com", "admin")
    rules = [rule.rule for rule in site.app.url_map.iter_rules()]
    assert not [rule for rule in rules if rule.startswith("/admin")]
    assert {"/staff/", "/staff/story/", "/staff/audit/"} <= set(rules)
    client = site.signed_in("alice@example.com")
    assert client.get("/staff/story/", headers=BROWSER).status_code == 200
    assert client.get("/admin/story/", headers=BROWSER).status_code == 404
