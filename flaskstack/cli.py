"""The ``flask stack`` commands.

The group is installed as a Flask CLI plugin, so ``flask stack check`` and
``flask stack config`` exist even when the app cannot be created: they load
the app themselves and turn a failure to load it (an invalid configuration,
an import error) into findings instead of a traceback.
"""

from __future__ import annotations

import traceback
import typing as t

import click
from flask.cli import ScriptInfo

from . import checks
from .errors import ConfigError

if t.TYPE_CHECKING:
    from flask import Flask

    from .config import Resolution

__all__ = ["stack"]

_LEVEL_TITLES = {
    checks.Level.CRITICAL: "CRITICALS",
    checks.Level.ERROR: "ERRORS",
    checks.Level.WARNING: "WARNINGS",
    checks.Level.INFO: "INFOS",
    checks.Level.DEBUG: "DEBUGS",
}


class _Loaded(t.NamedTuple):
    app: Flask | None
    resolution: Resolution | None
    findings: list[checks.Finding]


def _load_app() -> _Loaded:
    info = click.get_current_context().ensure_object(ScriptInfo)
    try:
        app = info.load_app()
    except ConfigError as exc:
        findings = [checks.from_problem(p) for p in exc.problems]
        if exc.resolution is not None:
            findings += [
                checks.from_problem(p, checks.Level.WARNING) for p in exc.resolution.warnings
            ]
        return _Loaded(None, exc.resolution, findings)
    except Exception as exc:
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        if not isinstance(exc, click.ClickException):
            click.echo(traceback.format_exc(), err=True)
        return _Loaded(
            None,
            None,
            [
                checks.Finding(
                    checks.Level.CRITICAL,
                    "stack.E001",
                    f"The app could not be loaded: {type(exc).__name__}: {message}",
                    "Fix the error in the traceback above.",
                )
            ],
        )
    state = app.extensions.get("flaskstack")
    if state is None:
        return _Loaded(
            app,
            None,
            [
                checks.Finding(
                    checks.Level.ERROR,
                    "stack.E002",
                    f"App {app.name!r} does not use flaskstack.",
                    "Call flaskstack.init_app(app) in the app factory.",
                )
            ],
        )
    return _Loaded(app, state.resolution, [])


@click.group("stack")
def stack() -> None:
    """flaskstack: system checks and effective settings."""


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
def check_command(deploy: bool, fail_level: str, tags: tuple[str, ...]) -> None:
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
def config_command() -> None:
    """Show every setting flaskstack manages, its value and where it came from."""
    loaded = _load_app()
    if loaded.resolution is None:
        for finding in loaded.findings:
            click.echo(f"{finding.id}: {finding.msg}", err=True)
        raise SystemExit(1)
    resolution = loaded.resolution
    rows = [
        (
            entry.key,
            entry.shown,
            entry.source if entry.origin == entry.source else f"{entry.source} ({entry.origin})",
        )
        for entry in resolution.entries.values()
    ]
    key_width = max(len(row[0]) for row in rows)
    value_width = min(48, max(len(row[1]) for row in rows))
    click.echo(f"profile: {resolution.profile}")
    for key, value, source in rows:
        click.echo(f"{key:<{key_width}}  {value:<{value_width}}  {source}")
    if loaded.findings:
        click.echo("")
        for finding in loaded.findings:
            click.echo(f"{finding.id}: {finding.msg} HINT: {finding.hint}", err=True)
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    """Make ``flask stack`` available through ``app.cli`` too (``app.test_cli_runner()``)."""
    app.cli.add_command(stack)
