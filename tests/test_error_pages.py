"""flaskstack's HTML error pages, as a browser and a JSON client see them.

Browsers get a page with the error's title, its description and the request
id for 400, 403, 404, 405, 413, 429, 500 and 503; the app's own error
handlers answer first wherever Flask would have called them; API clients keep
their problem documents; a broken template never turns into a second failure.
"""

from __future__ import annotations

import re
import typing as t

import pytest
from conftest import SHARED_REDIS_URL
from flask import Blueprint, Flask, abort, render_template_string, session
from loopback import free_port
from markupsafe import escape
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    default_exceptions,
)

from flaskstack import db, get_state

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import AppFactory
    from werkzeug.test import TestResponse

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON_CLIENT = {"Accept": "application/json"}
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SECRET = "the database password is hunter2"


def add_views(app: Flask) -> Flask:
    @app.route("/status/<int:code>", methods=["GET", "POST"])
    def status(code: int) -> str:
        abort(code)

    @app.get("/only-get")
    def only_get() -> str:
        return "read me"

    @app.post("/upload")
    def upload() -> str:
        from flask import request

        return str(len(request.get_data()))

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError(SECRET)

    @app.get("/busy")
    def busy() -> str:
        raise ServiceUnavailable(retry_after=30)

    @app.get("/slow-down")
    def slow_down() -> str:
        raise TooManyRequests(retry_after=7)

    @app.get("/api/status/<int:code>")
    def api_status(code: int) -> str:
        abort(code)

    @app.get("/api/boom")
    def api_boom() -> str:
        raise RuntimeError(SECRET)

    return app


@pytest.fixture
def build(make_app: AppFactory, flaskstack_config: dict[str, t.Any]) -> t.Callable[..., Flask]:
    """``build(before=None, **config)``: an app with failing views; no propagation."""

    def factory(before: t.Callable[[Flask], None] | None = None, **config: t.Any) -> Flask:
        settings = {
            **flaskstack_config,
            "PROPAGATE_EXCEPTIONS": False,
            "MAX_CONTENT_LENGTH": 1024,
            **config,
        }
        return add_views(make_app(settings, before=before))

    return factory


def request_for(code: int) -> tuple[str, str, dict[str, t.Any]]:
    """The method, path and extra arguments of a request that fails with ``code``."""
    if code == 405:
        return "POST", "/only-get", {}
    if code == 413:
        return "POST", "/upload", {"data": b"x" * 4096}
    if code == 500:
        return "GET", "/boom", {}
    return "GET", f"/status/{code}", {}


def assert_page(response: TestResponse, code: int) -> str:
    """``response`` is flaskstack's page for ``code``; its text."""
    error = default_exceptions[code]()
    assert response.status_code == code
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    request_id = response.headers["X-Request-ID"]
    assert f"<code>{request_id}</code>" in text
    assert f"<h1>{error.name}</h1>" in text
    assert text.count("<h1") == 1
    assert f"<title>{error.name}</title>" in text
    assert str(escape(error.description or "")) in text
    assert "Set-Cookie" not in response.headers  # an error page leaves the session alone
    return text


# -- the pages ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", [400, 403, 404, 405, 413, 429, 500, 503])
def test_each_error_is_a_page_with_the_request_id(build: t.Callable[..., Flask], code: int) -> None:
    client = build().test_client()
    method, path, extra = request_for(code)
    response = client.open(path, method=method, headers=BROWSER, **extra)
    text = assert_page(response, code)
    assert SECRET not in text


def test_the_request_id_the_client_sent_is_on_the_page(build: t.Callable[..., Flask]) -> None:
    response = (
        build()
        .test_client()
        .get("/nowhere", headers={**BROWSER, "X-Request-ID": "support-ticket-1234"})
    )
    assert "<code>support-ticket-1234</code>" in assert_page(response, 404)


def test_the_errors_headers_are_kept(build: t.Callable[..., Flask]) -> None:
    client = build().test_client()
    not_allowed = client.post("/only-get", headers=BROWSER)
    assert_page(not_allowed, 405)
    assert set(not_allowed.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}

    busy = client.get("/busy", headers=BROWSER)
    assert_page(busy, 503)
    assert busy.headers["Retry-After"] == "30"
    assert "Try again in 30 seconds." in busy.text

    slow = client.get("/slow-down", headers=BROWSER)
    assert_page(slow, 429)
    assert slow.headers["Retry-After"] == "7"
    assert "Wait 7 seconds, then try again." in slow.text


def test_a_description_given_to_abort_is_shown_escaped(build: t.Callable[..., Flask]) -> None:
    app = build()

    @app.get("/gone-article")
    def gone_article() -> str:
        abort(404, "There is no article <b>called</b> that.")

    response = app.test_client().get("/gone-article", headers=BROWSER)
    assert "There is no article &lt;b&gt;called&lt;/b&gt; that." in response.text


def test_curl_gets_the_page_too(build: t.Callable[..., Flask]) -> None:
    response = build().test_client().get("/nowhere", headers={"Accept": "*/*"})
    assert_page(response, 404)


def test_the_setting_turns_the_pages_off(build: t.Callable[..., Flask]) -> None:
    client = build(FLASKSTACK_ERROR_PAGES=False).test_client()
    response = client.get("/nowhere", headers=BROWSER)
    assert response.status_code == 404
    assert response.get_data() == NotFound().get_body().encode()
    boom = client.get("/boom", headers=BROWSER)
    assert boom.get_data() == InternalServerError().get_body().encode()


# -- JSON and API clients -----------------------------------------------------------------


@pytest.mark.parametrize("code", [400, 403, 404, 429, 500])
def test_api_errors_stay_problem_documents(build: t.Callable[..., Flask], code: int) -> None:
    client = build().test_client()
    path = "/api/boom" if code == 500 else f"/api/status/{code}"
    response = client.get(path, headers=BROWSER)
    assert response.status_code == code
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert SECRET not in response.text


def test_unknown_api_urls_and_methods_stay_problem_documents(
    build: t.Callable[..., Flask],
) -> None:
    client = build().test_client()
    missing = client.get("/api/nothing/here", headers=BROWSER)
    assert (missing.status_code, missing.mimetype) == (404, "application/problem+json")
    not_allowed = client.post("/api/status/404", headers=BROWSER)
    assert (not_allowed.status_code, not_allowed.mimetype) == (405, "application/problem+json")
    assert "GET" in not_allowed.headers["Allow"]


def test_json_clients_outside_the_api_get_what_they_got_before(
    build: t.Callable[..., Flask],
) -> None:
    client = build().test_client()
    response = client.get("/nowhere", headers=JSON_CLIENT)
    assert response.status_code == 404
    assert response.get_data() == NotFound().get_body().encode()
    busy = client.get("/busy", headers=JSON_CLIENT)
    assert (busy.status_code, busy.headers["Retry-After"]) == (503, "30")
    assert "Request id" not in busy.text


def test_without_api_problems_the_api_keeps_flasks_answers(build: t.Callable[..., Flask]) -> None:
    client = build(FLASKSTACK_API_PROBLEMS=False).test_client()
    response = client.get("/api/status/404", headers=BROWSER)
    assert response.status_code == 404
    assert response.get_data() == NotFound().get_body().encode()


# -- the app's own handlers win -----------------------------------------------------------


HANDLED_BY: dict[str, t.Any] = {
    "the code": 404,
    "the class": NotFound,
    "HTTPException": HTTPException,
    "Exception": Exception,
}


@pytest.mark.parametrize("registered", ["before init_app", "after init_app"])
@pytest.mark.parametrize("target", list(HANDLED_BY))
def test_the_apps_handler_answers(
    build: t.Callable[..., Flask], registered: str, target: str
) -> None:
    def register(app: Flask) -> None:
        @app.errorhandler(HANDLED_BY[target])
        def handler(error: Exception) -> tuple[str, int]:
            return f"the app's own page for {target}", 404

    if registered == "before init_app":
        app = build(before=register)
    else:
        app = build()
        register(app)
    response = app.test_client().get("/nowhere", headers=BROWSER)
    assert (response.status_code, response.text) == (404, f"the app's own page for {target}")


@pytest.mark.parametrize("registered", ["before init_app", "after init_app"])
def test_the_apps_handler_for_500_answers(build: t.Callable[..., Flask], registered: str) -> None:
    def register(app: Flask) -> None:
        @app.errorhandler(500)
        def handler(error: Exception) -> tuple[str, int]:
            return "our own 500", 500

    app = build(before=register) if registered == "before init_app" else build()
    if registered == "after init_app":
        register(app)
    response = app.test_client().get("/boom", headers=BROWSER)
    assert (response.status_code, response.text) == (500, "our own 500")


def test_a_blueprints_handler_answers_for_its_routes(build: t.Callable[..., Flask]) -> None:
    app = build()
    shop = Blueprint("shop", __name__, url_prefix="/shop")

    @shop.get("/item/<int:number>")
    def item(number: int) -> str:
        abort(404)

    @shop.errorhandler(404)
    def no_item(error: Exception) -> tuple[str, int]:
        return "no such item in the shop", 404

    app.register_blueprint(shop)
    client = app.test_client()
    response = client.get("/shop/item/3", headers=BROWSER)
    assert (response.status_code, response.text) == (404, "no such item in the shop")
    # Elsewhere, flaskstack's page.
    assert_page(client.get("/status/404", headers=BROWSER), 404)


def test_a_blueprints_app_wide_handler_answers(build: t.Callable[..., Flask]) -> None:
    app = build()
    pages = Blueprint("pages", __name__)

    @pages.app_errorhandler(403)
    def refused(error: Exception) -> tuple[str, int]:
        return "our refusal", 403

    app.register_blueprint(pages)
    response = app.test_client().get("/status/403", headers=BROWSER)
    assert (response.status_code, response.text) == (403, "our refusal")


def test_the_apps_handler_answers_under_the_api_too(build: t.Callable[..., Flask]) -> None:
    app = build()

    @app.errorhandler(404)
    def handler(error: Exception) -> tuple[dict[str, str], int]:
        return {"error": "ours"}, 404

    response = app.test_client().get("/api/status/404", headers=BROWSER)
    assert (response.status_code, response.get_json()) == (404, {"error": "ours"})


# -- templates ----------------------------------------------------------------------------


def with_templates(folder: Path, files: dict[str, str]) -> t.Callable[[Flask], None]:
    """A ``before`` hook giving the app a template folder holding ``files``."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def before(app: Flask) -> None:
        app.template_folder = str(folder)

    return before


def test_an_app_overrides_one_page(build: t.Callable[..., Flask], tmp_path: Path) -> None:
    app = build(
        before=with_templates(
            tmp_path / "templates",
            {
                "flaskstack/errors/404.html": (
                    '{% extends "flaskstack/errors/_base.html" %}'
                    "{% block advice %}<p>Try the search box.</p>{% endblock %}"
                )
            },
        )
    )
    client = app.test_client()
    assert "Try the search box." in assert_page(client.get("/nowhere", headers=BROWSER), 404)
    assert "Try the search box." not in client.get("/status/403", headers=BROWSER).text


def test_the_pages_take_the_apps_layout(build: t.Callable[..., Flask], tmp_path: Path) -> None:
    app = build(
        before=with_templates(
            tmp_path / "templates",
            {
                "flaskstack/base.html": (
                    "<!doctype html><title>{% block title %}{% endblock %} · Shop</title>"
                    '<nav aria-label="Site">Shop</nav>{% block content %}{% endblock %}'
                )
            },
        )
    )
    response = app.test_client().get("/status/403", headers=BROWSER)
    assert response.status_code == 403
    assert "<title>Forbidden · Shop</title>" in response.text
    assert '<nav aria-label="Site">Shop</nav>' in response.text
    assert f"<code>{response.headers['X-Request-ID']}</code>" in response.text


def test_a_layout_that_needs_the_session_during_an_outage_gets_the_plain_503(
    build: t.Callable[..., Flask], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The app's layout asks who is signed in while the session store is down: the 503
    still answers, with ``Retry-After``, and the log says why without a traceback."""
    app = build(
        before=with_templates(
            tmp_path / "templates",
            {
                "flaskstack/base.html": (
                    "<!doctype html><title>{% block title %}{% endblock %}</title>"
                    "{% if current_user.is_authenticated %}Hello{% endif %}"
                    "{% block content %}{% endblock %}"
                )
            },
        ),
        FLASKSTACK_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )

    @app.get("/whoami")
    def whoami() -> str:
        return str(session.get("who"))

    client = app.test_client()
    sid = app.session_interface._signer(app).sign("s" * 43).decode()  # type: ignore[attr-defined]
    client.set_cookie("session", sid)
    with caplog.at_level("WARNING", logger="flaskstack.errors"):
        response = client.get("/whoami", headers=BROWSER)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    records = [r for r in caplog.records if r.name == "flaskstack.errors"]
    assert [r.levelname for r in records] == ["WARNING"], records
    assert records[0].exc_info is None
    assert "plain page" in records[0].getMessage()


@pytest.mark.parametrize(
    "broken",
    [
        "{% extends 'no/such/layout.html' %}",
        "{{ error.no_such_attribute.really() }}",
        "{% block %}",  # a syntax error
    ],
)
def test_a_broken_template_falls_back_to_werkzeugs_page(
    build: t.Callable[..., Flask], tmp_path: Path, broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    files = {f"flaskstack/errors/{code}.html": broken for code in (404, 500)}
    app = build(before=with_templates(tmp_path / "templates", files))
    client = app.test_client()
    missing = client.get("/nowhere", headers=BROWSER)
    assert missing.status_code == 404
    assert missing.get_data() == NotFound().get_body().encode()
    boom = client.get("/boom", headers=BROWSER)
    assert boom.status_code == 500
    assert boom.get_data() == InternalServerError().get_body().encode()
    assert SECRET not in boom.text
    assert "The 404 error page could not be rendered" in caplog.text


def test_a_view_rendering_an_error_page_itself_is_left_alone(
    build: t.Callable[..., Flask],
) -> None:
    app = build()

    @app.get("/teapot")
    def teapot() -> tuple[str, int]:
        return render_template_string("<p>short and stout</p>"), 404

    response = app.test_client().get("/teapot", headers=BROWSER)
    assert (response.status_code, response.text) == (404, "<p>short and stout</p>")


# -- flaskstack's own failures ------------------------------------------------------------


def test_a_failed_csrf_check_keeps_its_answer(build: t.Callable[..., Flask]) -> None:
    client = build().test_client()
    response = client.post("/status/404", headers=BROWSER)
    assert response.status_code == 400
    assert "CSRF" in response.text
    problem = client.post("/status/404", headers=JSON_CLIENT)
    assert (problem.status_code, problem.mimetype) == (400, "application/problem+json")


def test_the_login_throttle_answers_with_the_page(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    app = make_app(
        {
            **flaskstack_config,
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_LOGIN_ACCOUNT_LIMIT": 2,
        }
    )
    with app.app_context():
        # The auth tables only: other modules' models (another bind) are not this app's.
        tables = [model.__table__ for model in get_state(app).auth.models]
        db.metadata.create_all(bind=db.engine, tables=tables)
    client = app.test_client()
    form = client.get("/auth/login", headers=BROWSER)
    found = CSRF_FIELD.search(form.text)
    assert found is not None, form.text
    attempt = {"email": "ghost@example.com", "password": "not it", "csrf_token": found.group(1)}
    for _ in range(2):
        assert client.post("/auth/login", data=attempt, headers=BROWSER).status_code == 200
    throttled = client.post("/auth/login", data=attempt, headers=BROWSER)
    assert throttled.status_code == 429
    assert throttled.mimetype == "text/html"
    wait = int(throttled.headers["Retry-After"])
    assert wait >= 1
    assert f"<code>{throttled.headers['X-Request-ID']}</code>" in throttled.text
    assert "<h1>Too Many Requests</h1>" in throttled.text
    assert f"Wait {wait} seconds, then try again." in throttled.text
