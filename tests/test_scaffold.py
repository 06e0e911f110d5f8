"""``flaskstack new``: the generated project works as its README says.

A project is generated once per module with the ``flaskstack`` console
script, then installed the way its README says (``python -m pip install -e
'.[test]'``) into a virtual environment of its own. That environment sees
the packages of the one running these tests (flaskstack included) through a
``.pth`` file, so the install needs ``--no-deps --no-build-isolation
--no-index`` and no network. Then the README's commands run there, as
written: ``flask db upgrade`` (SQLite), the project's own test suite,
``flask run`` serving a page. The same project also runs on PostgreSQL and
Redis: its tests, and the commands of its docker-compose.yml in the
production profile.
"""

from __future__ import annotations

import json
import re
import shlex
import site
import subprocess
import sys
import sysconfig
import typing as t
import urllib.request
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself requires tomli before 3.11
    import tomli as tomllib

import psycopg
import pytest
from click.testing import CliRunner
from conftest import SHARED_REDIS_URL
from deploy_support.deployment import ALL_CHECKS, Deployment
from deploy_support.files import check_compose_file
from deploy_support.http import Browser, Response, form_fields
from deploy_support.jobs import wait_for_a_worker, wait_for_job_log_line
from deploy_support.server import Server, free_port, local_command, run, with_bind
from scaffolding import clean_environment, generate_project
from smtp_server import SMTPServer

from flaskstack.scaffold import cli
from flaskstack.scaffold._project import readme_commands
from flaskstack.testing import DEFAULT_PASSWORD

if t.TYPE_CHECKING:
    from conftest import PostgresDatabases

NAME = "notekeeper"

# What the README's pip command needs here: everything is already installed.
OFFLINE_INSTALL = ["--no-deps", "--no-build-isolation", "--no-index", "--quiet"]

EXPECTED_FILES = {
    ".dockerignore",
    ".env.example",
    ".gitignore",
    "Dockerfile",
    "README.md",
    "deploy/kubernetes/base/autoscaling.yaml",
    "deploy/kubernetes/base/config.env",
    "deploy/kubernetes/base/disruption-budget.yaml",
    "deploy/kubernetes/base/kustomization.yaml",
    "deploy/kubernetes/base/migrate.yaml",
    "deploy/kubernetes/base/service.yaml",
    "deploy/kubernetes/base/web.yaml",
    "deploy/kubernetes/base/worker.yaml",
    "deploy/kubernetes/example/.gitignore",
    "deploy/kubernetes/example/kustomization.yaml",
    "deploy/kubernetes/example/secrets.env.example",
    "docker-compose.yml",
    "migrations/README",
    "migrations/alembic.ini",
    "migrations/env.py",
    "migrations/script.py.mako",
    f"{NAME}/__init__.py",
    f"{NAME}/admin.py",
    f"{NAME}/api.py",
    f"{NAME}/jobs.py",
    f"{NAME}/models.py",
    f"{NAME}/templates/flaskstack/base.html",
    f"{NAME}/templates/flaskstack/mail/notes.txt",
    f"{NAME}/templates/index.html",
    f"{NAME}/templates/moderation.html",
    f"{NAME}/views.py",
    "pyproject.toml",
    "tests/test_accounts.py",
    "tests/test_admin.py",
    "tests/test_api.py",
    "tests/test_jobs.py",
    "tests/test_migrations.py",
    "tests/test_pages.py",
    "tests/test_passkeys.py",
    "tests/test_roles.py",
    "tests/test_two_factor.py",
}

# The passkeys settings of .env.example: docker-compose.yml serves web on WEB_PORTS
# of 127.0.0.1, which browsers reach (and let use passkeys over HTTP) as localhost.
TRIED_RP_ID = "localhost"
TRIED_ORIGINS = [f"http://localhost:{port}" for port in range(8000, 8010)]


class Project:
    """A generated project and the virtual environment it is installed in."""

    def __init__(self, root: Path, venv: Path) -> None:
        self.root = root
        self.venv = venv
        self.python = venv / "bin" / "python"

    def run(
        self, command: t.Sequence[str], timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run a README-style command (``flask ...``, ``python ...``) in the project."""
        return run(
            local_command(command, self.python),
            env={**clean_environment(), **env},
            cwd=self.root,
            timeout=timeout,
        )

    def files(self) -> set[str]:
        return {
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }


def _readme_block(readme: str, containing: str = "") -> list[str]:
    """The commands of the first ``sh`` block holding ``containing``, comments removed."""
    blocks = [b for b in re.findall(r"```sh\n(.*?)```", readme, re.DOTALL) if containing in b]
    assert blocks, f"the README has no sh block with {containing!r}"
    return [line.split(" #")[0].strip() for line in blocks[0].splitlines() if line.strip()]


def _make_venv(path: Path) -> None:
    """A virtual environment that sees this one's packages (through a .pth file)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    purelib = subprocess.run(
        [
            str(path / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = [*site.getsitepackages(), sysconfig.get_path("purelib")]
    lines = [f"import site; site.addsitedir({directory!r})" for directory in dict.fromkeys(ours)]
    (Path(purelib) / "_flaskstack_tests_parent.pth").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The project ``flaskstack new notekeeper`` generates, installed as its README says."""
    base = tmp_path_factory.mktemp("scaffold")
    root = base / NAME
    printed = generate_project(NAME, root)
    assert f"Created project {NAME!r}" in printed
    _make_venv(base / "venv")
    return Project(root, base / "venv")


# -- what is generated --------------------------------------------------------------------


def test_the_project_has_every_part(project: Project) -> None:
    files = project.files()
    migrations = {f for f in files if f.startswith("migrations/versions/")}
    assert len(migrations) == 1
    assert files - migrations == EXPECTED_FILES
    factory = (project.root / NAME / "__init__.py").read_text()
    assert "flaskstack.init_app(app, config)" in factory
    assert f'"FLASKSTACK_USER_MODEL"] = "{NAME}.models:Account"' in factory
    for feature in ("ROLES", "TWO_FACTOR", "PASSKEYS", "ADMIN"):
        assert f'app.config["FLASKSTACK_{feature}"] = True' in factory, feature
    pyproject = tomllib.loads((project.root / "pyproject.toml").read_text())
    assert pyproject["tool"]["pytest"]["ini_options"]["flaskstack_app"] == f"{NAME}:create_app"
    dependencies = pyproject["project"]["dependencies"]
    assert any(
        d.startswith("flaskstack[postgres,two-factor,passkeys,admin]>=") for d in dependencies
    )
    assert any(d.startswith("pyotp") for d in pyproject["project"]["optional-dependencies"]["test"])


def test_the_module_docstring_says_what_is_generated(project: Project) -> None:
    import flaskstack.scaffold

    doc = " ".join((flaskstack.scaffold.__doc__ or "").split())
    files = project.files()
    for name in (".gitignore", "Dockerfile", "docker-compose.yml", ".env.example", ".dockerignore"):
        assert f"``{name}``" in doc, name
        assert name in files, name
    install, upgrade = (command for command, _ in readme_commands("NAME")[:2])
    assert f"``{install}``" in doc
    assert f"``{upgrade}``" in doc
    assert "there is no ``flask db init`` to run" in doc


def test_the_first_migration_creates_the_models_tables(project: Project) -> None:
    (migration,) = (project.root / "migrations" / "versions").glob("*.py")
    text = migration.read_text()
    assert "create accounts and notes" in text
    tables = {
        "accounts",
        "accounts_api_tokens",
        "accounts_logins",
        "accounts_roles",
        "accounts_role_permissions",
        "accounts_user_roles",
        "accounts_two_factor",
        "accounts_recovery_codes",
        "accounts_passkeys",
        "accounts_admin_audit_log",
        "notes",
    }
    for table in tables:
        assert f"op.create_table('{table}'" in text, table
    # Written portably: PostgreSQL refuses SQLite's sa.text('1') for a boolean.
    assert "server_default=sa.true()" in text
    assert "sa.text('1')" not in text


def test_the_code_passes_ruff(project: Project) -> None:
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=project.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_deployment_files_are_valid(project: Project) -> None:
    result = check_compose_file(project.root / "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    deployment = Deployment.read(project.root)
    for check in ALL_CHECKS:
        check(deployment)
    assert deployment.final_stage.env()["FLASK_APP"] == NAME
    assert deployment.web_command()[-1] == f"{NAME}:create_app()"
    assert deployment.web_command()[:3] == ["gunicorn", "-c", "python:flaskstack.gunicorn"]


def test_the_passkeys_settings_match_how_compose_serves_the_app(project: Project) -> None:
    deployment = Deployment.read(project.root)
    (ports,) = deployment.service("web")["ports"]
    assert ports == "127.0.0.1:${WEB_PORTS:-8000-8009}:8000"
    assert deployment.env_example["WEB_PORTS"] == "8000-8009"
    example = deployment.env_example
    assert example["FLASKSTACK_PASSKEYS_RP_ID"] == TRIED_RP_ID
    assert example["FLASKSTACK_PASSKEYS_ORIGINS"].split(",") == TRIED_ORIGINS
    # Without them in .env, compose gives the app the same values.
    variables = {"SECRET_KEY": "k" * 48, "POSTGRES_PASSWORD": "pw", "MAIL_URL": "smtp://mail"}
    for service in ("migrate", "web", "worker"):
        environment = deployment.environment(service, variables)
        assert environment["FLASKSTACK_PASSKEYS_RP_ID"] == TRIED_RP_ID
        assert environment["FLASKSTACK_PASSKEYS_ORIGINS"].split(",") == TRIED_ORIGINS
    # What to set for a real domain, and the identity providers, commented out.
    text = (project.root / ".env.example").read_text()
    assert "#   FLASKSTACK_PASSKEYS_ORIGINS=https://example.com" in text
    providers = re.search(r"^# FLASKSTACK_OIDC_PROVIDERS=(.*)$", text, re.MULTILINE)
    assert providers is not None
    assert json.loads(providers.group(1)) == {
        "google": {"preset": "google", "client_id": "1234.apps.googleusercontent.com"}
    }
    assert "\n# FLASKSTACK_OIDC_GOOGLE_CLIENT_SECRET=\n" in text


# -- the README, run as written ----------------------------------------------------------


def test_the_readme_commands_work(project: Project, tmp_path: Path) -> None:
    commands = _readme_block((project.root / "README.md").read_text())
    assert commands == [command for command, _ in readme_commands(NAME)]
    install, upgrade, tests, serve = (shlex.split(command) for command in commands)

    installed = project.run([*install, *OFFLINE_INSTALL])
    assert installed.returncode == 0, installed.stdout
    assert _editable_install(project), installed.stdout

    upgraded = project.run(upgrade)
    assert upgraded.returncode == 0, upgraded.stdout
    assert "create accounts and notes" in upgraded.stdout
    assert (project.root / "instance" / f"{NAME}.sqlite3").is_file()

    tested = project.run(tests)
    assert tested.returncode == 0, tested.stdout
    # Without REDIS_URL the background jobs tests cannot run; they say why.
    _passed(project, tested.stdout, skipped="tests/test_jobs.py")
    assert "background jobs need Redis: set REDIS_URL" in tested.stdout

    # The README's role commands, for an account with the address they name;
    # in one process (each `flask` command costs seconds to start).
    roles = _readme_block((project.root / "README.md").read_text(), "stack role create")
    moderator = shlex.split(roles[1])[-1]
    create_user = f"flask --app {NAME} stack create-user --password-stdin {moderator}"
    commands = [shlex.split(command)[1:] for command in (create_user, *roles)]
    assert all(shlex.split(command)[0] == "flask" for command in roles), roles
    ran = subprocess.run(
        [str(project.python), "-c", _FLASK_COMMANDS, json.dumps(commands)],
        input=DEFAULT_PASSWORD,
        env=clean_environment(),
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"Granted role 'moderator' to {moderator}." in ran.stdout
    assert "permissions: notes.delete" in ran.stdout

    port = free_port()
    command = local_command([*serve, "--host", "127.0.0.1", "--port", str(port)], project.python)
    log = tmp_path / "run.log"
    with Server(command, env=clean_environment(), cwd=project.root, log=log) as server:
        server.wait_for_http(f"http://127.0.0.1:{port}/")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            page = response.read().decode()
        # The role the README's commands granted lets its holder in.
        browser = Browser("127.0.0.1", port)
        _sign_in(browser, moderator)
        assert browser.get("/moderation").status == 200
    assert "<h1>Notes</h1>" in page
    assert "Notekeeper" in page
    assert "Sign in" in page


# `flask ARGS...` for each ARGS of a JSON list, in this process, stopping at the first failure.
_FLASK_COMMANDS = """
import json, sys
from flask.cli import cli
for args in json.loads(sys.argv[1]):
    cli.main(args=args, prog_name="flask", standalone_mode=False)
"""


def _sign_in(browser: Browser, email: str) -> None:
    page = browser.get("/auth/login")
    form = {
        "email": email,
        "password": DEFAULT_PASSWORD,
        "csrf_token": form_fields(page.body)["csrf_token"],
    }
    assert browser.post("/auth/login", form).status == 302


REPOSITORY_README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_section(title: str) -> str:
    """The text of a ``###`` section of the repository's README."""
    text = REPOSITORY_README.read_text(encoding="utf-8")
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^##)", text, re.DOTALL | re.MULTILINE)
    assert match is not None, f"the README has no section {title!r}"
    return match.group(1)


def test_the_repository_readme_starts_a_new_project_as_flaskstack_new_does() -> None:
    # The commands run above, in a generated project: the README's "New
    # project" shows exactly those, after `flaskstack new`.
    section = _readme_section("New project")
    commands = _readme_block(section)
    assert commands[1:3] == ["flaskstack new myapp", "cd myapp"], commands
    assert commands[3:] == [command for command, _ in readme_commands("myapp")], commands
    # A generated project has its migration repository: `flask db init` fails there.
    assert "flask db init" not in section.replace("no `flask db init`", "")
    assert "docs/guides/migrating.rst" in _readme_section("Existing app")


def test_the_readme_starts_with_the_two_make_commands() -> None:
    text = REPOSITORY_README.read_text(encoding="utf-8")
    assert _readme_block(text) == ["make run", "make test"]


def _passed(project: Project, output: str, skipped: str | None = None) -> None:
    """The whole suite of the project ran and passed; only the tests of ``skipped`` were skipped."""
    counts = {
        path.relative_to(project.root).as_posix(): len(
            re.findall(r"^def test_", path.read_text(), re.MULTILINE)
        )
        for path in (project.root / "tests").glob("test_*.py")
    }
    assert sum(counts.values()) >= 10
    left_out = counts[skipped] if skipped is not None else 0
    assert re.search(rf"\b{sum(counts.values()) - left_out} passed\b", output), output
    assert not re.search(r"\b\d+ (failed|errors?)\b", output), output
    if left_out:
        assert re.search(rf"\b{left_out} skipped\b", output), output
    else:
        assert not re.search(r"\b\d+ skipped\b", output), output


# -- PostgreSQL and Redis -----------------------------------------------------------------


def test_the_tests_pass_on_postgres_and_redis(
    project: Project, postgres: PostgresDatabases
) -> None:
    _installed(project)
    database = postgres.create("scaffold")
    tested = project.run(
        ["python", "-m", "pytest"], DATABASE_URL=database, REDIS_URL=SHARED_REDIS_URL
    )
    assert tested.returncode == 0, tested.stdout
    _passed(project, tested.stdout)
    # The plugin ran them on a database of its own on the same server, and dropped it.
    name = database.rpartition("/")[2]
    with psycopg.connect(database, autocommit=True) as connection:
        left = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{name}_test%",)
        ).fetchall()
    assert left == []


@pytest.fixture
def smtp_server() -> t.Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def test_the_compose_services_run_here(
    project: Project,
    postgres: PostgresDatabases,
    namespace: t.Callable[[], str],
    smtp_server: SMTPServer,
    tmp_path: Path,
) -> None:
    """The migrate service's command, then the image's CMD, in the production profile.

    .env is .env.example with its secrets filled in; the db, redis and mail
    services are this machine's PostgreSQL and Redis and an SMTP server on
    loopback, which ``flask stack check --deploy`` connects to.
    """
    _installed(project)
    deployment = Deployment.read(project.root)
    variables = deployment.variables(SECRET_KEY="s" * 48, POSTGRES_PASSWORD="unused")
    local = {
        "DATABASE_URL": postgres.create("scaffold_deploy"),
        "REDIS_URL": SHARED_REDIS_URL,
        "FLASKSTACK_NAMESPACE": namespace(),
        "MAIL_URL": smtp_server.url(),
    }
    migrate_env = {**deployment.environment("migrate", variables), **local}
    migrated = project.run(deployment.migrate_command(), **migrate_env)
    assert migrated.returncode == 0, migrated.stdout

    worker_env = {**clean_environment(), **deployment.environment("worker", variables), **local}
    worker_command = local_command(deployment.worker_command(), project.python)
    worker = Server(worker_command, env=worker_env, cwd=project.root, log=tmp_path / "worker.log")
    with worker:
        wait_for_a_worker(worker, SHARED_REDIS_URL, local["FLASKSTACK_NAMESPACE"])
        # .env.example's passkeys origins are plain HTTP on localhost, where
        # browsers allow it and compose serves the app: right for trying the
        # stack, not for going live, and --deploy says so.
        check = ["flask", "stack", "check", "--deploy"]
        checked = project.run(check, **migrate_env)
        assert checked.returncode != 0, checked.stdout
        found = re.findall(r"^\s*([a-z_]+\.[EWI]\d{3}):", checked.stdout, re.MULTILINE)
        assert found == ["passkeys.E005"], checked.stdout
        # With a domain's values, as .env.example says to set them, nothing is left.
        domain = {
            "FLASKSTACK_PASSKEYS_RP_ID": "notekeeper.example",
            "FLASKSTACK_PASSKEYS_ORIGINS": "https://notekeeper.example",
        }
        checked = project.run(check, **{**migrate_env, **domain})
        assert checked.returncode == 0, checked.stdout
        assert "no issues" in checked.stdout

        port = free_port()
        web_command = local_command(deployment.web_command(), project.python)
        web = with_bind(web_command, f"127.0.0.1:{port}")
        web_env = {**clean_environment(), **deployment.environment("web", variables), **local}
        with Server(web, env=web_env, cwd=project.root, log=tmp_path / "web.log") as server:
            server.wait_for_http(f"http://127.0.0.1:{port}/readyz")
            server.wait_for_http(f"http://127.0.0.1:{port}/api/notes")
            asked = _ask_for_the_notes(Browser("127.0.0.1", port))
            # The worker mailed them, after the confirmation link registering sent.
            mails = smtp_server.wait_for(2, timeout=60)
            (notes,) = [m for m in mails if m.message["Subject"] == "Your notes"]
            assert notes.rcpt_tos == ["scaffold@example.com"]
            assert "Compose" in notes.message.get_payload(decode=True).decode()
            ran = wait_for_job_log_line(worker, asked.request_id)
            assert ran["job"]["function"] == f"{NAME}.jobs.mail_notes"
            assert ran["job"]["status"] == "finished"
            assert server.stop() == 0, server.output()
        assert worker.stop() == 0, worker.output()


def _ask_for_the_notes(browser: Browser) -> Response:
    """Register, write a note and ask for the notes by mail, as a browser would."""
    page = browser.get("/auth/register")
    form = {
        "email": "scaffold@example.com",
        "password": DEFAULT_PASSWORD,
        "confirm": DEFAULT_PASSWORD,
        "csrf_token": form_fields(page.body)["csrf_token"],
    }
    assert browser.post("/auth/register", form).status == 302
    token = form_fields(browser.get("/").body)["csrf_token"]
    written = browser.post("/notes", {"title": "Compose", "body": "", "csrf_token": token})
    assert written.status == 302, written.body
    asked = browser.post("/notes/mail", {"csrf_token": token})
    assert asked.status == 302, asked.body
    assert "on their way" in browser.get("/").body
    return asked


def _editable_install(project: Project) -> list[Path]:
    """The files pip wrote into the project's environment for its editable install."""
    return list(project.venv.glob(f"lib/python*/site-packages/__editable__*{NAME}*"))


def _installed(project: Project) -> None:
    if not _editable_install(project):
        installed = project.run(["python", "-m", "pip", "install", "-e", ".", *OFFLINE_INSTALL])
        assert installed.returncode == 0, installed.stdout


# -- options and refusals -----------------------------------------------------------------


def test_no_api_and_no_docker_leave_those_parts_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # By default the project goes into ./NAME, which may exist if it is empty.
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "plain_notes"
    target.mkdir()
    inode = target.stat().st_ino
    result = CliRunner().invoke(cli, ["new", "plain_notes", "--no-api", "--no-docker"])
    assert result.exit_code == 0, result.output
    assert "cd plain_notes" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["plain_notes"]  # no staging left behind
    assert target.stat().st_ino == inode  # filled, not replaced: a shell may be in it
    files = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert "plain_notes/views.py" in files
    assert "plain_notes/api.py" not in files
    assert "tests/test_api.py" not in files
    assert not files & {"Dockerfile", "docker-compose.yml", ".env.example", ".dockerignore"}
    assert "api" not in (target / "plain_notes" / "__init__.py").read_text()
    readme = (target / "README.md").read_text()
    assert "/api" not in readme
    assert "docker" not in readme
    smoke = (
        "from flaskstack import db\n"
        "from plain_notes import create_app\n"
        "app = create_app({'FLASKSTACK_PROFILE': 'testing', 'SQLALCHEMY_DATABASE_URI': 'sqlite://'})\n"
        "with app.app_context():\n"
        "    db.create_all()\n"
        "client = app.test_client()\n"
        "print(client.get('/').status_code, client.get('/api/notes').status_code)\n"
    )
    served = run(
        [sys.executable, "-c", smoke],
        env={**clean_environment(), "PYTHONPATH": str(target)},
        cwd=target,
    )
    assert served.stdout.split()[-2:] == ["200", "404"], served.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("My-App", "not a valid project name"),
        ("my-app", "(e.g. 'my_app')"),
        ("1app", "starting with a letter"),
        ("class", "is a Python keyword"),
        ("json", "would shadow it"),
        ("flaskstack", "would shadow it"),
        ("tests", "would shadow it"),
        ("pytest_cov", "is already installed"),
        ("a" * 51, "too long"),
    ],
)
def test_an_invalid_name_is_refused(tmp_path: Path, name: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["new", name, "--directory", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_a_directory_with_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["new", "notes_app", "--directory", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not empty (it holds keep.txt)" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_a_file_as_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    result = CliRunner().invoke(cli, ["new", "notes_app", "--directory", str(tmp_path / "taken")])
    assert result.exit_code == 1
    assert "exists and is not a directory" in result.output


def test_a_failed_migration_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The migration step runs the new project's `flask db`; give it a broken Flask.
    broken = tmp_path / "broken" / "flask"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('this Flask is broken')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken.parent))
    target = tmp_path / "out" / "notes_app"
    result = CliRunner().invoke(cli, ["new", "notes_app", "--directory", str(target)])
    assert result.exit_code == 1
    assert "failed while writing the first migration" in result.output
    assert "this Flask is broken" in result.output
    assert "then run flaskstack new again" in result.output
    assert list((tmp_path / "out").iterdir()) == []


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli, ["new", "--help"])
    assert result.exit_code == 0
    for option in ("--directory", "--api / --no-api", "--docker / --no-docker"):
        assert option in result.output
