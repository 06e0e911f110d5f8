"""The ORM: Flask-SQLAlchemy with the conventions migrations depend on.

``db`` is created at import time, before any app exists, so models can be
declared anywhere. Its metadata carries a constraint naming convention:
Alembic can only alter or drop a constraint that has a name, and on SQLite
(where every change rebuilds the table) an unnamed one cannot be found again.

Per app, this module fills in the database URL (SQLite in the instance
folder by default; ``postgres://`` URLs go to psycopg 3) and engine options
(``pool_pre_ping``, a connect timeout) before Flask-SQLAlchemy reads them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import typing as t

import sqlalchemy as sa
from flask import current_app
from flask_sqlalchemy import SQLAlchemy
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
        url.get_dialect()  # an unknown scheme fails here, not halfway through init_app
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
    options = {"pool_pre_ping": True, **options_entry.value}
    if url.get_driver_name() in _LIBPQ_DRIVERS:
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
    for error in (sa.exc.DBAPIError, sa.exc.TimeoutError, sa.exc.PendingRollbackError):
        app.register_error_handler(error, _database_unavailable)
    # Runs before Flask-SQLAlchemy's own teardown (teardowns run last first).
    app.teardown_appcontext(_remove_session)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                sa.event.listen(engine, "connect", _enforce_foreign_keys)
    app.shell_context_processor(_shell_context)


class DatabaseUnavailable(ServiceUnavailableProblem):
    """503: the database cannot be reached (or is too busy). Carries ``Retry-After``."""

    description = (
        "The database cannot be reached right now, so the request could not be completed. "
        "Please try again in a few seconds."
    )


def _database_unavailable(error: Exception) -> Response:
    # A lost connection (server restarted, network gone), a pool that stays
    # empty, a deadlock or serialization failure: the request may succeed if
    # retried, so 503 rather than 500. The pool drops the broken connection,
    # and pool_pre_ping keeps the next checkout from getting another. Any
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
