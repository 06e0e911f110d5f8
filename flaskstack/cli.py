"""The ``flask stack`` commands.

The group is installed as a Flask CLI plugin, so ``flask stack check`` and
``flask stack config`` exist even when the app cannot be created: they load
the app themselves and turn a failure to load it (an invalid configuration,
an import error) into findings instead of a traceback.

:func:`flaskstack.init_app` does not import this module (nor
:mod:`flaskstack.checks`): it adds a stand-in group to ``app.cli`` that
imports it when a ``stack`` command is invoked.
"""

from __future__ import annotations

import sys

import click

from . import checks
from ._auth_cli import auth_model, role_group, user_by_email_or_exit, user_group
from ._cli_app import _app_or_exit, _load_app
from ._commands import STACK_COMMANDS_HELP
from ._jobs_cli import jobs_group, worker_command
from ._state import get_state
from .auth._models import user_by_email
from .logs import _LEFT_TO_THE_APP_KEY

__all__ = ["stack"]

_LEVEL_TITLES = {
    checks.Level.CRITICAL: "CRITICALS",
    checks.Level.ERROR: "ERRORS",
    checks.Level.WARNING: "WARNINGS",
    checks.Level.INFO: "INFOS",
    checks.Level.DEBUG: "DEBUGS",
}


@click.group("stack", help=STACK_COMMANDS_HELP)
def stack() -> None:
    pass


@stack.command("check")
@click.option("--deploy", is_flag=True, help="Also run the production deployment checks.")
@click.option(
    "--fail-level",
    type=click.Choice([level.name for level in checks.Level], case_sensitive=False),
    default="ERROR",
    show_default=True,
    help="Exit non-zero if a finding at this level or above is not silenced.",
)
@click.option("--tag", "tags", multiple=True, help="Run only the checks with this tag.")
def _check_command(deploy: bool, fail_level: str, tags: tuple[str, ...]) -> None:
    """Check the configuration, the database and the migrations."""
    loaded = _load_app()
    findings = list(loaded.findings)
    if loaded.app is not None and loaded.resolution is not None:
        findings += checks.run_checks(loaded.app, deploy=deploy, tags=tags)

    silenced_ids: set[str] = set()
    if loaded.resolution is not None:
        silenced_ids = set(loaded.resolution["FLASKSTACK_SILENCED_CHECKS"])
    threshold = checks.Level[fail_level.upper()]
    active = [f for f in findings if f.id not in silenced_ids]

    for level in sorted(_LEVEL_TITLES, reverse=True):
        group = [f for f in active if f.level == level]
        if not group:
            continue
        click.echo(f"{_LEVEL_TITLES[level]}:")
        for finding in group:
            click.echo(f"  {finding.id}: {finding.msg}")
            if finding.hint:
                click.echo(f"      HINT: {finding.hint}")
    if silenced_findings := [f for f in findings if f.id in silenced_ids]:
        click.echo("SILENCED:")
        for finding in silenced_findings:
            click.echo(f"  {finding.id}: {finding.msg}")
    summary = "no issues" if not active else f"{len(active)} issue(s)"
    click.echo(f"System check identified {summary} ({len(silenced_findings)} silenced).")
    if any(f.is_serious(threshold) for f in active):
        raise SystemExit(1)


@stack.command("config")
def _config_command() -> None:
    """Show every setting flaskstack manages, its value and where it came from."""
    loaded = _load_app()
    if loaded.resolution is None:
        for finding in loaded.findings:
            click.echo(f"{finding.id}: {finding.msg}", err=True)
        raise SystemExit(1)
    resolution = loaded.resolution
    rows = [
        (entry.key, entry.shown, entry.described_source) for entry in resolution.entries.values()
    ]
    ignored: dict[str, list[str]] = {}
    for item in resolution.overridden:
        value = "" if item.shown is None else f" = {item.shown}"
        ignored.setdefault(item.key, []).append(
            f"ignored: {item.origin}{value} (overridden by {item.winner})"
        )
    key_width = max(len(row[0]) for row in rows)
    value_width = min(48, max(len(row[1]) for row in rows))
    click.echo(f"profile: {resolution.profile}")
    logging_left = loaded.app is not None and loaded.app.extensions.get(_LEFT_TO_THE_APP_KEY)
    for key, value, source in rows:
        click.echo(f"{key:<{key_width}}  {value:<{value_width}}  {source}")
        if key == "FLASKSTACK_LOG_FORMAT" and logging_left:
            click.echo(f"{'':<{key_width}}  not applied: the app configured its own logging")
        for line in ignored.pop(key, []):
            click.echo(f"{'':<{key_width}}  {line}")
    if ignored:
        # Keys outside the table are not listed above; their values are never shown.
        click.echo("other keys:")
        for key, lines in ignored.items():
            for line in lines:
                click.echo(f"{key:<{key_width}}  {line}")
    if loaded.findings:
        click.echo("")
        for finding in loaded.findings:
            click.echo(f"{finding.id}: {finding.msg} HINT: {finding.hint}", err=True)
        raise SystemExit(1)


@stack.command("create-user")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input instead of prompting for it.",
)
@click.option("--inactive", is_flag=True, help="Create the account disabled.")
def _create_user_command(email: str, password_stdin: bool, inactive: bool) -> None:
    """Create a user. The password is prompted for (or read from stdin), never an argument."""
    import sqlalchemy as sa

    from .auth import PasswordPolicyError, normalise_email
    from .auth._protocols import set_user_password
    from .database import db

    app = _app_or_exit()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with app.app_context():
        model = auth_model(app, "pages", "create users")
        address = normalise_email(email)
        if user_by_email(address) is not None:
            raise click.ClickException(f"a user with the email {address!r} already exists")
        user = model(email=address)
        if inactive:
            if not hasattr(model, "active"):
                raise click.ClickException(
                    f"--inactive needs an 'active' column on the user model {model.__name__}"
                )
            user.active = False
        try:
            set_user_password(user, password)
        except PasswordPolicyError as exc:
            raise click.ClickException(f"the password was refused: {exc}") from None
        db.session.add(user)
        db.session.commit()
        (user_id,) = sa.inspect(user).identity
        click.echo(f"Created user {address} (id {user_id}).")


@stack.group("token")
def _token_group() -> None:
    """Create, list and revoke API tokens."""


@_token_group.command("create")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for (shown in lists).")
@click.option("--expires-in-days", type=click.IntRange(min=1), help="Expire after N days.")
def _token_create_command(email: str, name: str, expires_in_days: int | None) -> None:
    """Create an API token for the user EMAIL; it is printed once, never stored."""
    import datetime as dt

    from .auth import create_token
    from .database import db

    app = _app_or_exit()
    with app.app_context():
        auth_model(app, "tokens", "create API tokens")
        user = user_by_email_or_exit(email)
        expires = None if expires_in_days is None else dt.timedelta(days=expires_in_days)
        token, record = create_token(user, name, expires)
        db.session.commit()
        click.echo(f"Created token {record.id} ({record.prefix}…) for {user.email}.")
        click.echo("Copy it now, it is not shown again:")
        click.echo(token)


@_token_group.command("list")
@click.argument("email", required=False)
def _token_list_command(email: str | None) -> None:
    """List API tokens (of one user with EMAIL)."""
    import sqlalchemy as sa

    from .database import db

    app = _app_or_exit()
    with app.app_context():
        auth_model(app, "tokens", "list API tokens")
        model = get_state(app).auth.token_model
        query = sa.select(model).order_by(model.id)
        if email is not None:
            (user_id,) = sa.inspect(user_by_email_or_exit(email)).identity
            query = query.where(model.user_id == user_id)
        records = db.session.execute(query).scalars().all()
        if not records:
            click.echo("No tokens.")
        for record in records:
            state = "revoked" if record.revoked_at is not None else "active"
            expiry = record.expires_at.isoformat() if record.expires_at else "never"
            used = record.last_used_at.isoformat() if record.last_used_at else "never"
            click.echo(
                f"{record.id}  {record.prefix}…  {record.name!r}  user={record.user.email}  "
                f"{state}  expires={expiry}  last-used={used}"
            )


@_token_group.command("revoke")
@click.argument("token_id", type=int)
def _token_revoke_command(token_id: int) -> None:
    """Revoke the API token TOKEN_ID (see `token list`)."""
    from .auth import revoke_token
    from .database import db

    app = _app_or_exit()
    with app.app_context():
        auth_model(app, "tokens", "revoke API tokens")
        record = db.session.get(get_state(app).auth.token_model, token_id)
        if record is None:
            raise click.ClickException(f"there is no token with id {token_id}")
        revoke_token(record)
        db.session.commit()
        click.echo(f"Revoked token {token_id} ({record.prefix}…).")


user_group.add_command(_create_user_command, "create")
stack.add_command(role_group)
stack.add_command(user_group)
stack.add_command(worker_command)
stack.add_command(jobs_group)
