"""Two existing Flask apps adopt flaskstack by following ``docs/guides/migrating.rst``.

Each app in ``tests/adoption/`` is a project of its own, written the way
such apps are written in the wild, with its own test suite and a
Flask-Migrate history made without flaskstack's naming convention:

- ``microblog``: an app factory taking a config class, a ``TestConfig``,
  its own username-login ``User`` model and ``LoginManager``, an ``auth``
  blueprint, and an API blueprint with hand-written HTTP Basic and bearer
  token auth and its own JSON error handler. Its tests build the schema with
  ``db.create_all()``.
- ``fieldnotes``: cookiecutter style, ``extensions.py`` and
  ``register_extensions(app)``, settings from the environment, its own 401
  and 404 pages. Its tests build the schema with the app's migrations.

``port.diff`` next to each app is the whole port; the guide shows it. Every
test works on a copy of the app in a temporary directory and runs the app's
own commands in subprocesses, so the apps' models never enter this process.
The environment holds a development database (``DATABASE_URL``, migrated
and with rows) while the suites run on their test database, as on a
developer's machine: the suites must pass and leave the development
database as it was.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import PostgresDatabases

APPS = Path(__file__).resolve().parent / "adoption"
# What each app's .flaskenv names; given on the command line too, as python-dotenv (which
# reads .flaskenv) is not one of flaskstack's dependencies.
_FLASK_APP = {"microblog": "microblog", "fieldnotes": "autoapp.py"}
REDIS_URL = os.environ.get("FLASKSTACK_TEST_REDIS", "redis://127.0.0.1:6379/0")

# The password of the user who was there before the port; the row holds a PBKDF2 hash,
# as rows made with an older Werkzeug do.
OLD_PASSWORD = "old-password"


@dataclasses.dataclass(frozen=True)
class Existing:
    """What an app's existing database holds: the revision it is at, and its rows."""

    head: str
    before_last: str
    rows: dict[str, list[dict[str, t.Any]]]
    tables: list[str]
    password_column: tuple[str, str]  # (table, column) of the one user's password hash


EXISTING = {
    "microblog": Existing(
        head="2b017edaa91f",
        before_last="834b1a697901",
        rows={
            "user": [
                {
                    "id": 1,
                    "username": "olduser",
                    "email": "old@example.com",
                    "password_hash": None,  # see _old_rows
                    "about_me": "here since 2023",
                },
            ],
            "post": [
                {"id": 1, "body": "first!", "timestamp": "2023-03-04 05:06:07", "user_id": 1},
                {"id": 2, "body": "still here", "timestamp": "2024-05-06 07:08:09", "user_id": 1},
            ],
        },
        tables=["alembic_version", "post", "user"],
        password_column=("user", "password_hash"),
    ),
    "fieldnotes": Existing(
        head="d4e8b6a0f512",
        before_last="9c2d1e7a4b33",
        rows={
            "users": [
                {
                    "id": 1,
                    "username": "olduser",
                    "email": "old@example.com",
                    "password": None,  # see _old_rows
                    "created_at": "2022-06-01 10:00:00",
                    "first_name": "Old",
                    "last_name": "User",
                    "active": True,
                    "is_admin": False,
                },
            ],
            "roles": [{"id": 1, "name": "editor", "user_id": 1}],
            "notes": [
                {
                    "id": 1,
                    "body": "a note from 2023",
                    "created_at": "2023-02-02 02:02:02",
                    "user_id": 1,
                }
            ],
        },
        tables=["alembic_version", "notes", "roles", "users"],
        password_column=("users", "password"),
    ),
}


def _clean_environment() -> dict[str, str]:
    """This process's environment without what would change what a subprocess loads.

    conftest's ``clean_environment`` already removed the variables flaskstack
    reads; pytest's and coverage's own variables go too.
    """
    dropped = ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "COVERAGE_PROCESS_START")
    return {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith(("PYTEST_", "COV_CORE_", "TEST_"))
    }


def _sqlalchemy_url(url: str) -> str:
    """``url`` with psycopg 3 named, the one PostgreSQL driver installed here."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


class AppCopy:
    """A working copy of one of the apps, and its commands."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.workdir = workdir
        self.env = env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.name}: {' '.join(args)!r} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``flask`` as the developer runs it (``--app`` as the app's ``.flaskenv`` says)."""
        return self.run("-m", "flask", "--app", _FLASK_APP[self.name], *args, check=check)

    def pytest(self) -> subprocess.CompletedProcess[str]:
        """The app's own test suite.

        The apps use no pytest plugin; not loading the many this environment has
        installed saves most of each run's start-up.
        """
        env = {**self.env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return result

    def port(self) -> None:
        """Apply ``port.diff``, as the guide does."""
        subprocess.run(
            ["patch", "-p1", "--forward", "--input", str(APPS / self.name / "port.diff")],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=True,
        )


def _copy(name: str, tmp_path: Path, env: dict[str, str]) -> AppCopy:
    workdir = tmp_path / name
    shutil.copytree(
        APPS / name,
        workdir,
        ignore=shutil.ignore_patterns("__pycache__", "port.diff", "instance", "*.db"),
    )
    return AppCopy(name, workdir, env)


@dataclasses.dataclass
class Databases:
    """The development database (``DATABASE_URL``) and the test database of one run."""

    development: str
    test: str | None  # None: the app's own default, an in-memory SQLite database


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Databases:
    if request.param == "sqlite":
        return Databases(f"sqlite:///{tmp_path / 'development.sqlite3'}", None)
    postgres: PostgresDatabases = request.getfixturevalue("postgres")
    return Databases(
        _sqlalchemy_url(postgres.create("adopt_dev")),
        _sqlalchemy_url(postgres.create("adopt_test")),
    )


@pytest.fixture
def environment(databases: Databases, namespace: Callable[[], str]) -> dict[str, str]:
    """A developer's environment: the development database, Redis, and the test database."""
    env = _clean_environment()
    env["DATABASE_URL"] = databases.development
    if databases.test is not None:
        env["TEST_DATABASE_URL"] = databases.test
        # With Redis, the ported apps keep their sessions there: under a namespace of this
        # test, whose keys are deleted afterwards.
        env["REDIS_URL"] = REDIS_URL
        env["FLASKSTACK_NAMESPACE"] = namespace()
    return env


def _old_rows(name: str) -> dict[str, list[dict[str, t.Any]]]:
    rows = {
        table: [dict(row) for row in table_rows]
        for table, table_rows in EXISTING[name].rows.items()
    }
    table, column = EXISTING[name].password_column
    rows[table][0][column] = generate_password_hash(OLD_PASSWORD, method="pbkdf2:sha256:1000")
    return rows


def _insert(url: str, rows: dict[str, list[dict[str, t.Any]]]) -> None:
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.begin() as connection:
            for table, table_rows in rows.items():
                values = [
                    {key: _typed(metadata.tables[table], key, value) for key, value in row.items()}
                    for row in table_rows
                ]
                connection.execute(metadata.tables[table].insert(), values)
            if connection.dialect.name == "postgresql":
                # Rows inserted with their ids leave the sequences behind.
                for table in rows:
                    connection.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                            f'(SELECT max(id) FROM "{table}"))'
                        )
                    )
    finally:
        engine.dispose()


def _typed(table: sa.Table, key: str, value: t.Any) -> t.Any:
    if isinstance(value, str) and isinstance(table.c[key].type, sa.DateTime):
        return dt.datetime.fromisoformat(value)
    return value


def _dump(url: str, tables: t.Iterable[str]) -> dict[str, list[dict[str, t.Any]]]:
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                table: [
                    {key: _plain(value) for key, value in row._mapping.items()}
                    for row in connection.execute(
                        sa.select(metadata.tables[table]).order_by(metadata.tables[table].c.id)
                    )
                ]
                for table in tables
            }
    finally:
        engine.dispose()


def _plain(value: t.Any) -> t.Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return value


def _table_names(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _revision(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return t.cast(
                "str", connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
            )
    finally:
        engine.dispose()


def _existing_database(app: AppCopy, url: str, revision: str) -> dict[str, list[dict[str, t.Any]]]:
    """Migrate the development database to ``revision`` and give it rows; return them."""
    app.flask("db", "upgrade", revision)
    rows = _old_rows(app.name)
    _insert(url, rows)
    return _dump(url, rows)


def _assert_suite_passed(
    app: AppCopy, result: subprocess.CompletedProcess[str], stage: str
) -> None:
    assert result.returncode == 0, (
        f"{app.name}'s own tests fail {stage} the port (exit {result.returncode})\n"
        f"--- stdout\n{result.stdout[-12000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    assert " passed" in result.stdout.splitlines()[-1], result.stdout


_SIGN_IN = {
    # API: a token for Basic credentials, then who the token belongs to.
    "microblog": (
        "import base64\n"
        "from microblog import create_app\n"
        "app = create_app()\n"
        "client = app.test_client()\n"
        f"basic = base64.b64encode(b'olduser:{OLD_PASSWORD}').decode()\n"
        "r = client.post('/api/tokens', headers={'Authorization': 'Basic ' + basic})\n"
        "assert r.status_code == 200, (r.status_code, r.get_data(as_text=True))\n"
        "token = r.get_json()['token']\n"
        "r = client.get('/api/users/1', headers={'Authorization': 'Bearer ' + token})\n"
        "assert r.status_code == 200, (r.status_code, r.get_data(as_text=True))\n"
        "print(r.get_json()['username'])\n"
    ),
    # The sign-in form on the home page, then the members page.
    "fieldnotes": (
        "import re\n"
        "from fieldnotes.app import create_app\n"
        "app = create_app()\n"
        "client = app.test_client()\n"
        "page = client.get('/').get_data(as_text=True)\n"
        'token = re.search(r\'name="csrf_token" type="hidden" value="([^"]+)"\', page)[1]\n'
        "r = client.post('/', data={'username': 'olduser', "
        f"'password': '{OLD_PASSWORD}', 'csrf_token': token}})\n"
        "assert r.status_code == 302, (r.status_code, r.get_data(as_text=True))\n"
        "page = client.get('/users/').get_data(as_text=True)\n"
        "print(re.search(r'Welcome (\\w+)', page)[1])\n"
    ),
}


@pytest.mark.parametrize("stage", ["before", "after"])
@pytest.mark.parametrize("name", ["microblog", "fieldnotes"])
def test_own_suite_passes(
    name: str, stage: str, databases: Databases, environment: dict[str, str], tmp_path: Path
) -> None:
    app = _copy(name, tmp_path, environment)
    development = _existing_database(app, databases.development, EXISTING[name].head)
    if stage == "after":
        app.port()

    result = app.pytest()

    _assert_suite_passed(app, result, stage)
    # The suite ran on its test database: the development database is as it was.
    assert _dump(databases.development, development) == development
    assert _table_names(databases.development) == EXISTING[name].tables
    if databases.test is not None:
        # ...and the test database is where the suite's tables were made and removed.
        assert _table_names(databases.test) in ([], ["alembic_version"])


@pytest.mark.parametrize("name", ["microblog", "fieldnotes"])
def test_existing_database_upgrades_after_the_port(
    name: str, databases: Databases, environment: dict[str, str], tmp_path: Path
) -> None:
    existing = EXISTING[name]
    app = _copy(name, tmp_path, environment)
    before = _existing_database(app, databases.development, existing.before_last)

    app.port()
    app.flask("db", "upgrade")  # the last revision rebuilds a table on SQLite

    assert _revision(databases.development) == existing.head
    assert _table_names(databases.development) == existing.tables
    assert _dump(databases.development, before) == before
    # The app on flaskstack signs the existing user in with the password they always had.
    signed_in = app.run("-c", _SIGN_IN[name])
    assert signed_in.stdout.strip().splitlines()[-1] == "olduser", signed_in.stdout


_SIGN_IN_REMEMBERED = (
    "import json, re\n"
    "from microblog import create_app\n"
    "client = create_app().test_client()\n"
    "page = client.get('/auth/login').get_data(as_text=True)\n"
    'token = re.search(r\'name="csrf_token" type="hidden" value="([^"]+)"\', page)[1]\n'
    "r = client.post('/auth/login', data={'username': 'olduser', "
    f"'password': '{OLD_PASSWORD}', 'remember_me': 'y', 'csrf_token': token}})\n"
    "assert r.status_code == 302, (r.status_code, r.get_data(as_text=True))\n"
    "print(json.dumps({n: client.get_cookie(n).value for n in ('session', 'remember_token')}))\n"
)
_SIGNED_IN_WITH_EACH_COOKIE = (
    "import json, sys\n"
    "from microblog import create_app\n"
    "app = create_app()\n"
    "seen = {}\n"
    "for name, value in json.loads(sys.argv[1]).items():\n"
    "    client = app.test_client()\n"
    "    client.set_cookie(name, value)\n"
    "    seen[name] = 'Hi, olduser!' in client.get('/index').get_data(as_text=True)\n"
    "print(json.dumps(seen))\n"
)


def test_signed_in_users_stay_signed_in_after_the_port(
    databases: Databases, environment: dict[str, str], tmp_path: Path
) -> None:
    app = _copy("microblog", tmp_path, environment)
    _existing_database(app, databases.development, EXISTING["microblog"].head)
    cookies = app.run("-c", _SIGN_IN_REMEMBERED).stdout.strip().splitlines()[-1]

    app.port()
    # Each cookie alone: the session cookie, and the remember-me cookie of a browser that
    # was closed since.
    seen = app.run("-c", _SIGNED_IN_WITH_EACH_COOKIE, cookies).stdout.strip().splitlines()[-1]

    assert json.loads(seen) == {"session": True, "remember_token": True}
