"""Transactions of ``db.session``: SQLAlchemy's by default, autocommit until the first flush opt-in.

The setting's one sentence: with :setting:`FLASKSTACK_DATABASE_AUTOCOMMIT` on
(PostgreSQL, psycopg 3), every statement ``db.session`` sends before its first
flush commits as it runs, as in Django's autocommit mode; from the first flush
(or ``begin_nested()``) until commit or rollback, its statements are one
transaction. Off (the default), every statement is in SQLAlchemy's usual
transaction.

Each test runs on a fresh PostgreSQL database holding ``dbtxn_item`` (a model),
``dbtxn_log`` and ``dbtxn_note(text)``, a function with a side effect: it
inserts its argument into ``dbtxn_log``. A ``SELECT dbtxn_note('x')`` is a
write the SQL text does not show.
"""

from __future__ import annotations

import typing as t

import psycopg
import pytest
import sqlalchemy as sa
from pg_support import session_backend_state
from sqlalchemy.orm import Mapped, mapped_column

from flaskstack import db
from flaskstack.testing._database import TestDatabases, isolate

if t.TYPE_CHECKING:
    from conftest import AppFactory

MODES = [pytest.param(False, id="default"), pytest.param(True, id="autocommit")]


class DbtxnItem(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "dbtxn_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))


SIDE_EFFECT_SCHEMA = """
CREATE TABLE IF NOT EXISTS dbtxn_log (note text NOT NULL);
CREATE OR REPLACE FUNCTION dbtxn_note(value text) RETURNS integer LANGUAGE sql
    AS $$ INSERT INTO dbtxn_log (note) VALUES (value) RETURNING 1 $$;
"""


class PgApp:
    """An app on a fresh PostgreSQL database, and what the database holds, seen from outside."""

    def __init__(self, make_app: AppFactory, url: str, settings: dict[str, t.Any]) -> None:
        self.url = url
        self.app = make_app({"SQLALCHEMY_DATABASE_URI": url, **settings})
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(SIDE_EFFECT_SCHEMA)
        with self.app.app_context():
            DbtxnItem.__table__.create(db.engine, checkfirst=True)

    def notes(self) -> list[str]:
        """What ``dbtxn_note`` wrote and is committed, read by another connection."""
        with psycopg.connect(self.url, autocommit=True) as admin:
            return [row[0] for row in admin.execute("SELECT note FROM dbtxn_log ORDER BY note")]

    def items(self) -> list[str]:
        with psycopg.connect(self.url, autocommit=True) as admin:
            return [row[0] for row in admin.execute("SELECT name FROM dbtxn_item ORDER BY name")]

    def backend_state(self) -> str:
        """``idle`` or ``idle in transaction``: the server's view of the session's connection."""
        return session_backend_state(self.url)


def note(value: str) -> None:
    """Call the side-effect function the way a view would: a plain ``select()``."""
    assert db.session.execute(sa.select(sa.func.dbtxn_note(value))).scalar_one() == 1


@pytest.fixture
def pg(make_app: AppFactory, postgres_url: str) -> t.Callable[..., PgApp]:
    def make(**settings: t.Any) -> PgApp:
        return PgApp(make_app, postgres_url, settings)

    return make


# -- the default: SQLAlchemy's transaction ---------------------------------------------


def test_by_default_rollback_undoes_a_function_called_in_a_select(
    pg: t.Callable[..., PgApp],
) -> None:
    database = pg()
    with database.app.app_context():
        note("side effect")
        assert database.backend_state() == "idle in transaction"
        db.session.rollback()
    assert database.notes() == []


def test_by_default_a_request_that_does_not_commit_leaves_nothing(
    pg: t.Callable[..., PgApp],
) -> None:
    database = pg()

    @database.app.get("/note/<value>")
    def add_note(value: str) -> str:
        note(value)
        return "noted"

    assert database.app.test_client().get("/note/uncommitted").text == "noted"
    assert database.notes() == []


# -- FLASKSTACK_DATABASE_AUTOCOMMIT ---------------------------------------------------


def test_autocommit_a_statement_before_the_first_flush_commits_as_it_runs(
    pg: t.Callable[..., PgApp],
) -> None:
    database = pg(FLASKSTACK_DATABASE_AUTOCOMMIT=True)
    with database.app.app_context():
        note("side effect")
        assert database.backend_state() == "idle"  # no transaction left open
        assert database.notes() == ["side effect"]  # visible to others at once
        db.session.rollback()
    assert database.notes() == ["side effect"]  # rollback has nothing to undo


def test_autocommit_a_request_that_only_reads_opens_no_transaction(
    pg: t.Callable[..., PgApp],
) -> None:
    database = pg(FLASKSTACK_DATABASE_AUTOCOMMIT=True)

    @database.app.get("/note/<value>")
    def add_note(value: str) -> str:
        note(value)
        return database.backend_state()

    assert database.app.test_client().get("/note/kept").text == "idle"
    assert database.notes() == ["kept"]


@pytest.mark.parametrize("autocommit", MODES)
def test_flush_then_rollback_undoes_the_writes(
    pg: t.Callable[..., PgApp], autocommit: bool
) -> None:
    database = pg(FLASKSTACK_DATABASE_AUTOCOMMIT=autocommit)
    with database.app.app_context():
        note("before the flush")
        db.session.add(DbtxnItem(name="flushed"))
        db.session.flush()
        note("after the flush")
        assert database.backend_state() == "idle in transaction"
        assert database.items() == []  # not committed: nobody else sees it
        db.session.rollback()
    assert database.items() == []
    # Before the flush: committed as it ran with the setting on, undone without it.
    assert database.notes() == (["before the flush"] if autocommit else [])


@pytest.mark.parametrize("autocommit", MODES)
def test_flush_then_commit_keeps_the_writes(pg: t.Callable[..., PgApp], autocommit: bool) -> None:
    database = pg(FLASKSTACK_DATABASE_AUTOCOMMIT=autocommit)
    with database.app.app_context():
        db.session.add(DbtxnItem(name="committed"))
        db.session.flush()
        note("with it")
        db.session.commit()
    assert database.items() == ["committed"]
    assert database.notes() == ["with it"]


def test_autocommit_autoflush_starts_the_transaction(pg: t.Callable[..., PgApp]) -> None:
    database = pg(FLASKSTACK_DATABASE_AUTOCOMMIT=True)
    with database.app.app_context():
        db.session.add(DbtxnItem(name="pending"))
        # The query flushes the pending object first: it and the call are one transaction.
        assert db.session.scalars(sa.select(DbtxnItem.name)).all() == ["pending"]
        note("after autoflush")
        db.session.rollback()
    assert (database.items(), database.notes()) == ([], [])


def test_autocommit_resumes_after_commit_and_after_rollback(pg: t.Callable[..., PgApp]) -> None:
    database = pg(FLASKSTACK_DATABASE_AUTOCOMMIT=True)
    with database.app.app_context():
        db.session.add(DbtxnItem(name="first"))
        db.session.commit()
        note("after commit")
        db.session.rollback()
        db.session.add(DbtxnItem(name="undone"))
        db.session.flush()
        db.session.rollback()
        note("after rollback")
        db.session.rollback()
    assert database.items() == ["first"]
    assert database.notes() == ["after commit", "after rollback"]


def test_autocommit_begin_nested_starts_the_transaction(pg: t.Callable[..., PgApp]) -> None:
    database = pg(FLASKSTACK_DATABASE_AUTOCOMMIT=True)
    with database.app.app_context():
        note("before")
        savepoint = db.session.begin_nested()
        note("in the savepoint")
        savepoint.rollback()
        note("after the savepoint")
        assert database.backend_state() == "idle in transaction"
        db.session.rollback()
    assert database.notes() == ["before"]


def test_autocommit_leaves_a_chosen_isolation_level_alone(pg: t.Callable[..., PgApp]) -> None:
    database = pg(FLASKSTACK_DATABASE_AUTOCOMMIT=True)
    with database.app.app_context():
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        note("in a repeatable read transaction")
        assert database.backend_state() == "idle in transaction"
        db.session.rollback()
    assert database.notes() == []

    database = pg(
        FLASKSTACK_DATABASE_AUTOCOMMIT=True,
        SQLALCHEMY_ENGINE_OPTIONS={"isolation_level": "SERIALIZABLE"},
    )
    with database.app.app_context():
        note("in a serializable transaction")
        db.session.rollback()
    assert database.notes() == []


def test_autocommit_does_not_reach_connections_taken_from_the_engine(
    pg: t.Callable[..., PgApp],
) -> None:
    database = pg(FLASKSTACK_DATABASE_AUTOCOMMIT=True)
    with database.app.app_context():
        note("through the session")
        session_pid = db.session.connection().connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
    with database.app.app_context(), db.engine.connect() as connection:
        # The same pooled connection the session had in autocommit mode.
        assert connection.connection.dbapi_connection.info.backend_pid == session_pid  # type: ignore[union-attr]
        connection.execute(sa.select(sa.func.dbtxn_note("through the engine")))
        connection.rollback()
    assert database.notes() == ["through the session"]


def test_autocommit_under_the_test_plugin_still_rolls_everything_back(
    pg: t.Callable[..., PgApp],
) -> None:
    """The plugin's per-test transaction wins: a test never leaves rows behind."""
    database = pg(FLASKSTACK_DATABASE_AUTOCOMMIT=True)
    databases = TestDatabases()
    try:
        with isolate(database.app, databases), database.app.app_context():
            note("inside the test")
            db.session.commit()
            assert db.session.scalars(sa.text("SELECT note FROM dbtxn_log")).all() == [
                "inside the test"
            ]
    finally:
        databases.dispose()
    assert database.notes() == []


def test_autocommit_changes_nothing_on_sqlite(make_app: AppFactory) -> None:
    app = make_app({"FLASKSTACK_DATABASE_AUTOCOMMIT": True})
    with app.app_context():
        DbtxnItem.__table__.create(db.engine, checkfirst=True)
        db.session.execute(sa.text("INSERT INTO dbtxn_item (name) VALUES ('unflushed')"))
        db.session.rollback()
        assert db.session.scalars(sa.select(DbtxnItem.name)).all() == []
