"""Test databases, and one transaction per test that is always rolled back.

This module owns the database side of :mod:`flaskstack.testing`. The rule it
keeps: **nothing a test writes survives the test**, whatever the code under
test does with ``db.session.commit()`` and ``rollback()``, and the schema is
built once per database, not once per test.

How a test is isolated (:func:`isolate`):

1. The engine the app would use is registered once per database URL
   (:class:`TestDatabases`); the schema is created in it the first time, from
   the models (``db.create_all()``) or by running the migrations, and
   committed.
2. For the test, one connection is taken from that engine and a transaction
   is begun on it, plus a base SAVEPOINT. That connection (a
   :class:`TestConnection`) is put in the app's engine mapping (flaskstack's
   own :class:`~flaskstack._sqlalchemy_adapter.LazyEngines`, which
   ``db.engines`` returns), so ``db.session``, ``db.engine`` and
   ``db.engines`` all hand it out for the rest of the test.
   Flask-SQLAlchemy 3.1's session ignores a session-level ``bind``, which is
   why the usual "bind the session to the connection" recipe silently leaks
   rows; the engine mapping is the only place it looks.
3. A session given a connection that is inside a SAVEPOINT joins it with a
   SAVEPOINT of its own (SQLAlchemy's ``conditional_savepoint`` mode), so the
   code under test may commit (the SAVEPOINT is released into the test's
   transaction) and roll back (only its own work is undone).
4. At the end the engines are put back and the transaction is rolled back.

SQLite needs one more step: pysqlite's own transaction handling emits no
``BEGIN`` and commits before some statements, which breaks SAVEPOINTs. The
engines used here get SQLAlchemy's documented fix (``isolation_level = None``
on each DBAPI connection, and an explicit ``BEGIN`` on every begin), which
works on every supported Python.

PostgreSQL databases for a run are created by :func:`create_postgres_database`
and dropped by :func:`drop_postgres_database`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import typing as t
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session

from flaskstack._sqlalchemy_adapter import LazyEngines
from flaskstack.database import _foreign_keys_off, db
from flaskstack.migrations import _repository_config

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from flask import Flask
    from sqlalchemy.engine import URL, NestedTransaction, RootTransaction

__all__ = [
    "KEPT_CONNECTION_KEY",
    "SCHEMA_SOURCES",
    "Isolation",
    "TestConnection",
    "TestDatabases",
    "create_postgres_database",
    "drop_postgres_database",
    "get_isolation",
    "isolate",
    "new_database_name",
]

SCHEMA_SOURCES = ("models", "migrations")
"""Where the schema of a test database comes from: ``db.create_all()`` or ``flask db upgrade``."""

ISOLATION_KEY = "flaskstack.testing"
"""Key of the current test's :class:`Isolation` in ``app.extensions``."""

KEPT_CONNECTION_KEY = "flaskstack.testing.kept"
"""Set to ``True`` in the pool record's ``info`` of every DBAPI connection a run keeps.

A fixture that closes DBAPI connections behind their pool's back (to silence
``ResourceWarning`` from connections left to the garbage collector) should
leave these alone: :meth:`TestDatabases.dispose` closes them at the end of
the run, and closing them earlier costs a reconnect per test.
"""

BindKey = str | None  # Flask-SQLAlchemy bind keys; None is the default database


class TestConnection(Connection):
    """The connection one test runs on, standing in for the app's engine.

    It is a real :class:`~sqlalchemy.engine.Connection`, inside a transaction
    and a base SAVEPOINT, so Flask-SQLAlchemy's session joins it. It also
    answers the calls code makes on an engine (``db.engine``):

    - :meth:`connect` hands out the same connection inside a SAVEPOINT of its
      own: ``commit()`` keeps the work (in the test's transaction),
      ``rollback()`` and closing without a commit undo it;
    - :meth:`begin` is :meth:`Engine.begin <sqlalchemy.engine.Engine.begin>`:
      a block whose work is kept unless it raises;
    - ``url``, ``name`` and ``driver`` are the engine's; :meth:`dispose` does
      nothing.

    Anything else that opens a connection of its own (``engine.raw_connection()``,
    a second engine on the same URL) works outside the test's transaction.
    """

    # pytest collects classes named Test*; this one is not a test.
    __test__ = False

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        if engine.dialect.name == "sqlite":
            # A connection pooled before the engine was registered still has
            # pysqlite's own transaction handling; no transaction is open here.
            dbapi_connection: t.Any = self.connection.dbapi_connection
            if dbapi_connection.isolation_level is not None:
                dbapi_connection.isolation_level = None
        self._outer: RootTransaction = Connection.begin(self)
        self._base: NestedTransaction = self.begin_nested()

    @property
    def url(self) -> URL:
        """The engine's URL."""
        return self.engine.url

    @property
    def name(self) -> str:
        """The engine's dialect name (``postgresql``, ``sqlite``)."""
        return self.engine.name

    @property
    def driver(self) -> str:
        """The engine's DBAPI driver name."""
        return self.engine.driver

    def connect(self) -> Connection:
        """This connection inside a SAVEPOINT of its own, as ``engine.connect()`` would be."""
        return t.cast("Connection", _BorrowedConnection(self))

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:  # type: ignore[override]
        """``engine.begin()``: a block on this connection, kept unless it raises.

        SQLAlchemy only calls ``Connection.begin()`` on a connection outside a
        transaction; this one is inside one for its whole life.
        """
        with self.connect() as connection, connection.begin():
            yield connection

    def dispose(self, close: bool = True) -> None:
        """Do nothing: the test's connection outlives calls to ``engine.dispose()``."""

    def end(self) -> None:
        """Roll the test's transaction back and return the connection to its pool."""
        try:
            if self._outer.is_active:
                self._outer.rollback()
        finally:
            Connection.close(self)


class _BorrowedTransaction:
    """``connection.begin()`` on a borrowed connection: commit or roll back its SAVEPOINT."""

    def __init__(self, borrowed: _BorrowedConnection) -> None:
        self._borrowed = borrowed
        self.is_active = True

    def commit(self) -> None:
        if self.is_active:
            self.is_active = False
            self._borrowed.commit()

    def rollback(self) -> None:
        if self.is_active:
            self.is_active = False
            self._borrowed.rollback()

    def close(self) -> None:
        self.rollback()

    def __enter__(self) -> _BorrowedTransaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()


class _BorrowedConnection:
    """What ``engine.connect()`` returns during a test: the test's connection in a SAVEPOINT.

    Everything not defined here (``execute``, ``scalar``, ``exec_driver_sql``,
    ``dialect``…) is the test connection's own.
    """

    def __init__(self, shared: TestConnection) -> None:
        self._shared = shared
        self._savepoint: NestedTransaction | None = shared.begin_nested()

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._shared, name)

    def __enter__(self) -> _BorrowedConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def wrapped_connection(self) -> TestConnection:
        """The test's connection itself, for code that needs a real ``Connection`` object.

        ``sqlalchemy.inspect()`` and Alembic's autogenerate look at the type
        of what they are given; inside this connection's SAVEPOINT, the
        test's connection sees the same data.
        """
        return self._shared

    @property
    def closed(self) -> bool:
        return self._savepoint is None

    def _end(self, keep: bool) -> None:
        if self._savepoint is None:
            raise sa.exc.ResourceClosedError("This Connection is closed")
        if self._savepoint.is_active:
            if keep:
                self._savepoint.commit()
            else:
                self._savepoint.rollback()

    def commit(self) -> None:
        """Keep what was done since the last commit (in the test's transaction)."""
        self._end(keep=True)
        self._savepoint = self._shared.begin_nested()

    def rollback(self) -> None:
        """Undo what was done since the last commit."""
        self._end(keep=False)
        self._savepoint = self._shared.begin_nested()

    def begin(self) -> _BorrowedTransaction:
        """A block committed or rolled back as a whole."""
        return _BorrowedTransaction(self)

    def close(self) -> None:
        """Undo what was not committed; the test's connection itself stays open."""
        if self._savepoint is not None:
            self._end(keep=False)
            self._savepoint = None


def _fix_sqlite_transactions(engine: Engine) -> None:
    """SQLAlchemy's recipe for SAVEPOINTs on pysqlite: let SQLAlchemy emit ``BEGIN``."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: t.Any, _record: t.Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def _mark_kept(_dbapi_connection: t.Any, record: t.Any) -> None:
    record.info[KEPT_CONNECTION_KEY] = True


def _url_key(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@dataclasses.dataclass
class _Database:
    engine: Engine
    tables: set[str] = dataclasses.field(default_factory=set)
    migrated: bool = False


class TestDatabases:
    """The engines of one test run, one per database URL, and the schema built in each.

    :param schema: ``"models"`` (``db.create_all()``) or ``"migrations"``
        (the app's Alembic repository upgraded to ``head``).

    The first app seen for a URL lends its engine; later apps with the same
    URL run on that engine too, so a test costs a pooled connection, not a
    connect. :meth:`dispose` closes them all.
    """

    __test__ = False

    def __init__(self, schema: str = "models") -> None:
        if schema not in SCHEMA_SOURCES:
            raise ValueError(
                f"unknown schema source {schema!r}: use one of {', '.join(SCHEMA_SOURCES)}"
            )
        self.schema = schema
        self._databases: dict[str, _Database] = {}

    def owns(self, engine: Engine) -> bool:
        """Whether ``engine`` is one this object keeps (and disposes) for the run."""
        return any(entry.engine is engine for entry in self._databases.values())

    def engine_for(self, app: Flask, bind_key: BindKey, engine: Engine) -> Engine:
        """The run's engine for the database of ``engine``, with the schema in place.

        Call it in an app context of ``app`` whose engines are still the real ones.
        """
        key = _url_key(engine.url)
        entry = self._databases.get(key)
        if entry is None:
            sa.event.listen(engine, "connect", _mark_kept)
            if engine.dialect.name == "sqlite":
                _fix_sqlite_transactions(engine)
            entry = self._databases[key] = _Database(engine)
        if self.schema == "models":
            self._create_tables(entry, bind_key)
        elif bind_key is None and not entry.migrated:
            self._migrate(app)
            entry.migrated = True
        return entry.engine

    def _create_tables(self, entry: _Database, bind_key: BindKey) -> None:
        metadata = db.metadatas.get(bind_key)
        if metadata is None:
            return
        # Models declared after the first test (in a factory, say) get their
        # tables on the next test that uses this database.
        missing = [table for name, table in metadata.tables.items() if name not in entry.tables]
        if missing:
            metadata.create_all(entry.engine, tables=missing)
            entry.tables.update(table.name for table in missing)

    @staticmethod
    def _migrate(app: Flask) -> None:
        from alembic import command  # heavy: imported only for a schema built by migrations

        try:
            config = _repository_config(app)
        except FileNotFoundError as exc:
            raise RuntimeError(
                f"flaskstack_schema is 'migrations' but app {app.name!r} has no migration "
                f"repository at {exc.args[0]!r}: run `flask db init`, or use the default "
                "schema source 'models'"
            ) from None
        with _foreign_keys_off():  # as under `flask db upgrade`
            command.upgrade(config, "head")

    def dispose(self, url: str | None = None) -> None:
        """Close the pooled connections of every engine (or of the one for ``url``)."""
        for key in list(self._databases):
            if url is None or key == _url_key(make_url(url)):
                self._databases.pop(key).engine.dispose()


@dataclasses.dataclass
class Isolation:
    """One test's hold on an app's databases.

    :ivar app: The app whose engines are swapped for the test.
    :ivar connections: The test connection of each bind key (``None``: the default).
    """

    app: Flask
    connections: dict[BindKey, TestConnection]

    @property
    def connection(self) -> TestConnection:
        """The test connection of the default database."""
        return self.connections[None]

    def session(self, **options: t.Any) -> Session:
        """A new SQLAlchemy session on the test's connections, usable without an app context.

        Its commits are SAVEPOINT releases inside the test's transaction: visible
        to the app's requests, gone after the test. Close it before the test ends.
        """
        binds: dict[t.Any, Engine | Connection] = {}
        for key, connection in self.connections.items():
            metadata = db.metadatas.get(key)
            if key is not None and metadata is not None:
                binds.update(dict.fromkeys(metadata.tables.values(), connection))
        options.setdefault("join_transaction_mode", "create_savepoint")
        return Session(bind=self.connections.get(None), binds=binds, **options)


def get_isolation(app: Flask) -> Isolation | None:
    """The isolation ``app`` is under in the current test, if any."""
    isolation: Isolation | None = app.extensions.get(ISOLATION_KEY)
    return isolation


@contextlib.contextmanager
def isolate(app: Flask, databases: TestDatabases) -> Iterator[Isolation]:
    """Run the block with every database write of ``app`` rolled back afterwards.

    Also works outside pytest::

        databases = TestDatabases()
        with isolate(app, databases):
            app.test_client().post("/notes", data={"title": "x"})
        databases.dispose()

    :raises RuntimeError: if ``app`` is already isolated.
    """
    if get_isolation(app) is not None:
        raise RuntimeError(f"app {app.name!r} is already isolated for this test")
    with app.app_context():
        engines = db.engines
        if not isinstance(engines, LazyEngines):
            raise RuntimeError(
                f"app {app.name!r} was not set up by flaskstack.init_app (its db.engines is a "
                f"{type(engines).__name__}): flaskstack.testing can only isolate such apps"
            )
        originals: dict[BindKey, Engine] = dict(engines)
        test_engines = {
            key: databases.engine_for(app, key, engine) for key, engine in originals.items()
        }
    connections: dict[BindKey, TestConnection] = {}
    try:
        for key, engine in test_engines.items():
            connections[key] = TestConnection(engine)
        engines.update(connections)  # what get_bind hands out from now on
        isolation = Isolation(app, connections)
        app.extensions[ISOLATION_KEY] = isolation
        yield isolation
    finally:
        app.extensions.pop(ISOLATION_KEY, None)
        engines.update(originals)
        for connection in connections.values():
            connection.end()


# -- PostgreSQL databases for a run ---------------------------------------------------------

_IDENTIFIER_LIMIT = 63  # PostgreSQL truncates longer names


def new_database_name(base: str | None, worker: str) -> str:
    """A new database name: ``<base>_test_<worker>_<8 hex digits>``, at most 63 characters."""
    stem = re.sub(r"[^a-z0-9_]", "_", (base or "flaskstack").lower()).strip("_") or "flaskstack"
    tail = f"_test_{re.sub(r'[^a-z0-9_]', '_', worker.lower())}_{uuid.uuid4().hex[:8]}"
    return stem[: _IDENTIFIER_LIMIT - len(tail)] + tail


def _admin_engine(url: URL) -> Engine:
    """An AUTOCOMMIT engine on a database of ``url``'s server that exists."""
    last_error: Exception | None = None
    for database in ("postgres", url.database, "template1"):
        if not database:
            continue
        engine = sa.create_engine(
            url.set(database=database), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        try:
            with engine.connect():
                return engine
        except sa.exc.OperationalError as exc:
            last_error = exc
            engine.dispose()
    raise RuntimeError(
        f"cannot connect to the PostgreSQL server of {url.render_as_string()} to create the "
        f"test database: {last_error}"
    ) from last_error


def create_postgres_database(url: str, worker: str) -> str:
    """Create a database named after ``url``'s on the same server; return its URL.

    The role in ``url`` needs the ``CREATEDB`` privilege.
    """
    base = make_url(url)
    name = new_database_name(base.database, worker)
    admin = _admin_engine(base)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    """Drop the database of ``url``, closing whatever is still connected to it."""
    target = make_url(url)
    admin = _admin_engine(target.set(database="postgres"))
    drop = f'DROP DATABASE IF EXISTS "{target.database}"'
    try:
        with admin.connect() as connection:
            try:
                connection.exec_driver_sql(drop + " WITH (FORCE)")
            except sa.exc.ProgrammingError:  # PostgreSQL before 13 has no FORCE
                connection.exec_driver_sql(drop)
    finally:
        admin.dispose()
