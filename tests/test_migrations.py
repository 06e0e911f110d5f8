"""Migrations through the real tooling: ``flask db`` and ``flask stack check``.

Most tests run the Flask CLI in subprocesses, as a developer or a deploy
script would, on a copy of ``tests/migration_project/gadgets.py`` in a
temporary directory, with its models switched between two versions by
``MODEL_VERSION``; each runs on SQLite and on PostgreSQL. Every subprocess
runs with ``-W error::DeprecationWarning``: a command that warns fails.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
import typing as t
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa

from flaskstack import db, migrate
from flaskstack.database import _normalise_database_url
from flaskstack.migrations import _TEMPLATE_DIRECTORY, _repository_config, load_flask_migrate

if t.TYPE_CHECKING:
    from conftest import AppFactory, PostgresDatabases

PROJECT_SOURCE = Path(__file__).parent / "migration_project" / "gadgets.py"
SECRET_KEY = "migration-tests-0123456789-abcdefghijklmnopqrstuvwxyz"
# Variables a Python subprocess needs from the test's environment; everything
# flaskstack reads is given explicitly.
_PASSED_THROUGH = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "SYSTEMROOT",
    "PYTHONPATH",
)


@dataclasses.dataclass(frozen=True)
class Run:
    """The outcome of one subprocess."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.args)}  (exit {self.returncode})\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )

    @property
    def finding_ids(self) -> list[str]:
        """The check ids ``flask stack check`` listed as active findings."""
        active = self.stdout.split("SILENCED:")[0]
        return re.findall(r"^  ([a-z]+\.[A-Z]\d{3}): ", active, re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Schema:
    """What the test sees of the ``gadget`` table and the migration state."""

    name_length: int | None
    unique_constraints: list[str]
    versions: list[str]


@dataclasses.dataclass
class Project:
    """The gadgets project in a temporary directory, on one database."""

    path: Path
    database_url: str

    @property
    def migrations(self) -> Path:
        return self.path / "migrations"

    def environment(self, model_version: str, extra: t.Mapping[str, str]) -> dict[str, str]:
        env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
        env.update(
            FLASK_APP="gadgets",
            DATABASE_URL=self.database_url,
            SECRET_KEY=SECRET_KEY,
            MODEL_VERSION=model_version,
        )
        env.update(extra)
        return env

    def python(
        self, *args: str, model_version: str = "1", env: t.Mapping[str, str] | None = None
    ) -> Run:
        command = (sys.executable, "-W", "error::DeprecationWarning", *args)
        completed = subprocess.run(
            command,
            cwd=self.path,
            env=self.environment(model_version, env or {}),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Run(command, completed.returncode, completed.stdout, completed.stderr)

    def flask(
        self, *args: str, model_version: str = "1", env: t.Mapping[str, str] | None = None
    ) -> Run:
        """Run ``flask ARGS`` in the project directory."""
        return self.python("-m", "flask", *args, model_version=model_version, env=env)

    def flask_ok(self, *args: str, model_version: str = "1") -> Run:
        run = self.flask(*args, model_version=model_version)
        assert run.returncode == 0, run
        return run

    def revision_files(self) -> list[Path]:
        return sorted((self.migrations / "versions").glob("*.py"))

    def engine(self) -> sa.Engine:
        return sa.create_engine(_normalise_database_url(self.database_url))

    def schema(self) -> Schema:
        engine = self.engine()
        try:
            inspector = sa.inspect(engine)
            columns = {column["name"]: column for column in inspector.get_columns("gadget")}
            uniques = sorted(u["name"] or "" for u in inspector.get_unique_constraints("gadget"))
            with engine.connect() as connection:
                versions = list(
                    connection.scalars(sa.text("SELECT version_num FROM alembic_version"))
                )
        finally:
            engine.dispose()
        length = getattr(columns["name"]["type"], "length", None)
        return Schema(length, uniques, versions)

    def execute(self, statement: str, **parameters: t.Any) -> None:
        engine = self.engine()
        try:
            with engine.begin() as connection:
                connection.execute(sa.text(statement), parameters)
        finally:
            engine.dispose()

    def gadget_names(self) -> list[str]:
        engine = self.engine()
        try:
            with engine.connect() as connection:
                return list(connection.scalars(sa.text("SELECT name FROM gadget ORDER BY id")))
        finally:
            engine.dispose()


def revision_id(path: Path) -> str:
    match = re.search(r"^revision = '(\w+)'$", path.read_text(), re.MULTILINE)
    assert match, path.read_text()
    return match.group(1)


def make_project(directory: Path, database_url: str) -> Project:
    directory.mkdir(exist_ok=True)
    shutil.copy(PROJECT_SOURCE, directory / "gadgets.py")
    return Project(directory, database_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Project:
    """The gadgets project on a SQLite file, then on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gadgets.sqlite3'}"
    else:
        postgres: PostgresDatabases = request.getfixturevalue("postgres")
        # The scheme hosting platforms hand out in DATABASE_URL.
        url = postgres.create("migrations").replace("postgresql://", "postgres://", 1)
    return make_project(tmp_path / "project", url)


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project", f"sqlite:///{tmp_path / 'gadgets.sqlite3'}")


# -- flask db ------------------------------------------------------------------


def test_migrate_upgrade_downgrade_through_a_model_change(project: Project) -> None:
    project.flask_ok("db", "init")
    env_py = (project.migrations / "env.py").read_text()
    assert env_py == (Path(_TEMPLATE_DIRECTORY) / "flask" / "env.py").read_text()
    assert "flaskstack" in env_py
    assert "get_engine" not in env_py  # Flask-Migrate's deprecated call

    # Version 1: the table, with the unique constraint the convention named.
    project.flask_ok("db", "migrate", "-m", "v1")
    [first] = project.revision_files()
    first_source = first.read_text()
    assert "op.create_table('gadget'" in first_source
    assert "sa.UniqueConstraint('code', name=op.f('uq_gadget_code'))" in first_source

    project.flask_ok("db", "upgrade")
    assert project.schema() == Schema(50, ["uq_gadget_code"], [revision_id(first)])
    project.execute("INSERT INTO gadget (code, name) VALUES ('g1', 'Gizmo')")
    with pytest.raises(sa.exc.IntegrityError):
        project.execute("INSERT INTO gadget (code, name) VALUES ('g1', 'Copy')")

    # Version 2: a longer name (a type change) and no unique constraint.
    project.flask_ok("db", "migrate", "-m", "v2", model_version="2")
    [second] = [path for path in project.revision_files() if path != first]
    second_source = second.read_text()
    assert f"down_revision = '{revision_id(first)}'" in second_source
    upgrade, downgrade = second_source.split("def downgrade():")
    # Batch mode, which lets SQLite alter a table by rebuilding it.
    assert "with op.batch_alter_table('gadget', schema=None) as batch_op:" in upgrade
    assert "batch_op.alter_column('name'" in upgrade
    assert "type_=sa.String(length=200)" in upgrade
    assert "batch_op.drop_constraint(batch_op.f('uq_gadget_code'), type_='unique')" in upgrade
    # (On PostgreSQL, the dialect's options follow the column list.)
    assert "batch_op.create_unique_constraint(batch_op.f('uq_gadget_code'), ['code']" in downgrade
    assert "type_=sa.VARCHAR(length=50)" in downgrade

    project.flask_ok("db", "upgrade", model_version="2")
    assert project.schema() == Schema(200, [], [revision_id(second)])

    project.flask_ok("db", "downgrade", model_version="2")
    assert project.schema() == Schema(50, ["uq_gadget_code"], [revision_id(first)])

    project.flask_ok("db", "upgrade", model_version="2")
    assert project.schema() == Schema(200, [], [revision_id(second)])
    assert project.gadget_names() == ["Gizmo"]  # the row survived every rebuild


# -- flask stack check -----------------------------------------------------------


def test_a_migration_generated_on_sqlite_runs_on_postgresql(
    tmp_path: Path, postgres: PostgresDatabases
) -> None:
    on_sqlite = make_project(tmp_path / "project", f"sqlite:///{tmp_path / 'gadgets.sqlite3'}")
    on_sqlite.flask_ok("db", "init")
    on_sqlite.flask_ok("db", "migrate", "-m", "v1")
    (script,) = (tmp_path / "project" / "migrations" / "versions").glob("*.py")
    assert "server_default=sa.true()" in script.read_text()

    on_postgres = Project(tmp_path / "project", postgres.create("portable"))
    on_postgres.flask_ok("db", "upgrade")
    on_postgres.execute("INSERT INTO gadget (code, name) VALUES ('g1', 'Gizmo')")
    engine = on_postgres.engine()
    try:
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT enabled FROM gadget")) is True
    finally:
        engine.dispose()


def test_stack_check_follows_the_migration_state(project: Project) -> None:
    no_repository = project.flask("stack", "check")
    assert no_repository.returncode == 0, no_repository
    assert no_repository.finding_ids == ["migrations.W001"], no_repository
    strict = project.flask("stack", "check", "--fail-level", "WARNING")
    assert strict.returncode == 1, strict
    assert strict.finding_ids == ["migrations.W001"], strict

    project.flask_ok("db", "init")
    project.flask_ok("db", "migrate", "-m", "v1")
    [first] = project.revision_files()
    behind = project.flask("stack", "check")
    assert behind.returncode == 1, behind
    assert behind.finding_ids == ["migrations.E001"], behind
    assert revision_id(first) in behind.stdout

    project.flask_ok("db", "upgrade")
    current = project.flask("stack", "check", "--fail-level", "WARNING")
    assert current.returncode == 0, current
    assert current.finding_ids == [], current
    assert "System check identified no issues (0 silenced)." in current.stdout

    changed_models = project.flask("stack", "check", model_version="2")
    assert changed_models.returncode == 0, changed_models
    assert changed_models.finding_ids == ["migrations.W002"], changed_models

    # The database was migrated by code this repository no longer has.
    project.execute("UPDATE alembic_version SET version_num = 'feedc0ffee00'")
    unknown = project.flask("stack", "check")
    assert unknown.returncode == 1, unknown
    assert unknown.finding_ids == ["migrations.E002"], unknown
    assert "feedc0ffee00" in unknown.stdout


def test_a_silenced_check_does_not_fail_and_is_reported_as_silenced(
    sqlite_project: Project,
) -> None:
    sqlite_project.flask_ok("db", "init")
    sqlite_project.flask_ok("db", "migrate", "-m", "v1")

    run = sqlite_project.flask(
        "stack", "check", env={"FLASKSTACK_SILENCED_CHECKS": "migrations.E001"}
    )

    assert run.returncode == 0, run
    assert run.finding_ids == [], run
    assert "System check identified no issues (1 silenced)." in run.stdout
    # Silenced findings are still listed, under their own heading.
    assert "SILENCED:\n  migrations.E001: " in run.stdout, run


# -- Alembic stays out of web workers ----------------------------------------------

_MIGRATION_MODULES = ("alembic", "flask_migrate", "mako")

SERVE_REQUESTS = textwrap.dedent(
    f"""
    import json, sys

    import gadgets

    def loaded():
        return sorted(name for name in {_MIGRATION_MODULES!r} if name in sys.modules)

    app = gadgets.create_app()
    with app.app_context():
        gadgets.db.create_all()
        gadgets.db.session.add(gadgets.Gadget(code="g1", name="Gizmo"))
        gadgets.db.session.commit()
    client = app.test_client()
    healthz = client.get("/healthz")
    listing = client.get("/gadgets")
    after_requests = loaded()
    db_help = app.test_cli_runner().invoke(args=["db", "--help"])
    print(json.dumps({{
        "healthz": healthz.status_code,
        "gadgets": listing.get_json(),
        "after_requests": after_requests,
        "db_help_exit": db_help.exit_code,
        "db_help_lists_upgrade": "upgrade" in db_help.output,
        "after_db_help": loaded(),
    }}))
    """
)

FLASK_HELP = textwrap.dedent(
    f"""
    import atexit, sys

    from flask.cli import main

    @atexit.register
    def report():
        loaded = [name for name in {_MIGRATION_MODULES!r} if name in sys.modules]
        print("LOADED:", ",".join(loaded))

    sys.argv = ["flask", "--help"]
    main()
    """
)


def test_serving_requests_does_not_import_alembic(sqlite_project: Project) -> None:
    run = sqlite_project.python("-c", SERVE_REQUESTS)

    assert run.returncode == 0, run
    outcome = json.loads(run.stdout.splitlines()[-1])
    assert outcome["healthz"] == 200
    assert outcome["gadgets"] == ["Gizmo"]
    assert outcome["after_requests"] == []
    # The same probe sees Alembic once a `flask db` command is used.
    assert outcome["db_help_exit"] == 0
    assert outcome["db_help_lists_upgrade"]
    assert outcome["after_db_help"] == sorted(_MIGRATION_MODULES)


def test_flask_help_lists_db_without_importing_alembic(sqlite_project: Project) -> None:
    run = sqlite_project.python("-c", FLASK_HELP)

    assert run.returncode == 0, run
    assert re.search(r"^  db\s+Perform database migrations", run.stdout, re.MULTILINE), run
    assert re.search(r"^  stack\s", run.stdout, re.MULTILINE), run
    assert run.stdout.splitlines()[-1] == "LOADED: ", run


# -- flask db through app.cli, in process ---------------------------------------------

HAND_WRITTEN_REVISION = '''\
"""create migtest_widget

Revision ID: 5eed0f1a2b3c
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "5eed0f1a2b3c"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "migtest_widget",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(20), nullable=False, unique=True),
    )


def downgrade():
    op.drop_table("migtest_widget")
'''


@pytest.fixture
def restore_logging() -> t.Iterator[None]:
    """Undo the logging set-up that a repository's ``env.py`` applies in process."""
    root = logging.getLogger()
    saved_root = (root.level, root.handlers[:])
    saved = {
        name: (logger.level, logger.handlers[:], logger.propagate, logger.disabled)
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for name, logger in logging.Logger.manager.loggerDict.items():
        if not isinstance(logger, logging.Logger):
            continue
        level, handlers, propagate, disabled = saved.get(name, (logging.NOTSET, [], True, False))
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.disabled = disabled


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_db_commands_through_the_app_cli_runner(
    backend: str, make_app: AppFactory, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    config = {"FLASKSTACK_MIGRATIONS_DIR": str(tmp_path / "migrations")}
    if backend == "postgresql":
        config["SQLALCHEMY_DATABASE_URI"] = request.getfixturevalue("postgres_url")
    app = make_app(config)
    runner = app.test_cli_runner()

    help_result = runner.invoke(args=["db", "--help"])
    assert help_result.exit_code == 0, help_result.output
    assert re.search(r"^  upgrade\s", help_result.output, re.MULTILINE), help_result.output

    init = runner.invoke(args=["db", "init"])
    assert init.exit_code == 0, init.output
    assert "get_engine" not in (tmp_path / "migrations" / "env.py").read_text()
    (tmp_path / "migrations" / "versions" / "5eed0f1a2b3c_create_migtest_widget.py").write_text(
        HAND_WRITTEN_REVISION
    )

    upgrade = runner.invoke(args=["db", "upgrade"])
    assert upgrade.exit_code == 0, upgrade.output
    with app.app_context():
        inspector = sa.inspect(db.engine)
        assert inspector.has_table("migtest_widget")
        # env.py hands the models' metadata to Alembic: its naming convention applies.
        assert [u["name"] for u in inspector.get_unique_constraints("migtest_widget")] == [
            "uq_migtest_widget_code"
        ]
        with db.engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == (
                "5eed0f1a2b3c"
            )

    downgrade = runner.invoke(args=["db", "downgrade", "base"])
    assert downgrade.exit_code == 0, downgrade.output
    with app.app_context():
        assert not sa.inspect(db.engine).has_table("migtest_widget")


@pytest.fixture
def configure_callbacks() -> t.Iterator[list[t.Any]]:
    """Callbacks registered on the shared ``flaskstack.migrate`` in the test, removed after it."""
    registered: list[t.Any] = []
    yield registered
    for callback in registered:
        migrate._callbacks.remove(callback)


@pytest.mark.usefixtures("restore_logging")
def test_configure_callbacks_adjust_every_db_command(
    make_app: AppFactory, tmp_path: Path, configure_callbacks: list[t.Any]
) -> None:
    seen: list[str] = []

    @migrate.configure
    def remember(config: t.Any) -> t.Any:
        seen.append(config.get_main_option("script_location"))
        return config

    configure_callbacks.append(remember)
    directory = str(tmp_path / "migrations")
    app = make_app({"FLASKSTACK_MIGRATIONS_DIR": directory})
    runner = app.test_cli_runner()

    assert runner.invoke(args=["db", "init"]).exit_code == 0
    heads = runner.invoke(args=["db", "heads"])

    assert heads.exit_code == 0, heads.output
    assert seen == [directory, directory]  # `db init`, then `db heads`
    # flaskstack's own template came first, whatever the callbacks do.
    assert "get_engine" not in (tmp_path / "migrations" / "env.py").read_text()


@pytest.mark.usefixtures("restore_logging")
def test_each_app_migrates_its_own_repository(make_app: AppFactory, tmp_path: Path) -> None:
    """Two apps in one process, two repositories: each ``flask db`` uses its app's."""
    apps = {
        name: make_app({"FLASKSTACK_MIGRATIONS_DIR": str(tmp_path / name)}, name=name)
        for name in ("first", "second")
    }
    for app in apps.values():
        assert app.test_cli_runner().invoke(args=["db", "init"]).exit_code == 0
    (tmp_path / "first" / "versions" / "5eed0f1a2b3c_create_migtest_widget.py").write_text(
        HAND_WRITTEN_REVISION
    )

    # The second app's Flask-Migrate was set up last; the first still has its own.
    upgrade = apps["first"].test_cli_runner().invoke(args=["db", "upgrade"])

    assert upgrade.exit_code == 0, upgrade.output
    with apps["first"].app_context():
        assert sa.inspect(db.engine).has_table("migtest_widget")
    with apps["second"].app_context():
        assert not sa.inspect(db.engine).has_table("migtest_widget")
    for name, app in apps.items():
        assert _repository_config(app).get_main_option("script_location") == str(tmp_path / name)


@pytest.mark.usefixtures("restore_logging")
def test_flask_migrates_python_api_after_load_flask_migrate(
    make_app: AppFactory, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    app = make_app({"FLASKSTACK_MIGRATIONS_DIR": str(directory)})

    with app.app_context(), pytest.raises(AttributeError, match=r"load_flask_migrate\(app\)"):
        flask_migrate.upgrade()

    load_flask_migrate(app)
    with app.app_context():
        flask_migrate.init()
        (directory / "versions" / "5eed0f1a2b3c_create_migtest_widget.py").write_text(
            HAND_WRITTEN_REVISION
        )
        flask_migrate.upgrade()
        assert sa.inspect(db.engine).has_table("migtest_widget")
    assert "get_engine" not in (directory / "env.py").read_text()
    assert load_flask_migrate(app) is load_flask_migrate(app)  # set up once per app
