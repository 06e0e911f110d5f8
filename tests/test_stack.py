"""init_app: one registration per app, state in app.extensions, nothing shared."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

import flaskstack
from flaskstack.stack import Stack

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import AppFactory


def test_state_lives_in_app_extensions(make_app: AppFactory) -> None:
    app = make_app(profile="testing")
    state = app.extensions["flaskstack"]
    assert state is flaskstack.get_state(app)
    assert state.profile == "testing"
    assert isinstance(state, flaskstack.StackState)
    assert "sqlalchemy" in app.extensions
    assert "migrate" in app.extensions


def test_second_init_app_is_refused(make_app: AppFactory) -> None:
    app = make_app()
    with pytest.raises(flaskstack.AlreadyInitialisedError, match="already called for app"):
        flaskstack.init_app(app)
    assert isinstance(flaskstack.AlreadyInitialisedError("x"), RuntimeError)


def test_failed_init_leaves_the_app_untouched(tmp_path: Path) -> None:
    app = Flask("broken", instance_path=str(tmp_path / "instance"))
    before = dict(app.config)
    with pytest.raises(flaskstack.ConfigError):
        flaskstack.init_app(app, {"MAX_CONTENT_LENGTH": "lots", "MY_KEY": 1})
    assert dict(app.config) == before
    assert app.extensions == {}
    assert next(iter(app.url_map.iter_rules())).endpoint == "static"
    # Once the config is fixed, the same app can still be set up.
    flaskstack.init_app(app, {"MAX_CONTENT_LENGTH": 1000})
    assert app.config["MAX_CONTENT_LENGTH"] == 1000


def test_get_state_on_a_plain_app_says_what_to_do() -> None:
    with pytest.raises(LookupError, match=r"call flaskstack\.init_app\(app\)"):
        flaskstack.get_state(Flask("plain"))


def test_stack_instance_serves_several_apps(tmp_path: Path) -> None:
    stack = Stack()
    first = Flask("first", instance_path=str(tmp_path / "a"))
    second = Flask("second", instance_path=str(tmp_path / "b"))
    stack.init_app(first, profile="testing")
    Stack(second, {"FLASKSTACK_READY_PATH": "/ready"})
    assert first.config["TESTING"] is True
    assert second.config["TESTING"] is False
    assert first.config["SECRET_KEY"] != second.config["SECRET_KEY"]
    assert first.test_client().get("/readyz").status_code == 200
    assert second.test_client().get("/readyz").status_code == 404
    assert second.test_client().get("/ready").status_code == 200


def test_public_names_match_all() -> None:
    # "@py_builtins"/"@pytest_ar" appear when pytest rewrites the package's asserts.
    exported = {n for n in dir(flaskstack) if not n.startswith(("_", "@"))} - {"annotations"}
    modules = {"cli", "checks", "config", "database", "errors", "health", "migrations"}
    modules |= {"auth", "caching", "forms", "headers", "problems", "redis", "security"}
    modules |= {"logs", "rest", "scaffold", "sessions", "stack", "testing", "throttle", "urls"}
    modules |= {"limits", "mail", "jobs", "gunicorn", "tracing", "admin", "metrics"}
    assert set(flaskstack.__all__) - {"__version__"} == exported - modules
    for name in flaskstack.__all__:
        assert getattr(flaskstack, name) is not None


def test_a_rule_the_app_adds_after_init_app_on_flaskstacks_url_is_refused(
    make_app: AppFactory,
) -> None:
    app = make_app(profile="testing")

    @app.route("/healthz")
    def own_health() -> str:
        return "the app's own"

    client = app.test_client()
    with pytest.raises(flaskstack.ConfigError) as caught:
        client.get("/")
    message = str(caught.value)
    assert "FLASKSTACK_HEALTH_PATH" in message
    assert "'own_health'" in message
    # Refused again on the next request, not only once.
    with pytest.raises(flaskstack.ConfigError):
        client.get("/")


def test_moving_flaskstacks_endpoint_lets_the_app_keep_its_url(make_app: AppFactory) -> None:
    app = make_app(profile="testing", health_path="/-/healthz")

    @app.route("/healthz")
    def own_health() -> str:
        return "the app's own"

    client = app.test_client()
    assert client.get("/healthz").get_data(as_text=True) == "the app's own"
    assert client.get("/-/healthz").status_code == 200


def test_stack_check_reports_a_rule_added_on_flaskstacks_url(make_app: AppFactory) -> None:
    from flaskstack.checks import run_checks

    app = make_app(profile="testing")

    @app.route("/csrf-token")
    def own_token() -> str:
        return "the app's own"

    findings = [f for f in run_checks(app, tags=["urls"]) if f.id == "urls.E001"]
    assert len(findings) == 1
    assert "FLASKSTACK_CSRF_TOKEN_PATH" in findings[0].msg
    assert "'own_token'" in findings[0].msg
