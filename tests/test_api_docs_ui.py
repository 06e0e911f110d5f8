"""The interactive API docs page (``FLASKSTACK_API_DOCS_PATH``), through Flask's test client.

What a browser gets: one HTML page without inline script or style, whose
every URL is a path on the app itself (it works offline), Swagger UI's files
with the right types and caching, the OpenAPI document it shows; the page
off in production unless set, moved or turned off by its setting, refused
where the app has a rule of its own. The page in a real browser is tested in
``tests/browser/test_api_docs_ui.py``.
"""

from __future__ import annotations

import html.parser
import importlib.metadata
import typing as t

import pytest
from conftest import PRODUCTION_MAIL

import flaskstack
from flaskstack.rest._docs_ui import PAGE_POLICY

if t.TYPE_CHECKING:
    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient
    from werkzeug.wrappers import Response

STRONG_SECRET = "8H1bq0oWcT7c8f6mQhZ2pXv4rS9yL3dK5nJ0aE2gU7w"
PRODUCTION = {
    **PRODUCTION_MAIL,
    "SECRET_KEY": STRONG_SECRET,
    "FLASKSTACK_REDIS_URL": "redis://127.0.0.1:6379/0",
    "SQLALCHEMY_DATABASE_URI": "postgresql://postgres@127.0.0.1:5432/postgres",
}
SWAGGER_UI = importlib.metadata.version("flask-swagger-ui")
APP_POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"


class Page(html.parser.HTMLParser):
    """What a browser would load from an HTML page, and anything inline."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self.inline: list[str] = []
        self.data: dict[str, str] = {}
        self.title = ""
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        self._in = tag
        for name, value in found.items():
            if name in ("src", "href"):
                self.urls.append(value)
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}>")
            if name.startswith("data-") and name.endswith("-url"):
                self.data[name] = value
        if tag == "script":
            self.scripts.append(found.get("src", ""))
        if tag == "style":
            self.inline.append("<style>")

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script" and data.strip():
            self.inline.append(f"<script>{data.strip()[:40]}")
        if self._in == "title":
            self.title += data


def _page(client: FlaskClient, url: str = "/api/docs", **options: t.Any) -> tuple[Response, Page]:
    response = client.get(url, **options)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    return response, Page(response.get_data(as_text=True))


def _fetch(client: FlaskClient, url: str, **options: t.Any) -> Response:
    """GET ``url`` and read the whole body, closing the file behind it."""
    with client.get(url, **options) as response:
        response.get_data()
    return response


def _own_rule(path: str) -> t.Callable[[Flask], None]:
    def before(app: Flask) -> None:
        app.add_url_rule(path, endpoint="own_view", view_func=lambda: "the app's own")

    return before


# -- the page ---------------------------------------------------------------------------


def test_the_page_loads_swagger_ui_and_the_document_from_the_app_alone(
    make_app: AppFactory,
) -> None:
    client = make_app({"FLASKSTACK_API_TITLE": "Notes"}).test_client()
    response, page = _page(client)

    assert page.title == "Notes - API docs"
    assert page.inline == []  # no inline script, style attribute, <style> or handler
    assert page.scripts == [
        f"/api/docs/swagger-ui-bundle.js?v={SWAGGER_UI}",
        page.scripts[1],
    ]
    assert page.scripts[1].startswith("/api/docs/flaskstack-api-docs.js?v=")
    # Every URL is a path on this app: nothing from a CDN, the page works offline.
    assert page.urls
    assert all(url.startswith("/") and not url.startswith("//") for url in page.urls)
    assert "http" not in response.get_data(as_text=True).replace("http-equiv", "")
    assert page.data == {
        "data-openapi-url": "/api/openapi.json",
        "data-csrf-token-url": "/csrf-token",
    }
    document = _fetch(client, page.data["data-openapi-url"])
    assert document.status_code == 200
    assert document.get_json()["openapi"].startswith("3.1")


def test_the_page_carries_the_security_headers_and_a_strict_policy(
    make_app: AppFactory,
) -> None:
    response, _ = _page(make_app().test_client())
    assert response.headers["Content-Security-Policy"] == PAGE_POLICY
    assert "'unsafe-inline'" not in PAGE_POLICY
    assert "'unsafe-eval'" not in PAGE_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-cache"


def test_the_apps_own_policy_wins(make_app: AppFactory) -> None:
    def before(app: Flask) -> None:
        @app.after_request
        def policy(response: Response) -> Response:
            response.headers["Content-Security-Policy"] = APP_POLICY
            return response

    response, _ = _page(make_app(before=before).test_client())
    assert response.headers.getlist("Content-Security-Policy") == [APP_POLICY]


@pytest.mark.parametrize(
    ("name", "mimetype"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("index.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ],
)
def test_swagger_uis_files_are_served_with_their_types_and_cached(
    make_app: AppFactory, name: str, mimetype: str
) -> None:
    client = make_app().test_client()
    _response, page = _page(client)
    assert f"/api/docs/{name}?v={SWAGGER_UI}" in page.urls + page.scripts

    versioned = _fetch(client, f"/api/docs/{name}?v={SWAGGER_UI}")
    assert versioned.status_code == 200
    assert versioned.mimetype in (mimetype, "application/javascript")
    assert versioned.headers["X-Content-Type-Options"] == "nosniff"
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert len(versioned.get_data()) > 0

    # Without the version the browser revalidates, and a conditional request is cheap.
    plain = _fetch(client, f"/api/docs/{name}")
    assert plain.headers["Cache-Control"] == "no-cache"
    assert plain.headers["ETag"]
    again = _fetch(client, f"/api/docs/{name}", headers={"If-None-Match": plain.headers["ETag"]})
    assert again.status_code == 304


def test_the_initialiser_script_is_served_and_cached_by_its_version(
    make_app: AppFactory,
) -> None:
    client = make_app().test_client()
    _response, page = _page(client)
    script = _fetch(client, page.scripts[1])
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    text = script.get_data(as_text=True)
    assert "SwaggerUIBundle(" in text
    assert "validatorUrl: null" in text  # no document sent to validator.swagger.io
    assert "X-CSRFToken" in text
    stale = _fetch(client, "/api/docs/flaskstack-api-docs.js?v=0")
    assert stale.headers["Cache-Control"] == "no-cache"


def test_the_packages_own_index_page_leads_to_flaskstacks(make_app: AppFactory) -> None:
    # It starts Swagger UI with an inline script, which a strict policy blocks.
    client = make_app().test_client()
    for url in ("/api/docs/", "/api/docs/index.html"):
        response = _fetch(client, url)
        assert response.status_code == 302
        assert response.headers["Location"] == "/api/docs"


def test_an_unknown_file_under_the_docs_is_a_problem_404(make_app: AppFactory) -> None:
    response = make_app().test_client().get("/api/docs/nothing.js")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_the_title_is_escaped(make_app: AppFactory) -> None:
    title = '<script>alert("x")</script>'
    response, page = _page(make_app({"FLASKSTACK_API_TITLE": title}).test_client())
    assert page.inline == []
    assert "&lt;script&gt;" in response.get_data(as_text=True)


def test_urls_follow_the_api_prefix_and_the_mount_point(make_app: AppFactory) -> None:
    client = make_app({"FLASKSTACK_API_PREFIX": "/rest/v1"}).test_client()
    assert _fetch(client, "/api/docs").status_code == 404
    _response, page = _page(client, "/rest/v1/docs")
    assert page.data["data-openapi-url"] == "/rest/v1/openapi.json"
    assert page.scripts[0] == f"/rest/v1/docs/swagger-ui-bundle.js?v={SWAGGER_UI}"
    assert _fetch(client, page.scripts[0]).status_code == 200

    # Mounted below /portal (SCRIPT_NAME), every URL of the page carries it.
    _response, page = _page(client, "/rest/v1/docs", base_url="http://localhost/portal")
    assert all(url.startswith("/portal/rest/v1/") for url in page.urls + page.scripts)
    assert page.data == {
        "data-openapi-url": "/portal/rest/v1/openapi.json",
        "data-csrf-token-url": "/portal/csrf-token",
    }


def test_the_page_knows_when_there_is_no_csrf_token_endpoint(make_app: AppFactory) -> None:
    _response, page = _page(make_app(csrf_token_path=None).test_client())
    assert page.data["data-csrf-token-url"] == ""


# -- on, off, moved -----------------------------------------------------------------------


def test_production_serves_no_docs_unless_set(make_app: AppFactory) -> None:
    app = make_app(PRODUCTION, profile="production")
    assert app.config["FLASKSTACK_API_DOCS_PATH"] is None
    client = app.test_client()
    assert _fetch(client, "/api/docs").status_code == 404
    assert _fetch(client, f"/api/docs/swagger-ui-bundle.js?v={SWAGGER_UI}").status_code == 404
    assert not [rule for rule in app.url_map.iter_rules() if "/docs" in rule.rule]

    enabled = make_app(PRODUCTION, profile="production", api_docs_path="/docs").test_client()
    _page(enabled)


@pytest.mark.parametrize("profile", ["development", "testing"])
def test_development_and_testing_serve_the_docs_by_default(
    make_app: AppFactory, profile: str
) -> None:
    app = make_app(profile=profile)
    assert app.config["FLASKSTACK_API_DOCS_PATH"] == "/docs"
    _page(app.test_client())


def test_none_turns_the_docs_off(make_app: AppFactory) -> None:
    app = make_app(api_docs_path=None)
    client = app.test_client()
    assert _fetch(client, "/api/docs").status_code == 404
    assert _fetch(client, "/api/docs/swagger-ui.css").status_code == 404
    assert not [rule for rule in app.url_map.iter_rules() if "/docs" in rule.rule]


def test_the_docs_move_with_their_setting(make_app: AppFactory) -> None:
    client = make_app(api_docs_path="/reference").test_client()
    assert _fetch(client, "/api/docs").status_code == 404
    _response, page = _page(client, "/api/reference")
    assert page.scripts[0] == f"/api/reference/swagger-ui-bundle.js?v={SWAGGER_UI}"
    assert _fetch(client, page.scripts[0]).status_code == 200


def test_the_docs_go_off_with_the_openapi_document_by_default(make_app: AppFactory) -> None:
    client = make_app(api_openapi_path=None).test_client()
    assert _fetch(client, "/api/docs").status_code == 404


def test_docs_set_without_the_openapi_document_are_refused(make_app: AppFactory) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(api_openapi_path=None, api_docs_path="/docs")
    (problem,) = caught.value.problems
    assert problem.key == "FLASKSTACK_API_DOCS_PATH"
    assert "FLASKSTACK_API_OPENAPI_PATH" in problem.value
    assert "FLASKSTACK_API_OPENAPI_PATH" in problem.fix


@pytest.mark.parametrize("path", ["/docs/", "docs", "/my docs"])
def test_a_malformed_docs_path_is_refused(make_app: AppFactory, path: str) -> None:
    with pytest.raises(flaskstack.ConfigError, match="FLASKSTACK_API_DOCS_PATH"):
        make_app(api_docs_path=path)


@pytest.mark.parametrize("path", ["/api/docs", "/api/docs/", "/api/docs/flaskstack-api-docs.js"])
def test_init_app_refuses_to_shadow_the_apps_rule_naming_the_setting(
    make_app: AppFactory, path: str
) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(before=_own_rule(path))
    message = str(caught.value)
    assert "FLASKSTACK_API_DOCS_PATH" in message
    assert "'own_view'" in message
    assert repr(path) in message


def test_moving_the_docs_lets_the_app_keep_its_url(make_app: AppFactory) -> None:
    client = make_app(before=_own_rule("/api/docs"), api_docs_path="/reference").test_client()
    assert _fetch(client, "/api/docs").get_data(as_text=True) == "the app's own"
    _page(client, "/api/reference")


def test_a_rule_the_app_adds_later_at_the_page_is_refused_at_the_first_request(
    make_app: AppFactory,
) -> None:
    app = make_app({"TESTING": True})
    app.add_url_rule("/api/docs", endpoint="own_docs", view_func=lambda: "the app's own")
    with pytest.raises(flaskstack.ConfigError, match="FLASKSTACK_API_DOCS_PATH"):
        app.test_client().get("/")


def test_two_apps_in_one_process_each_have_their_docs(make_app: AppFactory) -> None:
    first = make_app({"FLASKSTACK_API_TITLE": "First"}).test_client()
    second = make_app({"FLASKSTACK_API_TITLE": "Second"}, api_docs_path="/ui").test_client()
    assert _page(first)[1].title == "First - API docs"
    assert _page(second, "/api/ui")[1].title == "Second - API docs"
    assert first.get("/api/ui").status_code == 404
