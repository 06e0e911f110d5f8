"""flaskstack in an app that already exists never takes anything over silently.

Its endpoints never shadow the app's, the app's error handlers answer before
problem+json, HTTP Basic API clients need no CSRF token, the app's logging is
left as it is, and a second registration of one of its extensions is refused
with the line to remove.
"""

from __future__ import annotations

import base64
import io
import logging
import typing as t

import flask_caching
import pytest
from flask import Blueprint, Flask, abort, jsonify, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

import flaskstack
from flaskstack.checks import run_checks

if t.TYPE_CHECKING:
    from conftest import AppFactory
    from werkzeug.wrappers import Response

PROBLEM = "application/problem+json"
BASIC = {"Authorization": "Basic " + base64.b64encode(b"alice:wonderland").decode()}

# -- 1. flaskstack's endpoints never shadow the app's ---------------------------------------

ENDPOINTS = [
    ("/healthz", "FLASKSTACK_HEALTH_PATH", "health_path"),
    ("/readyz", "FLASKSTACK_READY_PATH", "ready_path"),
    ("/csrf-token", "FLASKSTACK_CSRF_TOKEN_PATH", "csrf_token_path"),
    ("/api/openapi.json", "FLASKSTACK_API_OPENAPI_PATH", "api_openapi_path"),
]


def _serve_own(path: str) -> t.Callable[[Flask], None]:
    def before(app: Flask) -> None:
        app.add_url_rule(path, endpoint="own_view", view_func=lambda: "the app's own")

    return before


@pytest.mark.parametrize(("path", "setting", "option"), ENDPOINTS)
def test_init_app_refuses_to_shadow_an_existing_rule_naming_the_setting(
    make_app: AppFactory, path: str, setting: str, option: str
) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(before=_serve_own(path))
    message = str(caught.value)
    assert setting in message
    assert "'own_view'" in message
    assert repr(path) in message


@pytest.mark.parametrize(("path", "setting", "option"), ENDPOINTS)
def test_moving_flaskstacks_endpoint_lets_the_app_keep_its_url(
    make_app: AppFactory, path: str, setting: str, option: str
) -> None:
    moved = "/-/moved.json" if option != "api_openapi_path" else "/-/schema.json"
    app = make_app(before=_serve_own(path), **{option: moved})
    client = app.test_client()
    assert client.get(path).get_data(as_text=True) == "the app's own"
    moved_url = "/api" + moved if option == "api_openapi_path" else moved
    assert client.get(moved_url).status_code == 200


@pytest.mark.parametrize(("path", "setting", "option"), ENDPOINTS)
def test_none_turns_each_endpoint_off(
    make_app: AppFactory, path: str, setting: str, option: str
) -> None:
    assert make_app().test_client().get(path).status_code == 200
    client = make_app(**{option: None}).test_client()
    assert client.get(path).status_code == 404
    # ...and then the app may serve the URL itself.
    assert make_app(before=_serve_own(path), **{option: None}).test_client().get(path).get_data(
        as_text=True
    ) == ("the app's own")


def test_a_clashing_rule_added_after_init_app_is_refused_at_the_first_request(
    make_app: AppFactory,
) -> None:
    app = make_app({"TESTING": True})
    app.add_url_rule("/csrf-token", endpoint="own_token", view_func=lambda: "the app's own")
    with pytest.raises(flaskstack.ConfigError, match="FLASKSTACK_CSRF_TOKEN_PATH"):
        app.test_client().get("/")


# -- 2. the app's error handlers keep precedence over problem+json --------------------------


def _api_routes(app: Flask) -> None:
    @app.get("/api/teapot")
    def teapot() -> str:
        abort(418)


def test_an_exception_handler_registered_before_init_app_answers_api_errors(
    make_app: AppFactory,
) -> None:
    def before(app: Flask) -> None:
        _api_routes(app)

        @app.errorhandler(Exception)
        def everything(error: Exception) -> tuple[Response, int]:
            code = error.code if isinstance(error, HTTPException) else 500
            return jsonify(error="the app's own", code=code), code or 500

    client = make_app(before=before).test_client()
    for path, status in [("/api/no/such/thing", 404), ("/api/teapot", 418)]:
        response = client.get(path)
        assert response.status_code == status
        assert response.mimetype == "application/json"
        assert response.get_json() == {"error": "the app's own", "code": status}


def test_an_http_exception_handler_registered_before_init_app_is_kept(
    make_app: AppFactory,
) -> None:
    def before(app: Flask) -> None:
        _api_routes(app)

        @app.errorhandler(HTTPException)
        def http_errors(error: HTTPException) -> tuple[str, int]:
            return f"the app's own {error.code}", error.code or 500

    client = make_app(before=before).test_client()
    response = client.get("/api/teapot")
    assert (response.status_code, response.get_data(as_text=True)) == (418, "the app's own 418")


def test_a_blueprints_own_json_error_handler_answers_for_its_routes_under_the_api(
    make_app: AppFactory,
) -> None:
    app = make_app()
    bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

    @bp.post("/items")
    def create_item() -> tuple[str, int]:
        return "created", 201

    @bp.get("/items/<int:item_id>")
    def get_item(item_id: int) -> str:
        abort(404)

    @bp.errorhandler(HTTPException)
    def api_error(error: HTTPException) -> tuple[Response, int]:
        return jsonify(error=error.name, message=error.description), error.code or 500

    app.register_blueprint(bp)
    client = app.test_client()
    client.get("/csrf-token")  # a browser session: the POST below needs a CSRF token

    missing = client.get("/api/v1/items/7")
    assert missing.status_code == 404
    assert missing.mimetype == "application/json"
    assert missing.get_json()["error"] == "Not Found"

    refused = client.post("/api/v1/items")
    assert refused.status_code == 400
    assert refused.mimetype == "application/json"
    assert refused.get_json() == {"error": "Bad Request", "message": "The CSRF token is missing."}


def test_the_apps_csrf_error_handler_registered_before_init_app_is_kept(
    make_app: AppFactory,
) -> None:
    def before(app: Flask) -> None:
        @app.post("/comment")
        def comment() -> str:
            return "posted"

        @app.errorhandler(CSRFError)
        def csrf_failed(error: CSRFError) -> tuple[str, int]:
            return "please reload the page", 400

    client = make_app(before=before).test_client()
    client.get("/csrf-token")
    response = client.post("/comment")
    assert (response.status_code, response.get_data(as_text=True)) == (
        400,
        "please reload the page",
    )


def test_problem_documents_can_be_turned_off(make_app: AppFactory) -> None:
    app = make_app(api_problems=False, before=_api_routes)
    client = app.test_client()
    for path, status in [("/api/no/such/thing", 404), ("/api/teapot", 418)]:
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == status
        assert response.mimetype == "text/html"  # Flask's own page, no problem document
    # On by default.
    assert make_app(before=_api_routes).test_client().get("/api/teapot").mimetype == PROBLEM


# -- 3. CSRF and HTTP Basic --------------------------------------------------------------


def _basic_api(app: Flask) -> None:
    @app.post("/api/tokens")
    def issue_token() -> tuple[Response, int]:
        # The app's own HTTP Basic check (as Flask-HTTPAuth would do it).
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != ("alice", "wonderland"):
            abort(401)
        return jsonify(token="t0k3n"), 201


def test_a_basic_authenticated_post_without_session_cookie_needs_no_csrf_token(
    make_app: AppFactory,
) -> None:
    client = make_app(before=_basic_api).test_client()
    response = client.post("/api/tokens", headers=BASIC)
    assert response.status_code == 201
    assert response.get_json() == {"token": "t0k3n"}


def test_a_basic_post_riding_a_browser_session_still_needs_a_csrf_token(
    make_app: AppFactory,
) -> None:
    app = make_app(before=_basic_api)
    client = app.test_client()
    client.get("/csrf-token")  # the browser now holds a session cookie
    assert client.get_cookie(app.config["SESSION_COOKIE_NAME"]) is not None
    response = client.post("/api/tokens", headers=BASIC)
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.get_data(as_text=True)


def test_a_basic_post_a_browser_sends_from_another_site_still_needs_a_csrf_token(
    make_app: AppFactory,
) -> None:
    client = make_app(before=_basic_api).test_client()
    for header in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = client.post("/api/tokens", headers={**BASIC, **header})
        assert response.status_code == 400


# -- 4. logging is left alone in an app that configured its own ------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_an_app_logger_the_app_configured_is_left_alone(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    collect = _Collect()

    def before(app: Flask) -> None:
        app.logger.addHandler(collect)
        app.logger.setLevel(logging.WARNING)
        request.addfinalizer(lambda: app.logger.removeHandler(collect))

    app = make_app(name="takeover_own_logger", before=before)
    assert app.logger.handlers == [collect]
    assert app.logger.level == logging.WARNING
    with app.test_request_context("/"):
        app.logger.info("not shown: the app chose WARNING")
        app.logger.warning("shown by the app's handler")
    assert collect.messages == ["shown by the app's handler"]
    assert "shown by the app's handler" not in capsys.readouterr().err
    findings = {finding.id: finding for finding in run_checks(app)}
    assert "FLASKSTACK_LOG_FORMAT" in (findings["logging.I001"].hint or "")


def test_a_root_logger_configured_by_the_app_leaves_app_logger_alone(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    root_handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(root_handler)  # what logging.basicConfig(stream=...) does
    try:
        app = make_app(name="takeover_root_logger")
        assert app.logger.level == logging.NOTSET
        with app.test_request_context("/"):
            app.logger.warning("through the root logger")
    finally:
        root.removeHandler(root_handler)
    assert stream.getvalue() == "through the root logger\n"
    assert "through the root logger" not in capsys.readouterr().err


def test_an_explicit_log_format_still_applies_over_the_apps_logging(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    collect = _Collect()

    def before(app: Flask) -> None:
        app.logger.addHandler(collect)
        request.addfinalizer(lambda: app.logger.removeHandler(collect))

    app = make_app(name="takeover_explicit_format", before=before, log_format="json")
    with app.test_request_context("/"):
        app.logger.warning("written by flaskstack")
    assert '"message": "written by flaskstack"' in capsys.readouterr().err
    assert "logging.I001" not in {finding.id for finding in run_checks(app)}


# -- 5. flaskstack's extensions are registered once -------------------------------------------


@pytest.mark.parametrize(
    ("register", "line"),
    [
        (lambda app: flaskstack.cache.init_app(app), "cache.init_app(app)"),
        (lambda app: flaskstack.csrf.init_app(app), "csrf.init_app(app)"),
    ],
)
def test_registering_flaskstacks_extension_again_after_init_app_names_the_line(
    make_app: AppFactory, register: t.Callable[[Flask], None], line: str
) -> None:
    app = make_app()
    with pytest.raises(flaskstack.AlreadyInitialisedError) as caught:
        register(app)
    assert f"Remove {line}" in str(caught.value)


@pytest.mark.parametrize(
    ("register", "line"),
    [
        (lambda app: flask_caching.Cache().init_app(app), "cache.init_app(app)"),
        (lambda app: CSRFProtect(app), "csrf.init_app(app)"),
    ],
)
def test_another_instance_registered_after_init_app_is_refused_at_the_first_request(
    make_app: AppFactory, register: t.Callable[[Flask], None], line: str
) -> None:
    app = make_app({"TESTING": True})
    register(app)
    with pytest.raises(flaskstack.AlreadyInitialisedError) as caught:
        app.test_client().get("/healthz")
    assert f"Remove {line}" in str(caught.value)
