"""What ``flaskstack/_sqlalchemy_adapter.py`` relies on in Flask-SQLAlchemy, checked loudly.

The adapter makes an app's engines on first use, through the one private
hook Flask-SQLAlchemy 3.1 has for it (``SQLAlchemy._make_engine``, results
kept in ``SQLAlchemy._app_engines``). When a release changes either, these
tests fail with a message saying what changed upstream.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
import typing as t

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from flaskstack import db
from flaskstack._sqlalchemy_adapter import LazyEngines

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import AppFactory

FLASK_SQLALCHEMY = f"Flask-SQLAlchemy {importlib.metadata.version('flask-sqlalchemy')}"


def test_init_app_leaves_the_engine_to_be_created_on_first_use(make_app: AppFactory) -> None:
    app = make_app()

    with app.app_context():
        engines = db.engines
        assert isinstance(engines, LazyEngines), (
            f"{FLASK_SQLALCHEMY}: db.engines no longer returns the mapping the adapter put in "
            f"SQLAlchemy._app_engines[app] (got {type(engines).__name__})"
        )
        assert engines.pending == {None}, (
            f"{FLASK_SQLALCHEMY} created the engine in init_app without calling "
            "SQLAlchemy._make_engine: engines are made at start-up again "
            "(flaskstack/_sqlalchemy_adapter.py needs a new hook)"
        )
        engine = db.engine
        assert isinstance(engine, sa.Engine)
        assert engines.pending == frozenset()
        assert db.engine is engine  # made once
        # Made by Flask-SQLAlchemy's own _make_engine with its driver defaults
        # (SQLite paths under the instance folder) and configured by flaskstack.
        assert engine.url.database == os.path.join(app.instance_path, "testapp.sqlite3")
        assert db.session.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1


@pytest.fixture
def reports_bind() -> t.Iterator[None]:
    """Forget the ``reports`` bind's metadata after the test.

    Flask-SQLAlchemy's ``init_app`` adds a ``MetaData`` to the shared
    ``db.metadatas`` for each bind it is configured with; left there, a later
    test's ``db.create_all()`` would look for that bind in its own app.
    """
    yield
    db.metadatas.pop("reports", None)


@pytest.mark.usefixtures("reports_bind")
def test_engines_of_binds_are_created_on_first_use_too(
    make_app: AppFactory, postgres_url: str
) -> None:
    # A bind's URL is used as given: name the driver (SQLAlchemy 2.0 maps a bare
    # postgresql:// to psycopg2).
    reports_url = make_url(postgres_url).set(drivername="postgresql+psycopg")
    app = make_app(
        {
            "SQLALCHEMY_BINDS": {
                "reports": {"url": reports_url, "pool_size": 2},
            }
        }
    )

    with app.app_context():
        assert db.engines.pending == {None, "reports"}  # type: ignore[attr-defined]
        reports = db.engines["reports"]
        assert db.engines.pending == {None}  # type: ignore[attr-defined]
        assert reports.pool.size() == 2  # type: ignore[attr-defined]
        with reports.connect() as connection:
            assert connection.scalar(sa.text("SELECT 1")) == 1
        assert sorted(map(str, db.engines)) == ["None", "reports"]  # walking creates them all
        assert db.engines.pending == frozenset()  # type: ignore[attr-defined]


def test_recording_queries_still_works(make_app: AppFactory) -> None:
    """Flask-SQLAlchemy walks the engines in init_app to record queries: they are made then."""
    from flask_sqlalchemy.record_queries import get_recorded_queries

    app = make_app({"SQLALCHEMY_RECORD_QUERIES": True})

    with app.app_context():
        assert db.engines.pending == frozenset()  # type: ignore[attr-defined]
        db.session.execute(sa.text("SELECT 42"))
        assert [query.statement for query in get_recorded_queries()] == ["SELECT 42"]


PROBE = textwrap.dedent(
    """
    import json, sys

    from flask import Flask

    import flaskstack

    app = Flask("adapterapp", instance_path=sys.argv[1])
    flaskstack.init_app(app)
    seen = {"after_init_app": "psycopg" in sys.modules}
    with app.app_context():
        seen["answer"] = flaskstack.db.session.scalar(flaskstack.db.text("SELECT 7"))
    seen["after_select"] = "psycopg" in sys.modules
    print(json.dumps(seen))
    """
)


def test_the_driver_is_imported_by_the_first_statement_not_by_init_app(
    tmp_path: Path, postgres_url: str
) -> None:
    env = dict(os.environ, DATABASE_URL=postgres_url, SECRET_KEY="k" * 40)
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "instance")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen == {"after_init_app": False, "answer": 7, "after_select": True}, (
        f"{FLASK_SQLALCHEMY}: init_app imported the driver; engines are no longer created lazily"
    )
