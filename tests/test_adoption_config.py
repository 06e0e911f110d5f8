"""An existing app's own configuration wins over the environment.

An app adopting flaskstack already has config classes, a ``TestConfig`` with
its own database, and a ``.env`` file that the ``flask`` command loads. The
environment fills only what the app's code left unset: a test suite that
drops its tables drops them in the database its ``TestConfig`` names, never
in the one ``DATABASE_URL`` points at.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import typing as t
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from conftest import dispose_engines
from flask import Flask
from flask.cli import ScriptInfo
from flask.cli import cli as flask_cli
from psycopg import sql

import flaskstack
from flaskstack import db

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import PostgresDatabases

SECRET = "Ks8f2QmZt7LwX1pV9cR4nB6yH3dJ0aE5gU2oI8uT"


def _production_database(postgres: PostgresDatabases, table: str) -> str:
    """A real PostgreSQL database holding ``table`` with three rows; its ``postgresql://`` URL."""
    url = postgres.create("adopted")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, body text NOT NULL)").format(
                sql.Identifier(table)
            )
        )
        for body in ("first", "second", "third"):
            conn.execute(
                sql.SQL("INSERT INTO {} (body) VALUES (%s)").format(sql.Identifier(table)),
                (body,),
            )
    return url


def _rows(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        query = sql.SQL("SELECT body FROM {} ORDER BY id").format(sql.Identifier(table))
        return [row[0] for row in conn.execute(query)]


class TestConfig:
    """What an existing app's test settings look like."""

    TESTING = True
    SECRET_KEY = SECRET
    SQLALCHEMY_DATABASE_URI = "sqlite://"


def create_app(config_class: type, instance_path: str) -> Flask:
    """An existing app's factory, with flaskstack added."""
    app = Flask("adoptedapp", instance_path=instance_path)
    app.config.from_object(config_class)
    flaskstack.init_app(app)
    return app


@pytest.fixture
def notes_table() -> t.Iterator[str]:
    """A table of the app's models, on ``db.metadata`` for this test only."""
    name = f"notes_{uuid.uuid4().hex[:8]}"
    table = sa.Table(
        name,
        db.metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    yield name
    db.metadata.remove(table)


def test_test_config_beats_database_url_and_the_real_database_survives(
    postgres: PostgresDatabases,
    notes_table: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production_url = _production_database(postgres, notes_table)
    monkeypatch.setenv("DATABASE_URL", production_url)

    app = create_app(TestConfig, str(tmp_path / "instance"))
    try:
        with app.app_context():
            # What a test suite's fixture does around every test.
            db.create_all()
            db.drop_all()
            url = db.engine.url
    finally:
        dispose_engines(app)

    # The table is still there, rows and all (before, it was dropped: UndefinedTable).
    assert _rows(production_url, notes_table) == ["first", "second", "third"]
    assert url.get_backend_name() == "sqlite"
    assert url.database is None  # in memory
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"


def test_flask_command_with_a_dotenv_file_keeps_the_test_config(
    postgres: PostgresDatabases, tmp_path: Path
) -> None:
    """A ``flask test``-style command of the app, run by the real ``flask`` executable.

    The ``flask`` command loads ``.env`` into the environment before it loads
    the app, so ``DATABASE_URL`` is set when the command builds its test app.
    """
    production_url = _production_database(postgres, "notes")
    project = tmp_path / "project"
    (project / "legacy").mkdir(parents=True)
    (project / ".env").write_text(f"DATABASE_URL={production_url}\n")
    (project / ".flaskenv").write_text("FLASK_APP=legacy:create_app\n")
    (project / "legacy" / "__init__.py").write_text(
        textwrap.dedent(
            f"""
            import os

            import click
            from flask import Flask

            import flaskstack
            from flaskstack import db


            class Config:
                SECRET_KEY = {SECRET!r}
                SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or "sqlite:///app.db"


            class TestConfig(Config):
                TESTING = True
                SQLALCHEMY_DATABASE_URI = "sqlite://"


            class Note(db.Model):
                __tablename__ = "notes"
                id = db.Column(db.Integer, primary_key=True)
                body = db.Column(db.Text, nullable=False)


            def create_app(config_class=Config):
                app = Flask(__name__)
                app.config.from_object(config_class)
                flaskstack.init_app(app)

                @app.cli.command("test")
                def run_tests():
                    test_app = create_app(TestConfig)
                    with test_app.app_context():
                        db.create_all()
                        click.echo(f"testing on {{db.engine.url.get_backend_name()}}")
                        db.drop_all()

                return app
            """
        )
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"))
    }
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "test"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _rows(production_url, "notes") == ["first", "second", "third"]
    assert "testing on sqlite" in proc.stdout


def run(factory: t.Callable[[], Flask], *args: str) -> Result:
    return CliRunner().invoke(flask_cli, list(args), obj=ScriptInfo(create_app=factory))


def test_stack_config_and_check_show_the_ignored_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pa55word@db.internal/app")
    created: list[Flask] = []

    def factory() -> Flask:
        created.append(create_app(TestConfig, str(tmp_path / "instance")))
        return created[-1]

    try:
        shown = run(factory, "stack", "config")
        checked = run(factory, "stack", "check", "--tag", "config")
    finally:
        for app in created:
            dispose_engines(app)

    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    (row,) = [i for i, line in enumerate(lines) if line.startswith("SQLALCHEMY_DATABASE_URI ")]
    assert "'sqlite://'" in lines[row]
    assert lines[row].endswith("app (app.config before init_app)")
    assert lines[row + 1].split() == [
        "ignored:",
        "environment",
        "variable",
        "DATABASE_URL",
        "=",
        "'postgresql://app:***@db.internal/app'",
        "(overridden",
        "by",
        "app.config",
        "before",
        "init_app)",
    ]
    assert "pa55word" not in shown.output

    assert checked.exit_code == 0, checked.output  # a warning, not a failure
    assert "config.W002: environment variable DATABASE_URL" in checked.output
    assert "SQLALCHEMY_DATABASE_URI comes from app.config before init_app" in checked.output
    assert "pa55word" not in checked.output


def test_stack_config_names_flaskstacks_defaults_that_replace_the_librarys(
    tmp_path: Path,
) -> None:
    created: list[Flask] = []

    def factory() -> Flask:
        created.append(create_app(TestConfig, str(tmp_path / "instance")))
        return created[-1]

    try:
        result = run(factory, "stack", "config")
    finally:
        for app in created:
            dispose_engines(app)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:] if line.strip()}
    assert lines["MAX_CONTENT_LENGTH"].endswith("default (flaskstack; Flask's default: None)")
    assert lines["SESSION_COOKIE_SAMESITE"].endswith("default (flaskstack; Flask's default: None)")
    assert lines["WTF_CSRF_TIME_LIMIT"].endswith("default (flaskstack; Flask-WTF's default: 3600)")
    assert lines["TESTING"].endswith("app (app.config before init_app)")
