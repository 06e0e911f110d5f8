"""The pytest plugin, as a project using flaskstack gets it.

Most tests copy ``tests/sample_project`` (an app package, its tests and a
``pytest.ini`` holding only ``flaskstack_app``) into a pytester directory and
run pytest there in a subprocess, on real PostgreSQL and SQLite, serially
and with ``-n 2``. A small recording plugin (``-p recorder``, written by the
test, not part of the sample) notes which database and namespaces each
worker got, so the test can check afterwards that the databases were dropped
and no Redis key is left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import typing as t
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from flaskstack import db
from flaskstack._redis_url import parse_redis_url
from flaskstack.redis import RedisConnection
from flaskstack.testing._namespaces import Namespaces, delete_namespace

if t.TYPE_CHECKING:
    from conftest import AppFactory

pytest_plugins = ["pytester"]

SAMPLE = Path(__file__).parent / "sample_project"
ADMIN_URL = os.environ.get(
    "FLASKSTACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = "redis://127.0.0.1:6379/0"

RECORDER = """
import json, os
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    value = yield
    if fixturedef.argname in ("flaskstack_database_url", "flaskstack_namespace"):
        with open(os.environ["RECORD_FILE"], "a", encoding="utf-8") as record:
            entry = {
                "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
                "fixture": fixturedef.argname,
                "value": value,
            }
            record.write(json.dumps(entry) + "\\n")
    return value
"""


class Project:
    """A pytester project run in a subprocess, with what it recorded."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.path = pytester.path
        self.record_file = self.path / "record.jsonl"
        pytester.makepyfile(recorder=RECORDER)
        # conftest's clean_environment already removed what flaskstack reads.
        for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_ADDOPTS"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("RECORD_FILE", str(self.record_file))
        self.monkeypatch = monkeypatch

    def copy_sample(self, *, ini: bool = True) -> None:
        """The sample app and its tests (stored as check_*.py, run as test_*.py)."""
        shutil.copytree(SAMPLE / "notes_app", self.path / "notes_app")
        (self.path / "tests").mkdir()
        for source in sorted((SAMPLE / "tests").glob("check_*.py")):
            target = source.name.replace("check_", "test_", 1)
            shutil.copyfile(source, self.path / "tests" / target)
        if ini:
            shutil.copyfile(SAMPLE / "pytest.ini", self.path / "pytest.ini")

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess("-p", "recorder", "-W", "error", *args)

    def recorded(self, fixture: str) -> dict[str, list[str]]:
        """Values of ``fixture``, by worker."""
        found: dict[str, list[str]] = {}
        if self.record_file.exists():
            for line in self.record_file.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                if entry["fixture"] == fixture:
                    found.setdefault(entry["worker"], []).append(entry["value"])
        return found


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Project:
    return Project(pytester, monkeypatch)


def postgres_databases() -> set[str]:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as connection:
        rows = connection.execute("SELECT datname FROM pg_database").fetchall()
    return {row[0] for row in rows}


def keys_left(namespaces: t.Iterable[str]) -> list[bytes]:
    """The namespaces' keys, and the keys of RQ's queues and registries named after them."""
    patterns = [pattern for ns in namespaces for pattern in (f"{ns}:*", f"rq:*:{ns}:*")]
    with redis.Redis.from_url(REDIS_URL) as client:
        return [key for pattern in patterns for key in client.scan_iter(match=pattern)]


def use_backend(project: Project, backend: str) -> str | None:
    """Point the sample at Redis and at PostgreSQL (or leave it on its SQLite default)."""
    project.monkeypatch.setenv("REDIS_URL", REDIS_URL)
    if backend == "sqlite":
        return None
    base = make_url(ADMIN_URL).set(database=f"fs_sample_{uuid.uuid4().hex[:6]}")
    project.monkeypatch.setenv("DATABASE_URL", base.render_as_string(hide_password=False))
    return base.database


def check_cleaned_up(project: Project, backend: str, base: str | None, workers: set[str]) -> None:
    databases = project.recorded("flaskstack_database_url")
    assert set(databases) == workers
    urls = [url for values in databases.values() for url in values]
    assert len(set(urls)) == len(workers), "one database per worker"
    for worker, (url,) in databases.items():
        name = make_url(url).database or ""
        if backend == "sqlite":
            assert url.startswith("sqlite:///"), url
        else:
            assert name.startswith(f"{base}_test_{worker}_"), name
    if backend == "postgresql":
        assert not {make_url(url).database for url in urls} & postgres_databases()
    namespaces = [
        ns for values in project.recorded("flaskstack_namespace").values() for ns in values
    ]
    assert len(namespaces) == len(set(namespaces)) > 0
    assert keys_left(namespaces) == []


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_sample_project_passes_with_only_the_ini_option(project: Project, backend: str) -> None:
    project.copy_sample()
    base = use_backend(project, backend)
    result = project.run("-v")
    result.assert_outcomes(passed=13)
    result.stdout.fnmatch_lines(["flaskstack: app notes_app:create_app, schema from models"])
    check_cleaned_up(project, backend, base, {"main"})


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_each_xdist_worker_gets_its_own_database_and_namespaces(
    project: Project, backend: str
) -> None:
    project.copy_sample()
    base = use_backend(project, backend)
    # Whole files per worker: the isolation checks run in order, on one worker.
    result = project.run("-n", "2", "--dist", "loadfile")
    result.assert_outcomes(passed=13)
    check_cleaned_up(project, backend, base, {"gw0", "gw1"})


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_schema_can_come_from_the_migrations(
    project: Project, postgres_url: str, backend: str
) -> None:
    project.copy_sample()
    # Autogenerated against PostgreSQL: a migration generated on SQLite renders
    # UserMixin.active's server default as '1', which PostgreSQL refuses.
    env = {**os.environ, "DATABASE_URL": postgres_url}
    for command in (["db", "init"], ["db", "migrate", "-m", "notes"]):
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "notes_app:create_app", *command],
            cwd=project.path,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    project.pytester.makepyfile(
        test_schema="""
        import sqlalchemy as sa

        def test_the_tables_come_from_alembic(db_session):
            assert db_session.scalar(sa.text("SELECT count(*) FROM alembic_version")) == 1
        """
    )
    base = use_backend(project, backend)
    result = project.run("--flaskstack-schema", "migrations")
    result.assert_outcomes(passed=14)
    result.stdout.fnmatch_lines(["flaskstack: app notes_app:create_app, schema from migrations"])
    check_cleaned_up(project, backend, base, {"main"})


def test_an_app_fixture_of_the_project_replaces_the_factory(project: Project) -> None:
    project.copy_sample(ini=False)
    project.pytester.makeconftest(
        """
        import pytest
        from flaskstack.testing import dispose_app
        from notes_app import create_app

        @pytest.fixture
        def app(flaskstack_config, flaskstack_databases):
            app = create_app({**flaskstack_config, "FLASKSTACK_REGISTRATION": False})
            yield app
            dispose_app(app, keep=flaskstack_databases.owns)
        """
    )
    project.pytester.makepyfile(
        test_own_app="""
        def test_the_fixtures_use_it(client):
            assert client.get("/auth/register").status_code == 404
        """
    )
    base = use_backend(project, "postgresql")
    result = project.run("tests/test_isolation.py", "tests/test_transactions.py", "test_own_app.py")
    result.assert_outcomes(passed=8)
    check_cleaned_up(project, "postgresql", base, {"main"})


def test_a_run_that_does_not_configure_it_is_unchanged(project: Project) -> None:
    project.pytester.makepyfile(
        test_plain="""
        import pytest

        @pytest.fixture
        def client():
            return "the project's own client"

        def test_own_fixtures_win(client):
            assert client == "the project's own client"

        def test_no_app_configured(db_session):
            pass
        """
    )
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*no app for the flaskstack fixtures: name the app factory*"])
    result.stdout.no_fnmatch_line("flaskstack: app*")
    assert project.recorded("flaskstack_database_url") == {}


def test_a_factory_that_ignores_the_test_settings_is_refused(project: Project) -> None:
    project.pytester.makepyfile(
        careless="""
        from flask import Flask
        import flaskstack

        def create_app(config=None):
            app = Flask(__name__)
            flaskstack.init_app(app)  # config not passed on
            return app
        """,
        test_careless="""
        def test_app(app):
            pass
        """,
    )
    result = project.run("--flaskstack-app", "careless:create_app")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["the app factory create_app ignored the test settings FLASKSTACK_PROFILE: it must*"]
    )


def test_a_factory_without_arguments_gets_the_settings_from_the_environment(
    project: Project,
) -> None:
    project.pytester.makepyfile(
        bare="""
        from flask import Flask
        import flaskstack

        def make():
            app = Flask(__name__)
            flaskstack.init_app(app)
            return app
        """,
        test_bare="""
        import os

        def test_testing_profile(app, flaskstack_database_url):
            assert app.config["FLASKSTACK_PROFILE"] == "testing"
            assert app.config["SQLALCHEMY_DATABASE_URI"] == flaskstack_database_url
            assert "DATABASE_URL" not in os.environ

        def test_login_with_cookie_sessions(client, make_user, login):
            user = make_user()
            login(client, user)
            with client.session_transaction() as session:
                assert session["_user_id"] == user.session_token

        def test_runner(runner):
            result = runner.invoke(args=["stack", "config"])
            assert result.exit_code == 0, result.output
            assert "FLASKSTACK_PROFILE" in result.output

        def test_redis_needs_a_redis_url(redis):
            pass
        """,
    )
    result = project.run("--flaskstack-app", "bare:make")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*the redis fixture needs an app with Redis*"])


def test_make_user_grants_roles_and_make_role_makes_them(project: Project) -> None:
    project.pytester.makepyfile(
        withroles="""
        from flask import Flask
        import flaskstack

        def make(config=None):
            app = Flask(__name__)
            app.config["FLASKSTACK_ROLES"] = True
            flaskstack.init_app(app, config)
            return app
        """,
        test_withroles="""
        from flaskstack.auth import has_permission, has_role

        def test_roles(app, make_user, make_role):
            make_role("editor", ["articles.edit"])
            editor = make_user(roles=["editor", "reviewer"])
            plain = make_user()
            with app.test_request_context():
                assert has_permission(editor, "articles.edit")
                assert has_role(editor, "reviewer")
                assert not has_role(plain, "editor")
        """,
    )
    result = project.run("--flaskstack-app", "withroles:make")
    result.assert_outcomes(passed=1)


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import json, sys\n"
        "import flaskstack.testing.plugin\n"
        "heavy = ['alembic', 'flask_migrate', 'psycopg', 'flaskstack.testing._database',\n"
        "         'flaskstack.testing._clients', 'flaskstack.testing._apps']\n"
        "print(json.dumps([name for name in heavy if name in sys.modules]))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(output.stdout) == []


def test_delete_namespace_deletes_only_that_namespace() -> None:
    namespaces = Namespaces("unit")
    mine, other = namespaces.issue(), namespaces.issue()
    assert namespaces.issued(mine)
    assert not namespaces.issued("someone-else")
    connection = RedisConnection(parse_redis_url(REDIS_URL), mine, timeout=2, backoff=1)
    client = connection.client
    try:
        client.mset({connection.key("k", str(i)): i for i in range(1200)})  # several batches
        client.set(f"{other}:k", 1)
        client.set(mine, 1)  # the bare name is not under the namespace
        assert delete_namespace(connection) == 1200
        assert client.exists(f"{other}:k", mine) == 2
    finally:
        client.delete(f"{other}:k", mine)
        connection.close()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_usual_recipe_leaks_on_flask_sqlalchemy_3_1(
    make_app: AppFactory, request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    """Why the plugin swaps the engines: Flask-SQLAlchemy ignores a session-level bind.

    The session commits on a connection of its own, so the row outlives the
    rollback of the "test transaction". If this fails one day, Flask-SQLAlchemy
    honours the bind again and the trap in the field notes is gone.
    """
    if backend == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'recipe.db'}"
    app = make_app({"SQLALCHEMY_DATABASE_URI": url}, profile="testing")
    probe = sa.Table("recipe_probe", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    with app.app_context():
        probe.create(db.engine)
        connection = db.engine.connect()
        transaction = connection.begin()
        db.session.configure(bind=connection)
        try:
            db.session.execute(probe.insert().values(id=1))
            db.session.commit()
            db.session.remove()
        finally:
            db.session.configure(bind=None)
            transaction.rollback()
            connection.close()
        with db.engine.connect() as check:
            assert check.scalar(sa.select(sa.func.count()).select_from(probe)) == 1  # leaked
