"""Migrations in an app that adopts flaskstack, and in a factory that forgets its models.

Runs the real ``flask db`` and ``flask stack check`` commands in
subprocesses on a copy of ``tests/migration_project/library`` (authors and
the books that reference them), on SQLite and on PostgreSQL: a database
created and migrated by the app before flaskstack (plain Flask-SQLAlchemy
and Flask-Migrate, no naming convention) is taken over by the same models on
flaskstack's ``db``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa

from flaskstack.database import _normalise_database_url

if t.TYPE_CHECKING:
    from conftest import PostgresDatabases

PROJECT_SOURCE = Path(__file__).parent / "migration_project" / "library"
SECRET_KEY = "adoption-tests-0123456789-abcdefghijklmnopqrstuvwxyz"
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "PYTHONPATH")


@dataclasses.dataclass(frozen=True)
class Run:
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
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def finding_ids(self) -> list[str]:
        """The check ids ``flask stack check`` listed as active findings."""
        active = self.stdout.split("SILENCED:")[0]
        return re.findall(r"^  ([a-z]+\.[A-Z]\d{3}): ", active, re.MULTILINE)


@dataclasses.dataclass
class Library:
    """The library app in a temporary directory, on one database."""

    path: Path
    database_url: str

    def python(self, *args: str, **variables: str) -> Run:
        env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
        env.update(FLASK_APP="library", DATABASE_URL=self.database_url, SECRET_KEY=SECRET_KEY)
        env.update(variables)
        command = (sys.executable, *args)
        completed = subprocess.run(
            command,
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Run(command, completed.returncode, completed.stdout, completed.stderr)

    def flask(self, *args: str, **variables: str) -> Run:
        return self.python("-m", "flask", *args, **variables)

    def flask_ok(self, *args: str, **variables: str) -> Run:
        run = self.flask(*args, **variables)
        assert run.returncode == 0, run
        return run

    def revision_files(self) -> list[Path]:
        return sorted((self.path / "migrations" / "versions").glob("*.py"))

    def query(self, statement: str) -> list[tuple[t.Any, ...]]:
        engine = sa.create_engine(_normalise_database_url(self.database_url))
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(sa.text(statement))]
        finally:
            engine.dispose()

    def execute(self, statement: str) -> None:
        engine = sa.create_engine(_normalise_database_url(self.database_url))
        try:
            with engine.begin() as connection:
                connection.execute(sa.text(statement))
        finally:
            engine.dispose()


def make_library(directory: Path, database_url: str) -> Library:
    directory.mkdir(exist_ok=True)
    shutil.copytree(
        PROJECT_SOURCE, directory / "library", ignore=shutil.ignore_patterns("__pycache__")
    )
    return Library(directory, database_url)


def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
    postgres: PostgresDatabases = request.getfixturevalue("postgres")
    return postgres.create(name)


BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])

ADD_BOOKS = textwrap.dedent(
    """
    import json

    import library

    app = library.create_app()
    app.config["WTF_CSRF_ENABLED"] = False  # a JSON client of this small app sends no token
    client = app.test_client()
    statuses = [
        client.post("/books", json={"title": title, "author_id": author}).status_code
        for title, author in (("Orphan", 999), ("Sequel", 1))
    ]
    print(json.dumps(statuses))
    """
)


# -- SQLite: foreign keys off while migrations run, on for the app --------------------


def test_a_batch_migration_rebuilds_a_referenced_table_on_sqlite(tmp_path: Path) -> None:
    library = make_library(tmp_path / "project", f"sqlite:///{tmp_path / 'library.sqlite3'}")
    library.flask_ok("db", "init")
    library.flask_ok("db", "migrate", "-m", "v1")
    library.flask_ok("db", "upgrade")
    library.execute("INSERT INTO author (id, name) VALUES (1, 'Ann')")
    library.execute("INSERT INTO book (id, title, author_id) VALUES (1, 'First', 1)")

    # author.name gets longer: SQLite rebuilds `author`, which `book` references.
    library.flask_ok("db", "migrate", "-m", "v2", LIBRARY_VERSION="2")
    [second] = [path for path in library.revision_files() if path.name.endswith("_v2.py")]
    assert "with op.batch_alter_table('author'" in second.read_text()
    upgrade = library.flask("db", "upgrade", LIBRARY_VERSION="2")

    assert upgrade.returncode == 0, upgrade
    assert "FOREIGN KEY constraint failed" not in upgrade.output
    assert library.query("SELECT id, name FROM author") == [(1, "Ann")]
    assert library.query("SELECT id, title, author_id FROM book") == [(1, "First", 1)]
    # The app still enforces foreign keys: a book of an author that does not exist fails.
    added = library.python("-c", ADD_BOOKS, LIBRARY_VERSION="2")
    assert added.returncode == 0, added
    assert json.loads(added.stdout.splitlines()[-1]) == [500, 201]
    assert library.query("SELECT title FROM book ORDER BY id") == [("First",), ("Sequel",)]


# -- a database created without flaskstack's naming convention ------------------------

RENAMING_REVISION_BODY = (
    "    from flaskstack.migrations import rename_constraints_to_convention\n\n"
    "    rename_constraints_to_convention()\n"
)


@BACKENDS
def test_a_database_made_without_flaskstack_moves_to_the_naming_convention(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    library = make_library(tmp_path / "project", database_url(backend, tmp_path, request, "old"))
    # Years of history before flaskstack: Flask-Migrate's template, no convention.
    library.flask_ok("db", "init", LIBRARY_STACK="plain")
    library.flask_ok("db", "migrate", "-m", "v1", LIBRARY_STACK="plain")
    library.flask_ok("db", "upgrade", LIBRARY_STACK="plain")
    library.execute("INSERT INTO author (id, name) VALUES (1, 'Ann')")
    library.execute("INSERT INTO book (id, title, author_id) VALUES (1, 'First', 1)")

    # The same models on flaskstack's db: the check names each constraint to rename.
    check = library.flask("stack", "check")
    assert "migrations.W003" in check.finding_ids, check
    if backend == "postgresql":
        for old, new in [
            ("author_pkey", "pk_author"),
            ("author_name_key", "uq_author_name"),
            ("book_author_id_fkey", "fk_book_author_id_author"),
        ]:
            assert f"{old} -> {new}" in check.stdout, check
    else:
        for kind, new in [
            ("primary key", "pk_author"),
            ("unique", "uq_author_name"),
            ("foreign key", "fk_book_author_id_author"),
        ]:
            assert f"unnamed {kind} -> {new}" in check.stdout, check
    assert "rename_constraints_to_convention" in check.stdout, check

    # The one-time migration the guide gives.
    library.flask_ok("db", "revision", "-m", "constraint names")
    [renaming] = [path for path in library.revision_files() if "constraint_names" in path.name]
    source = renaming.read_text()
    upgrade, downgrade = source.split("def downgrade():")
    renaming.write_text(
        upgrade.replace("    pass\n", RENAMING_REVISION_BODY, 1) + "def downgrade():" + downgrade
    )
    library.flask_ok("db", "upgrade")
    # Then the app adds the tables of flaskstack's own models (if it uses any):
    # the migration holds them alone, no renamed or duplicated constraint.
    library.flask_ok("db", "migrate", "-m", "flaskstack tables")
    for added in [path for path in library.revision_files() if "flaskstack_tables" in path.name]:
        assert "'author'" not in added.read_text()
        assert "'book'" not in added.read_text()
    library.flask_ok("db", "upgrade")

    migrate = library.flask_ok("db", "migrate", "-m", "nothing")
    assert "No changes in schema detected." in migrate.output, migrate
    assert not [path for path in library.revision_files() if "nothing" in path.name]
    clean = library.flask("stack", "check", "--fail-level", "WARNING")
    assert clean.returncode == 0, clean
    assert clean.finding_ids == [], clean
    assert library.query("SELECT id, name FROM author") == [(1, "Ann")]
    assert library.query("SELECT id, title, author_id FROM book") == [(1, "First", 1)]

    # A fresh database replays the whole history under flaskstack; the
    # renaming migration finds nothing to do there.
    fresh = Library(library.path, database_url(backend, tmp_path, request, "fresh"))
    fresh.flask_ok("db", "upgrade")
    fresh_check = fresh.flask("stack", "check", "--fail-level", "WARNING")
    assert fresh_check.returncode == 0, fresh_check
    assert fresh_check.finding_ids == [], fresh_check


# -- a factory that forgets to import its models ----------------------------------------


@BACKENDS
def test_a_factory_that_forgets_its_models_is_told_before_data_is_lost(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    library = make_library(tmp_path / "project", database_url(backend, tmp_path, request, "lib"))
    library.flask_ok("db", "init")
    library.flask_ok("db", "migrate", "-m", "v1")
    library.flask_ok("db", "upgrade")

    forgotten = {"LIBRARY_IMPORT_MODELS": "0"}
    current = library.flask("stack", "check", **forgotten)
    assert sorted(current.finding_ids) == ["migrations.W002", "migrations.W004"], current
    assert "would drop table 'author', table 'book'" in current.stdout, current
    assert "no model known to the app declares: author, book" in current.stdout, current

    migrate = library.flask_ok("db", "migrate", "-m", "oops", **forgotten)
    assert "drops table(s) 'author', 'book'" in migrate.stderr, migrate
    assert "imported by the app factory" in migrate.stderr, migrate
    [oops] = [path for path in library.revision_files() if "oops" in path.name]

    behind = library.flask("stack", "check", **forgotten)
    assert behind.returncode == 1, behind
    assert sorted(behind.finding_ids) == ["migrations.E001", "migrations.W004"], behind
    revision = re.search(r"^revision = '(\w+)'$", oops.read_text(), re.MULTILINE)
    assert revision is not None
    assert re.search(
        rf"{revision.group(1)} drops table\(s\) (book, author|author, book)", behind.stdout
    ), behind
    assert "their data is deleted" in behind.stdout, behind


def test_an_env_py_from_an_older_flask_migrate_keeps_working(tmp_path: Path) -> None:
    # Flask-Migrate's env.py before 4.0.5 passed its own process_revision_directives
    # next to **configure_args: flaskstack adds nothing there that would collide, and
    # still names what a new revision drops.
    library = make_library(tmp_path / "project", f"sqlite:///{tmp_path / 'lib.sqlite3'}")
    library.flask_ok("db", "init")
    env_py = library.path / "migrations" / "env.py"
    source = env_py.read_text()
    configure = re.search(r"context\.configure\(\n(.*?)\n\s*\)\n", source, re.DOTALL)
    assert configure is not None, source
    older = textwrap.dedent(
        """\
        def process_revision_directives(context, revision, directives):
            if getattr(config.cmd_opts, "autogenerate", False):
                if directives[0].upgrade_ops.is_empty():
                    directives[:] = []


        def run_migrations_online():
            with current_app.extensions["migrate"].db.engine.connect() as connection:
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    process_revision_directives=process_revision_directives,
                    **current_app.extensions["migrate"].configure_args,
                )
                with context.begin_transaction():
                    context.run_migrations()
        """
    )
    start = source.index("def run_migrations_online():")
    end = source.index("if context.is_offline_mode():")
    env_py.write_text(source[:start] + older + "\n\n" + source[end:])

    library.flask_ok("db", "migrate", "-m", "v1")
    library.flask_ok("db", "upgrade")
    nothing = library.flask_ok("db", "migrate", "-m", "nothing")
    assert not [path for path in library.revision_files() if "nothing" in path.name], nothing
    oops = library.flask_ok("db", "migrate", "-m", "oops", LIBRARY_IMPORT_MODELS="0")
    assert "drops table(s) 'author', 'book'" in oops.stderr, oops
