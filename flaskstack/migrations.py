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

Every ``flask db`` command runs with SQLite's foreign keys off (the app keeps
them on): Alembic's batch mode rebuilds a table by copying it, and the
original cannot be dropped while other rows reference it. ``flask db
migrate`` writes no empty revision, and warns, naming them, about every
table and column a new revision drops: usually models the app factory did
not import. :func:`rename_constraints_to_convention` moves a database made
without flaskstack to the names of its naming convention.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import typing as t

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import ScriptInfo

from ._commands import LazyGroup
from .database import NAMING_CONVENTION, _foreign_keys_off, _foreign_keys_off_for_next_connection
from .errors import AlreadyInitialisedError

if t.TYPE_CHECKING:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

__all__ = ["Migrate", "load_flask_migrate", "migrate", "rename_constraints_to_convention"]

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
        """Record where ``app``'s repository is and add the ``flask db`` command group.

        :func:`flaskstack.init_app` calls it; the app's code does not.

        :raises AlreadyInitialisedError: when ``app`` already has its migrations
            registered (a ``migrate.init_app(app, db)`` left in the factory).
        """
        if _EXTENSION_KEY in app.extensions:
            raise AlreadyInitialisedError(
                f"app {app.name!r} already has its migrations registered: "
                "flaskstack.init_app() registers them itself (the repository is "
                "FLASKSTACK_MIGRATIONS_DIR). Remove migrate.init_app(app, db) from the factory."
            )
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
        flask_migrate.configure(_foreign_keys_off_for_the_migration)
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


def _foreign_keys_off_for_the_migration(config: t.Any) -> t.Any:
    # Every Flask-Migrate command, from `flask db` or from the app's code
    # (flask_migrate.upgrade()), builds its config just before env.py takes
    # its connection: SQLite's foreign keys are off on that connection.
    _foreign_keys_off_for_next_connection()
    return config


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

    def invoke(self, ctx: click.Context) -> t.Any:
        # Whatever env.py the repository has: its connections come from the
        # app's engine, which leaves SQLite's foreign keys off in this block.
        # The revisions the command writes are read afterwards, from their
        # files, so the drop warning needs nothing from env.py (a repository
        # made by any Flask-Migrate release keeps its own).
        versions = os.path.join(_repository_directory(_app_of(ctx)), "versions")
        before = _revision_files(versions)
        with _foreign_keys_off():
            result = super().invoke(ctx)
        for path in sorted(_revision_files(versions) - before):
            _warn_about_drops(path)
        return result


def _revision_files(versions: str) -> set[str]:
    """The revision scripts under ``versions`` (none when it does not exist)."""
    found: set[str] = set()
    for folder, _, names in os.walk(versions):
        found.update(os.path.join(folder, name) for name in names if name.endswith(".py"))
    return found


def _warn_about_drops(path: str) -> None:
    """Warn, naming them, when the new revision at ``path`` drops tables or columns."""
    effects = _upgrade_effects(path)
    if effects is not None and (effects.dropped or effects.dropped_columns):
        click.echo(
            _drop_warning(sorted(effects.dropped), sorted(effects.dropped_columns)), err=True
        )


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


# -- flask db migrate: no silent drop -----------------------------------------------


def _drop_warning(tables: t.Sequence[str], columns: t.Sequence[str]) -> str:
    dropped = []
    if tables:
        dropped.append(f"table(s) {', '.join(map(repr, tables))}")
    if columns:
        dropped.append(f"column(s) {', '.join(map(repr, columns))}")
    return (
        f"WARNING: this migration drops {' and '.join(dropped)}, with their data. "
        "If their models still exist, the app factory did not import them before "
        "`flask db migrate` ran (are the models imported by the app factory?): import them in "
        "create_app, delete this revision and run `flask db migrate` again. If the drop is "
        "intended, review the revision before `flask db upgrade`."
    )


@dataclasses.dataclass
class _Effects:
    """What a revision's ``upgrade()`` does to tables, read from its source (never run)."""

    created: list[str] = dataclasses.field(default_factory=list)
    dropped: list[str] = dataclasses.field(default_factory=list)
    dropped_columns: list[str] = dataclasses.field(default_factory=list)

    def describe(self) -> str:
        """``creates table(s) a; drops table(s) b`` (or that it does neither)."""
        parts = []
        if self.created:
            parts.append(f"creates table(s) {', '.join(self.created)}")
        if self.dropped:
            parts.append(f"drops table(s) {', '.join(self.dropped)}")
        if self.dropped_columns:
            parts.append(f"drops column(s) {', '.join(self.dropped_columns)}")
        return "; ".join(parts) or "creates or drops no table"


def _upgrade_effects(path: str | None) -> _Effects | None:
    """The tables a revision file's ``upgrade()`` creates and drops (``None``: unreadable).

    The source is parsed, not imported: ``flask stack check`` runs no
    migration code. Calls written as Alembic writes them are found
    (``op.create_table("t", ...)``, ``op.drop_table("t")``, ``op.drop_column("t",
    "c")`` and ``batch_op.drop_column("c")`` in ``op.batch_alter_table("t")``).
    """
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    upgrade = next(
        (
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name == "upgrade"
        ),
        None,
    )
    if upgrade is None:
        return None
    batch_tables: dict[str, str] = {}
    for node in ast.walk(upgrade):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (
                    isinstance(call, ast.Call)
                    and _called(call) == "batch_alter_table"
                    and isinstance(item.optional_vars, ast.Name)
                ):
                    table = _string_argument(call, 0, "table_name")
                    if table is not None:
                        batch_tables[item.optional_vars.id] = table
    effects = _Effects()
    for node in ast.walk(upgrade):
        if not isinstance(node, ast.Call):
            continue
        name = _called(node)
        if name in ("create_table", "drop_table"):
            table = _string_argument(node, 0, "table_name")
            if table is not None:
                (effects.created if name == "create_table" else effects.dropped).append(table)
        elif name == "drop_column" and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            if isinstance(receiver, ast.Name) and receiver.id in batch_tables:
                table, column = batch_tables[receiver.id], _string_argument(node, 0, "column_name")
            else:
                table = _string_argument(node, 0, "table_name")
                column = _string_argument(node, 1, "column_name")
            if table is not None and column is not None:
                effects.dropped_columns.append(f"{table}.{column}")
    return effects


def _called(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _string_argument(call: ast.Call, position: int, keyword: str) -> str | None:
    node: ast.expr | None = call.args[position] if len(call.args) > position else None
    for argument in call.keywords:
        if argument.arg == keyword:
            node = argument.value
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


# -- constraint names of a database made without flaskstack ---------------------------


@dataclasses.dataclass(frozen=True)
class _Rename:
    """A constraint whose name in the database is not the naming convention's."""

    table: str
    kind: str
    old: str | None
    new: str

    def __str__(self) -> str:
        old = self.old if self.old is not None else f"unnamed {self.kind}"
        return f"{self.table}: {old} -> {self.new}"


def _constraint_renames(
    connection: sa.Connection,
    naming_convention: t.Mapping[str, t.Any],
    tables: t.Collection[str] | None = None,
) -> list[_Rename]:
    """The primary key, unique and foreign key constraints named otherwise than the convention.

    The conventional name is derived from the database's own tables, so the
    result does not depend on the models. Check constraints and indexes are
    left out (a check's conventional name needs the name the model gives it;
    SQLAlchemy's default index names already match the convention's).
    """
    inspector = sa.inspect(connection)
    preparer = connection.dialect.identifier_preparer
    renames: list[_Rename] = []
    for table_name in sorted(inspector.get_table_names()):
        if table_name == "alembic_version" or (tables is not None and table_name not in tables):
            continue
        columns: list[sa.Column[t.Any]] = [
            sa.Column(column["name"]) for column in inspector.get_columns(table_name)
        ]
        found: list[tuple[str, str | None, sa.Constraint]] = []
        primary_key = inspector.get_pk_constraint(table_name)
        if primary_key.get("constrained_columns"):
            found.append(
                (
                    "primary key",
                    primary_key.get("name"),
                    sa.PrimaryKeyConstraint(*primary_key["constrained_columns"]),
                )
            )
        for unique in inspector.get_unique_constraints(table_name):
            found.append(
                ("unique", unique.get("name"), sa.UniqueConstraint(*unique["column_names"]))
            )
        for foreign_key in inspector.get_foreign_keys(table_name):
            referred = foreign_key["referred_table"]
            if foreign_key.get("referred_schema"):
                referred = f"{foreign_key['referred_schema']}.{referred}"
            found.append(
                (
                    "foreign key",
                    foreign_key.get("name"),
                    sa.ForeignKeyConstraint(
                        foreign_key["constrained_columns"],
                        [f"{referred}.{column}" for column in foreign_key["referred_columns"]],
                    ),
                )
            )
        # A throwaway table on the convention: SQLAlchemy names its constraints.
        sa.Table(
            table_name,
            sa.MetaData(naming_convention=dict(naming_convention)),
            *columns,
            *(constraint for _kind, _name, constraint in found),
        )
        for kind, name, constraint in found:
            if constraint.name is None:
                continue  # the convention has no name for this kind
            expected = preparer.format_constraint(constraint)
            if name is None or preparer.quote(name) != expected:
                renames.append(_Rename(table_name, kind, name, str(constraint.name)))
    return renames


def rename_constraints_to_convention(
    naming_convention: t.Mapping[str, t.Any] | None = None,
) -> None:
    """Rename the database's constraints to flaskstack's naming convention, in a migration.

    For a database created without flaskstack, whose primary key, unique and
    foreign key constraints have the server's default names
    (``users_pkey``, ``users_email_key`` on PostgreSQL; none on SQLite)
    where flaskstack's models expect ``pk_users``, ``uq_users_email``.
    ``flask stack check`` reports them (``migrations.W003``). Call it from the
    ``upgrade()`` of a one-time revision::

        from flaskstack.migrations import rename_constraints_to_convention

        def upgrade():
            rename_constraints_to_convention()

        def downgrade():
            pass  # the old names were the server's defaults; nothing needs them

    Each name is derived from the tables in the database when the revision
    runs, so the revision does the right thing on every database: on one
    already using the convention (a fresh database that replayed the
    history under flaskstack) it does nothing. PostgreSQL renames each
    constraint in place (``ALTER TABLE ... RENAME CONSTRAINT``, which renames
    its index too); SQLite, which cannot rename a constraint, rebuilds each
    affected table in batch mode, with the constraints named.

    :param naming_convention: The convention to move to; by default
        flaskstack's (:data:`flaskstack.database.NAMING_CONVENTION`).
    """
    from alembic import op  # only ever called inside a migration

    convention = dict(naming_convention if naming_convention is not None else NAMING_CONVENTION)
    connection = op.get_bind()
    renames = _constraint_renames(connection, convention)
    if connection.dialect.name == "sqlite":
        for table in sorted({rename.table for rename in renames}):
            with op.batch_alter_table(table, recreate="always", naming_convention=convention):
                pass
        return
    preparer = connection.dialect.identifier_preparer
    for rename in renames:
        if rename.old is None:
            continue  # every constraint is named on servers that can rename one
        op.execute(
            f"ALTER TABLE {preparer.quote(rename.table)} RENAME CONSTRAINT "
            f"{preparer.quote(rename.old)} TO {preparer.quote(rename.new)}"
        )
