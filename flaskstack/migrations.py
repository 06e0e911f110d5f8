"""Migrations: Flask-Migrate and Alembic, imported only when they are used.

Importing Flask-Migrate imports Alembic and Mako, which a web worker never
needs. :data:`migrate` therefore holds the app-independent part (the
:meth:`~Migrate.configure` callbacks), and ``init_app`` registers a ``flask
db`` group that, the moment it is invoked, creates the app's own
``flask_migrate.Migrate`` and calls its documented ``init_app(app, db,
directory=..., compare_type=True, render_as_batch=True, ...)``. From then on
``flask db`` is Flask-Migrate's, unchanged. Until then
``app.extensions["migrate"]`` holds flaskstack's :class:`AppMigrations`
record, which only says where the repository is.

New repositories (``flask db init``) get flaskstack's own template, whose
``env.py`` takes the engine from the app. Every repository is configured with
``compare_type`` (column type changes are detected) and batch mode, so
migrations can alter and drop constraints on SQLite and the same migrations
run on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import os
import typing as t

import sqlalchemy as sa
from flask import current_app
from flask.cli import ScriptInfo

from ._commands import LazyGroup

if t.TYPE_CHECKING:
    import click
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

__all__ = ["Migrate", "load_flask_migrate", "migrate"]

_TEMPLATE_DIRECTORY = os.path.join(os.path.dirname(__file__), "templates", "migrations")
"""Where flaskstack's Alembic repository template (named ``flask``) lives."""

_ConfigureCallback = t.Callable[[t.Any], t.Any]

_COMMAND_HELP = "Perform database migrations (Flask-Migrate)."


_EXTENSION_KEY = "flaskstack.migrations"
"""Key of an app's :class:`AppMigrations` in ``app.extensions``."""


@dataclasses.dataclass
class _AppMigrations:
    """What flaskstack knows of one app's migrations, at ``app.extensions[EXTENSION_KEY]``.

    Until Flask-Migrate is loaded for the app, this record also stands at
    ``app.extensions["migrate"]``, where Flask-Migrate's ``init_app`` puts
    its own when ``flask db`` runs (or :func:`load_flask_migrate` is called).
    Flask-Migrate's Python API (``flask_migrate.upgrade()``…) needs that
    record: call :func:`load_flask_migrate` first.

    :ivar directory: The migration repository.
    :ivar db: The Flask-SQLAlchemy extension whose metadata the migrations track.
    :ivar flask_migrate: The app's ``flask_migrate.Migrate``, once loaded.
    """

    directory: str
    db: SQLAlchemy
    flask_migrate: t.Any = None

    def __getattr__(self, name: str) -> t.NoReturn:
        # Reached only for what the record does not have: code that took it
        # for Flask-Migrate's record, before Flask-Migrate was loaded.
        raise AttributeError(
            f"Flask-Migrate is not loaded for this app yet, so app.extensions['migrate'] has no "
            f"{name!r}: call flaskstack.migrations.load_flask_migrate(app) before using "
            "flask_migrate's functions in code (`flask db` loads it by itself)."
        )


class Migrate:
    """App-independent migration support: the callbacks every app's Flask-Migrate runs.

    Use :meth:`configure` to adjust the Alembic config of every ``flask db``
    command, as with Flask-Migrate.
    """

    def __init__(self) -> None:
        self._callbacks: list[_ConfigureCallback] = []

    def init_app(self, app: Flask, db: SQLAlchemy, directory: str = "migrations") -> None:
        """Record where ``app``'s repository is and add the ``flask db`` command group."""
        record = _AppMigrations(directory=str(directory), db=db)
        app.extensions[_EXTENSION_KEY] = app.extensions["migrate"] = record
        app.cli.add_command(_DbGroup("db", "flask_migrate.cli:db", help=_COMMAND_HELP))

    def configure(self, callback: _ConfigureCallback) -> _ConfigureCallback:
        """Register ``callback(config) -> config`` to adjust Alembic's config object."""
        self._callbacks.append(callback)
        return callback

    def call_configure_callbacks(self, config: t.Any) -> t.Any:
        """Run for every ``flask db`` command: selects flaskstack's template, then the callbacks."""
        # Flask-Migrate's Config picks the template directory of `flask db
        # init` from this attribute (None unless --template names a path);
        # Flask-Migrate has no documented setting for a default template.
        if getattr(config, "template_directory", "") is None:
            config.template_directory = _TEMPLATE_DIRECTORY
        for callback in self._callbacks:
            config = callback(config)
        return config

    def get_config(
        self,
        directory: str | None = None,
        x_arg: t.Any = None,
        opts: list[str] | None = None,
    ) -> t.Any:
        """The Alembic config of the current app's repository, as ``flask db`` builds it."""
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        return load_flask_migrate(app).get_config(
            directory or _repository_directory(app), x_arg=x_arg, opts=opts
        )


migrate = Migrate()
"""The migration extension shared by every app."""


def _init_app(app: Flask, db: SQLAlchemy) -> None:
    """Wire :data:`migrate` for ``app`` with the configured repository directory."""
    migrate.init_app(app, db, directory=app.config["FLASKSTACK_MIGRATIONS_DIR"])


def _repository_directory(app: Flask) -> str:
    """The migration repository of ``app`` (without importing Alembic)."""
    record: _AppMigrations = app.extensions[_EXTENSION_KEY]
    return record.directory


def load_flask_migrate(app: Flask) -> t.Any:
    """``app``'s ``flask_migrate.Migrate``, set up on the first call (imports Alembic).

    ``flask db`` calls it by itself; code that uses Flask-Migrate's Python
    API (``flask_migrate.upgrade()``) calls it first.
    """
    from flask_migrate import Migrate as FlaskMigrate  # Alembic: never in a web worker

    record: _AppMigrations = app.extensions[_EXTENSION_KEY]
    if record.flask_migrate is None:
        flask_migrate = FlaskMigrate()
        flask_migrate.configure(migrate.call_configure_callbacks)
        flask_migrate.init_app(
            app,
            record.db,
            directory=record.directory,
            compare_type=True,
            render_as_batch=True,
            render_item=_render_item,
        )
        record.flask_migrate = flask_migrate
    return record.flask_migrate


def _repository_config(app: Flask) -> t.Any:
    """The Alembic config of ``app``'s repository (imports Alembic).

    :raises FileNotFoundError: when the repository does not exist.
    """
    directory = _repository_directory(app)
    if not os.path.isfile(os.path.join(directory, "env.py")):
        raise FileNotFoundError(directory)
    with app.app_context():
        return migrate.get_config(directory)


class _DbGroup(LazyGroup):
    """``flask db``: sets up Flask-Migrate for the app, then is Flask-Migrate's group."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: t.Any,
    ) -> click.Context:
        load_flask_migrate(_app_of(parent))
        return super().make_context(info_name, args, parent, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_flask_migrate(_app_of(ctx))
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        load_flask_migrate(_app_of(ctx))
        return super().get_command(ctx, cmd_name)


def _app_of(ctx: click.Context | None) -> Flask:
    # `flask` and app.test_cli_runner() both give the command a ScriptInfo
    # that loads the app; invoked any other way, the app context says.
    info = ctx.find_object(ScriptInfo) if ctx is not None else None
    if info is not None:
        return info.load_app()
    return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]


def _render_item(type_: str, obj: object, autogen_context: object) -> str | t.Literal[False]:
    """Alembic's ``render_item`` hook: boolean server defaults portable across databases.

    A ``server_default=sa.true()`` compiles to ``1`` on SQLite, which
    Alembic would write into the migration as ``sa.text('1')``, a default
    PostgreSQL refuses for a boolean column. Written as ``sa.true()`` /
    ``sa.false()``, a migration generated on SQLite runs on both.
    """
    if type_ == "server_default":
        argument = getattr(obj, "arg", None)
        if isinstance(argument, sa.sql.elements.True_):
            return "sa.true()"
        if isinstance(argument, sa.sql.elements.False_):
            return "sa.false()"
    return False
