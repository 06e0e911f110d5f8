"""The ORM: Flask-SQLAlchemy with the conventions migrations depend on.

``db`` is created at import time, before any app exists, so models can be
declared anywhere. Its metadata carries a constraint naming convention:
Alembic can only alter or drop a constraint that has a name, and on SQLite
(where every change rebuilds the table) an unnamed one cannot be found again.

Per app, this module fills in the database URL (SQLite in the instance
folder by default; ``postgres://`` URLs go to psycopg 3) and engine options
(a connect timeout) before Flask-SQLAlchemy reads them, and makes sure a
pooled connection the server closed is never handed to a request.

Transactions are SQLAlchemy's: ``db.session`` begins one with its first
statement and ends it with ``commit()``, ``rollback()`` or the end of the
request. :setting:`FLASKSTACK_DATABASE_AUTOCOMMIT` is the one opt-in
exception, decided by session events, never by the SQL text: on PostgreSQL
with psycopg 3, every statement ``db.session`` sends before its first flush
commits as it runs, as in Django's autocommit mode; from the first flush (or
``begin_nested()``) until commit or rollback, its statements are one
transaction. Signing a request in is flaskstack's own read, made before the
view runs: on PostgreSQL with psycopg 3 it runs outside the transaction when
none has begun, and the view's first statement begins it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import importlib.util
import math
import os
import select
import typing as t

import flask_sqlalchemy.model
import sqlalchemy as sa
from flask import current_app, request
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from werkzeug.exceptions import HTTPException, NotFound, UnprocessableEntity

from ._ids import INT32_MAX, INT32_MIN, path_value_out_of_range
from ._sqlalchemy_adapter import SQLAlchemy
from .config import _app_short_name
from .errors import Problem
from .problems import _ServiceUnavailableProblem

if t.TYPE_CHECKING:
    from flask import Flask
    from flask.typing import ResponseReturnValue
    from sqlalchemy.orm import Session, SessionTransaction

    from .config import Resolution

__all__ = ["NAMING_CONVENTION", "DatabaseUnavailable", "Model", "db"]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Names given to constraints and indexes that the model does not name."""


_ModelHook = t.Callable[[type], None]

_model_hooks: list[_ModelHook] = []
"""What runs as each model class is declared; a concern refuses a class by raising.

Called from ``__init_subclass__``, which runs before SQLAlchemy builds the
class's table: a clash found here can be reported as a :class:`ConfigError`
naming a setting instead of SQLAlchemy's own error.
"""


class _HookedModel(flask_sqlalchemy.model.Model):
    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        for hook in _model_hooks:
            hook(cls)


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION), model_class=_HookedModel)
"""The Flask-SQLAlchemy extension shared by every app: declare models on ``db.Model``."""

if t.TYPE_CHECKING:
    # Type checkers cannot follow ``db.Model``, a class made at run time
    # (python/mypy#8603): they see a declarative base with the same metadata.
    from sqlalchemy.orm import DeclarativeBase

    class Model(DeclarativeBase):
        """``db.Model`` as type checkers see it."""

else:
    Model = db.Model
    """``db.Model`` under a name type checkers understand: ``class Article(Model): ...``.

    The same class as ``db.Model`` (Flask-SQLAlchemy's declarative base, on
    flaskstack's constraint naming convention); subclassing it through this
    name lets a model type-check without ``# type: ignore``.
    """


# Drivers built on libpq, which take ``connect_timeout`` in seconds.
_LIBPQ_DRIVERS = frozenset({"psycopg", "psycopg2", "psycopg2cffi"})


def _normalise_database_url(url: str) -> str:
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


def _default_database_url(app: Flask) -> str:
    """The embedded default: a SQLite file named after the app in its instance folder."""
    return "sqlite:///" + os.path.join(app.instance_path, f"{_app_short_name(app)}.sqlite3")


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Settle the database URL and engine options; report what cannot work."""
    problems: list[Problem] = []
    uri_entry = resolution.entries["SQLALCHEMY_DATABASE_URI"]
    if uri_entry.value is None:
        uri = _default_database_url(app)
    else:
        uri = _normalise_database_url(uri_entry.value)
    reason: str | None = None
    try:
        url = make_url(uri)
        # SQLAlchemy says whether it has this dialect and driver (its own or
        # an installed plugin's): an unknown scheme fails here, not halfway
        # through init_app. This imports the dialect, not the driver.
        url.get_dialect()
    except NoSuchModuleError:
        reason = f"SQLAlchemy has no database dialect or driver named {url.drivername!r}"
    except (ArgumentError, ImportError, ValueError) as exc:
        reason = str(exc)
    if reason is not None:
        problems.append(
            Problem(
                "config.E001",
                "SQLALCHEMY_DATABASE_URI",
                uri_entry.shown,
                "a database URL such as 'postgresql://user:password@host/dbname' "
                f"or 'sqlite:///path/to/file.db' ({reason})",
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
    elif url.get_backend_name() != "sqlite" and url.drivername != "postgresql+psycopg":
        # Without its driver the URL would pass and the first query would end in
        # a traceback. Importing the driver now costs nothing it would not cost
        # at the first connection (psycopg, above, is only looked for: it stays
        # deferred until the first request).
        try:
            url.get_dialect().import_dbapi()
        except ImportError as exc:
            backend = url.get_backend_name()
            advice = (
                "install a MySQL driver such as mysqlclient or PyMySQL, or name the driver in "
                "the URL: mysql+pymysql://"
                if backend in ("mysql", "mariadb")
                else f"install the package that provides the Python module {exc.name!r}, or "
                f"name an installed driver in the URL: {backend}+<driver>://"
            )
            problems.append(
                Problem(
                    "database.E003",
                    "SQLALCHEMY_DATABASE_URI",
                    uri_entry.shown,
                    f"a URL whose driver is installed (SQLAlchemy's {url.drivername!r} "
                    f"dialect needs the module {exc.name!r}: {exc})",
                    f"{advice}; the URL comes from {uri_entry.origin}",
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


def _init_app(app: Flask) -> None:
    """Register :data:`db` on ``app``.

    Flask-SQLAlchemy also puts ``db`` and every model in ``flask shell``.
    """
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        # SQLite creates the file but not the folder it goes in.
        os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
    # The options each engine is made with, as Flask-SQLAlchemy documents
    # them: SQLALCHEMY_ENGINE_OPTIONS for the default bind, the bind's own
    # dict (if it is one) for the others.
    options: dict[str | None, t.Mapping[str, t.Any]] = {
        key: value
        for key, value in app.config.get("SQLALCHEMY_BINDS", {}).items()
        if isinstance(value, t.Mapping)
    }
    options[None] = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    db.init_app(
        app,
        on_engine=functools.partial(
            _configure_engine, options, app.config["FLASKSTACK_DATABASE_AUTOCOMMIT"]
        ),
    )
    for error in (sa.exc.DBAPIError, sa.exc.TimeoutError, sa.exc.PendingRollbackError):
        app.register_error_handler(error, _answer_database_error)
    # Flask runs teardown functions in the reverse order of registration:
    # this one ends the session before Flask-SQLAlchemy's own teardown,
    # which then finds nothing left to do.
    app.teardown_appcontext(_remove_session)


def _configure_engine(
    options: t.Mapping[str | None, t.Mapping[str, t.Any]],
    autocommit: bool,
    bind_key: str | None,
    engine: sa.Engine,
) -> None:
    engine_options = options.get(bind_key, {})
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "checkout", _set_foreign_keys)
    elif engine.dialect.driver in _LIBPQ_DRIVERS:
        if not engine_options.get("pool_pre_ping"):
            # pool_pre_ping set by the app replaces the socket check.
            sa.event.listen(engine, "checkout", _check_pooled_connection)
        if engine.dialect.driver == "psycopg":
            # A connection goes back to the pool out of autocommit.
            sa.event.listen(engine, "checkin", _leave_autocommit)
            if autocommit:
                engine.update_execution_options(**{_AUTOCOMMIT_OPTION: True})


class DatabaseUnavailable(_ServiceUnavailableProblem):
    """503: the database cannot be reached (or is too busy). Carries ``Retry-After``."""

    description = (
        "The database cannot be reached right now, so the request could not be completed. "
        "Please try again in a few seconds."
    )


def _answer_database_error(error: Exception) -> ResponseReturnValue:
    # An error about reaching the database is answered 503 (the request may
    # succeed if retried): the pool drops the broken connection and those
    # connected before it, and the checkout check (or pool_pre_ping) keeps
    # the next request from getting another. A path id the column cannot
    # hold names no row: 404 (flaskstack._ids); a number the client sent in
    # the body or query string that the column cannot hold is the client's
    # error: 422 naming the field (_sent_value_out_of_range).
    # Anything else (no such table, bad SQL, a constraint, a number the
    # app computed) is a bug in the app: it propagates, so it is a 500 for
    # clients and Flask's debugger with --debug.
    if isinstance(error, sa.exc.DataError):
        found = path_value_out_of_range(error)
        if found is not None:
            db.session.rollback()  # PostgreSQL refuses anything else in this transaction
            name, number = found
            # The app's 404 handler answers, or a problem document under the API prefix.
            return current_app.handle_http_exception(
                NotFound(f"There is nothing with the {name} {number}.")
            )
        refusal = _sent_value_out_of_range(error)
        if refusal is not None:
            db.session.rollback()
            # The app's 422 handler answers, or a problem document under the API prefix.
            return current_app.handle_http_exception(refusal)
    if not _is_outage(error):
        raise error
    try:
        db.session.rollback()
    except sa.exc.SQLAlchemyError:
        db.session.close()
    current_app.logger.warning("database unavailable, answered 503: %s", error)
    return DatabaseUnavailable(retry_after=5).get_response()


_NUMERIC_VALUE_OUT_OF_RANGE = "22003"


def _sent_value_out_of_range(error: sa.exc.DataError) -> HTTPException | None:
    """The refusal of a number the client sent that the failed statement could not store.

    A statement failing with ``numeric_value_out_of_range`` was given an
    integer beyond the 32-bit range (``db.Integer`` is a 32-bit ``integer``
    on PostgreSQL; ``rest.Integer`` allows 64 bits unless the schema bounds
    it) that is also a value of the request's JSON body, form or query
    string: the client's error (422), named by field as
    :mod:`flaskstack.rest` names invalid input. ``None`` when no such value
    was sent: the number is the app's own, and the failure a bug.
    """
    original = error.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if state != _NUMERIC_VALUE_OUT_OF_RANGE:
        return None
    bound = {value for value in _bound_values(error.params) if _beyond_32_bits(value)}
    if not bound:
        return None
    body = list(_json_numbers(request.get_json(silent=True), ""))
    body += [(name, _integer(raw)) for name, raw in request.form.items(multi=True)]
    query = [(name, _integer(raw)) for name, raw in request.args.items(multi=True)]
    for where, sent in (("body", body), ("query", query)):
        for name, number in sent:
            if number is None or number not in bound:
                continue
            bound_text = f"at most {INT32_MAX}" if number > 0 else f"at least {INT32_MIN}"
            errors = {name: [f"Must be {bound_text}: the database stores it in 32 bits."]}
            what = "query string" if where == "query" else "request body"
            refusal = UnprocessableEntity(f"The {what} is invalid: see 'errors' for {name!r}.")
            refusal.data = {"errors": errors}  # type: ignore[attr-defined]
            return refusal
    return None


def _bound_values(params: object) -> t.Iterator[object]:
    """The values bound to a statement (one set, or the sets of an executemany)."""
    if isinstance(params, t.Mapping):
        yield from params.values()
    elif isinstance(params, (list, tuple)):
        for value in params:
            if isinstance(value, (t.Mapping, list, tuple)):
                yield from _bound_values(value)
            else:
                yield value


def _beyond_32_bits(value: object) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not (INT32_MIN <= value <= INT32_MAX)
    )


def _integer(raw: object) -> int | None:
    """``raw`` as an integer: a JSON integer, or text that spells one."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and len(raw) <= 40:
        try:
            return int(raw.strip())
        except ValueError:
            return None
    return None


def _json_numbers(value: object, path: str) -> t.Iterator[tuple[str, int | None]]:
    """The integers of a JSON document by dotted path (``tags.0``), as ``rest`` names fields."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_numbers(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_numbers(item, f"{path}.{index}" if path else str(index))
    elif isinstance(value, int):
        yield path, _integer(value)


# SQLSTATEs with which PostgreSQL says it cannot serve the request now, so a
# retry may succeed: class 08 (connection exception), the server shutting
# down or starting up, too many connections, a statement or lock timeout, a
# deadlock or serialization failure. Any other state is about the SQL.
_POSTGRES_UNAVAILABLE_CLASSES = ("08",)
_POSTGRES_UNAVAILABLE_STATES = frozenset(
    {"57P01", "57P02", "57P03", "57P05", "53300", "57014", "55P03", "40001", "40P01"}
)
# SQLite's primary result codes of the same kind: SQLITE_BUSY, SQLITE_LOCKED
# (another connection holds the lock), SQLITE_IOERR, SQLITE_CANTOPEN,
# SQLITE_PROTOCOL. "no such table" and syntax errors are SQLITE_ERROR.
_SQLITE_UNAVAILABLE_CODES = frozenset({5, 6, 10, 14, 15})
# The same, by message, for Python < 3.11 (no ``sqlite_errorcode``).
_SQLITE_UNAVAILABLE_MESSAGES = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "unable to open database file",
    "locking protocol",
)


def _is_outage(error: Exception) -> bool:
    """Whether ``error`` says the database cannot be reached (or is too busy) right now."""
    if isinstance(error, (sa.exc.TimeoutError, sa.exc.PendingRollbackError)):
        # An exhausted pool; or what is left of a connection lost earlier in
        # this request.
        return True
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated:  # the dialect recognised a lost connection
        return True
    if not isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return False
    if error.statement is None:
        # Raised while connecting, before any SQL: the server (or file) is
        # out of reach, whatever the driver.
        return True
    original = error.orig
    if type(original).__module__.partition(".")[0] == "sqlite3":
        if not isinstance(error, sa.exc.OperationalError):
            return False  # pysqlite's InterfaceError: a parameter it cannot bind
        code = getattr(original, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in _SQLITE_UNAVAILABLE_CODES
        message = str(original).lower()
        return any(text in message for text in _SQLITE_UNAVAILABLE_MESSAGES)
    if isinstance(error, sa.exc.InterfaceError):
        return True  # the connection is closed or lost
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if isinstance(state, str):
        return (
            state.startswith(_POSTGRES_UNAVAILABLE_CLASSES) or state in _POSTGRES_UNAVAILABLE_STATES
        )
    # psycopg gives no SQLSTATE to a failure that the server never answered
    # (connection refused, reset, timed out); other drivers' OperationalErrors
    # without one cannot be told apart from SQL errors (MySQL's "Unknown
    # column" is one), and a lost connection was caught above.
    return type(original).__module__.partition(".")[0] in _LIBPQ_DRIVERS


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


# -- FLASKSTACK_DATABASE_AUTOCOMMIT (PostgreSQL, psycopg 3) ---------------------------
#
# Decided by session events alone: a connection db.session begins a
# transaction on is switched to psycopg's autocommit mode, unless the session
# has flushed since its last commit or rollback; the first flush (or
# begin_nested()) switches the session's connections back, so psycopg opens
# a real transaction before the flush's first statement. A connection goes
# back to the pool out of autocommit, so code using the engine directly
# (engine.connect(), engine.begin()) always gets ordinary transactions.

_AUTOCOMMIT_OPTION = "flaskstack_autocommit"
"""Execution option set on the engines of an app with the setting on."""

_AUTOCOMMITTED = "flaskstack.autocommitted"
"""In a pool record's ``info``: flaskstack put this DBAPI connection in autocommit mode."""

_SESSION_IN_TRANSACTION = "flaskstack.in_transaction"
_SESSION_AUTOCOMMITTED = "flaskstack.autocommitted_connections"


def _has_written(session: Session) -> bool:
    """Whether ``session``'s transaction has written: flushed, or holds unflushed changes."""
    return bool(
        session.info.get(_SESSION_IN_TRANSACTION) or session.new or session.dirty or session.deleted
    )


def _autocommit_until_flush(
    session: Session, transaction: SessionTransaction, connection: sa.Connection
) -> None:
    if session.info.get(_SESSION_IN_TRANSACTION):
        return
    opted_in = connection.get_execution_options().get(_AUTOCOMMIT_OPTION)
    if not opted_in and not (
        session.info.get(_SESSION_READING_FIRST) and connection.dialect.driver == "psycopg"
    ):
        return
    dbapi_connection: t.Any = connection.connection.dbapi_connection
    if (
        dbapi_connection is None
        or dbapi_connection.autocommit
        # An isolation level (engine-wide or for this transaction) means the
        # app wants its statements in a transaction at that level.
        or dbapi_connection.isolation_level is not None
        # Already inside a transaction begun outside the session (a test's).
        or dbapi_connection.info.transaction_status.name != "IDLE"
    ):
        return
    dbapi_connection.autocommit = True
    connection.info[_AUTOCOMMITTED] = True
    key = _SESSION_AUTOCOMMITTED if opted_in else _SESSION_READ_FIRST_CONNECTIONS
    session.info.setdefault(key, []).append(connection)


def _leave_autocommit_on(connections: t.Iterable[sa.Connection]) -> None:
    # psycopg begins a transaction before the next statement on each.
    for connection in connections:
        if connection.closed or connection.invalidated:
            continue
        if connection.info.pop(_AUTOCOMMITTED, False):
            dbapi_connection: t.Any = connection.connection.dbapi_connection
            if dbapi_connection is not None and not dbapi_connection.closed:
                dbapi_connection.autocommit = False


def _end_autocommit(session: Session) -> None:
    # Before the first flush writes anything.
    session.info[_SESSION_IN_TRANSACTION] = True
    _leave_autocommit_on(session.info.pop(_SESSION_AUTOCOMMITTED, ()))
    _leave_autocommit_on(session.info.pop(_SESSION_READ_FIRST_CONNECTIONS, ()))


def _before_flush(session: Session, flush_context: object, instances: object) -> None:
    if not session.info.get(_SESSION_IN_TRANSACTION):
        _end_autocommit(session)


def _after_transaction_create(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested and not session.info.get(_SESSION_IN_TRANSACTION):
        _end_autocommit(session)  # a SAVEPOINT needs a transaction to live in


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # commit, rollback or close: back to autocommit
        session.info.pop(_SESSION_IN_TRANSACTION, None)
        session.info.pop(_SESSION_AUTOCOMMITTED, None)


def _leave_autocommit(dbapi_connection: t.Any, record: t.Any) -> None:
    if record.info.pop(_AUTOCOMMITTED, False) and not dbapi_connection.closed:
        dbapi_connection.autocommit = False


# -- flaskstack's reads, before the app's transaction ---------------------------------
#
# Two reads flaskstack sends itself often come before the view has sent
# anything: signing a request in reads its user (with the session's login, or
# the API token), and @rest.paginated reads the page of the select its view
# returned, after the view, when nothing follows but writing the response.
# Neither writes. On PostgreSQL with psycopg 3 such a read runs in autocommit
# when no transaction has begun yet: it costs one statement, not BEGIN, SELECT
# and ROLLBACK, and its connection keeps psycopg's prepared statements (a
# ROLLBACK clears them). The next statement of the request begins a
# transaction exactly as before. A chosen isolation level, a transaction
# already open (the view's own, or the test plugin's) or a pending change
# keeps the read inside the transaction.

_SESSION_READING_FIRST = "flaskstack.reading_first"
_SESSION_READ_FIRST_CONNECTIONS = "flaskstack.read_first_connections"


@contextlib.contextmanager
def _first_read() -> t.Iterator[None]:
    """The statements in this block are one of flaskstack's reads (see above)."""
    session = db.session()
    if session.info.get(_SESSION_READING_FIRST) or session.in_transaction():
        yield
        return
    session.info[_SESSION_READING_FIRST] = True
    try:
        yield
    finally:
        del session.info[_SESSION_READING_FIRST]
        _leave_autocommit_on(session.info.pop(_SESSION_READ_FIRST_CONNECTIONS, ()))


sa.event.listen(db.session, "after_begin", _autocommit_until_flush)
sa.event.listen(db.session, "before_flush", _before_flush)
sa.event.listen(db.session, "after_transaction_create", _after_transaction_create)
sa.event.listen(db.session, "after_transaction_end", _after_transaction_end)


# -- pooled connections -------------------------------------------------------------


def _check_pooled_connection(dbapi_connection: t.Any, record: object, proxy: object) -> None:
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


# -- SQLite foreign keys ------------------------------------------------------------
#
# SQLite ignores foreign keys (and ON DELETE CASCADE) unless each connection
# asks for them; PostgreSQL always enforces them. They are on for the app and
# off while migrations run: Alembic's batch mode rebuilds a table by copying
# it, dropping the original and renaming the copy, and with foreign keys on,
# dropping a table that other rows reference fails (or cascades, deleting
# those rows), leaving a half-migrated database. Alembic's documentation
# advises turning them off for batch migrations. The pragma is a no-op inside
# a transaction, so it is set as a connection leaves the pool, when none is
# open, and only when it has to change.

_FOREIGN_KEYS_OFF: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "flaskstack_foreign_keys_off", default=False
)
_FOREIGN_KEYS = "flaskstack.foreign_keys"
"""In a pool record's ``info``: the ``PRAGMA foreign_keys`` value last set on the connection."""


@contextlib.contextmanager
def _foreign_keys_off() -> t.Iterator[None]:
    """SQLite connections taken from the pool in this block do not enforce foreign keys.

    Wraps every ``flask db`` command (and the test plugin's migrations).
    """
    token = _FOREIGN_KEYS_OFF.set(True)
    try:
        yield
    finally:
        _FOREIGN_KEYS_OFF.reset(token)


_FOREIGN_KEYS_OFF_ONCE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "flaskstack_foreign_keys_off_once", default=False
)


def _foreign_keys_off_for_next_connection() -> None:
    """The next SQLite connection taken from the pool in this context does not enforce them.

    For Flask-Migrate's Python API (``flask_migrate.upgrade()`` called by the
    app's own code), which has no block to wrap: its configure callback runs
    just before ``env.py`` takes the one connection the migration runs on.
    """
    _FOREIGN_KEYS_OFF_ONCE.set(True)


def _set_foreign_keys(dbapi_connection: t.Any, record: t.Any, proxy: object) -> None:
    once = _FOREIGN_KEYS_OFF_ONCE.get()
    if once:
        _FOREIGN_KEYS_OFF_ONCE.set(False)
    wanted = not (once or _FOREIGN_KEYS_OFF.get())
    if record.info.get(_FOREIGN_KEYS) is wanted:
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if wanted else 'OFF'}")
    finally:
        cursor.close()
    record.info[_FOREIGN_KEYS] = wanted
