"""The reference app in ``example/`` with its migrations, driven through the real CLI.

Each test copies ``example/`` and ``migrations/`` into a temporary working
directory and runs ``flask --app example:create_app …`` there in a
subprocess, as a developer would: the example's models never enter this
process's ``flaskstack.db.metadata``, and the instance folder (the SQLite
file, the generated secret key) is the copy's, not the repository's. The
tests run on SQLite (the embedded default) and on a fresh PostgreSQL
database.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = "example:create_app"
DEMO_NOTE_COUNT = 3

# Environment variables that would change what the subprocess loads or measures.
_DROPPED = ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "COVERAGE_PROCESS_START")


class ExampleApp:
    """A working copy of the example app and a way to run commands in it."""

    def __init__(self, workdir: Path, database_url: str | None) -> None:
        self.workdir = workdir
        self.database_url = database_url
        # conftest's clean_environment already removed the variables flaskstack reads.
        self.env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        # Deprecation warnings from the stack or the migration environment fail the run.
        self.env["PYTHONWARNINGS"] = "error"
        if database_url is not None:
            self.env["DATABASE_URL"] = database_url

    @property
    def instance(self) -> Path:
        """Flask's default instance folder for the package ``example``."""
        return self.workdir / "instance"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)!r} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("-m", "flask", "--app", APP, *args, check=check)

    def python(self, code: str) -> t.Any:
        """Run ``code`` with ``app`` created; return what it ``print``\\ s last, as JSON."""
        prelude = "import json\nfrom example import create_app\napp = create_app()\n"
        output = self.run("-c", prelude + code).stdout
        return json.loads(output.strip().splitlines()[-1])

    def tables(self) -> list[str]:
        return t.cast(
            "list[str]",
            self.python(
                "import sqlalchemy as sa\n"
                "from flaskstack import db\n"
                "with app.app_context():\n"
                "    print(json.dumps(sorted(sa.inspect(db.engine).get_table_names())))\n"
            ),
        )

    def note_titles(self) -> list[str]:
        return t.cast(
            "list[str]",
            self.python(
                "import sqlalchemy as sa\n"
                "from flaskstack import db\n"
                "from example.models import Note\n"
                "with app.app_context():\n"
                "    titles = db.session.scalars(sa.select(Note.title).order_by(Note.id))\n"
                "    print(json.dumps(list(titles)))\n"
            ),
        )


def working_copy(tmp_path: Path) -> Path:
    """Copy the example app and its migrations, without caches or an instance folder."""
    workdir = tmp_path / "work"
    ignore = shutil.ignore_patterns("__pycache__", "instance")
    for name in ("example", "migrations"):
        shutil.copytree(ROOT / name, workdir / name, ignore=ignore)
    return workdir


@pytest.fixture(params=["sqlite", "postgresql"])
def example(request: pytest.FixtureRequest, tmp_path: Path) -> ExampleApp:
    """The example app in a temporary working copy, on SQLite or a fresh PostgreSQL database."""
    database_url = (
        request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    )
    return ExampleApp(working_copy(tmp_path), database_url)


def test_check_fails_until_the_migrations_are_applied(example: ExampleApp) -> None:
    before = example.flask("stack", "check", check=False)
    assert before.returncode == 1, before.stdout + before.stderr
    assert "migrations.E001" in before.stdout

    example.flask("db", "upgrade")

    after = example.flask("stack", "check")
    assert "System check identified no issues (0 silenced)." in after.stdout
    assert example.tables() == ["alembic_version", "api_tokens", "note", "users"]


def test_embedded_defaults_live_in_the_instance_folder(example: ExampleApp) -> None:
    example.flask("db", "upgrade")

    assert (example.instance / "secret_key").is_file()
    assert (example.instance / "example.sqlite3").is_file() == (example.database_url is None)


def test_seed_twice_leaves_the_same_notes(example: ExampleApp) -> None:
    example.flask("db", "upgrade")

    first = example.flask("example", "seed")
    titles = example.note_titles()
    second = example.flask("example", "seed")

    assert f"Added {DEMO_NOTE_COUNT} demo note(s)" in first.stdout
    assert "Added 0 demo note(s)" in second.stdout
    assert len(titles) == DEMO_NOTE_COUNT
    assert example.note_titles() == titles


def test_pages_list_the_notes(example: ExampleApp) -> None:
    example.flask("db", "upgrade")
    example.flask("example", "seed")

    pages = example.python(
        "client = app.test_client()\n"
        "pages = {}\n"
        "for path in ('/', '/notes', '/readyz'):\n"
        "    r = client.get(path)\n"
        "    pages[path] = [r.status_code, r.mimetype, r.get_data(as_text=True)]\n"
        "print(json.dumps(pages))\n"
    )

    status, mimetype, html = pages["/"]
    assert (status, mimetype) == (200, "text/html")
    status, mimetype, body = pages["/notes"]
    assert (status, mimetype) == (200, "application/json")
    notes = json.loads(body)["notes"]
    assert len(notes) == DEMO_NOTE_COUNT
    assert notes[0]["title"] == "Welcome to flaskstack"  # newest first
    for note in notes:
        assert set(note) == {"id", "title", "body", "created_at"}
        assert note["created_at"].endswith("+00:00")
        assert f"<h2>{note['title']}</h2>" in html
    assert pages["/readyz"][0] == 200


def test_downgrade_to_base_then_upgrade_round_trips(example: ExampleApp) -> None:
    example.flask("db", "upgrade")
    example.flask("example", "seed")

    example.flask("db", "downgrade", "base")
    assert example.tables() == ["alembic_version"]

    example.flask("db", "upgrade")
    assert example.tables() == ["alembic_version", "api_tokens", "note", "users"]
    assert example.note_titles() == []
    check = example.flask("stack", "check")
    assert "no issues" in check.stdout


def test_postgresql_constraints_have_conventional_names(postgres_url: str, tmp_path: Path) -> None:
    ExampleApp(working_copy(tmp_path), postgres_url).flask("db", "upgrade")

    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT conname, contype FROM pg_constraint "
            "WHERE conrelid = 'note'::regclass ORDER BY conname"
        ).fetchall()
    assert rows == [("pk_note", "p")]
