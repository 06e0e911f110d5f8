"""``flask stack check`` and ``flask stack config`` as an operator runs them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import typing as t

import pytest
from click.testing import CliRunner, Result
from conftest import dispose_engines
from flask import Flask
from flask.cli import ScriptInfo
from flask.cli import cli as flask_cli
from loopback import free_port
from smtp_server import SMTPServer

import flaskstack
from flaskstack import checks

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import AppFactory

STRONG_SECRET = "8H1bq0oWcT7c8f6mQhZ2pXv4rS9yL3dK5nJ0aE2gU7w"


def run(factory: t.Callable[[], Flask], *args: str) -> Result:
    """Invoke ``flask <args>`` the way the ``flask`` command does, with ``factory`` as the app."""
    return CliRunner().invoke(flask_cli, list(args), obj=ScriptInfo(create_app=factory))


_created: list[Flask] = []


@pytest.fixture(autouse=True)
def _dispose_created_apps() -> t.Iterator[None]:
    yield
    while _created:
        dispose_engines(_created.pop())


def factory_for(
    tmp_path: Path, config: dict[str, t.Any] | None = None, **options: t.Any
) -> t.Callable[[], Flask]:
    def create_app() -> Flask:
        app = Flask("cliapp", instance_path=str(tmp_path / "instance"))
        _created.append(app)
        flaskstack.init_app(app, config, **options)
        return app

    return create_app


def test_check_on_a_development_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(factory_for(tmp_path), "stack", "check")
    assert result.exit_code == 0, result.output
    assert "WARNINGS:" in result.output
    assert "migrations.W001" in result.output  # no repository yet
    assert "HINT: Create one with `flask db init`" in result.output
    assert "System check identified 1 issue(s) (0 silenced)." in result.output


def test_fail_level_and_silencing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(factory_for(tmp_path), "stack", "check", "--fail-level", "warning").exit_code == 1
    silenced = factory_for(tmp_path, {"FLASKSTACK_SILENCED_CHECKS": ["migrations.W001"]})
    result = run(silenced, "stack", "check", "--fail-level", "WARNING")
    assert result.exit_code == 0, result.output
    assert "no issues (1 silenced)" in result.output


def test_check_reports_a_redis_url_redis_py_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # init_app leaves the URL's query to redis-py, which reads it when it
    # builds the client; the check asks it without serving a request.
    monkeypatch.chdir(tmp_path)
    factory = factory_for(
        tmp_path, {"FLASKSTACK_REDIS_URL": "redis://127.0.0.1:6379/0?socket_timeout=soon"}
    )
    result = run(factory, "stack", "check", "--tag", "redis")
    assert result.exit_code == 1, result.output
    assert "config.E001" in result.output
    assert "Invalid value for 'socket_timeout' in connection URL." in result.output
    app = factory()
    with pytest.raises(flaskstack.ConfigError, match="socket_timeout"):
        flaskstack.get_state(app).redis.client  # noqa: B018  # building the client parses it


def test_tags_select_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(factory_for(tmp_path), "stack", "check", "--tag", "config", "--fail-level", "INFO")
    assert result.exit_code == 0, result.output
    assert "no issues" in result.output


def test_deploy_fails_on_an_unsafe_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(factory_for(tmp_path, {"DEBUG": True}), "stack", "check", "--deploy")
    assert result.exit_code == 1
    for check_id in ("config.E002", "config.E004", "config.E006", "config.E007", "config.E008"):
        assert check_id in result.output
    assert "database.W001" in result.output  # SQLite
    assert "ERRORS:" in result.output


def test_deploy_passes_on_a_good_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with SMTPServer() as smtp:
        config = {
            "SECRET_KEY": STRONG_SECRET,
            "FLASKSTACK_REDIS_URL": "redis://127.0.0.1:6379/0",
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "MAIL_URL": smtp.url(),
            "FLASKSTACK_MAIL_FROM": "app@example.com",
            "TRUSTED_HOSTS": ["app.example.com"],
        }
        factory = factory_for(tmp_path, config, profile="production")
        result = run(factory, "stack", "check", "--deploy")
    assert result.exit_code == 0, result.output
    assert "ERRORS" not in result.output


def test_unreachable_database_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    port = free_port()
    url = f"postgresql://postgres:s3cr3t@127.0.0.1:{port}/x"
    result = run(factory_for(tmp_path, {"SQLALCHEMY_DATABASE_URI": url}), "stack", "check")
    assert result.exit_code == 1
    assert "database.E001" in result.output
    assert "s3cr3t" not in result.output
    assert "postgresql+psycopg://postgres:***@127.0.0.1" in result.output


def test_broken_config_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLASKSTACK_PROFILE", "production")
    monkeypatch.setenv("FLASKSTACK_READY_TIMEOUT", "never")
    result = run(factory_for(tmp_path), "stack", "check", "--deploy")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    for check_id in ("config.E001", "config.E002", "config.E006", "config.E007"):
        assert check_id in result.output
    assert "environment variable FLASKSTACK_READY_TIMEOUT" in result.output


def test_app_that_fails_to_import_is_a_finding(tmp_path: Path) -> None:
    def factory() -> Flask:
        raise RuntimeError("the factory exploded")

    result = run(factory, "stack", "check")
    assert result.exit_code == 1
    assert "CRITICALS:" in result.output
    assert "stack.E001: The app could not be loaded: RuntimeError: the factory exploded" in (
        result.output
    )


def test_app_without_flaskstack(tmp_path: Path) -> None:
    result = run(lambda: Flask("plain"), "stack", "check")
    assert result.exit_code == 1
    assert "stack.E002" in result.output
    assert "flaskstack.init_app(app)" in result.output


def test_config_lists_every_setting_with_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", STRONG_SECRET)
    monkeypatch.setenv("DATABASE_URL", "postgres://app:pa55@127.0.0.1:1/db")
    result = run(factory_for(tmp_path, {"MAX_CONTENT_LENGTH": 99}), "stack", "config")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:] if line.strip()}
    assert set(lines) == {s.key for s in flaskstack.config.SETTINGS}
    assert STRONG_SECRET not in result.output
    assert "pa55" not in result.output
    assert "<secret, 43 characters>" in lines["SECRET_KEY"]
    assert lines["SECRET_KEY"].endswith("environment (environment variable SECRET_KEY)")
    assert "'postgresql+psycopg://app:***@127.0.0.1:1/db'" in lines["SQLALCHEMY_DATABASE_URI"]
    assert lines["MAX_CONTENT_LENGTH"].endswith("argument (the config argument of init_app)")
    assert lines["FLASKSTACK_READY_TIMEOUT"].endswith("default")
    assert result.output.startswith("profile: development")


def test_config_on_a_broken_config_shows_what_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASKSTACK_PROFILE", "production")
    result = run(factory_for(tmp_path), "stack", "config")
    assert result.exit_code == 1
    assert "profile: production" in result.output
    assert "config.E002" in result.output
    assert "Traceback" not in result.output


def test_every_reported_id_is_in_the_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(factory_for(tmp_path, {"DEBUG": True}), "stack", "check", "--deploy")
    reported = {
        line.split(":")[0].strip()
        for line in result.output.splitlines()
        if line.startswith("  ") and "." in line.split(":")[0]
    }
    assert reported
    assert reported <= set(checks.CATALOGUE)


def test_the_installed_flask_command_has_the_plugin(tmp_path: Path) -> None:
    """The real ``flask`` executable, on an app module whose config is broken."""
    (tmp_path / "brokenapp.py").write_text(
        textwrap.dedent(
            """
            from flask import Flask
            import flaskstack

            def create_app():
                app = Flask(__name__)
                flaskstack.init_app(app)
                return app
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK", "SECRET_KEY"))}
    env.update(FLASK_APP="brokenapp:create_app", FLASKSTACK_PROFILE="production")
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "stack", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "config.E002" in proc.stdout
    assert "config.E006" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr

    env["SECRET_KEY"] = STRONG_SECRET
    env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    # Without the account flows that mail links, production needs no mail server.
    env["FLASKSTACK_PASSWORD_RESET"] = "false"
    env["FLASKSTACK_EMAIL_CONFIRMATION"] = "off"
    env["DATABASE_URL"] = "sqlite:///" + str(tmp_path / "prod.sqlite3")
    env["FLASKSTACK_SILENCED_CHECKS"] = "migrations.W001"
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "stack", "check", "--deploy", "--fail-level", "ERROR"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "database.W001" in proc.stdout
    assert "(1 silenced)" in proc.stdout


def test_unreachable_redis_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    port = free_port()
    config = {"FLASKSTACK_REDIS_URL": f"redis://:pw123@127.0.0.1:{port}/0"}
    result = run(factory_for(tmp_path, config), "stack", "check", "--tag", "redis")
    assert result.exit_code == 1
    assert "redis.E001" in result.output
    assert "pw123" not in result.output
    good = factory_for(tmp_path, {"FLASKSTACK_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert run(good, "stack", "check", "--tag", "redis").exit_code == 0


def test_a_check_that_raises_is_a_finding_and_the_others_still_run(tmp_path: Path) -> None:
    """An app's own check that crashes (here: a driver it imports is missing)."""
    (tmp_path / "checkedapp.py").write_text(
        textwrap.dedent(
            """
            from flask import Flask

            import flaskstack
            from flaskstack import checks


            @checks.register("reports")
            def check_reporting_database(app, deploy):
                import MySQLdb  # the reporting replica's driver, not installed here

                return []


            def create_app():
                app = Flask(__name__)
                flaskstack.init_app(app)
                return app
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK", "SECRET_KEY"))}
    env.update(FLASK_APP="checkedapp:create_app", DATABASE_URL="sqlite:///checked.sqlite3")
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "stack", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        "stack.E003: The check 'check_reporting_database' raised ModuleNotFoundError: No module "
        "named 'MySQLdb' (the Python module 'MySQLdb' is not installed)."
    ) in proc.stdout
    assert "migrations.W001" in proc.stdout  # the other checks' findings are still there
    assert "System check identified 2 issue(s)" in proc.stdout


def test_a_database_url_whose_driver_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert importlib.util.find_spec("MySQLdb") is None  # no MySQL driver in this environment
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "mysql://app:s3cr3t@127.0.0.1/app")
    monkeypatch.setenv("FLASKSTACK_PROFIL", "testing")
    result = run(factory_for(tmp_path), "stack", "check")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "database.E003: 'SQLALCHEMY_DATABASE_URI' is 'mysql://app:***@127.0.0.1/app'" in (
        result.output
    )
    assert (
        "install a MySQL driver such as mysqlclient or PyMySQL, or name the driver in the URL: "
        "mysql+pymysql://; the URL comes from environment variable DATABASE_URL"
    ) in result.output
    # The other findings are still reported.
    assert "config.W001: 'FLASKSTACK_PROFIL'" in result.output
    assert "s3cr3t" not in result.output

    with pytest.raises(flaskstack.ConfigError) as caught:
        factory_for(tmp_path)()
    (problem,) = caught.value.problems
    assert (problem.id, problem.key) == ("database.E003", "SQLALCHEMY_DATABASE_URI")
    assert "mysqlclient or PyMySQL" in problem.fix


def test_unknown_flaskstack_environment_variable_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLASKSTACK_REDIS_TIMOUT", "1")
    with pytest.warns(flaskstack.ConfigWarning, match="FLASKSTACK_REDIS_TIMOUT"):
        result = run(factory_for(tmp_path), "stack", "check", "--tag", "config")
    assert result.exit_code == 0, result.output
    assert "config.W001: 'FLASKSTACK_REDIS_TIMOUT' is (unknown setting)" in result.output
    assert "did you mean 'FLASKSTACK_REDIS_TIMEOUT'? It comes from environment variable" in (
        result.output
    )


def test_user_commands_on_an_app_with_its_own_login_manager_say_why_not(
    make_app: AppFactory,
) -> None:
    import flask_login

    def own_login_manager(app: Flask) -> None:
        manager = flask_login.LoginManager(app)
        manager.user_loader(lambda user_id: None)

    app = make_app(profile="testing", before=own_login_manager)
    runner = app.test_cli_runner()
    for args in (
        ["stack", "create-user", "ann@example.com", "--password-stdin"],
        ["stack", "token", "list"],
        ["stack", "token", "revoke", "1"],
    ):
        result = runner.invoke(args=args, input="a long enough password\n")
        assert result.exit_code == 1, result.output
        assert "its own Flask-Login LoginManager" in result.output
        assert "FLASKSTACK_USER_MODEL" in result.output
        assert "Traceback" not in result.output


def test_stack_config_says_when_logging_was_left_to_the_app(make_app: AppFactory) -> None:
    import logging

    def own_logging(app: Flask) -> None:
        app.logger.addHandler(logging.NullHandler())

    app = make_app(profile="testing", before=own_logging)
    result = app.test_cli_runner().invoke(args=["stack", "config"])
    lines = result.output.splitlines()
    (row,) = [i for i, line in enumerate(lines) if line.startswith("FLASKSTACK_LOG_FORMAT ")]
    assert "not applied: the app configured its own logging" in lines[row + 1]
