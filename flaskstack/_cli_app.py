"""Loading the app for ``flask stack`` commands, with a clear error when it cannot load."""

from __future__ import annotations

import traceback
import typing as t

import click
from flask.cli import ScriptInfo

from . import checks
from ._state import EXTENSION_KEY
from .errors import ConfigError

if t.TYPE_CHECKING:
    from flask import Flask

    from .config import Resolution

__all__ = ["_Loaded", "_app_or_exit", "_load_app"]


class _Loaded(t.NamedTuple):
    app: Flask | None
    resolution: Resolution | None
    findings: list[checks.Finding]


def _load_app() -> _Loaded:
    info = click.get_current_context().ensure_object(ScriptInfo)
    try:
        app = info.load_app()
    except ConfigError as exc:
        findings = [checks._from_problem(p) for p in exc.problems]
        if exc.resolution is not None:
            findings += [
                checks._from_problem(p, checks.Level.WARNING) for p in exc.resolution.warnings
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
                checks._finding(
                    "stack.E001",
                    f"The app could not be loaded: {type(exc).__name__}: {message}",
                    checks.Level.CRITICAL,
                )
            ],
        )
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        return _Loaded(
            app,
            None,
            [checks._finding("stack.E002", f"App {app.name!r} does not use flaskstack.")],
        )
    return _Loaded(app, state.resolution, [])


def _app_or_exit() -> Flask:
    """The loaded app for commands that need one; a clear error if it cannot load."""
    loaded = _load_app()
    if loaded.app is None or loaded.resolution is None:
        for finding in loaded.findings:
            click.echo(f"{finding.id}: {finding.msg}", err=True)
        raise SystemExit(1)
    return loaded.app
