"""Production refuses unsafe settings; development keeps one generated key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import typing as t

import pytest
from conftest import PRODUCTION_MAIL

import flaskstack

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import AppFactory

STRONG_SECRET = "8H1bq0oWcT7c8f6mQhZ2pXv4rS9yL3dK5nJ0aE2gU7w"
GOOD_PRODUCTION = {
    **PRODUCTION_MAIL,
    "SECRET_KEY": STRONG_SECRET,
    "FLASKSTACK_REDIS_URL": "redis://127.0.0.1:6379/0",
    "SQLALCHEMY_DATABASE_URI": "postgresql://postgres@127.0.0.1:5432/postgres",
}


def problem_ids(error: flaskstack.ConfigError) -> dict[str, str]:
    return {p.key: p.id for p in error.problems}


def test_production_without_secret_redis_and_mail_names_each(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASKSTACK_PROFILE", "production")
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app()
    assert problem_ids(caught.value) == {
        "SECRET_KEY": "config.E002",
        "FLASKSTACK_REDIS_URL": "config.E006",
        "MAIL_URL": "mail.E001",  # the password reset and confirmation links need mail
    }
    message = str(caught.value)
    assert "SECRET_KEY" in message
    assert "REDIS_URL" in message
    assert "MAIL_URL" in message
    assert "secrets.token_urlsafe" in message  # says how to fix it


def test_production_refuses_the_sqlite_default(make_app: AppFactory) -> None:
    config = {k: v for k, v in GOOD_PRODUCTION.items() if k != "SQLALCHEMY_DATABASE_URI"}
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(config, profile="production")
    assert problem_ids(caught.value) == {"SQLALCHEMY_DATABASE_URI": "config.E007"}


def test_good_production_config_starts_with_secure_cookies(make_app: AppFactory) -> None:
    app = make_app(GOOD_PRODUCTION, profile="production")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["FLASKSTACK_HSTS_SECONDS"] == 31536000
    assert app.config["DEBUG"] is False
    assert not os.path.exists(os.path.join(app.instance_path, "secret_key"))


@pytest.mark.parametrize(
    ("override", "key", "check_id"),
    [
        ({"SECRET_KEY": "too-short-key"}, "SECRET_KEY", "config.E003"),
        ({"SECRET_KEY": "changeme"}, "SECRET_KEY", "config.E003"),
        ({"DEBUG": True}, "DEBUG", "config.E004"),
        ({"TESTING": "1"}, "TESTING", "config.E005"),
        ({"SESSION_COOKIE_SECURE": False}, "SESSION_COOKIE_SECURE", "config.E008"),
        ({"SESSION_COOKIE_HTTPONLY": "off"}, "SESSION_COOKIE_HTTPONLY", "config.E008"),
        ({"SESSION_COOKIE_SAMESITE": None}, "SESSION_COOKIE_SAMESITE", "config.E008"),
        ({"REMEMBER_COOKIE_SECURE": False}, "REMEMBER_COOKIE_SECURE", "config.E008"),
        ({"REMEMBER_COOKIE_SAMESITE": "none"}, "REMEMBER_COOKIE_SAMESITE", "config.E008"),
    ],
)
def test_production_refuses_unsafe_settings(
    make_app: AppFactory, override: dict[str, object], key: str, check_id: str
) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app({**GOOD_PRODUCTION, **override}, profile="production")
    assert problem_ids(caught.value) == {key: check_id}
    assert "the config argument of init_app" in str(caught.value)


def test_debug_from_flask_debug_is_refused(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_DEBUG", "1")
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(GOOD_PRODUCTION, profile="production")
    assert problem_ids(caught.value) == {"DEBUG": "config.E004"}
    assert "FLASK_DEBUG" in str(caught.value)


def test_development_generates_one_key_and_keeps_it(tmp_path: Path) -> None:
    from flask import Flask

    instance = tmp_path / "instance"
    first = Flask("devapp", instance_path=str(instance))
    flaskstack.init_app(first)
    key = first.config["SECRET_KEY"]
    assert len(key) >= 48
    key_file = instance / "secret_key"
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    second = Flask("devapp", instance_path=str(instance))
    flaskstack.init_app(second)
    assert second.config["SECRET_KEY"] == key
    assert flaskstack.get_state(second).resolution.entries["SECRET_KEY"].source == "generated"


def test_workers_starting_together_share_one_key(tmp_path: Path) -> None:
    """Eight processes start at once on an empty instance folder: one key for all."""
    instance = tmp_path / "instance"
    script = textwrap.dedent(
        f"""
        import os, sys
        for name in list(os.environ):
            if name.startswith(("FLASK", "SECRET_KEY", "DATABASE_URL", "REDIS_URL")):
                del os.environ[name]
        from flask import Flask
        import flaskstack
        app = Flask("worker", instance_path={str(instance)!r})
        flaskstack.init_app(app)
        print(app.config["SECRET_KEY"])
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    keys = set()
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        keys.add(out.strip())
    assert len(keys) == 1
    assert (instance / "secret_key").read_text().strip() == keys.pop()


def test_unwritable_instance_folder_is_a_clear_error(tmp_path: Path) -> None:
    from flask import Flask

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    app = Flask("devapp", instance_path=str(blocker / "instance"))
    with pytest.raises(flaskstack.ConfigError) as caught:
        flaskstack.init_app(app, {"SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:"})
    (problem,) = caught.value.problems
    assert problem.id == "config.E009"
    assert "set the SECRET_KEY environment variable" in problem.fix


def test_development_warns_about_a_weak_explicit_key(make_app: AppFactory) -> None:
    with pytest.warns(flaskstack.ConfigWarning, match=r"config\.E003.*SECRET_KEY"):
        app = make_app({"SECRET_KEY": "dev"})
    assert app.config["SECRET_KEY"] == "dev"


def test_testing_profile_accepts_a_dummy_key_silently(make_app: AppFactory) -> None:
    # filterwarnings=error: a warning here would fail the test.
    app = make_app({"SECRET_KEY": "test"}, profile="testing")
    assert app.config["SECRET_KEY"] == "test"
