"""Fixtures of the reliability and security suites (registered once by their conftests).

- ``pg_cluster`` (session): the test-owned :class:`~reliability.stackrun.PostgresCluster`.
- ``make_database`` (function): a new database on it with the reference
  app's schema (cloned from a template migrated once per run).
- ``durable_redis`` (function): a test-owned Redis with append-only
  persistence (``appendfsync always``), so a restart keeps what it held, as a
  production Redis does.
- ``stack_redis`` (session): the same, shared by tests that do not break it.
- ``make_stack`` (function): start gunicorn (2 sync workers, ``production``
  profile, a cheap password hash) on a database and a Redis; stopped after the test.
- ``stack`` (function) and ``shared_stack`` (session): one running stack;
  ``fuzz_stack`` (session): one for generated input (a cheap password hash).

At the end of the run the figures in :data:`~reliability.figures.FIGURES`
are printed and written as JSON.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import typing as t
import uuid

import pytest
from redis_servers import RedisServer

from . import app_endpoints
from .browser import Browser
from .figures import FIGURES
from .stackrun import AppServer, PostgresCluster, flask_command, production_environment

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

__all__ = ["Stack"]

_TEMPLATE = "flaskstack_reference"
#: Redis persistence of a production server: every write is on disk before it is acknowledged.
DURABLE_REDIS_ARGS = ("--appendonly", "yes", "--appendfsync", "always")
#: The fault and load tests register many users and are not about password hashing:
#: scrypt costs ~0.3 s of CPU per hash on a busy 2-core machine, which would eat their
#: time budget. The security suite's ``shared_stack`` keeps the default (scrypt).
FAST_HASHING = {"FLASKSTACK_PASSWORD_METHOD": "pbkdf2:sha256:1000"}


@dataclasses.dataclass
class Stack:
    """A running app server and what it runs on."""

    server: AppServer
    database_url: str
    redis_url: str
    env: dict[str, str]

    def browser(self, **options: t.Any) -> Browser:
        """A new browser for this stack."""
        return Browser(self.server.address, **options)

    def flask(self, *args: str, input: str | None = None) -> str:
        """Run ``flask <args>`` against this stack's configuration; return stdout."""
        return flask_command(app_endpoints.FLASK_APP, self.env, *args, input=input).stdout


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures and write them as JSON."""
    FIGURES.report(terminalreporter)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster owned by this run (restartable), removed at the end."""
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def stack_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A durable test-owned Redis shared by the tests that do not break it."""
    directory = tmp_path_factory.mktemp("stack-redis")
    with RedisServer(directory, name="stack", extra_args=DURABLE_REDIS_ARGS) as server:
        yield server


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A durable test-owned Redis for one test, which may stop, freeze or restart it."""
    with RedisServer(tmp_path / "redis", name="durable", extra_args=DURABLE_REDIS_ARGS) as server:
        yield server


def _base_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    from .stackrun import REFERENCE_ROOT, REPOSITORY

    env = production_environment(
        database_url=database_url,
        redis_url=redis_url,
        namespace=f"stack-{uuid.uuid4().hex[:10]}",
        extra={"PYTHONPATH": f"{REPOSITORY / 'tests'}:{REFERENCE_ROOT}", **extra},
    )
    return env


@pytest.fixture(scope="session")
def reference_template(pg_cluster: PostgresCluster, stack_redis: RedisServer) -> str:
    """The name of a database holding the reference app's migrated schema."""
    url = pg_cluster.create_database(_TEMPLATE)
    flask_command(app_endpoints.FLASK_APP, _base_env(url, stack_redis.url), "db", "upgrade")
    return _TEMPLATE


@pytest.fixture
def make_database(pg_cluster: PostgresCluster, reference_template: str) -> Callable[[], str]:
    """Make a new database with the reference app's schema; return its URL."""

    def make() -> str:
        name = f"stack_{uuid.uuid4().hex[:12]}"
        import psycopg
        from psycopg import sql

        with psycopg.connect(pg_cluster.url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(reference_template)
                )
            )
        return pg_cluster.url(name)

    return make


StackFactory = t.Callable[..., Stack]


def _stack_factory(
    directory: Path, started: list[AppServer], defaults: Mapping[str, str] | None = None
) -> Callable[..., Stack]:
    def make(
        *,
        database_url: str,
        redis_url: str,
        name: str = "app",
        env: Mapping[str, str] | None = None,
        workers: int = 2,
        like: Stack | None = None,
    ) -> Stack:
        """Start a server; ``like=`` another stack shares its secret key and namespace."""
        if like is not None:
            full_env = {**like.env, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        else:
            full_env = {**_base_env(database_url, redis_url), **(defaults or {})}
        full_env.update(env or {})
        server = AppServer(directory, app_endpoints.APP, full_env, workers=workers, name=name)
        server.start()
        started.append(server)
        return Stack(server, database_url, redis_url, full_env)

    return make


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[StackFactory]:
    """Start app servers for one test; every one is stopped afterwards."""
    started: list[AppServer] = []
    try:
        yield _stack_factory(tmp_path / "servers", started, FAST_HASHING)
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def stack(
    make_stack: StackFactory, make_database: Callable[[], str], stack_redis: RedisServer
) -> Stack:
    """The reference app under gunicorn on a fresh database and the shared durable Redis."""
    return make_stack(database_url=make_database(), redis_url=stack_redis.url)


@contextlib.contextmanager
def _session_stack(
    directory: Path,
    pg_cluster: PostgresCluster,
    template: str,
    redis: RedisServer,
    name: str,
    defaults: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    import psycopg
    from psycopg import sql

    database = f"{name}_{secrets.token_hex(6)}"
    with psycopg.connect(pg_cluster.url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(database), sql.Identifier(template)
            )
        )
    started: list[AppServer] = []
    try:
        make = _stack_factory(directory, started, defaults)
        yield make(database_url=pg_cluster.url(database), redis_url=redis.url, name=name)
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def shared_stack(
    tmp_path_factory: pytest.TempPathFactory,
    pg_cluster: PostgresCluster,
    reference_template: str,
    stack_redis: RedisServer,
) -> Iterator[Stack]:
    """One stack for the whole run, for tests that only read or add their own rows.

    Production settings throughout, password hashing included.
    """
    directory = tmp_path_factory.mktemp("shared-servers")
    with _session_stack(directory, pg_cluster, reference_template, stack_redis, "shared") as stack:
        yield stack


@pytest.fixture(scope="session")
def fuzz_stack(
    tmp_path_factory: pytest.TempPathFactory,
    pg_cluster: PostgresCluster,
    reference_template: str,
    stack_redis: RedisServer,
) -> Iterator[Stack]:
    """A stack for generated input: production settings but a cheap password hash, so
    that thousands of well-formed sign-ins do not each cost a scrypt."""
    directory = tmp_path_factory.mktemp("fuzz-servers")
    with _session_stack(
        directory, pg_cluster, reference_template, stack_redis, "fuzz", FAST_HASHING
    ) as stack:
        yield stack
