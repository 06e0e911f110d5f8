"""The settings table and where each value comes from."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

import flaskstack
from flaskstack import config as settings
from flaskstack.config import SETTINGS, _mask

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import AppFactory

LONG_SECRET = "k" * 20 + "Q3v9-rT2xLw8pZ0aYb7cN1mD4eF6gH5j"


def entry(app: Flask, key: str) -> settings.Entry:
    return flaskstack.get_state(app).resolution.entries[key]


def test_defaults_reach_app_config(make_app: AppFactory) -> None:
    app = make_app()
    assert app.config["FLASKSTACK_PROFILE"] == "development"
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024
    assert app.config["FLASKSTACK_NAMESPACE"] == "testapp"
    assert app.config["FLASKSTACK_REDIS_URL"] is None
    # Every row of the table is in effect in app.config.
    for setting in SETTINGS:
        assert setting.key in app.config
        assert entry(app, setting.key).value == app.config[setting.key]


def test_each_layer_overrides_the_one_below(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # default < profile < instance file < environment < app's code < init_app argument
    key = "FLASKSTACK_READY_TIMEOUT"
    assert make_app().config[key] == 2.0  # default

    def instance_file(app: Flask) -> None:
        (tmp_path / "shared_instance").mkdir(exist_ok=True)
        (tmp_path / "shared_instance" / "config.py").write_text(f"{key} = 4\n")
        app.instance_path = str(tmp_path / "shared_instance")

    app = make_app(before=instance_file)
    assert app.config[key] == 4.0
    assert entry(app, key).source == "instance"

    monkeypatch.setenv(key, "5")
    app = make_app(before=instance_file)
    assert app.config[key] == 5.0
    assert entry(app, key).origin == f"environment variable {key}"

    def app_sets(app: Flask) -> None:
        instance_file(app)
        app.config[key] = 3

    app = make_app(before=app_sets)
    assert app.config[key] == 3.0
    assert entry(app, key).source == "app"

    app = make_app({key: 6}, before=app_sets)
    assert app.config[key] == 6.0
    assert entry(app, key).source == "argument"


def test_environment_fills_only_what_the_code_left_unset(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pa55@127.0.0.1:1/production")
    monkeypatch.setenv("FLASKSTACK_READY_TIMEOUT", "7")

    def test_config(app: Flask) -> None:
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"

    app = make_app(before=test_config)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"
    assert entry(app, "SQLALCHEMY_DATABASE_URI").origin == "app.config before init_app"
    assert app.config["FLASKSTACK_READY_TIMEOUT"] == 7.0  # the code left it unset
    (ignored,) = flaskstack.get_state(app).resolution.overridden
    assert ignored.key == "SQLALCHEMY_DATABASE_URI"
    assert ignored.origin == "environment variable DATABASE_URL"
    assert ignored.winner == "app.config before init_app"
    assert ignored.shown == "'postgresql://app:***@127.0.0.1:1/production'"


def test_keys_outside_the_table_follow_the_same_order(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_MAIL_SERVER", '"smtp.from-env.example"')
    monkeypatch.setenv("FLASK_MAIL_PORT", "2525")

    def app_sets(app: Flask) -> None:
        app.config["MAIL_SERVER"] = "localhost"

    app = make_app(before=app_sets)
    assert app.config["MAIL_SERVER"] == "localhost"
    assert app.config["MAIL_PORT"] == 2525
    (ignored,) = flaskstack.get_state(app).resolution.overridden
    assert (ignored.key, ignored.origin) == (
        "MAIL_SERVER",
        "environment variable FLASK_MAIL_SERVER",
    )
    assert ignored.shown is None  # values outside the table are never shown

    app = make_app({"MAIL_SERVER": "smtp.test"}, before=app_sets)
    assert app.config["MAIL_SERVER"] == "smtp.test"


def test_a_value_the_app_set_beats_flaskstacks_default(make_app: AppFactory) -> None:
    def app_sets(app: Flask) -> None:
        app.config["MAX_CONTENT_LENGTH"] = 100 * 1024 * 1024
        app.config["WTF_CSRF_TIME_LIMIT"] = 3600  # Flask-WTF's own default, chosen explicitly

    app = make_app(before=app_sets)
    assert app.config["MAX_CONTENT_LENGTH"] == 100 * 1024 * 1024
    assert app.config["WTF_CSRF_TIME_LIMIT"] == 3600
    assert entry(app, "MAX_CONTENT_LENGTH").source == "app"
    assert entry(app, "WTF_CSRF_TIME_LIMIT").source == "app"

    untouched = make_app()
    assert untouched.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024
    assert untouched.config["WTF_CSRF_TIME_LIMIT"] is None
    assert entry(untouched, "MAX_CONTENT_LENGTH").replaces == "Flask's default: None"
    assert entry(untouched, "WTF_CSRF_TIME_LIMIT").replaces == "Flask-WTF's default: 3600"
    assert entry(untouched, "SESSION_COOKIE_SAMESITE").replaces == "Flask's default: None"
    assert entry(untouched, "FLASKSTACK_READY_TIMEOUT").replaces is None  # flaskstack's own
    assert entry(untouched, "SESSION_COOKIE_HTTPONLY").replaces is None  # the same as Flask's


def test_profile_defaults_sit_between_defaults_and_app(make_app: AppFactory) -> None:
    app = make_app(profile="testing")
    assert app.config["TESTING"] is True
    assert entry(app, "TESTING").source == "profile"
    assert make_app().config["TESTING"] is False

    def app_sets(app: Flask) -> None:
        app.config["FLASKSTACK_PROFILE"] = "testing"
        app.config["MAX_CONTENT_LENGTH"] = 1024

    app = make_app(before=app_sets)
    assert app.config["TESTING"] is True
    assert app.config["MAX_CONTENT_LENGTH"] == 1024


def test_twelve_factor_environment_names(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", LONG_SECRET)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///:memory:")
    app = make_app()
    assert app.config["SECRET_KEY"] == LONG_SECRET
    assert app.config["FLASKSTACK_REDIS_URL"] == "redis://127.0.0.1:6379/3"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///:memory:"
    assert entry(app, "SQLALCHEMY_DATABASE_URI").origin == "environment variable DATABASE_URL"


def test_flask_prefixed_environment(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_MAX_CONTENT_LENGTH", "2048")
    monkeypatch.setenv("FLASK_MY_OWN_SETTING", '{"a": 1}')
    app = make_app()
    assert app.config["MAX_CONTENT_LENGTH"] == 2048
    assert app.config["MY_OWN_SETTING"] == {"a": 1}
    assert (
        entry(app, "MAX_CONTENT_LENGTH").origin == "environment variable FLASK_MAX_CONTENT_LENGTH"
    )


def test_named_variable_beats_flask_prefixed(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("SECRET_KEY", LONG_SECRET)
    assert make_app().config["SECRET_KEY"] == LONG_SECRET


def test_keys_outside_the_table_are_applied(make_app: AppFactory) -> None:
    app = make_app({"MY_FEATURE_FLAG": True})
    assert app.config["MY_FEATURE_FLAG"] is True


def test_environment_strings_are_parsed(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASKSTACK_SILENCED_CHECKS", "database.W001, migrations.W001")
    monkeypatch.setenv("FLASKSTACK_HEALTH_PATH", "")
    app = make_app()
    assert app.config["FLASKSTACK_SILENCED_CHECKS"] == ["database.W001", "migrations.W001"]
    assert app.config["FLASKSTACK_HEALTH_PATH"] is None


def test_every_problem_is_reported_at_once(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASKSTACK_READY_TIMEOUT", "soon")
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(
            {
                "FLASKSTACK_REDIS_URL": "http://127.0.0.1:6379",
                "MAX_CONTENT_LENGTH": -1,
                "FLASKSTACK_NAMESPACE": "has spaces",
            }
        )
    error = caught.value
    keys = sorted(p.key for p in error.problems)
    assert keys == [
        "FLASKSTACK_NAMESPACE",
        "FLASKSTACK_READY_TIMEOUT",
        "FLASKSTACK_REDIS_URL",
        "MAX_CONTENT_LENGTH",
    ]
    assert all(p.id == "config.E001" for p in error.problems)
    message = str(error)
    assert "4 problems" in message
    assert "environment variable FLASKSTACK_READY_TIMEOUT" in message
    assert "'soon'" in message
    assert "redis+sentinel://" in message  # names the accepted forms
    assert isinstance(error, ValueError)


def test_invalid_profile_is_reported(make_app: AppFactory) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(profile="prod")
    (problem,) = caught.value.problems
    assert problem.key == "FLASKSTACK_PROFILE"
    assert "'development', 'testing', 'production'" in problem.expected
    assert "profile= option" in problem.fix


def test_unknown_option_is_a_type_error(make_app: AppFactory) -> None:
    with pytest.raises(TypeError, match=r"unknown option.*'profil'.*profile"):
        make_app(profil="testing")


def test_unknown_flaskstack_key_warns_with_suggestion(make_app: AppFactory) -> None:
    with pytest.warns(flaskstack.ConfigWarning, match="did you mean 'FLASKSTACK_READY_TIMEOUT'"):
        make_app({"FLASKSTACK_READY_TIMOUT": 3})


def test_unknown_flaskstack_environment_variable_warns_with_suggestion(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASKSTACK_REDIS_TIMOUT", "1")
    with pytest.warns(flaskstack.ConfigWarning) as caught:
        app = make_app()
    (message,) = [str(w.message) for w in caught]
    assert "'FLASKSTACK_REDIS_TIMOUT'" in message
    assert "did you mean 'FLASKSTACK_REDIS_TIMEOUT'?" in message
    assert "environment variable FLASKSTACK_REDIS_TIMOUT" in message
    assert app.config["FLASKSTACK_REDIS_TIMEOUT"] == 0.5
    (warning,) = flaskstack.get_state(app).resolution.warnings
    assert warning.id == "config.W001"


def test_tooling_and_setting_variables_are_not_unknown(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read by flaskstack's own test suite, not by init_app: no warning (warnings are errors here).
    monkeypatch.setenv("FLASKSTACK_TEST_REDIS", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("FLASKSTACK_SOAK_SECONDS", "1")
    monkeypatch.setenv("FLASKSTACK_REDIS_URL", "redis://127.0.0.1:6379/0")  # a setting's name
    app = make_app()
    assert flaskstack.get_state(app).resolution.warnings == []


def test_secrets_are_masked() -> None:
    assert "hunter2" not in _mask("SECRET_KEY", "hunter2")
    assert _mask("SECRET_KEY", "hunter2") == "<secret, 7 characters>"
    shown = _mask("SQLALCHEMY_DATABASE_URI", "postgresql://app:hunter2@db:5432/app")
    assert shown == "'postgresql://app:***@db:5432/app'"
    assert _mask("FLASKSTACK_REDIS_URL", "redis://127.0.0.1:6379/0") == "'redis://127.0.0.1:6379/0'"
    assert _mask("MAX_CONTENT_LENGTH", 10) == "10"


def test_secret_never_appears_in_config_error(make_app: AppFactory) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(
            {
                "SECRET_KEY": "hunter2",
                "SQLALCHEMY_DATABASE_URI": "postgresql://app:pa55word@127.0.0.1/x",
            },
            profile="production",
        )
    assert "hunter2" not in str(caught.value)
    assert "pa55word" not in str(caught.value)
    assert "<secret, 7 characters>" in str(caught.value)


def test_settings_table_is_well_formed() -> None:
    keys = [s.key for s in SETTINGS]
    assert len(keys) == len(set(keys))
    for setting in SETTINGS:
        assert setting.doc
        assert setting.expected
        assert setting.type
        if callable(setting.default):
            assert setting.default_doc, setting.key
        assert setting.key.startswith("FLASKSTACK_") != setting.native
        for profile in setting.profiles:
            assert profile in settings.PROFILES


def test_resolution_does_not_write_to_the_app(tmp_path: Path) -> None:
    app = Flask("untouched", instance_path=str(tmp_path / "instance"))
    before = dict(app.config)
    resolution = settings._resolve(app, {"MAX_CONTENT_LENGTH": 10})
    assert resolution["MAX_CONTENT_LENGTH"] == 10
    assert dict(app.config) == before
    assert not (tmp_path / "instance").exists()


def test_unknown_database_scheme_is_a_config_error(make_app: AppFactory) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app({"SQLALCHEMY_DATABASE_URI": "mongodb://127.0.0.1/app"})
    (problem,) = caught.value.problems
    assert problem.key == "SQLALCHEMY_DATABASE_URI"
    assert "mongodb" in str(caught.value)
