"""Shared fixtures: hermetic environment, apps on SQLite and real PostgreSQL databases.

Every PostgreSQL database a test uses is created by these fixtures under a
name unique to this run and dropped afterwards, so runs never clash. The
server is the one at FLASKSTACK_TEST_POSTGRES (default: the local server on
127.0.0.1:5432); a test that cannot reach it fails.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import typing as t
import uuid

import psycopg
import pytest
import redis
from flask import Flask
from psycopg import sql
from sqlalchemy import event
from sqlalchemy.pool import Pool

import flaskstack
from flaskstack.testing import dispose_app
from flaskstack.testing._database import KEPT_CONNECTION_KEY

pytest_plugins = ["redis_servers", "flaskstack.testing.plugin", "pytester"]

ADMIN_URL = os.environ.get(
    "FLASKSTACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"

# Environment variables flaskstack reads; tests start without any of them.
_READ_PREFIXES = ("FLASK_", "FLASKSTACK_")
_READ_NAMES = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MAIL_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name in _READ_NAMES or (
            name.startswith(_READ_PREFIXES) and name != "FLASKSTACK_TEST_POSTGRES"
        ):
            monkeypatch.delenv(name)


def _loggers() -> list[logging.Logger]:
    known = logging.Logger.manager.loggerDict.values()
    return [logging.getLogger(), *(lg for lg in known if isinstance(lg, logging.Logger))]


@pytest.fixture(autouse=True)
def restore_logging() -> t.Iterator[None]:
    """Leave every logger's handlers and level as the test found them.

    Loggers outlive apps: apps of one name share ``app.logger``, and an
    in-process ``flask db`` command runs Alembic's ``fileConfig`` on the
    root logger. A handler a test left there would make a later test's app
    see logging configured by someone else, and leave it alone.
    """
    before = {id(lg): (list(lg.handlers), lg.level) for lg in _loggers()}
    yield
    for logger in _loggers():
        handlers, level = before.get(id(logger), ([], logging.NOTSET))
        for handler in list(logger.handlers):
            # pytest's own capture handlers come and go around each phase of a test.
            if handler not in handlers and not type(handler).__module__.startswith("_pytest"):
                logger.removeHandler(handler)
        if id(logger) in before:
            logger.setLevel(level)


class PostgresDatabases:
    """Creates uniquely named databases on the test server and drops them all at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection[t.Any]:
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)

    def create(self, label: str = "db") -> str:
        """Create an empty database; return its SQLAlchemy-free ``postgresql://`` URL."""
        name = f"flaskstack_test_{RUN_ID}_{label}_{len(self.created)}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{name}"

    def _drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def drop_all(self) -> None:
        # Each DROP DATABASE waits for a checkpoint; drops running side by side share
        # checkpoints, so eight at a time take a fraction of the time one after another.
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._drop, self.created))
        self.created.clear()


@pytest.fixture(scope="session")
def postgres() -> t.Iterator[PostgresDatabases]:
    """Factory of fresh PostgreSQL databases, dropped at the end of the run."""
    databases = PostgresDatabases(ADMIN_URL)
    yield databases
    databases.drop_all()


@pytest.fixture
def postgres_url(postgres: PostgresDatabases) -> str:
    """A fresh, empty PostgreSQL database for one test (``postgresql://`` URL)."""
    return postgres.create("t")


SHARED_REDIS_URL = os.environ.get("FLASKSTACK_TEST_REDIS", "redis://127.0.0.1:6379/0")

PRODUCTION_MAIL = {
    "MAIL_URL": "smtp://127.0.0.1:9",
    "FLASKSTACK_MAIL_FROM": "app@example.com",
}
"""Mail settings production accepts, for apps whose test sends no mail.

Production refuses to start without a mail server while the account flows
that mail links are on; nothing listens on port 9 of loopback, so a message
sent by mistake fails (and is logged) instead of leaving the machine.
"""


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> t.Iterator[t.Callable[[], str]]:
    """Make key namespaces on the shared Redis for this test; their keys are deleted after it.

    Only this test's keys go: SCAN on the namespace and DEL, never FLUSHDB.
    """
    label = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    made: list[str] = []

    def make() -> str:
        made.append(f"test-{label}-{uuid.uuid4().hex[:12]}")
        return made[-1]

    yield make
    with redis.Redis.from_url(SHARED_REDIS_URL) as client:
        for name in made:
            # A prefix, not "<name>:": tests also make sibling namespaces ("<name>x").
            keys = list(client.scan_iter(match=f"{name}*", count=1000))
            if keys:
                client.delete(*keys)


AppFactory = t.Callable[..., Flask]


_opened: list[tuple[t.Any, t.Any]] = []


@event.listens_for(Pool, "connect")
def _remember_connection(dbapi_connection: t.Any, record: t.Any) -> None:
    _opened.append((dbapi_connection, record))


@pytest.fixture(autouse=True)
def close_every_connection() -> t.Iterator[None]:
    """Close every database connection a test opened, once the test is over.

    An app that goes out of scope leaves its pooled connections to the
    garbage collector, which on Python 3.13 warns about each unclosed SQLite
    connection at some random later point; no fixture outlives a test, so
    closing them all here is safe.
    """
    yield
    while _opened:
        connection, record = _opened.pop()
        if not record.info.get(KEPT_CONNECTION_KEY):  # the plugin's, kept for the run
            connection.close()


@contextlib.contextmanager
def resources_on_api(
    resources: t.Iterable[tuple[t.Any, t.Sequence[str]]],
) -> t.Iterator[None]:
    """Add ``(resource, urls)`` to ``flaskstack.api`` for the block; the block's apps serve them."""
    before = list(flaskstack.api.resources)
    for resource, urls in resources:
        flaskstack.api.add_resource(resource, *urls)
    try:
        yield
    finally:
        flaskstack.api.resources[:] = before


def dispose_engines(app: Flask) -> None:
    """Close the pooled database and Redis connections of ``app``."""
    if "sqlalchemy" in app.extensions:
        with app.app_context():
            for engine in flaskstack.db.engines.values():
                engine.dispose()
    state = app.extensions.get("flaskstack")
    if state is not None and state.redis is not None:
        state.redis.close()


@pytest.fixture(scope="session")
def flaskstack_database_url(postgres: PostgresDatabases) -> str:
    """The database of the plugin's fixtures (``app``, ``client``, ``db_session``): PostgreSQL."""
    return postgres.create("plugin")


@pytest.fixture
def app(make_app: AppFactory, flaskstack_config: dict[str, t.Any]) -> Flask:
    """The plugin's ``app``: built like every other app in this suite, on the shared Redis."""
    return make_app({"FLASKSTACK_REDIS_URL": SHARED_REDIS_URL, **flaskstack_config})


@pytest.fixture
def make_app(tmp_path: t.Any, flaskstack_databases: t.Any) -> t.Iterator[AppFactory]:
    """Build apps whose instance folder is inside the test's temporary directory.

    ``make_app(config={...}, name="x", before=callable, **options)`` creates a
    Flask app, lets ``before(app)`` adjust ``app.config`` as a factory would,
    and calls :func:`flaskstack.init_app`.
    """
    counter = iter(range(1_000))
    apps: list[Flask] = []

    def factory(
        config: t.Mapping[str, t.Any] | None = None,
        *,
        name: str = "testapp",
        before: t.Callable[[Flask], None] | None = None,
        **options: t.Any,
    ) -> Flask:
        instance = tmp_path / f"instance_{next(counter)}"
        app = Flask(name, instance_path=str(instance))
        if before is not None:
            before(app)
        apps.append(app)
        flaskstack.init_app(app, config, **options)
        return app

    yield factory
    for app in apps:
        dispose_app(app, keep=flaskstack_databases.owns)
