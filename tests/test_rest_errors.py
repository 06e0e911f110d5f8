"""flaskstack's problem+json errors as a guest: the app's handlers, Flask's own paths.

Under the API prefix an error nobody else handles is a problem document;
but a handler the app registered for a status code (app-wide or on a
blueprint) or on a blueprint keeps precedence, the app's pages outside the
prefix are untouched, and an unhandled exception follows Flask's own path:
logged once with its traceback, ``got_request_exception`` sent once, and
propagated when Flask propagates (``TESTING``, ``DEBUG``,
``PROPAGATE_EXCEPTIONS``).
"""

from __future__ import annotations

import ast
import logging
import pathlib
import typing as t

import pytest
from flask import Blueprint, Flask, abort, got_request_exception, make_response
from werkzeug.exceptions import Forbidden, HTTPException, InternalServerError
from werkzeug.wrappers import Response

import flaskstack
from flaskstack import rest

if t.TYPE_CHECKING:
    from conftest import AppFactory
    from werkzeug.test import TestResponse

PROBLEM = "application/problem+json"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SECRET = "the database password is hunter2"


def assert_problem(response: TestResponse, status: int) -> dict[str, t.Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    body: dict[str, t.Any] = response.get_json(force=True)
    assert body["status"] == status
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def add_failing_routes(app: Flask) -> None:
    """``/api/boom`` and ``/boom`` raise; ``/api/locked`` and ``/locked`` answer 403."""

    @app.get("/api/boom")
    def api_boom() -> str:
        raise RuntimeError(SECRET)

    @app.get("/boom")
    def page_boom() -> str:
        raise RuntimeError(SECRET)

    @app.get("/api/locked")
    def api_locked() -> str:
        abort(403)

    @app.get("/locked")
    def page_locked() -> str:
        abort(403)


@pytest.fixture
def build(make_app: AppFactory, flaskstack_config: dict[str, t.Any]) -> t.Callable[..., Flask]:
    """``build(before=None, **config)``: an app with the failing routes; no propagation."""

    def factory(before: t.Callable[[Flask], None] | None = None, **config: t.Any) -> Flask:
        settings = {**flaskstack_config, "PROPAGATE_EXCEPTIONS": False, **config}
        app = make_app(settings, before=before)
        add_failing_routes(app)
        return app

    return factory


# -- the app's own handlers keep precedence ------------------------------------


@pytest.mark.parametrize("registered", ["before init_app", "after init_app"])
def test_an_app_wide_handler_for_a_status_code_wins_under_the_prefix_and_outside_it(
    build: t.Callable[..., Flask], registered: str
) -> None:
    def not_found(error: Exception) -> tuple[dict[str, str], int]:
        return {"ours": "not found"}, 404

    def register(app: Flask) -> None:
        app.register_error_handler(404, not_found)

    if registered == "before init_app":
        app = build(before=register)
    else:
        app = build()
        register(app)
    client = app.test_client()
    for path in ("/api/no/such/thing", "/no/such/page"):
        response = client.get(path, headers=BROWSER)
        assert response.status_code == 404
        assert response.get_json() == {"ours": "not found"}, path
    # A status the app has no handler for is still a problem document.
    assert_problem(client.get("/api/locked"), 403)


def test_a_blueprints_own_handlers_win_for_its_routes(build: t.Callable[..., Flask]) -> None:
    app = build()
    by_code = Blueprint("by_code", __name__, url_prefix="/api/shop")
    by_class = Blueprint("by_class", __name__, url_prefix="/api/depot")
    for blueprint in (by_code, by_class):

        @blueprint.get("/locked")
        def locked() -> str:
            abort(403)

    @by_code.errorhandler(403)
    def shop_forbidden(error: Exception) -> tuple[str, int]:
        return "the shop's own 403", 403

    @by_class.errorhandler(HTTPException)
    def depot_error(error: HTTPException) -> tuple[str, int]:
        return f"the depot's own {error.code}", error.code or 500

    app.register_blueprint(by_code)
    app.register_blueprint(by_class)
    client = app.test_client()

    shop = client.get("/api/shop/locked")
    assert (shop.status_code, shop.get_data(as_text=True)) == (403, "the shop's own 403")
    depot = client.get("/api/depot/locked")
    assert (depot.status_code, depot.get_data(as_text=True)) == (403, "the depot's own 403")
    # The app's other routes under the prefix, and unknown URLs, are problems.
    assert_problem(client.get("/api/locked"), 403)
    assert_problem(client.get("/api/shop/missing"), 404)


def test_an_http_exception_handler_the_app_registered_first_is_kept(
    build: t.Callable[..., Flask],
) -> None:
    def own_handler(error: HTTPException) -> tuple[str, int]:
        return f"our own {error.code}", error.code or 500

    def register(app: Flask) -> None:
        app.register_error_handler(HTTPException, own_handler)

    app = build(before=register)
    assert app.error_handler_spec[None][None][HTTPException] is own_handler
    client = app.test_client()
    for path in ("/api/no/such/thing", "/no/such/page"):
        response = client.get(path)
        assert (response.status_code, response.get_data(as_text=True)) == (404, "our own 404")
    boom = client.get("/api/boom")
    assert (boom.status_code, boom.get_data(as_text=True)) == (500, "our own 500")


def test_the_apps_generic_handler_sees_http_errors_inside_and_outside_the_prefix(
    build: t.Callable[..., Flask],
) -> None:
    app = build()

    @app.errorhandler(Exception)
    def generic(error: Exception) -> tuple[str, int]:
        code = error.code if isinstance(error, HTTPException) else 500
        return f"generic {type(error).__name__}", code or 500

    client = app.test_client()
    for path, status, name in [
        ("/no/such/page", 404, "NotFound"),
        ("/locked", 403, "Forbidden"),
        ("/boom", 500, "RuntimeError"),
    ]:
        response = client.get(path, headers=BROWSER)
        assert (response.status_code, response.get_data(as_text=True)) == (
            status,
            f"generic {name}",
        )
    # The app's handler keeps precedence under the prefix too, as Flask would give it.
    for path, status, name in [
        ("/api/no/such/thing", 404, "NotFound"),
        ("/api/locked", 403, "Forbidden"),
    ]:
        response = client.get(path, headers=BROWSER)
        assert (response.status_code, response.get_data(as_text=True)) == (
            status,
            f"generic {name}",
        )
    # An exception that is not an HTTP error is the app's to handle, as in Flask.
    assert client.get("/api/boom").get_data(as_text=True) == "generic RuntimeError"


# -- outside the prefix, Flask's own pages (flaskstack's HTML pages off) --------------------


def test_errors_outside_the_prefix_are_flasks_own_pages(build: t.Callable[..., Flask]) -> None:
    # flaskstack's HTML error pages (tests/test_error_pages.py) are off: what
    # is left outside the prefix is exactly Flask's answer.
    client = build(FLASKSTACK_ERROR_PAGES=False).test_client()
    bare = Flask("bare")
    add_failing_routes(bare)
    bare.config["PROPAGATE_EXCEPTIONS"] = False
    bare_client = bare.test_client()
    for method, path in [("GET", "/no/such/page"), ("GET", "/locked"), ("POST", "/locked")]:
        response = client.open(path, method=method, headers=BROWSER)
        expected = bare_client.open(path, method=method, headers=BROWSER)
        assert response.status_code == expected.status_code, path
        assert response.mimetype == "text/html"
        assert response.get_data() == expected.get_data(), path
        assert response.headers.get("Allow") == expected.headers.get("Allow")
    boom = client.get("/boom", headers=BROWSER)
    assert boom.status_code == 500
    assert boom.mimetype == "text/html"
    assert boom.get_data() == InternalServerError().get_body().encode()
    assert SECRET not in boom.get_data(as_text=True)


def test_redirects_and_ready_made_responses_under_the_prefix_pass_through(
    build: t.Callable[..., Flask],
) -> None:
    app = build()

    @app.get("/api/things/")
    def things() -> dict[str, bool]:
        return {"things": True}

    @app.get("/api/teapot")
    def teapot() -> str:
        abort(make_response("short and stout", 418))

    @app.get("/api/custom-forbidden")
    def custom_forbidden() -> str:
        raise Forbidden(response=Response("made by the view", 403, mimetype="text/plain"))

    client = app.test_client()
    moved = client.get("/api/things")
    assert moved.status_code == 308
    assert moved.headers["Location"].endswith("/api/things/")
    assert moved.mimetype != PROBLEM
    assert client.get("/api/things", follow_redirects=True).get_json() == {"things": True}
    pot = client.get("/api/teapot")
    assert (pot.status_code, pot.get_data(as_text=True)) == (418, "short and stout")
    made = client.get("/api/custom-forbidden")
    assert (made.status_code, made.get_data(as_text=True)) == (403, "made by the view")


# -- unhandled exceptions under the prefix ------------------------------------------------


def test_a_500_under_the_prefix_is_logged_and_signalled_once_by_flask(
    build: t.Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = build()
    signalled: list[BaseException] = []

    def record(sender: Flask, exception: BaseException, **extra: t.Any) -> None:
        signalled.append(exception)

    got_request_exception.connect(record, sender=app)
    try:
        with caplog.at_level(logging.ERROR):
            response = app.test_client().get("/api/boom", headers=BROWSER)
    finally:
        got_request_exception.disconnect(record, sender=app)

    body = assert_problem(response, 500)
    text = response.get_data(as_text=True)
    for leaked in ("hunter2", "RuntimeError", "Traceback", "api_boom"):
        assert leaked not in text
    assert body["detail"] == rest._errors.SERVER_ERROR_DETAIL
    assert [type(e) for e in signalled] == [RuntimeError]
    records = [r for r in caplog.records if r.exc_info]
    assert len(records) == 1
    assert records[0].getMessage() == "Exception on /api/boom [GET]"  # app.log_exception
    assert SECRET in str(records[0].exc_info[1])  # type: ignore[index]
    assert getattr(records[0], "request_id", None) == response.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "mode",
    [
        {"TESTING": True, "PROPAGATE_EXCEPTIONS": None},
        {"TESTING": False, "PROPAGATE_EXCEPTIONS": None, "DEBUG": True},
        {"TESTING": False, "PROPAGATE_EXCEPTIONS": True},
    ],
    ids=["testing", "debug", "propagate"],
)
def test_a_500_under_the_prefix_propagates_when_flask_propagates(
    build: t.Callable[..., Flask], mode: dict[str, t.Any]
) -> None:
    app = build(**{k: v for k, v in mode.items() if k != "DEBUG"})
    app.debug = bool(mode.get("DEBUG"))
    signalled: list[BaseException] = []

    def record(sender: Flask, exception: BaseException, **extra: t.Any) -> None:
        signalled.append(exception)

    got_request_exception.connect(record, sender=app)
    try:
        with pytest.raises(RuntimeError, match="hunter2"):
            app.test_client().get("/api/boom")
    finally:
        got_request_exception.disconnect(record, sender=app)
    assert [type(e) for e in signalled] == [RuntimeError]


def test_an_http_error_under_the_prefix_never_propagates(build: t.Callable[..., Flask]) -> None:
    app = build(TESTING=True, PROPAGATE_EXCEPTIONS=None)
    assert_problem(app.test_client().get("/api/locked"), 403)
    assert_problem(app.test_client().get("/api/no/such/thing"), 404)


# -- resources added once an app serves ----------------------------------------------


class Ping(rest.Resource):
    def get(self) -> t.Any:
        """Answer."""
        return {"pong": True}


def test_a_resource_added_once_an_app_serves_goes_to_apps_set_up_later(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    local = rest.Api(prefix="/v4")
    serving = make_app(flaskstack_config)
    local.init_app(serving)
    assert serving.test_client().get("/v4/openapi.json").status_code == 200

    local.add_resource(Ping, "/ping")  # Flask would refuse a new rule on `serving`

    assert_problem(serving.test_client().get("/v4/ping"), 404)
    later = make_app(flaskstack_config)
    local.init_app(later)
    assert later.test_client().get("/v4/ping").get_json() == {"pong": True}


def test_resources_added_while_the_factory_runs_are_served(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    local = rest.Api(prefix="/v5")
    earlier = make_app(flaskstack_config)
    local.init_app(earlier)
    current = make_app(flaskstack_config)
    local.init_app(current)
    assert earlier.test_client().get("/v5/openapi.json").status_code == 200  # another app serves

    local.add_resource(Ping, "/ping")

    assert current.test_client().get("/v5/ping").get_json() == {"pong": True}
    assert_problem(earlier.test_client().get("/v5/ping"), 404)


# -- no replaced Flask methods -------------------------------------------------------


_FLASK_METHODS = {"handle_exception", "handle_user_exception"}


def offences(source: str, where: str) -> list[str]:
    """Assignments to Flask's error-handling methods, and uses of its private first-request flag."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr in _FLASK_METHODS:
                found.append(f"{line}: assigns .{target.attr}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in _FLASK_METHODS
        ):
            found.append(f"{line}: setattr(..., {node.args[1].value!r})")
        if (isinstance(node, ast.Attribute) and node.attr == "_got_first_request") or (
            isinstance(node, ast.Constant) and node.value == "_got_first_request"
        ):
            found.append(f"{line}: uses Flask's private _got_first_request")
    return found


def test_flaskstack_never_replaces_flasks_error_handling_methods() -> None:
    package = pathlib.Path(flaskstack.__file__).parent
    found = [
        offence
        for path in sorted(package.rglob("*.py"))
        for offence in offences(
            path.read_text(encoding="utf-8"), str(path.relative_to(package.parent))
        )
    ]
    assert not found, (
        "flaskstack must answer errors through registered error handlers and use Flask's "
        "public API only (Flask's development branch changes these methods' signatures):\n"
        + "\n".join(found)
    )


def test_the_source_guard_finds_each_kind_of_offence() -> None:
    offender = (
        "app.handle_exception = route\n"
        "self.app.handle_user_exception: t.Any = route\n"
        "setattr(app, 'handle_user_exception', route)\n"
        "served = app._got_first_request\n"
        "served = getattr(app, '_got_first_request', False)\n"
        "app.handle_exception(error)  # a call is fine\n"
    )
    assert [o.split(": ", 1)[1] for o in offences(offender, "x.py")] == [
        "assigns .handle_exception",
        "assigns .handle_user_exception",
        "setattr(..., 'handle_user_exception')",
        "uses Flask's private _got_first_request",
        "uses Flask's private _got_first_request",
    ]
