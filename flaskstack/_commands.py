"""Command groups whose commands are imported only when invoked.

A web worker never runs ``flask db`` or ``flask stack``; registering them as
:class:`LazyGroup` keeps Alembic and the system checks out of its imports.
"""

from __future__ import annotations

import importlib
import typing as t

import click

__all__ = ["STACK_COMMANDS_HELP", "LazyGroup"]

STACK_COMMANDS_HELP = "flaskstack: system checks and effective settings."
"""The help of the ``flask stack`` group (:data:`flaskstack.cli.stack`)."""


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use.

    ``flask --help`` shows the group from its help text alone; its options
    and sub-commands are loaded from ``target`` (``"module:attribute"``) only
    when the group is invoked or its commands are listed. ``flask db``
    (Flask-Migrate, Alembic) and, on ``app.cli``, ``flask stack`` (the
    system checks) are registered this way, so a web worker never imports
    them.
    """

    def __init__(self, name: str, target: str, help: str) -> None:
        super().__init__(name=name, help=help)
        self._target = target
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        module_name, _, attribute = self._target.partition(":")
        real = getattr(importlib.import_module(module_name), attribute)
        self.params = list(real.params)
        self.callback = real.callback
        self.commands = dict(real.commands)
        self._loaded = True

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: t.Any,
    ) -> click.Context:
        self._load()
        return super().make_context(info_name, args, parent, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return super().get_command(ctx, cmd_name)
