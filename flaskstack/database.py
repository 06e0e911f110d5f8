"""The ORM: Flask-SQLAlchemy with the conventions migrations depend on.

``db`` is created at import time, before any app exists, so models can be
declared anywhere. Its metadata carries a constraint naming convention:
Alembic can only alter or drop a constraint that has a name, and on SQLite
(where every change rebuilds the table) an unnamed one cannot be found again.

Per app, this module fills in the database URL (SQLite in the instance
folder by default; ``postgres://`` URLs go to psycopg 3) and engine options
(a connect timeout) before Flask-SQLAlchemy reads them, and makes sure a
pooled connection the server closed is never handed to a request.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
import os
import re
import select
import threading
import typing as t

import sqlalchemy as sa
from flask import current_app
from flask_sqlalchemy import SQLAlchemy as _FlaskSQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .config import app_short_name
from .errors import Problem
from .problems import ServiceUnavailableProblem

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

    from .config import Resolution

__all__ = ["NAMING_CONVENTION", "DatabaseUnavailable", "db", "normalise_database_url"]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Names given to constraints and indexes that the model does not name."""


class _Pending:
    """What an engine will be made of, until something asks for the engine."""

    def __init__(self, options: dict[str, t.Any]) -> None:
        self.options = options


EngineHook = t.Callable[[sa.Engine], None]


class _Engines(dict):  # type: ignore[type-arg]
    """An app's bind key → engine mapping whose engines are created on first use.

    Creating an engine imports the database driver and SQLAlchemy's dialect
    (psycopg and SQLAlchemy's PostgreSQL package: about a quarter of an app's
    start-up); a process that never touches the database (``flask --help``,
    most CLI commands) never pays for it. Behaves as the plain dict
    Flask-SQLAlchemy keeps: looking up a key creates its engine, anything
    that walks the mapping creates them all.
    """

    def __init__(self, built: dict[str | None, t.Any], pending: dict[str | None, _Pending]):
        super().__init__(built)
        self._pending = pending
        self._lock = threading.Lock()
        self.configure: EngineHook | None = None

    def _create(self, key: str | None) -> None:
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                return  # another thread made it
            engine = sa.engine_from_config(pending.options, prefix="")
            if self.configure is not None:
                self.configure(engine)
            dict.__setitem__(self, key, engine)
            del self._pending[key]

    def create_all(self) -> None:
        """Create every engine not created yet."""
        for key in list(self._pending):
            self._create(key)

    def __missing__(self, key: str | None) -> t.Any:
        if key not in self._pending:
            raise KeyError(key)
        self._create(key)
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self._pending or dict.__contains__(self, key)

    def get(self, key: str | None, default: t.Any = None) -> t.Any:
        if key in self._pending:
            self._create(key)
        return dict.get(self, key, default)

    def __iter__(self) -> t.Iterator[str | None]:
        self.create_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        return dict.__len__(self) + len(self._pending)

    def keys(self) -> t.Any:
        self.create_all()
        return dict.keys(self)

    def values(self) -> t.Any:
        self.create_all()
        return dict.values(self)

    def items(self) -> t.Any:
        self.create_all()
        return dict.items(self)

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.create_all()
        dict.update(self, *args, **kwargs)

    def __setitem__(self, key: str | None, value: t.Any) -> None:
        self._pending.pop(key, None)
        dict.__setitem__(self, key, value)

    def copy(self) -> dict[str | None, t.Any]:
        self.create_all()
        return dict(dict.items(self))

    def __repr__(self) -> str:
        return (
            f"<engines {sorted(map(str, dict.keys(self)))}, not created yet: {len(self._pending)}>"
        )


class SQLAlchemy(_FlaskSQLAlchemy):
    """Flask-SQLAlchemy's extension, creating each app's engines on first use."""

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        engines: dict[str | None, t.Any] = self._app_engines[app]
        built = {k: e for k, e in engines.items() if not isinstance(e, _Pending)}
        pending = {k: e for k, e in engines.items() if isinstance(e, _Pending)}
        self._app_engines[app] = _Engines(built, pending)

    def _make_engine(self, bind_key: str | None, options: dict[str, t.Any], app: Flask) -> t.Any:
        if app.config.get("SQLALCHEMY_RECORD_QUERIES"):
            return super()._make_engine(bind_key, options, app)  # recording needs the engine now
        return _Pending(dict(options))

    def on_engine(self, app: Flask, hook: EngineHook) -> None:
        """Call ``hook(engine)`` for each engine of ``app`` as soon as it exists."""
        engines = self._app_engines[app]
        if isinstance(engines, _Engines):
            engines.configure = hook
            existing = list(dict.values(engines))
        else:
            existing = list(engines.values())
        for engine in existing:
            if isinstance(engine, sa.Engine):
                hook(engine)


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
"""The Flask-SQLAlchemy extension shared by every app: declare models on ``db.Model``."""


# Drivers built on libpq, which take ``connect_timeout`` in seconds.
_LIBPQ_DRIVERS = frozenset({"psycopg", "psycopg2", "psycopg2cffi"})


def normalise_database_url(url: str) -> str:
    """Point PostgreSQL URLs without an explicit driver at psycopg 3.

    ``postgres://`` (what Heroku-style platforms hand out, which SQLAlchemy
    does not accept) and ``postgresql://`` (which SQLAlchemy maps to
    psycopg2) both become ``postgresql+psycopg://``. Any other URL, including
    one naming its driver, is returned unchanged.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def default_database_url(app: Flask) -> str:
    """The embedded default: a SQLite file named after the app in its instance folder."""
    return "sqlite:///" + os.path.join(app.instance_path, f"{app_short_name(app)}.sqlite3")


# SQLAlchemy's own dialects and their drivers: a URL naming one of these is
# known to work without importing the dialect now (which imports the whole
# dialect package), so engines can be created on first use.
_BUILTIN_DRIVERS: dict[str, frozenset[str]] = {
    "postgresql": frozenset(
        {"psycopg", "psycopg_async", "psycopg2", "psycopg2cffi", "asyncpg", "pg8000"}
    ),
    "sqlite": frozenset({"pysqlite", "aiosqlite", "pysqlcipher"}),
    "mysql": frozenset(
        {
            "mysqldb",
            "pymysql",
            "mariadbconnector",
            "mysqlconnector",
            "asyncmy",
            "aiomysql",
            "cymysql",
            "pyodbc",
        }
    ),
    "mssql": frozenset({"pyodbc", "pymssql", "aioodbc"}),
    "oracle": frozenset({"cx_oracle", "oracledb", "oracledb_async"}),
}
_BUILTIN_DRIVERS["mariadb"] = _BUILTIN_DRIVERS["mysql"]


def _check_dialect(url: sa.URL) -> None:
    driver = url.drivername.partition("+")[2]
    known = _BUILTIN_DRIVERS.get(url.get_backend_name())
    if known is not None and (not driver or driver in known):
        return
    url.get_dialect()  # a third-party dialect or an unknown driver: raises if missing


def prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Settle the database URL and engine options; report what cannot work."""
    problems: list[Problem] = []
    uri_entry = resolution.entries["SQLALCHEMY_DATABASE_URI"]
    if uri_entry.value is None:
        uri = default_database_url(app)
    else:
        uri = normalise_database_url(uri_entry.value)
    try:
        url = make_url(uri)
        _check_dialect(url)  # an unknown scheme fails here, not halfway through init_app
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        problems.append(
            Problem(
                "config.E001",
                "SQLALCHEMY_DATABASE_URI",
                uri_entry.shown,
                "a database URL such as 'postgresql://user:password@host/dbname' "
                f"or 'sqlite:///path/to/file.db' ({exc})",
                f"correct the URL in {uri_entry.origin}",
            )
        )
        return problems
    resolution.entries["SQLALCHEMY_DATABASE_URI"] = dataclasses.replace(uri_entry, value=uri)

    if url.drivername == "postgresql+psycopg" and importlib.util.find_spec("psycopg") is None:
        problems.append(
            Problem(
                "database.E002",
                "SQLALCHEMY_DATABASE_URI",
                resolution.entries["SQLALCHEMY_DATABASE_URI"].shown,
                "the psycopg 3 driver installed for a PostgreSQL URL",
                "pip install 'flaskstack[postgres]'",
            )
        )

    options_entry = resolution.entries["SQLALCHEMY_ENGINE_OPTIONS"]
    options = dict(options_entry.value)
    driver = url.drivername.partition("+")[2]
    if url.get_backend_name() != "sqlite" and driver not in _LIBPQ_DRIVERS:
        # A driver whose socket flaskstack cannot look at: ping on checkout.
        options.setdefault("pool_pre_ping", True)
    if driver in _LIBPQ_DRIVERS:
        timeout = max(1, math.ceil(resolution["FLASKSTACK_DATABASE_CONNECT_TIMEOUT"]))
        options["connect_args"] = {"connect_timeout": timeout, **options.get("connect_args", {})}
    resolution.entries["SQLALCHEMY_ENGINE_OPTIONS"] = dataclasses.replace(
        options_entry, value=options
    )
    return problems


def init_app(app: Flask) -> None:
    """Register :data:`db` on ``app`` and put it and every model in ``flask shell``."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        # SQLite creates the file but not the folder it goes in.
        os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
    db.init_app(app)
    # _remove_session does what Flask-SQLAlchemy's teardown does (and
    # survives a dead connection): one teardown function instead of two.
    teardown = getattr(db, "_teardown_session", None)
    if teardown is not None and teardown in app.teardown_appcontext_funcs:
        app.teardown_appcontext_funcs.remove(teardown)
    for error in (sa.exc.DBAPIError, sa.exc.TimeoutError, sa.exc.PendingRollbackError):
        app.register_error_handler(error, _database_unavailable)
    app.teardown_appcontext(_remove_session)
    db.on_engine(
        app,
        functools.partial(
            _configure_engine, reads_outside=app.config["FLASKSTACK_DATABASE_AUTOCOMMIT_READS"]
        ),
    )
    app.shell_context_processor(_shell_context)


def _configure_engine(engine: sa.Engine, reads_outside: bool) -> None:
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _enforce_foreign_keys)
    elif engine.dialect.driver in _LIBPQ_DRIVERS:
        _watch_libpq_engine(engine, reads_outside)


class DatabaseUnavailable(ServiceUnavailableProblem):
    """503: the database cannot be reached (or is too busy). Carries ``Retry-After``."""

    description = (
        "The database cannot be reached right now, so the request could not be completed. "
        "Please try again in a few seconds."
    )


def _database_unavailable(error: Exception) -> Response:
    # A lost connection (server restarted, network gone), a pool that stays
    # empty, a deadlock or serialization failure: the request may succeed if
    # retried, so 503 rather than 500. The pool drops the broken connection
    # and those connected before it, and the checkout check (or
    # pool_pre_ping) keeps the next request from getting another. Any
    # other database error (a constraint, bad SQL) is a bug: a 500.
    unavailable = isinstance(
        error, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
    ) or getattr(error, "connection_invalidated", False)
    if isinstance(error, sa.exc.PendingRollbackError):
        # Left over from a connection lost earlier in this request.
        unavailable = True
    if not unavailable:
        raise error
    try:
        db.session.rollback()
    except sa.exc.SQLAlchemyError:
        db.session.close()
    current_app.logger.warning("database unavailable, answered 503: %s", error)
    return DatabaseUnavailable(retry_after=5).get_response()


def _remove_session(error: BaseException | None) -> None:
    # Ending the request's session rolls back on its connection; when the
    # database went away during the request that rollback fails, and an
    # exception from a teardown would turn a finished response into a bare
    # 500 from the WSGI server. The pool has discarded the dead connection.
    try:
        db.session.remove()
    except sa.exc.SQLAlchemyError as exc:
        db.session.registry.clear()
        current_app.logger.warning("closing the database session failed: %s", exc)


# -- PostgreSQL connections ---------------------------------------------------------

_READS_OUTSIDE = "flaskstack.reads_outside_transaction"

# In a SELECT, what makes it more than a read: row locks, SELECT INTO, and
# functions whose effect lasts until the end of the transaction (advisory
# xact locks, set_config(..., true), transaction ids, large objects,
# notifications sent at commit).
_NOT_ONLY_A_READ = re.compile(
    r"\bFOR\s+(?:NO\s+KEY\s+|KEY\s+)?(?:UPDATE|SHARE)\b|\bINTO\b"
    r"|xact|txid|set_config|\blo_\w+\s*\(|pg_notify",
    re.IGNORECASE,
)


def _watch_libpq_engine(engine: sa.Engine, reads_outside: bool) -> None:
    # pool_pre_ping set by the app replaces the socket check.
    check_socket = not engine.pool._pre_ping
    if not (check_socket or reads_outside):
        return

    def checkout(dbapi_connection: t.Any, record: t.Any, proxy: object) -> None:
        if check_socket:
            _refuse_closed_connection(dbapi_connection)
        if reads_outside and not record.info.get(_READS_OUTSIDE):
            # Not while the connection is in a mode the app chose: an
            # isolation level (REPEATABLE READ, SERIALIZABLE) means it wants
            # its reads where that level puts them, AUTOCOMMIT that it wants
            # no transactions at all.
            if dbapi_connection.autocommit or dbapi_connection.isolation_level is not None:
                return
            dbapi_connection.autocommit = True
            record.info[_READS_OUTSIDE] = True

    sa.event.listen(engine, "checkout", checkout)
    if reads_outside:
        sa.event.listen(engine, "before_cursor_execute", _begin_before_anything_but_a_read)


def _begin_before_anything_but_a_read(
    connection: sa.Connection,
    cursor: object,
    statement: str,
    parameters: object,
    context: sa.engine.ExecutionContext | None,
    executemany: bool,
) -> None:
    # A connection leaves the pool in autocommit mode: PostgreSQL runs each
    # plain SELECT on its own, as it would inside a READ COMMITTED
    # transaction (where every statement takes a fresh snapshot anyway),
    # without the BEGIN and ROLLBACK round trips around a read-only request.
    # Anything else turns autocommit off before it runs, so psycopg opens a
    # transaction for it and everything after it, until commit or rollback.
    info = connection.info
    if not info.get(_READS_OUTSIDE):
        return
    if context is not None and context.execution_options.get("isolation_level"):
        info[_READS_OUTSIDE] = False  # the app chose a level: the dialect has applied it
        return
    if context is not None and _is_plain_read(context, statement):
        return
    info[_READS_OUTSIDE] = False
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is not None and dbapi_connection.autocommit:
        dbapi_connection.autocommit = False


def _is_plain_read(context: sa.engine.ExecutionContext, statement: str) -> bool:
    compiled = getattr(context, "compiled", None)
    element = getattr(compiled, "statement", None)
    # Only SELECTs built with select() or a union of them: a text() statement
    # may do anything.
    if not isinstance(element, (sa.Select, sa.CompoundSelect)):
        return False
    return _NOT_ONLY_A_READ.search(statement) is None


def _refuse_closed_connection(dbapi_connection: t.Any) -> None:
    # A pooled connection sits idle between requests: the server has nothing
    # to say on it. If its socket is readable, the server wrote something
    # anyway, which is a goodbye (a restart or pg_terminate_backend sends
    # FATAL 57P01, then closes), or the socket is closed. Raising
    # DisconnectionError makes the pool discard it and connect afresh.
    # This replaces pool_pre_ping's round trip with one poll(2) call; a
    # server that vanished without closing (a cut network) is caught by the
    # first statement instead, which answers 503 and invalidates the pool.
    try:
        fd = dbapi_connection.fileno()
    except Exception as exc:  # psycopg raises OperationalError once closed
        raise sa.exc.DisconnectionError("the connection is closed") from exc
    if _readable(fd):
        raise sa.exc.DisconnectionError("the server closed the pooled connection")


def _readable(fd: int) -> bool:
    if not hasattr(select, "poll"):  # Windows
        readable, _, broken = select.select([fd], [], [fd], 0)
        return bool(readable or broken)
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _enforce_foreign_keys(dbapi_connection: t.Any, record: object) -> None:
    # SQLite ignores foreign keys (and ON DELETE CASCADE) unless each
    # connection asks for them; PostgreSQL always enforces them.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _shell_context() -> dict[str, object]:
    context: dict[str, object] = {"db": db}
    for mapper in t.cast("t.Any", db.Model).registry.mappers:
        context.setdefault(mapper.class_.__name__, mapper.class_)
    return context
