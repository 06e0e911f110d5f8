"""CSRF protection and the base form: what browsers, JavaScript and API clients see.

Sessions live in real Redis: the shared server (127.0.0.1:6379) under a
namespace of each test's own, whose keys are deleted afterwards, or servers
the tests own (``redis_servers``) where commands are counted or Redis is
stopped. Rows go to a real PostgreSQL database.
"""

from __future__ import annotations

import json
import os
import re
import time
import typing as t

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask, abort, render_template_string, request, session
from flask_wtf import FlaskForm  # type: ignore[import-untyped]
from flask_wtf.csrf import (  # type: ignore[import-untyped]
    CSRFProtect as FlaskWTFCSRFProtect,
)
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from wtforms import StringField  # type: ignore[import-untyped]
from wtforms.validators import DataRequired  # type: ignore[import-untyped]

import flaskstack
from flaskstack import csrf, db
from flaskstack.forms import Form
from flaskstack.health import public

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import AppFactory
    from flask.testing import FlaskClient
    from redis_servers import RedisServer
    from werkzeug.test import TestResponse

SHARED_REDIS_URL = os.environ.get("FLASKSTACK_TEST_REDIS", "redis://127.0.0.1:6379/0")
PROBLEM = "application/problem+json"
MISSING = "The CSRF token is missing."

PAGE = """<!doctype html>
<form method="post">{{ form.csrf_token }} {{ form.title }}</form>
"""


class NoteForm(Form):
    title = StringField("Title", validators=[DataRequired()])


def add_views(app: Flask, save: Callable[[str], None] | None = None) -> Flask:
    """Views a typical app has; notes go to the session unless ``save`` says otherwise."""

    def save_note(title: str) -> None:
        if save is not None:
            save(title)
        else:
            session["notes"] = [*session.get("notes", []), title]

    @app.route("/notes/new", methods=["GET", "POST"])
    def new_note() -> str:
        form = NoteForm()
        if form.validate_on_submit():
            save_note(form.title.data)
            return "saved"
        return render_template_string(PAGE, form=form)

    @app.get("/notes")
    def notes() -> dict[str, t.Any]:
        return {"notes": session.get("notes", [])}

    @app.post("/api/notes")
    def api_notes() -> tuple[dict[str, t.Any], int]:
        body = request.get_json()
        save_note(body["title"])
        return {"saved": body["title"]}, 201

    @app.post("/api/ping")
    def api_ping() -> str:
        # Checking the token is the auth layer's job; here only CSRF is tested.
        return "ran"

    @app.get("/sign-in/<name>")
    def sign_in(name: str) -> str:
        session["user"] = name  # a cookie-authenticated client, without the auth layer
        return "hello"

    @app.get("/plain")
    def plain() -> str:
        return "no session here"

    @app.post("/hook")
    @public
    def hook() -> str:
        return "public"

    @app.post("/exempted")
    @csrf.exempt
    def exempted() -> str:
        return "exempted"

    @app.post("/bad")
    def bad() -> str:
        abort(400)

    return app


@pytest.fixture
def build(make_app: AppFactory, namespace: Callable[[], str]) -> Callable[..., Flask]:
    """``build(**config)``: an app with Redis sessions on the shared server and the views."""

    def factory(**config: t.Any) -> Flask:
        settings = {"FLASKSTACK_REDIS_URL": SHARED_REDIS_URL, "FLASKSTACK_NAMESPACE": namespace()}
        return add_views(make_app({**settings, **config}))

    return factory


@pytest.fixture
def client(build: Callable[..., Flask]) -> FlaskClient:
    return build().test_client()


def page_token(response: TestResponse) -> str:
    """The CSRF token in a rendered form."""
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', response.text)
    assert found is not None, response.text
    return found.group(1)


def fetch_token(client: FlaskClient) -> str:
    response = client.get("/csrf-token")
    assert response.status_code == 200
    token = response.get_json()["csrf_token"]
    assert isinstance(token, str)
    return token


def assert_problem(response: TestResponse, detail: str) -> None:
    assert response.status_code == 400
    assert response.mimetype == PROBLEM
    assert json.loads(response.text) == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": detail,
        "request_id": response.headers["X-Request-ID"],
    }


# -- the extension -------------------------------------------------------------


def test_csrf_is_one_module_level_flask_wtf_extension(make_app: AppFactory) -> None:
    first, second = make_app(name="first"), make_app(name="second")
    assert flaskstack.csrf is csrf
    assert isinstance(csrf, FlaskWTFCSRFProtect)
    assert first.extensions["csrf"] is csrf
    assert second.extensions["csrf"] is csrf
    assert issubclass(Form, FlaskForm)
    assert first.config["WTF_CSRF_TIME_LIMIT"] is None
    assert first.config["WTF_CSRF_SSL_STRICT"] is True


# -- browsers and HTML forms ---------------------------------------------------


def test_a_form_post_without_token_is_a_400_page(client: FlaskClient) -> None:
    assert client.get("/notes/new").status_code == 200  # the browser has a session
    response = client.post("/notes/new", data={"title": "forged"})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert MISSING in response.text
    assert "Accept" in response.vary
    assert client.get("/notes").get_json() == {"notes": []}


def test_a_form_post_with_the_pages_token_saves_a_row(
    make_app: AppFactory, namespace: Callable[[], str], postgres_url: str
) -> None:
    def save(title: str) -> None:
        db.session.execute(sa.text("INSERT INTO notes (title) VALUES (:title)"), {"title": title})
        db.session.commit()

    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
        }
    )
    add_views(app, save=save)
    with app.app_context():
        db.session.execute(sa.text("CREATE TABLE notes (title text NOT NULL)"))
        db.session.commit()
    client = app.test_client()

    token = page_token(client.get("/notes/new"))
    response = client.post("/notes/new", data={"csrf_token": token, "title": "groceries"})
    assert response.status_code == 200
    assert response.text == "saved"
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute("SELECT title FROM notes").fetchall()
    assert rows == [("groceries",)]


def test_the_page_token_stays_valid_for_further_posts(client: FlaskClient) -> None:
    token = page_token(client.get("/notes/new"))
    for title in ("one", "two"):
        assert client.post("/notes/new", data={"csrf_token": token, "title": title}).text == "saved"
    assert client.get("/notes").get_json() == {"notes": ["one", "two"]}


# -- JavaScript clients authenticated by the session cookie --------------------


def test_a_cookie_authenticated_json_post_needs_the_header(client: FlaskClient) -> None:
    client.get("/sign-in/alice")
    assert client.get_cookie("session") is not None

    assert_problem(client.post("/api/notes", json={"title": "forged"}), MISSING)

    response = client.get("/csrf-token")
    assert response.headers["Cache-Control"] == "no-store"
    token = response.get_json()["csrf_token"]
    response = client.post("/api/notes", json={"title": "real"}, headers={"X-CSRFToken": token})
    assert response.status_code == 201
    assert client.get("/notes").get_json() == {"notes": ["real"]}


def test_a_client_preferring_json_gets_a_problem(client: FlaskClient) -> None:
    client.get("/sign-in/alice")
    response = client.post(
        "/notes/new", data={"title": "x"}, headers={"Accept": "application/json"}
    )
    assert_problem(response, MISSING)


def test_a_token_from_another_session_is_refused(build: Callable[..., Flask]) -> None:
    app = build()
    alice, mallory, nobody = app.test_client(), app.test_client(), app.test_client()
    stolen = fetch_token(alice)
    fetch_token(mallory)  # mallory has a session, and a token of her own

    response = mallory.post("/api/notes", json={"title": "x"}, headers={"X-CSRFToken": stolen})
    assert_problem(response, "The CSRF tokens do not match.")
    response = nobody.post("/api/notes", json={"title": "x"}, headers={"X-CSRFToken": stolen})
    assert_problem(response, "The CSRF session token is missing.")
    ok = alice.post("/api/notes", json={"title": "x"}, headers={"X-CSRFToken": stolen})
    assert ok.status_code == 201


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_every_unsafe_method_is_checked(client: FlaskClient, method: str) -> None:
    app = client.application
    app.add_url_rule("/thing", "thing", lambda: "changed", methods=[method])
    client.get("/sign-in/alice")
    assert client.open("/thing", method=method).status_code == 400
    token = fetch_token(client)
    response = client.open("/thing", method=method, headers={"X-CSRFToken": token})
    assert response.status_code == 200


# -- API tokens ----------------------------------------------------------------


@pytest.mark.parametrize("authorization", ["Bearer whatever", "bearer whatever", "BEARER  x"])
@pytest.mark.parametrize("with_cookie", [False, True])
def test_a_bearer_request_is_not_csrf_checked(
    client: FlaskClient, authorization: str, with_cookie: bool
) -> None:
    if with_cookie:
        client.get("/sign-in/alice")
    response = client.post("/api/ping", headers={"Authorization": authorization})
    assert response.status_code == 200
    assert response.text == "ran"


@pytest.mark.parametrize(
    "authorization",
    ["Basic x", "Digest username=x", "Bearer", "Bearer   ", "Bearerx abc", "Token abc", "x"],
)
def test_other_authorization_is_still_csrf_checked(client: FlaskClient, authorization: str) -> None:
    client.get("/sign-in/alice")
    response = client.post("/api/ping", headers={"Authorization": authorization})
    # Refused by CSRF; not an API token, so the answer is the browser's HTML page
    # unless the client asks for JSON.
    assert response.status_code == 400
    assert MISSING in response.text
    assert_problem(
        client.post(
            "/api/ping", headers={"Authorization": authorization, "Accept": "application/json"}
        ),
        MISSING,
    )


def test_token_schemes_come_from_the_setting(build: Callable[..., Flask]) -> None:
    client = build(FLASKSTACK_API_TOKEN_SCHEMES=["Token"]).test_client()
    client.get("/sign-in/alice")
    assert client.post("/api/ping", headers={"Authorization": "token abc"}).status_code == 200
    assert client.post("/api/ping", headers={"Authorization": "Bearer abc"}).status_code == 400


def test_a_form_posted_with_an_api_token_needs_no_csrf_field(client: FlaskClient) -> None:
    response = client.post(
        "/notes/new", data={"title": "from a script"}, headers={"Authorization": "Bearer t"}
    )
    assert response.text == "saved"


def test_a_manual_protect_call_applies_no_exemption(client: FlaskClient) -> None:
    app = client.application

    @app.post("/strict")
    @csrf.exempt
    def strict() -> str:
        csrf.protect()
        return "checked"

    response = client.post("/strict", headers={"Authorization": "Bearer t"})
    assert response.status_code == 400


# -- what is exempt, and what is not an error of CSRF --------------------------


def test_public_and_exempted_views_need_no_token(client: FlaskClient) -> None:
    client.get("/sign-in/alice")
    assert client.post("/hook").text == "public"
    assert client.post("/exempted").text == "exempted"


def test_routing_errors_stay_what_they_are(client: FlaskClient) -> None:
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405
    assert client.post("/csrf-token").status_code == 405
    assert client.post("/nowhere").status_code == 404


def test_other_400s_keep_their_own_handler(client: FlaskClient) -> None:
    client.get("/sign-in/alice")
    token = fetch_token(client)
    response = client.post("/bad", headers={"X-CSRFToken": token})
    assert response.status_code == 400
    assert "CSRF" not in response.text


# -- the token endpoint and settings ------------------------------------------


def test_the_token_endpoint_follows_its_setting(build: Callable[..., Flask]) -> None:
    moved = build(FLASKSTACK_CSRF_TOKEN_PATH="/api/csrf").test_client()
    assert moved.get("/csrf-token").status_code == 404
    token = moved.get("/api/csrf").get_json()["csrf_token"]
    response = moved.post("/api/notes", json={"title": "x"}, headers={"X-CSRFToken": token})
    assert response.status_code == 201

    disabled = build(FLASKSTACK_CSRF_TOKEN_PATH=None).test_client()
    assert disabled.get("/csrf-token").status_code == 404
    assert "flaskstack.csrf_token" not in disabled.application.view_functions


class _TwoHoursAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 7200


def old_token(app: Flask, token: str) -> str:
    """The same token as ``token``, signed two hours ago."""
    secret = app.secret_key
    assert secret is not None
    raw = URLSafeTimedSerializer(secret, salt="wtf-csrf-token").loads(token)
    serializer = URLSafeTimedSerializer(secret, salt="wtf-csrf-token", signer=_TwoHoursAgo)
    return serializer.dumps(raw)


def test_tokens_last_as_long_as_the_session_unless_a_time_limit_is_set(
    build: Callable[..., Flask],
) -> None:
    lasting = build().test_client()
    token = old_token(lasting.application, fetch_token(lasting))
    response = lasting.post("/api/notes", json={"title": "x"}, headers={"X-CSRFToken": token})
    assert response.status_code == 201

    limited = build(WTF_CSRF_TIME_LIMIT=3600).test_client()
    token = old_token(limited.application, fetch_token(limited))
    response = limited.post("/api/notes", json={"title": "x"}, headers={"X-CSRFToken": token})
    assert_problem(response, "The CSRF token has expired.")


def test_https_posts_need_a_referrer_from_this_host(build: Callable[..., Flask]) -> None:
    https = "https://localhost"
    client = build().test_client()
    token = page_token(client.get("/notes/new", base_url=https))

    def post(**headers: str) -> TestResponse:
        data = {"csrf_token": token, "title": "x"}
        return client.post("/notes/new", data=data, base_url=https, headers=headers)

    response = post()
    assert response.status_code == 400
    assert "The referrer header is missing." in response.text
    response = post(Referer="https://evil.example/notes/new")
    assert "The referrer does not match the host." in response.text
    assert post(Referer="https://localhost/notes/new").text == "saved"

    relaxed = build(WTF_CSRF_SSL_STRICT=False).test_client()
    token = page_token(relaxed.get("/notes/new", base_url=https))
    data = {"csrf_token": token, "title": "x"}
    assert relaxed.post("/notes/new", data=data, base_url=https).text == "saved"


def test_the_app_can_switch_csrf_off(build: Callable[..., Flask]) -> None:
    client = build(WTF_CSRF_ENABLED=False).test_client()
    assert client.post("/notes/new", data={"title": "x"}).text == "saved"


# -- costs and failures --------------------------------------------------------


def test_safe_methods_never_touch_the_session(
    make_app: AppFactory, namespace: Callable[[], str], redis_server: RedisServer
) -> None:
    name = namespace()
    config = {
        "FLASKSTACK_REDIS_URL": redis_server.url,
        "FLASKSTACK_NAMESPACE": name,
        # Every session in Redis, so the counter below sees the session being read.
        "FLASKSTACK_SESSION_COOKIE_KEYS": [],
    }
    app = add_views(make_app(config))
    client = app.test_client()
    token = fetch_token(client)  # warm up: a session, a cookie, an open connection
    assert client.get_cookie("session") is not None

    redis_server.reset_stats()
    assert client.get("/plain").status_code == 200
    assert client.head("/plain").status_code == 200
    assert client.options("/plain").status_code == 200
    assert client.get("/nowhere").status_code == 404
    assert client.get("/healthz").status_code == 200
    assert redis_server.command_counts() == {}

    # The counter does see the session when a request needs it.
    client.post("/api/ping", headers={"X-CSRFToken": token})
    assert redis_server.command_counts() == {"getex": 1}
    with redis_server.client() as direct:
        keys = list(direct.scan_iter(match=f"{name}:*"))
        if keys:
            direct.delete(*keys)


def test_session_store_down_is_a_503_not_a_500(
    make_app: AppFactory, fresh_redis_server: RedisServer
) -> None:
    app = make_app(
        {
            "FLASKSTACK_REDIS_URL": fresh_redis_server.url,
            "FLASKSTACK_NAMESPACE": "forms-outage",
            "FLASKSTACK_REDIS_TIMEOUT": 0.3,
            "FLASKSTACK_REDIS_BACKOFF": 0.2,
        }
    )
    client = add_views(app).test_client()
    token = fetch_token(client)
    fresh_redis_server.stop()

    response = client.post("/api/notes", json={"title": "x"}, headers={"X-CSRFToken": token})
    assert response.status_code == 503
    assert response.mimetype == PROBLEM
    page = client.post("/notes/new", data={"csrf_token": token, "title": "x"})
    assert page.status_code == 503
    assert page.mimetype == "text/html"
    # A missing token is known without the session store.
    assert_problem(client.post("/api/notes", json={"title": "x"}), MISSING)
    assert client.post("/api/ping", headers={"Authorization": "Bearer t"}).status_code == 200
    assert client.get("/plain").status_code == 200


MALFORMED: list[tuple[str, dict[str, t.Any]]] = [
    ("multipart without boundary", {"data": b"--x\r\n", "content_type": "multipart/form-data"}),
    (
        "truncated multipart",
        {
            "data": b"--x\r\nContent-Disposition: form-data",
            "content_type": "multipart/form-data; boundary=x",
        },
    ),
    (
        "bad percent-encoding",
        {
            "data": b"csrf_token=%zz%ff&&==&title",
            "content_type": "application/x-www-form-urlencoded",
        },
    ),
    ("invalid JSON", {"data": b'{"title": ', "content_type": "application/json"}),
    ("binary body", {"data": bytes(range(256)), "content_type": "application/octet-stream"}),
    ("garbage token header", {"headers": {"X-CSRFToken": "not.a.token"}}),
    ("latin-1 token header", {"headers": {"X-CSRFToken": "\xff\xfe\xe9"}}),
    ("huge token header", {"headers": {"X-CSRFToken": "a" * 8000}}),
    ("token as form list", {"data": {"csrf_token": ["", "x"], "title": "t"}}),
    ("broken Accept", {"headers": {"Accept": ";;;,q=abc,*/*;q=x"}}),
    ("broken Authorization", {"headers": {"Authorization": "\x00\xff Bearer"}}),
    ("broken Content-Type", {"data": b"x", "content_type": "multipart/; boundary="}),
]


@pytest.mark.parametrize(("label", "kwargs"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_requests_are_a_4xx(
    client: FlaskClient, label: str, kwargs: dict[str, t.Any]
) -> None:
    client.get("/sign-in/alice")
    response = client.post("/notes/new", **kwargs)
    assert 400 <= response.status_code < 500, (label, response.status_code, response.text)


def test_an_oversize_body_is_a_413(build: Callable[..., Flask]) -> None:
    client = build(MAX_CONTENT_LENGTH=1000).test_client()
    response = client.post("/notes/new", data={"title": "x" * 5000})
    assert response.status_code == 413


@pytest.mark.parametrize("body", ["false", "[1, 2]", '"title"', "[" * 5000 + "]" * 5000])
def test_a_form_sent_as_json_must_be_an_object(client: FlaskClient, body: str) -> None:
    response = client.post(
        "/notes/new",
        data=body,
        content_type="application/json",
        headers={"Authorization": "Bearer x", "Accept": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert client.get("/notes").get_json() == {"notes": []}


@pytest.mark.parametrize("title", ["nul\x00byte", "lone \ud800 surrogate"])
def test_text_a_database_cannot_store_fails_validation(client: FlaskClient, title: str) -> None:
    response = client.post(
        "/notes/new", json={"title": title}, headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 200
    assert "saved" not in response.text
    assert client.get("/notes").get_json() == {"notes": []}


@pytest.mark.parametrize("title", [True, 3, 2.5])
def test_a_json_value_that_is_not_text_fails_validation(client: FlaskClient, title: object) -> None:
    # (A list or an object is read by Werkzeug as several values of one field,
    # as in a form: its first one counts.)
    response = client.post(
        "/notes/new", json={"title": title}, headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 200
    assert "saved" not in response.text
    assert client.get("/notes").get_json() == {"notes": []}


@pytest.mark.parametrize("email", [True, 7, 2.5])
def test_the_sign_in_page_refuses_a_json_email_that_is_not_text(
    client: FlaskClient, email: object
) -> None:
    # The sign-in form's Length validator would call len() on the value.
    response = client.post(
        "/auth/login",
        json={"email": email, "password": "whatever-password"},
        headers={"Authorization": "Bearer x"},
    )
    assert response.status_code == 200
    assert "Must be a string." in response.text
