"""Migrations: Flask-Migrate and Alembic, imported only when they are used.

Importing Flask-Migrate imports Alembic and Mako, which a web worker never
needs. :data:`migrate` therefore stands in for ``flask_migrate.Migrate``:
``init_app`` records what Flask-Migrate's commands read from
``app.extensions["migrate"]`` and registers a ``flask db`` group that
imports Flask-Migrate the moment it is invoked, not before.

New repositories (``flask db init``) get flaskstack's own template, whose
``env.py`` takes the engine from the app. Every repository is configured with
``compare_type`` (column type changes are detected) and batch mode, so
migrations can alter and drop constraints on SQLite and the same migrations
run on PostgreSQL.
"""

from __future__ import annotations

import os
import typing as t

from flask import current_app

from ._commands import LazyGroup

if t.TYPE_CHECKING:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

__all__ = ["TEMPLATE_DIRECTORY", "Migrate", "migrate"]

TEMPLATE_DIRECTORY = os.path.join(os.path.dirname(__file__), "templates", "migrations")
"""Where flaskstack's Alembic repository template (named ``flask``) lives."""

ConfigureCallback = t.Callable[[t.Any], t.Any]


class _AppMigrations:
    """Per-app record in ``app.extensions["migrate"]``, shaped as Flask-Migrate expects."""

    def __init__(
        self, migrate: Migrate, db: SQLAlchemy, directory: str, configure_args: dict[str, t.Any]
    ) -> None:
        self.migrate = migrate
        self.db = db
        self.directory = directory
        self.configure_args = configure_args

    @property
    def metadata(self) -> t.Any:
        return self.db.metadata


class Migrate:
    """App-independent migration support with the interface of ``flask_migrate.Migrate``.

    Use :meth:`configure` to adjust the Alembic config of every ``flask db``
    command, as with Flask-Migrate.
    """

    def __init__(self) -> None:
        self._callbacks: list[ConfigureCallback] = []

    def init_app(self, app: Flask, db: SQLAlchemy, directory: str = "migrations") -> None:
        """Record the migration settings of ``app`` and add the ``flask db`` command group."""
        app.extensions["migrate"] = _AppMigrations(
            self,
            db,
            directory,
            {"compare_type": True, "render_as_batch": True, "render_item": render_item},
        )
        app.cli.add_command(
            LazyGroup(
                "db",
                "flask_migrate.cli:db",
                help="Perform database migrations (Flask-Migrate).",
            )
        )

    def configure(self, callback: ConfigureCallback) -> ConfigureCallback:
        """Register ``callback(config) -> config`` to adjust Alembic's config object."""
        self._callbacks.append(callback)
        return callback

    def call_configure_callbacks(self, config: t.Any) -> t.Any:
        """Called by Flask-Migrate for every command; also selects flaskstack's template."""
        if getattr(config, "template_directory", "") is None:
            config.template_directory = TEMPLATE_DIRECTORY
        for callback in self._callbacks:
            config = callback(config)
        return config

    def get_config(
        self,
        directory: str | None = None,
        x_arg: t.Any = None,
        opts: list[str] | None = None,
    ) -> t.Any:
        """Build the Alembic config for the current app (Flask-Migrate calls this)."""
        from flask_migrate import Migrate as FlaskMigrate

        directory = directory or current_app.extensions["migrate"].directory
        helper = FlaskMigrate(directory=directory)
        helper.configure_callbacks = [self.call_configure_callbacks]
        return helper.get_config(directory, x_arg=x_arg, opts=opts)


migrate = Migrate()
"""The migration extension shared by every app."""


def init_app(app: Flask, db: SQLAlchemy) -> None:
    """Wire :data:`migrate` for ``app`` with the configured repository directory."""
    migrate.init_app(app, db, directory=app.config["FLASKSTACK_MIGRATIONS_DIR"])


def repository_config(app: Flask) -> t.Any:
    """The Alembic config of ``app``'s repository (imports Alembic).

    :raises FileNotFoundError: when the repository does not exist.
    """
    directory = app.extensions["migrate"].directory
    if not os.path.isfile(os.path.join(directory, "env.py")):
        raise FileNotFoundError(directory)
    with app.app_context():
        return migrate.get_config(directory)


def render_item(type_: str, obj: object, autogen_context: object) -> str | t.Literal[False]:
    """Alembic's ``render_item`` hook: boolean server defaults portable across databases.

    A ``server_default=sa.true()`` compiles to ``1`` on SQLite, which
    Alembic would write into the migration as ``sa.text('1')``, a default
    PostgreSQL refuses for a boolean column. Written as ``sa.true()`` /
    ``sa.false()``, a migration generated on SQLite runs on both.
    """
    if type_ == "server_default":
        import sqlalchemy as sa

        argument = getattr(obj, "arg", None)
        if isinstance(argument, sa.sql.elements.True_):
            return "sa.true()"
        if isinstance(argument, sa.sql.elements.False_):
            return "sa.false()"
    return False
