"""The reference app (Conduit, in ``example/``) with its migrations, as a developer runs it.

Two kinds of tests, both in subprocesses, so that the app's models and API
resources, which it declares on flaskstack's shared ``db`` and ``api``, never
enter this process (every other test here would see them):

- The command line, in a temporary working copy of ``example/`` and
  ``migrations/``: migrations on SQLite and PostgreSQL, ``flask stack
  check``, ``flask example seed`` run twice, and ``make run``'s three
  commands ending with a newcomer signing up and publishing in the served
  app. The instance folder (the SQLite file, the generated secret key) is
  the copy's, not the repository's.
- The app's own test suite (``example/tests``: the API and the pages through
  flaskstack's pytest plugin), on SQLite without Redis and on PostgreSQL
  with Redis.

The RealWorld Postman collection runs against the app in
``tests/realworld``.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest

if t.TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
APP = "example:create_app"
ADMIN_URL = os.environ.get(
    "FLASKSTACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("FLASKSTACK_TEST_REDIS", "redis://127.0.0.1:6379/0")

TABLES = [
    "alembic_version",
    "article",
    "article_tag",
    "comment",
    "favorite",
    "follow",
    "tag",
    "user_account",
    "user_account_account_tokens",
    "user_account_admin_audit_log",
    "user_account_api_tokens",
    "user_account_confirmed_emails",
    "user_account_logins",
    "user_account_recovery_codes",
    "user_account_role_permissions",
    "user_account_roles",
    "user_account_two_factor",
    "user_account_user_roles",
]
DEMO_TITLES = [
    "Welcome to Conduit",
    "Caching without surprises",
    "Tokens for APIs",
    "Migrations on two databases",
]


def _clean_environment() -> dict[str, str]:
    """This process's environment without what would change what a subprocess loads.

    conftest's ``clean_environment`` already removed the variables flaskstack
    reads; pytest's and coverage's own variables go too.
    """
    dropped = ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "COVERAGE_PROCESS_START")
    return {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith(("PYTEST_", "COV_CORE_"))
    }


class ExampleApp:
    """A working copy of the example app and a way to run commands in it."""

    def __init__(self, workdir: Path, database_url: str | None) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.env = _clean_environment()
        # Deprecation warnings from the stack or the migration environment fail the run.
        self.env["PYTHONWARNINGS"] = "error"
        if database_url is not None:
            self.env["DATABASE_URL"] = database_url

    @property
    def instance(self) -> Path:
        """Flask's default instance folder for the package ``example``."""
        return self.workdir / "instance"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)!r} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("-m", "flask", "--app", APP, *args, check=check)

    def python(self, code: str) -> t.Any:
        """Run ``code`` with ``app`` created; return what it ``print``\\ s last, as JSON."""
        prelude = (
            "import json\nimport sqlalchemy as sa\nfrom flaskstack import db\n"
            "from example import create_app\napp = create_app()\n"
        )
        output = self.run("-c", prelude + code).stdout
        return json.loads(output.strip().splitlines()[-1])

    def tables(self) -> list[str]:
        return t.cast(
            "list[str]",
            self.python(
                "with app.app_context():\n"
                "    print(json.dumps(sorted(sa.inspect(db.engine).get_table_names())))\n"
                "    db.engine.dispose()\n"
            ),
        )


def working_copy(tmp_path: Path) -> Path:
    """Copy the example app and its migrations, without caches, tests or an instance folder."""
    workdir = tmp_path / "work"
    ignore = shutil.ignore_patterns("__pycache__", "instance", "tests", "READY")
    for name in ("example", "migrations"):
        shutil.copytree(ROOT / name, workdir / name, ignore=ignore)
    return workdir


@pytest.fixture(params=["sqlite", "postgresql"])
def example(request: pytest.FixtureRequest, tmp_path: Path) -> ExampleApp:
    """The example app in a temporary working copy, on SQLite or a fresh PostgreSQL database."""
    database_url = (
        request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    )
    return ExampleApp(working_copy(tmp_path), database_url)


# -- the command line ---------------------------------------------------------------------


def test_migrations_upgrade_check_and_downgrade(example: ExampleApp) -> None:
    before = example.flask("stack", "check", check=False)
    assert before.returncode == 1, before.stdout + before.stderr
    assert "migrations.E001" in before.stdout

    example.flask("db", "upgrade")
    after = example.flask("stack", "check")
    upgraded = example.tables()
    example.flask("db", "downgrade", "base")
    downgraded = example.tables()
    example.flask("db", "upgrade")
    again = example.flask("stack", "check")

    assert "System check identified no issues (0 silenced)." in after.stdout
    assert upgraded == TABLES
    assert downgraded == ["alembic_version"]
    assert "System check identified no issues (0 silenced)." in again.stdout
    # The embedded defaults live in the copy's instance folder.
    assert (example.instance / "secret_key").is_file()
    assert (example.instance / "example.sqlite3").is_file() == (example.database_url is None)
    if example.database_url is not None:
        with psycopg.connect(example.database_url, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT conname, contype FROM pg_constraint "
                "WHERE conrelid = 'favorite'::regclass ORDER BY conname"
            ).fetchall()
        assert rows == [  # the naming convention's names
            ("fk_favorite_article_id_article", "f"),
            ("fk_favorite_user_id_user_account", "f"),
            ("pk_favorite", "p"),
        ]


# -- make run: migrate, seed, serve; a newcomer signs up and publishes ----------------------


class Browser:
    """Just enough of a browser: cookies, redirects, forms with their CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return t.cast("str", response.read().decode())

    def submit(self, path: str, fields: dict[str, str]) -> str:
        """Load the form at ``path``, fill in ``fields`` and post it; return the final page."""
        page = self.get(path)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token is not None, page
        data = urllib.parse.urlencode({"csrf_token": token.group(1), **fields}).encode()
        with self.opener.open(self.base + path, data=data, timeout=10) as response:
            return t.cast("str", response.read().decode())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ExampleApp, str]]:
    """``make run``'s commands in a fresh working copy, on the embedded defaults.

    Migrating and seeding run twice, as when ``make run`` is started again:
    the second time adds nothing.
    """
    app = ExampleApp(working_copy(tmp_path), None)
    app.flask("db", "upgrade")
    first = app.flask("example", "seed")
    app.flask("db", "upgrade")
    second = app.flask("example", "seed")
    assert "4 added now, 3 comment(s) added now" in first.stdout
    assert "0 added now, 0 comment(s) added now" in second.stdout
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", APP, "run", "--port", "0"],
            cwd=app.workdir,
            env=app.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        found = None
        while found is None and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.1)
            found = re.search(r"Running on (http://127\.0\.0\.1:\d+)", log_path.read_text())
        assert found is not None, log_path.read_text()
        yield app, found.group(1)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


def test_make_run_serves_the_app_a_newcomer_signs_up_and_publishes(
    served: tuple[ExampleApp, str],
) -> None:
    _app, base = served
    browser = Browser(base)

    home = browser.get("/")
    assert [home.count(f"<h2>{title}</h2>") for title in DEMO_TITLES] == [1, 1, 1, 1]
    after_sign_up = browser.submit(
        "/auth/register",
        {
            "email": "newcomer@example.com",
            "password": "a fine password",
            "confirm": "a fine password",
        },
    )
    article = browser.submit(
        "/editor",
        {
            "title": "Hello from a newcomer",
            "description": "My first article",
            "body": "It works.",
            "tags": "hello",
        },
    )
    home = browser.get("/")

    assert 'href="/profile/newcomer"' in after_sign_up  # signed in, on the home page
    assert "<h1>Hello from a newcomer</h1>" in article
    assert home.index("Hello from a newcomer") < home.index(DEMO_TITLES[0])  # newest first
    with urllib.request.urlopen(base + "/api/articles?author=newcomer", timeout=10) as response:
        listed = json.load(response)
    assert [item["title"] for item in listed["articles"]] == ["Hello from a newcomer"]


# -- the app's own test suite ----------------------------------------------------------------


@pytest.mark.parametrize("services", ["sqlite", "postgresql+redis"])
def test_the_example_apps_own_tests_pass(services: str) -> None:
    env = _clean_environment()
    if services == "postgresql+redis":
        env.update(DATABASE_URL=ADMIN_URL, REDIS_URL=REDIS_URL)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "example/tests", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert re.fullmatch(r"\d+ passed in .*", summary), summary
