"""The pytest plugin: fixtures for apps built on flaskstack (entry point ``flaskstack``).

This module owns the fixtures and the pytest options. The rule it keeps:
**loading it costs nothing and changes nothing**. It imports only pytest and
the standard library; flaskstack's components, Flask apps, database engines,
Alembic and Redis connections appear only when a test asks for one of the
fixtures below, and a run that uses none of them is the run it would have
been without the plugin. Disable it with ``-p no:flaskstack``.

Options (ini file, or the command line, which wins):

``flaskstack_app`` / ``--flaskstack-app``
    The app factory, ``"package.module:create_app"``. Not needed when the
    project defines its own ``app`` fixture.
``flaskstack_schema`` / ``--flaskstack-schema``
    ``models`` (default: ``db.create_all()``) or ``migrations`` (the app's
    Alembic repository upgraded to ``head``), once per run and database.

Fixtures: ``app``, ``client``, ``runner``, ``db_session``, ``redis``,
``make_user``, ``login``, ``api_client``, ``csrf_token``, ``mail_outbox``, ``enqueued_jobs``,
``jobs_worker``, and the building
blocks ``flaskstack_config``, ``flaskstack_database_url``,
``flaskstack_namespace``, ``flaskstack_isolation``, ``flaskstack_databases``,
``flaskstack_app_factory``. A fixture of the same name in a conftest or
test module replaces the plugin's; every other fixture uses whatever
``app`` is in effect.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import typing as t

import pytest

from flaskstack._state import get_state

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from flask import Flask
    from flask.testing import FlaskClient, FlaskCliRunner
    from sqlalchemy.orm import Session

    from flaskstack.redis import _Client

    from ._apps import AppFactory
    from ._clients import ApiClientFactory, CsrfToken, Login, MakeRole, MakeUser
    from ._database import Isolation, TestDatabases
    from ._jobs import EnqueuedJobs, JobsWorker
    from ._namespaces import Namespaces

# pytest finds the fixtures and hooks below by name; nothing here is for import.
__all__: list[str] = []

_P = t.ParamSpec("_P")
_R = t.TypeVar("_R")

_SCHEMAS = ("models", "migrations")

_NO_APP = (
    "no app for the flaskstack fixtures: name the app factory in the pytest ini file "
    '(flaskstack_app = "myapp:create_app") or with --flaskstack-app, or define an `app` '
    "fixture in conftest.py"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--flaskstack-app``, ``--flaskstack-schema`` and their ini options."""
    group = parser.getgroup("flaskstack", "flaskstack test fixtures")
    group.addoption(
        "--flaskstack-app",
        dest="flaskstack_app",
        metavar="MODULE:FACTORY",
        default=None,
        help="app factory for the flaskstack fixtures (overrides the flaskstack_app ini option)",
    )
    group.addoption(
        "--flaskstack-schema",
        dest="flaskstack_schema",
        choices=_SCHEMAS,
        default=None,
        help="build the test database schema from the models (default) or the migrations",
    )
    parser.addini(
        "flaskstack_app",
        type="string",
        default="",
        help='app factory for the flaskstack fixtures, e.g. "myapp:create_app"',
    )
    parser.addini(
        "flaskstack_schema",
        type="string",
        default="models",
        help="schema of the test database: models (db.create_all) or migrations",
    )


def _app_spec(config: pytest.Config) -> str:
    spec: str = config.getoption("flaskstack_app") or config.getini("flaskstack_app")
    return spec.strip()


def _schema(config: pytest.Config) -> str:
    schema: str = config.getoption("flaskstack_schema") or config.getini("flaskstack_schema")
    return schema.strip()


# Flask-Login 0.6.3, which flaskstack wires, dates the remember-me cookie with
# datetime.utcnow(), deprecated since Python 3.12 (flask-login #758, fixed for
# 0.7 by #815): a suite run with warnings as errors would fail on a sign-in.
_FLASK_LOGIN_UTCNOW = (
    r"ignore:datetime\.datetime\.utcnow\(\) is deprecated:DeprecationWarning"
    r":flask_login\.login_manager"
)


def pytest_configure(config: pytest.Config) -> None:
    """Refuse an unknown ``flaskstack_schema`` before any test runs.

    Also ignores Flask-Login's ``utcnow()`` deprecation warning, which a
    sign-in with "remember me" raises on Python 3.12 and newer.
    """
    config.addinivalue_line("filterwarnings", _FLASK_LOGIN_UTCNOW)
    if _schema(config) not in _SCHEMAS:
        raise pytest.UsageError(
            f"flaskstack_schema = {_schema(config)!r}: use one of {', '.join(_SCHEMAS)}"
        )


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say which app factory the fixtures use, when one is configured."""
    spec = _app_spec(config)
    if not spec:
        return None
    return f"flaskstack: app {spec}, schema from {_schema(config)}"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _run(function: t.Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """Call ``function``; report a setup error as a failure without a traceback."""
    from ._apps import SetupError

    try:
        return function(*args, **kwargs)
    except SetupError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)  # outside the except: no "during handling" chain


# -- per run -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def flaskstack_app_factory(pytestconfig: pytest.Config) -> AppFactory:
    """The app factory named by ``flaskstack_app`` (imported once per run)."""
    from ._apps import load_app_factory

    spec = _app_spec(pytestconfig)
    if not spec:
        pytest.fail(_NO_APP, pytrace=False)
    return _run(load_app_factory, spec, str(pytestconfig.rootpath))


@pytest.fixture(scope="session")
def flaskstack_databases(pytestconfig: pytest.Config) -> Iterator[TestDatabases]:
    """The run's database engines and schemas (:class:`~flaskstack.testing.TestDatabases`)."""
    from ._database import TestDatabases

    databases = TestDatabases(_schema(pytestconfig))
    yield databases
    databases.dispose()


@pytest.fixture(scope="session")
def _flaskstack_namespaces() -> Namespaces:
    from ._namespaces import Namespaces

    return Namespaces(_worker())


@pytest.fixture(scope="session")
def _flaskstack_secret_key() -> str:
    return secrets.token_urlsafe(32)


def _configured_database_url(request: pytest.FixtureRequest, secret_key: str) -> str | None:
    """The database the app would use in the testing profile: its server hosts the tests'."""
    from flaskstack.database import _normalise_database_url

    from ._apps import build_app, dispose_app

    if not _app_spec(request.config):
        url = os.environ.get("DATABASE_URL")
        return _normalise_database_url(url) if url else None
    factory: AppFactory = request.getfixturevalue("flaskstack_app_factory")
    probe = _run(build_app, factory, {"FLASKSTACK_PROFILE": "testing", "SECRET_KEY": secret_key})
    try:
        url = probe.config["SQLALCHEMY_DATABASE_URI"]
    finally:
        dispose_app(probe)
    return t.cast("str", url)


@pytest.fixture(scope="session")
def flaskstack_database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    flaskstack_databases: TestDatabases,
    _flaskstack_secret_key: str,
) -> Iterator[str]:
    """The database this run's (or this xdist worker's) tests use, created for it.

    On the PostgreSQL server the app is configured for, a new database named
    ``<its database>_test_<worker>_<random>``, dropped at the end (the role
    needs ``CREATEDB``); otherwise a new SQLite file in pytest's temporary
    directory.
    """
    from sqlalchemy.engine import make_url

    from ._database import create_postgres_database, drop_postgres_database

    base = _configured_database_url(request, _flaskstack_secret_key)
    backend = make_url(base).get_backend_name() if base else "sqlite"
    if backend == "postgresql":
        url = create_postgres_database(t.cast("str", base), _worker())
        try:
            yield url
        finally:
            flaskstack_databases.dispose(url)
            drop_postgres_database(url)
    elif backend == "sqlite":
        path = tmp_path_factory.mktemp("flaskstack-db") / "test.sqlite3"
        url = f"sqlite:///{path}"
        yield url
        flaskstack_databases.dispose(url)
    else:
        pytest.fail(
            f"the flaskstack plugin creates test databases on PostgreSQL and SQLite, not "
            f"{backend}: define an `app` fixture that uses a dedicated test database",
            pytrace=False,
        )


# -- per test ----------------------------------------------------------------------------


@pytest.fixture
def flaskstack_namespace(_flaskstack_namespaces: Namespaces) -> str:
    """A Redis key namespace for this test alone; its keys are deleted after the test."""
    return _flaskstack_namespaces.issue()


@pytest.fixture
def flaskstack_config(
    flaskstack_database_url: str, flaskstack_namespace: str, _flaskstack_secret_key: str
) -> dict[str, t.Any]:
    """The settings the plugin's ``app`` passes to the factory.

    ``FLASKSTACK_PROFILE="testing"``, the run's test database, this test's
    Redis namespace, a ``SECRET_KEY`` for the run and the fast
    :data:`~flaskstack.testing.FAST_PASSWORD_METHOD`. Override the fixture to
    add or change settings::

        @pytest.fixture
        def flaskstack_config(flaskstack_config):
            return {**flaskstack_config, "FLASKSTACK_REGISTRATION": True}
    """
    from ._clients import FAST_PASSWORD_METHOD

    return {
        "FLASKSTACK_PROFILE": "testing",
        "SQLALCHEMY_DATABASE_URI": flaskstack_database_url,
        "FLASKSTACK_NAMESPACE": flaskstack_namespace,
        "SECRET_KEY": _flaskstack_secret_key,
        "FLASKSTACK_PASSWORD_METHOD": FAST_PASSWORD_METHOD,
    }


@contextlib.contextmanager
def _hold(app: Flask, databases: TestDatabases, namespaces: Namespaces) -> Iterator[Isolation]:
    """Isolate ``app``'s databases, and delete its Redis namespace afterwards if we issued it."""
    from ._database import isolate
    from ._namespaces import delete_namespace

    try:
        with isolate(app, databases) as isolation:
            yield isolation
    finally:
        state = app.extensions.get("flaskstack")
        connection = state.redis if state is not None else None
        if connection is not None and namespaces.issued(connection.namespace):
            try:
                if state is not None and state.jobs is not None:
                    from ._jobs import delete_job_keys

                    delete_job_keys(connection)
                delete_namespace(connection)
            finally:
                connection.close()


@pytest.fixture
def app(
    flaskstack_app_factory: AppFactory,
    flaskstack_config: dict[str, t.Any],
    flaskstack_databases: TestDatabases,
    _flaskstack_namespaces: Namespaces,
) -> Iterator[Flask]:
    """A new app from the factory, with the testing profile, for this test only.

    Its database work runs in a transaction rolled back after the test and
    its Redis keys live in this test's namespace, deleted after the test.
    """
    from ._apps import build_app, dispose_app

    new_app = _run(build_app, flaskstack_app_factory, flaskstack_config)
    try:
        with _hold(new_app, flaskstack_databases, _flaskstack_namespaces):
            yield new_app
    finally:
        dispose_app(new_app, keep=flaskstack_databases.owns)


@pytest.fixture
def flaskstack_isolation(
    app: Flask, flaskstack_databases: TestDatabases, _flaskstack_namespaces: Namespaces
) -> Iterator[Isolation]:
    """This test's hold on ``app``'s databases (also for an ``app`` fixture of your own)."""
    from ._database import get_isolation

    existing = get_isolation(app)
    if existing is not None:
        yield existing
        return
    with _hold(app, flaskstack_databases, _flaskstack_namespaces) as isolation:
        yield isolation


@pytest.fixture
def client(app: Flask, flaskstack_isolation: Isolation) -> FlaskClient:
    """``app.test_client()``."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask, flaskstack_isolation: Isolation) -> FlaskCliRunner:
    """``app.test_cli_runner()``: ``runner.invoke(args=["stack", "check"])``."""
    return app.test_cli_runner()


@pytest.fixture
def db_session(flaskstack_isolation: Isolation) -> Iterator[Session]:
    """A SQLAlchemy session on the test's connection, usable without an app context.

    What it commits is visible to the app's requests in this test and gone
    after it. It is not ``flaskstack.db.session`` (which needs an app
    context): reload objects (``db_session.refresh(obj)``) to see what a
    request changed.
    """
    session = flaskstack_isolation.session()
    yield session
    session.close()


@pytest.fixture
def redis(app: Flask, flaskstack_isolation: Isolation) -> _Client:
    """The app's redis-py client (``get_state(app).redis.client``).

    Keys written under the app's namespace (``get_state(app).redis.key(...)``)
    are deleted after the test.
    """

    connection = get_state(app).redis
    if connection is None:
        pytest.fail(
            f"the redis fixture needs an app with Redis, and app {app.name!r} has none: set "
            "REDIS_URL in the environment, or FLASKSTACK_REDIS_URL in flaskstack_config",
            pytrace=False,
        )
    return connection.client


@pytest.fixture
def enqueued_jobs(app: Flask, flaskstack_isolation: Isolation) -> EnqueuedJobs:
    """The jobs ``app`` has queued or scheduled now: ``enqueued_jobs.of(send_welcome)``.

    Needs ``FLASKSTACK_JOBS`` on. Each read asks Redis (the test's namespace).
    """
    from ._jobs import EnqueuedJobs

    _require_jobs(app, "enqueued_jobs")
    return EnqueuedJobs(app)


@pytest.fixture
def jobs_worker(app: Flask, flaskstack_isolation: Isolation) -> JobsWorker:
    """``jobs_worker.run()``: run the jobs queued now in a real RQ worker, in this process.

    The worker runs in burst mode on the test's app: the jobs see the test's
    database transaction and Redis namespace. A failed job raises
    :exc:`AssertionError` with its traceback unless ``run(raise_errors=False)``.
    """
    from ._jobs import JobsWorker

    _require_jobs(app, "jobs_worker")
    return JobsWorker(app)


def _require_jobs(app: Flask, fixture: str) -> None:
    if get_state(app).jobs is None:
        pytest.fail(
            f"the {fixture} fixture needs jobs on, and app {app.name!r} has them off: set "
            "FLASKSTACK_JOBS=true (and REDIS_URL) in the environment, or in flaskstack_config",
            pytrace=False,
        )


@pytest.fixture
def make_user(app: Flask, db_session: Session) -> MakeUser:
    """``make_user(email=None, password=None, roles=(), **fields)``: a committed user.

    A user of the app's model; the password defaults to
    :data:`~flaskstack.testing.DEFAULT_PASSWORD`. ``roles`` (flaskstack's
    roles, ``FLASKSTACK_ROLES``) are granted, each created first if missing.
    """
    from ._clients import make_user as make

    def factory(
        email: str | None = None,
        password: str | None = None,
        roles: t.Iterable[str] = (),
        **fields: t.Any,
    ) -> t.Any:
        return make(app, db_session, email, password, roles, **fields)

    return factory


@pytest.fixture
def make_role(app: Flask, db_session: Session) -> MakeRole:
    """``make_role(name, permissions=(), description="")``: a committed role of flaskstack's.

    Needs ``FLASKSTACK_ROLES``; grant it with ``make_user(roles=[name])``.
    """
    from ._clients import make_role as make

    def factory(name: str, permissions: t.Iterable[str] = (), description: str = "") -> t.Any:
        return make(app, db_session, name, permissions, description)

    return factory


@pytest.fixture
def login(flaskstack_isolation: Isolation) -> Login:
    """``login(client, user)``: log ``client`` in as ``user`` through the real session."""
    from ._clients import login as log_in

    def helper(client: FlaskClient, user: t.Any) -> FlaskClient:
        return _run(log_in, client, user)

    return helper


@pytest.fixture
def api_client(app: Flask, make_user: MakeUser) -> ApiClientFactory:
    """``api_client(user=None)``: a client sending ``Authorization: Bearer <a real token>``.

    Without ``user``, a new user is made with ``make_user()``.
    """
    from ._clients import api_client as make_client

    def factory(user: t.Any | None = None) -> FlaskClient:
        return _run(make_client, app, user if user is not None else make_user())

    return factory


@pytest.fixture
def admin_client(app: Flask, make_role: MakeRole, make_user: MakeUser, login: Login) -> FlaskClient:
    """A client signed in as a new user who may do everything in the admin.

    The user holds a new role, ``admin-client``, granting
    ``FLASKSTACK_ADMIN_PERMISSION`` and the view, add, change and delete
    permissions of every page of the admin (the registered models, users,
    roles, the audit log). Needs ``FLASKSTACK_ADMIN`` and ``FLASKSTACK_ROLES``.
    """
    if not app.config.get("FLASKSTACK_ADMIN"):
        pytest.fail(
            f"the admin_client fixture needs the admin, and app {app.name!r} has it off: set "
            "FLASKSTACK_ADMIN = True (and FLASKSTACK_ROLES = True) in flaskstack_config",
            pytrace=False,
        )
    from flaskstack.admin._setup import permissions_of

    make_role("admin-client", permissions_of(app))
    return login(app.test_client(), make_user(roles=["admin-client"]))


@pytest.fixture
def csrf_token(flaskstack_isolation: Isolation) -> CsrfToken:
    """``csrf_token(client)``: a valid CSRF token from the app's token endpoint."""
    from ._clients import csrf_token as fetch

    def helper(client: FlaskClient) -> str:
        return _run(fetch, client)

    return helper


@pytest.fixture
def mail_outbox(app: Flask) -> list[t.Any]:
    """The messages ``app`` sent during this test, oldest first (empty at its start).

    Flask-Mailman's in-memory outbox, which ``MAIL_URL = "memory://"`` (the
    testing profile's default) fills instead of sending. Each item is a
    ``flask_mailman.EmailMessage``: ``.subject``, ``.body`` (the text),
    ``.to``, ``.from_email``, ``.reply_to`` and ``.alternatives`` (the HTML
    part as ``(html, "text/html")``). The list belongs to this process and
    this app, so parallel (xdist) workers never see each other's mail.
    """
    from flaskstack._mail_backend import mailman_state, outbox

    backend = mailman_state(app).backend
    if backend != "locmem":
        pytest.fail(
            f"mail_outbox needs the in-memory mail backend, and app {app.name!r} uses "
            f"{backend!r}: set MAIL_URL to 'memory://' in flaskstack_config (the testing "
            "profile's default) and leave MAIL_BACKEND unset",
            pytrace=False,
        )
    messages = outbox(app)
    messages.clear()  # an app fixture of wider scope keeps its outbox between tests
    return messages
