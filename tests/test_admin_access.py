"""The admin's users and roles: create, grant, deactivate, sign out everywhere, reset by email.

Apps as in ``test_admin.py`` (PostgreSQL, flaskstack's default user model
and roles, people signing in through the real form); mail goes to the
testing profile's in-memory outbox, read as the user's inbox.
"""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from admin_support import admin_settings
from test_admin import BROWSER, Site, tables, token_in

import flaskstack
from flaskstack import db
from flaskstack.auth import create_role, create_token

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import AppFactory
    from flask.testing import FlaskClient

MANAGER = [
    "admin.access",
    *(f"users.{a}" for a in ("view", "add", "change", "delete")),
    *(f"roles.{a}" for a in ("view", "add", "change", "delete")),
    "audit.view",
]


@pytest.fixture
def site(make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]) -> Site:
    app = make_app(admin_settings(postgres_url, namespace()), profile="testing")
    with app.app_context():
        db.metadata.create_all(bind=db.engine, tables=tables(app))
        create_role("manager", MANAGER)
        create_role("editor", ["story.view"])
        db.session.commit()
    site = Site(app)
    site.add_user("alice@example.com", "manager")
    site.add_user("bob@example.com")
    return site


def user_row(site: Site, email: str) -> t.Any:
    with site.app.app_context():
        model = flaskstack.get_state(site.app).auth.user_model
        user = db.session.scalars(sa.select(model).where(model.email == email)).one()
        roles = sorted(flaskstack.get_state(site.app).auth.access(user).roles)
        db.session.expunge(user)
        return user, roles


def post_form(client: FlaskClient, url: str, data: dict[str, t.Any]) -> t.Any:
    token = token_in(client.get("/auth/login", headers=BROWSER))
    return client.post(url, data={"csrf_token": token, **data}, headers=BROWSER)


def whoami(client: FlaskClient) -> int:
    """The status of the account page: 200 signed in, 302 to the sign-in page otherwise."""
    return client.get("/auth/account", headers=BROWSER).status_code


def test_a_manager_creates_a_role_and_a_user_holding_it(site: Site) -> None:
    alice = site.signed_in("alice@example.com")
    created = post_form(
        alice,
        "/admin/roles/new/",
        {"name": "writer", "description": "Writes", "permission_list": "story.add\nstory.view\n"},
    )
    assert created.status_code == 302, created.text
    with site.app.app_context():
        from flaskstack.auth._roles import role_named

        assert role_named("writer").permission_names == ["story.add", "story.view"]
    listing = alice.get("/admin/roles/", headers=BROWSER)
    assert "story.add" in listing.text

    form = alice.get("/admin/users/new/", headers=BROWSER)
    assert 'value="writer"' in form.text  # the roles to choose from
    made = post_form(
        alice,
        "/admin/users/new/",
        {"email": " Carol@Example.com ", "active": "y", "roles": ["writer", "editor"]},
    )
    assert made.status_code == 302, made.text
    carol, roles = user_row(site, "carol@example.com")
    assert roles == ["editor", "writer"]
    assert carol.password_hash is None  # no password passes through the admin

    edited = post_form(
        alice,
        f"/admin/users/edit/?id={carol.id}",
        {"email": "carol@example.com", "active": "y", "roles": ["writer"]},
    )
    assert edited.status_code == 302, edited.text
    assert user_row(site, "carol@example.com")[1] == ["writer"]
    edit_page = alice.get(f"/admin/users/edit/?id={carol.id}", headers=BROWSER)
    assert "password_hash" not in edit_page.text
    assert "session_token" not in edit_page.text


def test_deactivating_a_user_signs_them_out_everywhere(site: Site) -> None:
    bob_browser = site.signed_in("bob@example.com")
    assert whoami(bob_browser) == 200
    bob, _ = user_row(site, "bob@example.com")
    with site.app.app_context():
        token, _record = create_token(db.session.get(type(bob), bob.id), "ci")
        db.session.commit()
    api = site.app.test_client()
    bearer = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    assert api.get("/auth/account", headers=bearer).status_code != 401

    alice = site.signed_in("alice@example.com")
    done = post_form(alice, "/admin/users/action/", {"action": "deactivate", "rowid": str(bob.id)})
    assert done.status_code == 302, done.text
    assert user_row(site, "bob@example.com")[0].active is False
    assert whoami(bob_browser) == 302
    assert api.get("/auth/account", headers=bearer).status_code == 401
    assert site.signed_in_fails("bob@example.com")


def test_sign_out_everywhere_ends_sessions_and_tokens_and_keeps_the_account(site: Site) -> None:
    bob_browser = site.signed_in("bob@example.com")
    bob, _ = user_row(site, "bob@example.com")
    alice = site.signed_in("alice@example.com")
    done = post_form(alice, "/admin/users/action/", {"action": "sign_out", "rowid": str(bob.id)})
    assert done.status_code == 302, done.text
    assert whoami(bob_browser) == 302
    assert user_row(site, "bob@example.com")[0].active is True
    assert whoami(site.signed_in("bob@example.com")) == 200


def test_a_password_reset_link_is_mailed_to_the_user(site: Site) -> None:
    from flaskstack._mail_backend import outbox

    bob, _ = user_row(site, "bob@example.com")
    alice = site.signed_in("alice@example.com")
    done = post_form(
        alice, "/admin/users/action/", {"action": "reset_password", "rowid": str(bob.id)}
    )
    assert done.status_code == 302, done.text
    (message,) = outbox(site.app)
    assert message.to == ["bob@example.com"]
    assert "/auth/reset-password/" in message.body


def test_users_and_roles_need_their_own_permissions(site: Site) -> None:
    with site.app.app_context():
        create_role("viewer", ["admin.access", "users.view"])
        db.session.commit()
    site.add_user("dave@example.com", "viewer")
    bob, _ = user_row(site, "bob@example.com")
    dave = site.signed_in("dave@example.com")
    assert dave.get("/admin/users/", headers=BROWSER).status_code == 200
    assert dave.get("/admin/roles/", headers=BROWSER).status_code == 403
    for action in ("deactivate", "sign_out", "reset_password", "delete"):
        refused = post_form(dave, "/admin/users/action/", {"action": action, "rowid": str(bob.id)})
        assert refused.status_code == 403, (action, refused.text)
    assert user_row(site, "bob@example.com")[0].active is True


def test_changes_to_users_and_roles_are_audited(site: Site) -> None:
    alice = site.signed_in("alice@example.com")
    post_form(alice, "/admin/roles/new/", {"name": "writer", "permission_list": "story.add"})
    bob, _ = user_row(site, "bob@example.com")
    post_form(alice, "/admin/users/action/", {"action": "deactivate", "rowid": str(bob.id)})
    entries = [(e.action, e.model) for e in site.audit()]
    assert ("create", "UserRole") in entries
    assert ("create", "UserRolePermission") in entries
    assert ("change", "User") in entries
    change = next(e for e in site.audit() if e.model == "User")
    assert change.changes["active"] == {"old": True, "new": False}
