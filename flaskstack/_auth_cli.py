"""``flask stack role`` and ``flask stack user``: roles, permissions and accounts.

Imported only when a ``flask stack`` command runs (:mod:`flaskstack.cli`).
Every change is committed by the command that makes it, and said in one
line; a name or address that does not exist is an error naming it.
"""

from __future__ import annotations

import typing as t

import click

from ._cli_app import _app_or_exit
from ._state import get_state
from .auth._models import aware, user_by_email

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = ["auth_model", "role_group", "user_by_email_or_exit", "user_group"]


def auth_model(app: Flask, feature: str, action: str) -> t.Any:
    """The user model, when flaskstack's auth ``feature`` is on for ``app``; else a clear exit."""
    auth = get_state(app).auth
    features = auth.features
    if auth.user_model is None or features is None:
        raise click.ClickException(
            f"flask stack cannot {action}: the app uses its own Flask-Login LoginManager and "
            "FLASKSTACK_USER_MODEL is not set (flask stack check, auth.I004)"
        )
    if feature in features.missing:
        raise click.ClickException(
            f"flask stack cannot {action}: the user model {auth.user_model.__name__} needs "
            f"{features.missing[feature]} (flask stack check says what is off)"
        )
    return auth.user_model


def user_by_email_or_exit(email: str) -> t.Any:
    """The user with ``email``, or a clear exit."""
    user = user_by_email(email)
    if user is None:
        raise click.ClickException(f"there is no user with the email {email!r}")
    return user


def _roles_on(app: Flask, action: str) -> None:
    if get_state(app).auth.role_models is None:
        raise click.ClickException(
            f"flask stack cannot {action}: flaskstack's roles are off for this app. Set "
            "FLASKSTACK_ROLES=true (and migrate: flask db migrate, flask db upgrade), or manage "
            "the app's own roles with its own tools."
        )


def _commit_or_exit(action: str) -> None:
    """Commit, turning a refused name or a constraint into a one-line error."""
    from .database import db

    try:
        db.session.commit()
    except Exception as exc:  # the database's own wording, on one line
        db.session.rollback()
        raise click.ClickException(f"could not {action}: {exc}") from None


@click.group("role")
def role_group() -> None:
    """Create roles, say what they permit, and grant them to users (FLASKSTACK_ROLES)."""


@role_group.command("create")
@click.argument("name")
@click.option(
    "--permission", "-p", "permissions", multiple=True, help="A permission it grants (repeat)."
)
@click.option("--description", default="", help="What the role is for.")
def _role_create(name: str, permissions: tuple[str, ...], description: str) -> None:
    """Create the role NAME granting the given permissions."""
    from .auth._roles import create_role

    app = _app_or_exit()
    with app.app_context():
        _roles_on(app, "create roles")
        try:
            role = create_role(name, permissions, description)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        _commit_or_exit(f"create the role {name!r}")
        granted = ", ".join(role.permission_names) or "no permissions yet"
        click.echo(f"Created role {role.name!r}: {granted}.")


@role_group.command("update")
@click.argument("name")
@click.option(
    "--permission",
    "-p",
    "permissions",
    multiple=True,
    help="A permission it grants (repeat); the role then grants exactly these.",
)
@click.option("--no-permissions", is_flag=True, help="Make the role grant no permission.")
@click.option("--description", default=None, help="A new description.")
def _role_update(
    name: str, permissions: tuple[str, ...], no_permissions: bool, description: str | None
) -> None:
    """Set what the role NAME grants, or its description."""
    from .auth._roles import role_named, set_permissions

    if permissions and no_permissions:
        raise click.UsageError("give --permission or --no-permissions, not both")
    app = _app_or_exit()
    with app.app_context():
        _roles_on(app, "update roles")
        try:
            role = role_named(name)
            if permissions or no_permissions:
                set_permissions(role, permissions)
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        if description is not None:
            role.description = description
        _commit_or_exit(f"update the role {name!r}")
        granted = ", ".join(role.permission_names) or "no permissions"
        click.echo(f"Role {role.name!r} grants: {granted}.")


@role_group.command("delete")
@click.argument("name")
def _role_delete(name: str) -> None:
    """Delete the role NAME; the users who held it lose it."""
    from .auth._roles import delete_role

    app = _app_or_exit()
    with app.app_context():
        _roles_on(app, "delete roles")
        try:
            delete_role(name)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        _commit_or_exit(f"delete the role {name!r}")
        click.echo(f"Deleted role {name!r}.")


@role_group.command("list")
def _role_list() -> None:
    """List the roles, what each grants and how many users hold it."""
    import sqlalchemy as sa

    from .database import db

    app = _app_or_exit()
    with app.app_context():
        _roles_on(app, "list roles")
        models = get_state(app).auth.role_models
        assert models is not None  # _roles_on
        holders = (
            sa.select(sa.func.count())
            .where(models.grant.role_id == models.role.id)
            .scalar_subquery()
        )
        rows = db.session.execute(sa.select(models.role, holders).order_by(models.role.name)).all()
        if not rows:
            click.echo("No roles.")
        for role, count in rows:
            granted = ", ".join(role.permission_names) or "-"
            about = f"  ({role.description})" if role.description else ""
            click.echo(f"{role.name}  users={count}  permissions={granted}{about}")


@role_group.command("grant")
@click.argument("name")
@click.argument("email")
def _role_grant(name: str, email: str) -> None:
    """Give the role NAME to the user with EMAIL."""
    from .auth._roles import grant_role

    app = _app_or_exit()
    with app.app_context():
        _roles_on(app, "grant roles")
        user = user_by_email_or_exit(email)
        try:
            granted = grant_role(user, name)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        _commit_or_exit(f"grant the role {name!r}")
        if granted:
            click.echo(f"Granted role {name!r} to {user.email}.")
        else:
            click.echo(f"{user.email} already holds the role {name!r}.")


@role_group.command("revoke")
@click.argument("name")
@click.argument("email")
def _role_revoke(name: str, email: str) -> None:
    """Take the role NAME from the user with EMAIL."""
    from .auth._roles import revoke_role

    app = _app_or_exit()
    with app.app_context():
        _roles_on(app, "revoke roles")
        user = user_by_email_or_exit(email)
        try:
            revoked = revoke_role(user, name)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        _commit_or_exit(f"revoke the role {name!r}")
        if revoked:
            click.echo(f"Revoked role {name!r} from {user.email}.")
        else:
            click.echo(f"{user.email} did not hold the role {name!r}.")


@click.group("user")
def user_group() -> None:
    """Create, list, show, activate and deactivate users."""


def _describe(app: Flask, user: t.Any) -> str:
    from .auth._roles import access_of

    active = "active" if user.is_active else "inactive"
    line = f"{user.email}  {active}"
    if get_state(app).auth.role_models is not None:
        access = access_of(user)
        line += f"  roles={','.join(sorted(access.roles)) or '-'}"
    return line


@user_group.command("list")
@click.option("--role", "role", default=None, help="Only the users holding this role.")
def _user_list(role: str | None) -> None:
    """List the users (email, whether active, roles)."""
    import sqlalchemy as sa

    from .database import db

    app = _app_or_exit()
    with app.app_context():
        model = auth_model(app, "pages", "list users")
        query = sa.select(model).order_by(model.email)
        if role is not None:
            _roles_on(app, "list users by role")
            models = get_state(app).auth.role_models
            assert models is not None  # _roles_on
            (key,) = sa.inspect(model).primary_key
            query = (
                query.join(models.grant, models.grant.user_id == key)
                .join(models.role, models.role.id == models.grant.role_id)
                .where(models.role.name == role)
            )
        users = db.session.execute(query).scalars().all()
        if not users:
            click.echo("No users.")
        for user in users:
            click.echo(_describe(app, user))


@user_group.command("show")
@click.argument("email")
def _user_show(email: str) -> None:
    """Show the user with EMAIL: whether active, roles and permissions."""
    from .auth._roles import access_of

    app = _app_or_exit()
    with app.app_context():
        auth_model(app, "pages", "show users")
        user = user_by_email_or_exit(email)
        click.echo(f"email: {user.email}")
        click.echo(f"active: {'yes' if user.is_active else 'no'}")
        created = getattr(user, "created_at", None)
        if created is not None:
            click.echo(f"created: {aware(created).isoformat(timespec='seconds')}")
        if get_state(app).auth.role_models is not None:
            access = access_of(user)
            click.echo(f"roles: {', '.join(sorted(access.roles)) or '-'}")
            click.echo(f"permissions: {', '.join(sorted(access.permissions)) or '-'}")


def _set_active(email: str, active: bool) -> None:
    from .auth._logins import revoke_logins

    app = _app_or_exit()
    word = "activate" if active else "deactivate"
    with app.app_context():
        model = auth_model(app, "pages", f"{word} users")
        if not hasattr(model, "active"):
            raise click.ClickException(
                f"flask stack cannot {word} users: the user model {model.__name__} has no "
                "'active' column"
            )
        user = user_by_email_or_exit(email)
        user.active = active
        revoked = 0
        if not active and get_state(app).auth.login_model is not None:
            revoked = revoke_logins(user, api_tokens=True)
        _commit_or_exit(f"{word} {user.email}")
        if active:
            click.echo(f"Activated {user.email}: they can sign in again.")
        else:
            click.echo(
                f"Deactivated {user.email}: signed out of {revoked} device(s), API tokens "
                "revoked; they cannot sign in."
            )


@user_group.command("activate")
@click.argument("email")
def _user_activate(email: str) -> None:
    """Let the user with EMAIL sign in again."""
    _set_active(email, True)


@user_group.command("deactivate")
@click.argument("email")
def _user_deactivate(email: str) -> None:
    """Stop the user with EMAIL from signing in; sign them out everywhere, revoke their tokens."""
    _set_active(email, False)
