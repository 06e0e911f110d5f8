"""The REST layer as API clients see it: problem+json errors, input, auth, pages, OpenAPI.

A sample API (notes with an owner) is served by ``flaskstack.api`` on the
plugin's app: real PostgreSQL (each test in a rolled-back transaction) and
the shared Redis under the test's namespace. The ``sample_api`` fixture adds
its resources to the global API for one test and takes them away after it,
so other test modules' apps never see them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import typing as t
import uuid

import flask_restful
import openapi_spec_validator
import pytest
import sqlalchemy as sa
from conftest import resources_on_api
from flask import Blueprint, Flask, Response, abort, request
from pg_support import session_backend_state
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.exceptions import Forbidden, TooManyRequests

import flaskstack
from flaskstack import cache, db, rest
from flaskstack.auth import auth_required, current_user

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

PROBLEM = "application/problem+json"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


class RestNote(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "rest_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    owner_email: Mapped[str | None] = mapped_column(sa.String(320))
    amount: Mapped[decimal.Decimal | None] = mapped_column(sa.Numeric(10, 2))
    ref: Mapped[uuid.UUID] = mapped_column(sa.Uuid, default=uuid.uuid4)
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=lambda: dt.datetime.now(dt.timezone.utc)
    )


class Author(rest.Schema):
    """Who wrote a note."""

    name = rest.String(required=True, min_length=1)
    email = rest.Email()


class NewNote(rest.Schema):
    """A note to write."""

    unknown = "reject"

    title = rest.String(required=True, min_length=1, max_length=200)
    body = rest.String(default="")
    amount = rest.Decimal(places=2, nullable=True)
    tags = rest.List(rest.String(max_length=10), max_items=3)
    author = rest.Nested(Author)
    due = rest.DateTime()


class Search(rest.Schema):
    q = rest.String(required=True, min_length=2, description="Words in the title.")
    limit = rest.Integer(minimum=1, maximum=50, default=10)
    exact = rest.Boolean(default=False)


class Note(rest.Schema):
    """A note as the API writes it."""

    id = rest.Integer(dump_only=True)
    title = rest.String()
    body = rest.String()
    owner = rest.String(attribute="owner_email", nullable=True, dump_only=True)
    amount = rest.Decimal(nullable=True)
    ref = rest.UUID(dump_only=True)
    created_at = rest.DateTime(dump_only=True)


NOTE = Note


def _is_editor(user: t.Any) -> bool:
    return bool(user.email.startswith("editor"))


class Notes(rest.Resource):
    method_decorators = {"post": [auth_required]}  # noqa: RUF012

    @rest.paginated(NOTE)
    def get(self) -> t.Any:
        """List the notes, oldest first.

        Anyone may read them.
        """
        return db.select(RestNote).order_by(RestNote.id)

    @rest.body(NewNote)
    @rest.marshal_with(NOTE, status=201)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Write a note."""
        if body["title"] == "taken":
            raise rest.ValidationError({"title": ["has already been taken"]})
        note = RestNote(
            title=body["title"],
            body=body["body"],
            amount=body.get("amount"),
            owner_email=current_user.email,
        )
        db.session.add(note)
        db.session.commit()
        return note


class NoteItem(rest.Resource):
    method_decorators = {"delete": [auth_required(check=_is_editor)]}  # noqa: RUF012

    @rest.etag
    @rest.marshal_with(NOTE)
    def get(self, note_id: int) -> t.Any:
        """One note."""
        note = db.session.get(RestNote, note_id)
        if note is None:
            rest.abort(404, f"There is no note {note_id}.", note_id=note_id)
        return note

    def delete(self, note_id: int) -> t.Any:
        """Delete a note (editors only)."""
        db.session.execute(sa.delete(RestNote).where(RestNote.id == note_id))
        db.session.commit()
        return None, 204


class Me(rest.Resource):
    method_decorators = [auth_required]  # noqa: RUF012

    def get(self) -> t.Any:
        """Who is asking."""
        return {"email": current_user.email}


class NoteSearch(rest.Resource):
    @rest.query(Search)
    def get(self, query: dict[str, t.Any]) -> t.Any:
        """Search titles."""
        return {"query": query}


class Failures(rest.Resource):
    def get(self, kind: str) -> t.Any:
        """Fail in the way asked."""
        if kind == "exception":
            raise RuntimeError("database password is hunter2")
        if kind == "conflict":
            rest.abort(409, "The slug is taken.", slug="hello")
        if kind == "throttled":
            raise TooManyRequests(retry_after=30)
        if kind == "flask-abort":
            abort(403)
        if kind == "restful-abort":
            flask_restful.abort(404, message="Gone fishing.")
        return {"kind": kind}


CALLS = {"tags": 0}


class Tags(rest.Resource):
    @cache.cached(timeout=60, query_string=True)
    def get(self) -> t.Any:
        """The tags, cached."""
        CALLS["tags"] += 1
        return {"tags": ["a", "b"], "calls": CALLS["tags"]}


class CachedNote(rest.Resource):
    @cache.cached(timeout=60)
    @rest.marshal_with(NOTE)
    def get(self, note_id: int) -> t.Any:
        """One note, marshalled and cached."""
        CALLS["tags"] += 1
        return db.session.get(RestNote, note_id)


RESOURCES: list[tuple[type[t.Any], tuple[str, ...]]] = [
    (Notes, ("/notes",)),
    (NoteItem, ("/notes/<int:note_id>",)),
    (Me, ("/me",)),
    (NoteSearch, ("/search",)),
    (Failures, ("/fail/<kind>",)),
    (Tags, ("/tags",)),
    (CachedNote, ("/cached/<int:note_id>",)),
]


@pytest.fixture
def sample_api() -> Iterator[None]:
    """The sample resources on ``flaskstack.api``, for this test only."""
    with resources_on_api(RESOURCES):
        yield


@pytest.fixture
def flaskstack_config(flaskstack_config: dict[str, t.Any]) -> dict[str, t.Any]:
    return {
        **flaskstack_config,
        "PROPAGATE_EXCEPTIONS": False,
        "FLASKSTACK_API_MAX_PER_PAGE": 5,
        "FLASKSTACK_API_PER_PAGE": 2,
        "MAX_CONTENT_LENGTH": 4096,
    }


@pytest.fixture
def app(sample_api: None, app: Flask) -> Flask:
    """The plugin's app with the sample API and a page that fails."""

    @app.get("/page/boom")
    def boom_page() -> str:
        raise RuntimeError("page failure")

    return app


@pytest.fixture
def html_pages(app: Flask) -> Flask:
    """``app`` with HTML error pages of its own for 404 and 500."""

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        return "<h1>Our own 404 page</h1>", 404

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        return "<h1>Our own 500 page</h1>", 500

    return app


def assert_problem(response: TestResponse, status: int) -> dict[str, t.Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body: dict[str, t.Any] = response.get_json(force=True)
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def note_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(RestNote)) or 0)


# -- one error format ------------------------------------------------------


def test_every_error_under_the_prefix_is_problem_json_even_for_browsers(
    client: FlaskClient, api_client: Callable[..., FlaskClient], make_user: Callable[..., t.Any]
) -> None:
    token_client = api_client(make_user(email="writer@example.com"))
    cases: list[tuple[TestResponse, int]] = [
        (client.get("/api/no/such/thing", headers=BROWSER), 404),
        (client.get("/api", headers=BROWSER), 404),
        (client.put("/api/notes", headers=BROWSER), 405),
        (client.post("/api/notes", data={"title": "x"}, headers=BROWSER), 401),
        (client.get("/api/me", headers=BROWSER), 401),
        (client.get("/api/fail/conflict", headers=BROWSER), 409),
        (client.get("/api/fail/throttled", headers=BROWSER), 429),
        (client.get("/api/fail/flask-abort", headers=BROWSER), 403),
        (client.get("/api/fail/restful-abort", headers=BROWSER), 404),
        (client.get("/api/fail/exception", headers=BROWSER), 500),
        (client.get("/api/notes/999", headers=BROWSER), 404),
        (client.get("/api/notes?page=x", headers=BROWSER), 422),
        (token_client.post("/api/notes", data="{", content_type="application/json"), 400),
        (token_client.post("/api/notes", data={"title": "x"}), 415),
        (token_client.post("/api/notes", json={"title": 5}), 422),
        (token_client.post("/api/notes", json={"title": "x" * 5000}), 413),
    ]
    for response, status in cases:
        assert_problem(response, status)


def test_problem_details_keep_what_the_error_said_and_its_headers(client: FlaskClient) -> None:
    conflict = assert_problem(client.get("/api/fail/conflict"), 409)
    assert conflict["detail"] == "The slug is taken."
    assert conflict["slug"] == "hello"

    missing = assert_problem(client.get("/api/notes/999"), 404)
    assert missing["detail"] == "There is no note 999."
    assert missing["note_id"] == 999

    assert assert_problem(client.get("/api/fail/restful-abort"), 404)["detail"] == "Gone fishing."

    throttled = client.get("/api/fail/throttled")
    assert_problem(throttled, 429)
    assert throttled.headers["Retry-After"] == "30"

    not_allowed = client.delete("/api/me")
    assert_problem(not_allowed, 405)
    assert set(not_allowed.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}

    unauthorized = client.get("/api/me")
    assert_problem(unauthorized, 401)
    assert unauthorized.headers["WWW-Authenticate"].startswith("Bearer realm=")


def test_a_500_shows_only_the_request_id_which_the_log_line_carries(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/fail/exception")
    body = assert_problem(response, 500)
    text = response.get_data(as_text=True)
    assert "hunter2" not in text
    assert "RuntimeError" not in text
    assert "Traceback" not in text
    request_id = response.headers["X-Request-ID"]
    assert body["request_id"] == request_id
    records = [r for r in caplog.records if r.exc_info]
    assert len(records) == 1
    assert getattr(records[0], "request_id", None) == request_id
    assert "hunter2" in str(records[0].exc_info[1])  # type: ignore[index]


def test_pages_outside_the_prefix_keep_the_apps_html_handlers(
    html_pages: Flask, client: FlaskClient
) -> None:
    for path in ("/no/such/page", "/apiary", "/api-docs"):
        response = client.get(path, headers=BROWSER)
        assert response.status_code == 404
        assert response.mimetype == "text/html"
        assert "Our own 404 page" in response.get_data(as_text=True)
    boom = client.get("/page/boom", headers=BROWSER)
    assert boom.status_code == 500
    assert boom.get_data(as_text=True) == "<h1>Our own 500 page</h1>"


def test_the_apps_handlers_for_a_status_code_answer_under_the_prefix_too(
    html_pages: Flask, client: FlaskClient
) -> None:
    for path in ("/api/no/such/thing", "/api/notes/999", "/api/fail/restful-abort"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 404
        assert response.get_data(as_text=True) == "<h1>Our own 404 page</h1>"
    boom = client.get("/api/fail/exception")
    assert boom.status_code == 500
    assert boom.get_data(as_text=True) == "<h1>Our own 500 page</h1>"
    # Statuses the app has no handler for are still problem documents.
    assert_problem(client.get("/api/fail/conflict"), 409)
    assert_problem(client.delete("/api/me"), 405)


def test_csrf_failure_under_the_prefix_is_a_problem(
    app: Flask, client: FlaskClient, make_user: Callable[..., t.Any], login: t.Any
) -> None:
    login(client, make_user(email="writer@example.com"))
    response = client.post("/api/notes", json={"title": "cookie only"}, headers=BROWSER)
    body = assert_problem(response, 400)
    assert body["detail"] == "The CSRF token is missing."
    assert note_count(app) == 0


# -- input -----------------------------------------------------------------


@pytest.fixture
def writer(api_client: Callable[..., FlaskClient], make_user: Callable[..., t.Any]) -> FlaskClient:
    return api_client(make_user(email="writer@example.com"))


@pytest.mark.parametrize(
    ("data", "content_type", "status", "detail"),
    [
        ('{"title": "x",}', "application/json", 400, "not valid JSON: "),
        ('{"title": NaN}', "application/json", 400, "NaN is not valid JSON"),
        ("[" * 100_000, "application/json", 413, "exceeds the capacity limit"),
        ("", "application/json", 400, "The request body is empty"),
        (b'{"title": "\xff"}', "application/json", 400, "not valid UTF-8"),
        ('{"title": "x"}', "text/plain", 415, "Content-Type 'text/plain'"),
        ('{"title": "x"}', None, 415, "no Content-Type"),
        ('"a string"', "application/json", 422, "must be a JSON object, not a string"),
        ("[1, 2]", "application/json", 422, "must be a JSON object, not an array"),
    ],
)
def test_malformed_bodies_get_a_precise_4xx_and_write_nothing(
    app: Flask,
    writer: FlaskClient,
    data: str | bytes,
    content_type: str | None,
    status: int,
    detail: str,
) -> None:
    response = writer.post("/api/notes", data=data, content_type=content_type)
    assert detail in assert_problem(response, status)["detail"]
    assert note_count(app) == 0


def test_deeply_nested_json_is_refused(app: Flask, writer: FlaskClient) -> None:
    body = '{"title": ' + "[" * 1500 + "]" * 1500 + "}"
    response = writer.post("/api/notes", data=body, content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.mimetype == PROBLEM
    assert note_count(app) == 0


def test_invalid_fields_are_named_each_with_its_message(app: Flask, writer: FlaskClient) -> None:
    response = writer.post(
        "/api/notes",
        json={
            "body": 7,
            "amount": "12.345",
            "tags": ["ok", 3, "far too long a tag", "x"],
            "author": {"email": "nope"},
            "due": "2026-11-22T10:00:00",
            "colour": "red",
        },
    )
    errors = assert_problem(response, 422)["errors"]
    assert errors == {
        "title": ["This field is required."],
        "body": ["Must be a string."],
        "amount": ["Must have at most 2 digits after the decimal point."],
        "tags": ["Must have at most 3 item(s)."],
        "author.name": ["This field is required."],
        "author.email": ["Must be an e-mail address such as name@example.com."],
        "due": [
            "Must be an RFC 3339 date and time with a time zone, such as 2026-11-22T09:30:00Z."
        ],
        "colour": ["Unknown field."],
    }
    assert note_count(app) == 0

    items = writer.post("/api/notes", json={"title": "x", "tags": ["ok", 3, "far too long a tag"]})
    assert assert_problem(items, 422)["errors"] == {
        "tags.1": ["Must be a string."],
        "tags.2": ["Must be at most 10 characters long."],
    }


@pytest.mark.parametrize("title", ["nul\x00byte", "lone \ud800 surrogate"])
def test_text_no_database_can_store_is_refused(app: Flask, writer: FlaskClient, title: str) -> None:
    response = writer.post("/api/notes", json={"title": title})
    assert assert_problem(response, 422)["errors"] == {
        "title": ["Contains characters that are not allowed (NUL or invalid Unicode)."]
    }
    assert note_count(app) == 0


def test_marshalled_output_can_be_cached(app: Flask, writer: FlaskClient) -> None:
    note_id = writer.post("/api/notes", json={"title": "cache me"}).get_json()["id"]
    CALLS["tags"] = 0
    first = writer.get(f"/api/cached/{note_id}")
    second = writer.get(f"/api/cached/{note_id}")
    assert first.get_json() == second.get_json()
    assert first.get_json()["title"] == "cache me"
    assert CALLS["tags"] == 1


def test_a_view_can_report_its_own_field_errors(app: Flask, writer: FlaskClient) -> None:
    response = writer.post("/api/notes", json={"title": "taken"})
    assert assert_problem(response, 422)["errors"] == {"title": ["has already been taken"]}
    assert note_count(app) == 0


def test_query_parameters_are_validated_and_converted(client: FlaskClient) -> None:
    ok = client.get("/api/search?q=hello&limit=5&exact=yes&utm_source=mail")
    assert ok.status_code == 200
    assert ok.get_json() == {"query": {"q": "hello", "limit": 5, "exact": True}}
    assert client.get("/api/search?q=hi").get_json() == {
        "query": {"q": "hi", "limit": 10, "exact": False}
    }
    bad = client.get("/api/search?limit=500&exact=maybe&q=a&q=b")
    assert assert_problem(bad, 422)["errors"] == {
        "q": ["Give this parameter once."],
        "limit": ["Must be at most 50."],
        "exact": ["Must be true or false."],
    }


# -- auth and CSRF ---------------------------------------------------------


def test_token_authenticated_writes_need_no_csrf_token(app: Flask, writer: FlaskClient) -> None:
    created = writer.post("/api/notes", json={"title": "by token", "amount": "3.50"})
    assert created.status_code == 201
    note = created.get_json()
    assert note["owner"] == "writer@example.com"
    assert note_count(app) == 1


def test_session_authenticated_writes_need_the_csrf_header(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., t.Any],
    login: t.Any,
    csrf_token: Callable[[FlaskClient], str],
) -> None:
    login(client, make_user(email="writer@example.com"))
    refused = client.post("/api/notes", json={"title": "no header"})
    assert_problem(refused, 400)
    wrong = client.post("/api/notes", json={"title": "bad"}, headers={"X-CSRFToken": "forged"})
    assert_problem(wrong, 400)
    assert note_count(app) == 0

    token = csrf_token(client)
    created = client.post(
        "/api/notes", json={"title": "by session"}, headers={"X-CSRFToken": token}
    )
    assert created.status_code == 201
    assert created.get_json()["owner"] == "writer@example.com"
    assert note_count(app) == 1


def test_a_client_without_credentials_gets_401_not_a_csrf_error(
    app: Flask, client: FlaskClient
) -> None:
    body = assert_problem(client.post("/api/notes", json={"title": "anonymous"}), 401)
    assert "Authentication is required" in body["detail"]
    assert note_count(app) == 0


def test_current_user_is_the_same_for_tokens_and_sessions(
    client: FlaskClient, writer: FlaskClient, make_user: Callable[..., t.Any], login: t.Any
) -> None:
    assert writer.get("/api/me").get_json() == {"email": "writer@example.com"}
    login(client, make_user(email="reader@example.com"))
    assert client.get("/api/me").get_json() == {"email": "reader@example.com"}


def test_checks_and_permissions_give_403(
    app: Flask,
    writer: FlaskClient,
    api_client: Callable[..., FlaskClient],
    make_user: Callable[..., t.Any],
) -> None:
    note_id = writer.post("/api/notes", json={"title": "keep"}).get_json()["id"]
    assert_problem(writer.delete(f"/api/notes/{note_id}"), 403)
    assert note_count(app) == 1
    editor = api_client(make_user(email="editor@example.com"))
    deleted = editor.delete(f"/api/notes/{note_id}")
    assert deleted.status_code == 204
    assert deleted.data == b""
    assert note_count(app) == 0


def test_permission_hook_calls_the_user_models_has_permission(
    app: Flask, make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    calls: list[str] = []

    class Person:
        is_authenticated = True
        is_active = True

        def get_id(self) -> str:
            return "person"

        def has_permission(self, name: str) -> bool:
            calls.append(name)
            return name == "notes.read"

    app = make_app(flaskstack_config)

    @app.get("/read")
    @auth_required(permission="notes.read")
    def read() -> str:
        return "read"

    @app.get("/write")
    @auth_required(permission="notes.write")
    def write() -> str:
        return "written"

    import flask_login

    with app.test_request_context("/read"):
        flask_login.login_user(Person())  # type: ignore[arg-type]
        assert app.view_functions["read"]() == "read"
    with app.test_request_context("/write"):
        flask_login.login_user(Person())  # type: ignore[arg-type]
        with pytest.raises(Forbidden):
            app.view_functions["write"]()
    assert calls == ["notes.read", "notes.write"]


# -- pagination ------------------------------------------------------------


def add_notes(app: Flask, count: int) -> None:
    with app.app_context():
        db.session.add_all(RestNote(title=f"note {n}") for n in range(count))
        db.session.commit()


def test_pages_have_an_envelope_links_and_a_total(app: Flask, client: FlaskClient) -> None:
    add_notes(app, 7)
    first = client.get("/api/notes")
    assert first.status_code == 200
    body = first.get_json()
    assert [n["title"] for n in body["items"]] == ["note 0", "note 1"]
    assert {k: body[k] for k in ("page", "per_page", "total", "pages")} == {
        "page": 1,
        "per_page": 2,
        "total": 7,
        "pages": 4,
    }
    assert first.headers["X-Total-Count"] == "7"
    links = first.headers["Link"]
    assert '</api/notes?page=2&per_page=2>; rel="next"' in links
    assert '</api/notes?page=4&per_page=2>; rel="last"' in links
    assert 'rel="prev"' not in links

    # Other query arguments stay in every link, in order and encoded.
    links = client.get("/api/notes?sort=new%20first&page=2&tag=a&tag=b%26c").headers["Link"]
    assert links == (
        '</api/notes?sort=new+first&tag=a&tag=b%26c&page=1&per_page=2>; rel="first", '
        '</api/notes?sort=new+first&tag=a&tag=b%26c&page=1&per_page=2>; rel="prev", '
        '</api/notes?sort=new+first&tag=a&tag=b%26c&page=3&per_page=2>; rel="next", '
        '</api/notes?sort=new+first&tag=a&tag=b%26c&page=4&per_page=2>; rel="last"'
    )

    last = client.get("/api/notes?page=4").get_json()
    assert [n["title"] for n in last["items"]] == ["note 6"]
    assert client.get("/api/notes?page=9").get_json()["items"] == []


def test_per_page_stays_within_its_cap(app: Flask, client: FlaskClient) -> None:
    add_notes(app, 12)
    body = client.get("/api/notes?per_page=1000").get_json()
    assert body["per_page"] == 5
    assert len(body["items"]) == 5
    assert body["pages"] == 3
    for bad in ("-1", "two", "1.5"):
        response = client.get(f"/api/notes?per_page={bad}")
        assert assert_problem(response, 422)["errors"] == {
            "per_page": ["Must be a whole number of at least 1."]
        }
    response = client.get("/api/notes?per_page=0")
    assert assert_problem(response, 422)["errors"] == {"per_page": ["Must be at least 1."]}
    # However many digits: capped, as a large number is.
    assert client.get("/api/notes?per_page=99999999999").get_json()["per_page"] == 5


def test_paginate_helper_runs_on_a_select(app: Flask, client: FlaskClient) -> None:
    add_notes(app, 3)
    with app.test_request_context("/?page=2&per_page=2"):
        page = rest.paginate(sa.select(RestNote).order_by(RestNote.id.desc()))
    assert [note.title for note in page.items] == ["note 0"]
    assert (page.page, page.per_page, page.total, page.pages) == (2, 2, 3, 2)


def test_a_page_and_its_total_are_one_statement(app: Flask, client: FlaskClient) -> None:
    add_notes(app, 7)
    select = sa.select(RestNote).order_by(RestNote.id)
    sent: list[str] = []

    def record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        sent.append(statement)

    # page: (items, statements); only a page past the end needs a count of its own
    expected = {1: (2, 1), 3: (2, 1), 4: (1, 1), 9: (0, 2)}
    with app.app_context():
        engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            for number, (length, statements) in expected.items():
                sent.clear()
                with app.test_request_context(f"/?page={number}&per_page=2"):
                    page = rest.paginate(select)
                assert (len(page.items), page.total, page.pages) == (length, 7, 4), number
                assert all(isinstance(note, RestNote) for note in page.items), number
                selects = [sql for sql in sent if sql.lstrip().upper().startswith("SELECT")]
                assert len(selects) == statements, (number, sent)  # the plugin adds SAVEPOINTs
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        with app.test_request_context("/?page=1&per_page=5"):
            empty = rest.paginate(select.where(RestNote.title == "none such"))
        assert (empty.items, empty.total, empty.pages) == ([], 0, 1)


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_paginate_keeps_the_selects_shape_filters_and_groups(
    make_app: AppFactory, postgres_url: str, database: str
) -> None:
    url = postgres_url if database == "postgresql" else "sqlite://"
    app = make_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        RestNote.__table__.create(db.engine)
        db.session.add_all(RestNote(title=f"note {n % 3}") for n in range(8))
        db.session.commit()
        titles = sa.select(RestNote.title, RestNote.id).where(RestNote.id > 2).order_by(RestNote.id)
        with app.test_request_context("/?page=2&per_page=4"):
            page = rest.paginate(titles)
        assert (page.items, page.total) == (["note 0", "note 1"], 6)  # the first column
        groups = (
            sa.select(RestNote.title, sa.func.count())
            .group_by(RestNote.title)
            .order_by(RestNote.title)
        )
        with app.test_request_context("/?page=1&per_page=2"):
            page = rest.paginate(groups)
        assert (page.items, page.total, page.pages) == (["note 0", "note 1"], 3, 2)
        ids = sa.union(
            sa.select(RestNote.id).where(RestNote.id <= 2),
            sa.select(RestNote.id).where(RestNote.id >= 7),
        ).order_by("id")
        for number, expected in ((1, [1, 2, 7]), (2, [8]), (3, [])):
            with app.test_request_context(f"/?page={number}&per_page=3"):
                page = rest.paginate(ids)
            assert (page.items, page.total) == (expected, 4), number


class ProbedNotes(rest.Resource):
    """The notes, after the statement or change ``?before=`` asks for."""

    @rest.paginated(NOTE)
    def get(self) -> t.Any:
        before = request.args.get("before")
        if before == "statement":
            db.session.execute(sa.text("SET LOCAL statement_timeout = '5s'"))
        elif before == "add":
            db.session.add(RestNote(title="pending"))
        elif before == "begin":
            db.session.begin()
        return db.select(RestNote).order_by(RestNote.id)


def report_backend_state(app: Flask, url: str) -> None:
    """Make each response of ``app`` say, in ``X-Backend-State``, what the server (at ``url``)
    saw of the session's connection once the view had run."""

    @app.after_request
    def report(response: Response) -> Response:
        response.headers["X-Backend-State"] = session_backend_state(url)
        return response


def probed_notes_app(make_app: AppFactory, url: str, **config: t.Any) -> Flask:
    """An app (outside the plugin's transaction) with ``ProbedNotes`` and three notes.

    Each response says, in ``X-Backend-State``, what the server saw of the
    session's connection after the page was read.
    """
    with resources_on_api([(ProbedNotes, ("/probed",))]):
        app = make_app({"SQLALCHEMY_DATABASE_URI": url, **config})
    report_backend_state(app, url)
    with app.app_context():
        RestNote.__table__.create(db.engine)
    add_notes(app, 3)
    return app


def titles_on_the_server(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(RestNote.title).order_by(RestNote.id)))


def test_a_paginated_list_read_first_is_one_statement_outside_a_transaction(
    make_app: AppFactory, postgres_url: str
) -> None:
    app = probed_notes_app(make_app, postgres_url)
    client = app.test_client()
    sent: list[str] = []

    def record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        sent.append(statement)

    assert client.get("/api/probed").status_code == 200  # warm-up
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get("/api/probed?per_page=2")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 200, response.text
    body = response.get_json()
    assert [note["title"] for note in body["items"]] == ["note 0", "note 1"]
    assert (body["total"], body["pages"]) == (3, 2)
    assert len(sent) == 1, sent
    assert response.headers["X-Backend-State"] == "idle"  # no BEGIN was sent, none is open


@pytest.mark.parametrize("before", ["statement", "add", "begin"])
def test_a_view_that_began_its_transaction_has_its_page_read_in_it(
    make_app: AppFactory, postgres_url: str, before: str
) -> None:
    app = probed_notes_app(make_app, postgres_url)
    response = app.test_client().get(f"/api/probed?before={before}&per_page=5")
    assert response.status_code == 200, response.text
    assert response.headers["X-Backend-State"] == "idle in transaction"
    titles = [note["title"] for note in response.get_json()["items"]]
    assert titles == ["note 0", "note 1", "note 2"] + (["pending"] if before == "add" else [])
    assert titles_on_the_server(app) == ["note 0", "note 1", "note 2"]  # rolled back


def test_at_a_chosen_isolation_level_the_page_is_read_in_a_transaction(
    make_app: AppFactory, postgres_url: str
) -> None:
    app = probed_notes_app(
        make_app,
        postgres_url,
        SQLALCHEMY_ENGINE_OPTIONS={"isolation_level": "REPEATABLE READ"},
    )
    response = app.test_client().get("/api/probed")
    assert response.status_code == 200, response.text
    assert response.headers["X-Backend-State"] == "idle in transaction"


def test_under_the_plugin_a_paginated_list_reads_in_the_tests_transaction(
    app: Flask, client: FlaskClient, flaskstack_database_url: str
) -> None:
    add_notes(app, 3)
    report_backend_state(app, flaskstack_database_url)
    response = client.get("/api/notes?per_page=5")
    assert response.status_code == 200, response.text
    assert response.get_json()["total"] == 3
    assert response.headers["X-Backend-State"] == "idle in transaction"


# -- serialisation, ETags, caching ----------------------------------------


def test_models_serialise_to_json_types_clients_expect(writer: FlaskClient) -> None:
    note = writer.post("/api/notes", json={"title": "money", "amount": 1234.5}).get_json()
    assert note["amount"] == "1234.50"
    assert uuid.UUID(note["ref"])
    created = dt.datetime.fromisoformat(note["created_at"])
    assert created.tzinfo is not None
    assert abs(dt.datetime.now(dt.timezone.utc) - created) < dt.timedelta(minutes=5)


def test_etag_answers_if_none_match_with_304(
    app: Flask, client: FlaskClient, writer: FlaskClient
) -> None:
    note_id = writer.post("/api/notes", json={"title": "tagged"}).get_json()["id"]
    first = client.get(f"/api/notes/{note_id}")
    assert first.status_code == 200
    tag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"

    again = client.get(f"/api/notes/{note_id}", headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.data == b""

    with app.app_context():
        db.session.execute(sa.update(RestNote).values(title="changed"))
        db.session.commit()
    changed = client.get(f"/api/notes/{note_id}", headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != tag
    assert changed.get_json()["title"] == "changed"


def test_a_resource_can_be_cached_per_query_string(client: FlaskClient) -> None:
    CALLS["tags"] = 0
    assert client.get("/api/tags").get_json()["calls"] == 1
    assert client.get("/api/tags").get_json()["calls"] == 1
    assert client.get("/api/tags?lang=fr").get_json()["calls"] == 2
    assert client.get("/api/tags?lang=fr").get_json()["calls"] == 2


# -- OpenAPI ---------------------------------------------------------------


def test_the_openapi_document_validates_and_lists_every_resource(client: FlaskClient) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    openapi_spec_validator.validate(document)  # raises on any violation of OpenAPI 3.1
    assert document["openapi"] == "3.1.0"

    operations = {(path, method) for path, item in document["paths"].items() for method in item} - {
        (path, "parameters") for path in document["paths"]
    }
    # flaskstack's own account endpoints (tests/test_auth_accounts.py) come with the auth pages.
    operations = {
        (path, method) for path, method in operations if not path.startswith("/api/auth/")
    }
    assert operations == {
        ("/api/notes", "get"),
        ("/api/notes", "post"),
        ("/api/notes/{note_id}", "get"),
        ("/api/notes/{note_id}", "delete"),
        ("/api/me", "get"),
        ("/api/search", "get"),
        ("/api/fail/{kind}", "get"),
        ("/api/tags", "get"),
        ("/api/cached/{note_id}", "get"),
    }
    post = document["paths"]["/api/notes"]["post"]
    assert post["summary"] == "Write a note."
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NewNote"
    }
    assert "201" in post["responses"]
    assert {"422", "415", "401"} <= set(post["responses"])
    assert post["security"]
    new_note = document["components"]["schemas"]["NewNote"]
    assert new_note["required"] == ["title"]
    assert new_note["properties"]["author"] == {"$ref": "#/components/schemas/Author"}
    assert "Author" in document["components"]["schemas"]

    listing = document["paths"]["/api/notes"]["get"]
    assert "security" not in listing
    assert listing["description"] == "Anyone may read them."
    assert {p["name"] for p in listing["parameters"]} == {"page", "per_page"}
    search = document["paths"]["/api/search"]["get"]
    assert {p["name"]: p["required"] for p in search["parameters"]} == {
        "q": True,
        "limit": False,
        "exact": False,
    }
    item = document["paths"]["/api/notes/{note_id}"]
    assert item["parameters"][0]["schema"]["type"] == "integer"
    assert "security" in item["delete"]
    assert "304" in item["get"]["responses"]


# -- registration ------------------------------------------------------------


class Ping(rest.Resource):
    def get(self) -> t.Any:
        """Answer."""
        return {"pong": True}


def test_resources_added_after_init_app_are_served(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    local = rest.Api(prefix="/v2")
    first = make_app(flaskstack_config)
    local.init_app(first)
    local.add_resource(Ping, "/ping")  # the factory's "from . import api" after init_app
    second = make_app(flaskstack_config)
    local.init_app(second)
    for app in (first, second):
        response = app.test_client().get("/v2/ping")
        assert response.get_json() == {"pong": True}
        assert_problem(app.test_client().get("/v2/missing"), 404)


def test_an_api_on_a_blueprint_has_its_own_prefix_and_document(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    blueprint = Blueprint("partner", __name__, url_prefix="/partner")
    partner_api = rest.Api(blueprint, prefix="/v1")
    partner_api.add_resource(Ping, "/ping")
    for _ in range(2):  # several apps in one process share the blueprint
        app = make_app(flaskstack_config)
        app.register_blueprint(blueprint)
        client = app.test_client()
        assert client.get("/partner/v1/ping").get_json() == {"pong": True}
        assert_problem(client.get("/partner/v1/nope", headers=BROWSER), 404)
        document = client.get("/partner/v1/openapi.json").get_json()
        openapi_spec_validator.validate(document)
        assert list(document["paths"]) == ["/partner/v1/ping"]


def test_a_blueprint_api_needs_a_prefix_and_a_set_up_app(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    bare = Blueprint("bare", __name__)
    rest.Api(bare).add_resource(Ping, "/ping")
    with pytest.raises(ValueError, match="has no URL prefix"):
        make_app(flaskstack_config).register_blueprint(bare)
    early = Blueprint("early", __name__, url_prefix="/early")
    rest.Api(early).add_resource(Ping, "/ping")
    plain = Flask("plain")
    with pytest.raises(LookupError, match=r"register it after flaskstack\.init_app"):
        plain.register_blueprint(early)


def test_an_endpoint_clash_is_explained(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    app = make_app(flaskstack_config)
    app.add_url_rule("/ping-page", endpoint="ping", view_func=lambda: "page")
    with pytest.raises(ValueError, match=r"pass endpoint='\.\.\.' to add_resource"):
        rest.Api(app, prefix="/v3").add_resource(Ping, "/ping")


def test_api_prefix_setting_is_validated(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    for bad in ("api", "/api/", "/", "/a pi"):
        with pytest.raises(flaskstack.ConfigError, match="FLASKSTACK_API_PREFIX"):
            make_app({**flaskstack_config, "FLASKSTACK_API_PREFIX": bad})
    app = make_app({**flaskstack_config, "FLASKSTACK_API_PREFIX": "/rest/v1"})
    assert_problem(app.test_client().get("/rest/v1/nothing"), 404)


# -- request ids and logs -------------------------------------------------------


def test_request_ids_are_taken_from_proxies_only_when_well_formed(client: FlaskClient) -> None:
    given = client.get("/api/notes", headers={"X-Request-ID": "req-1234.abc"})
    assert given.headers["X-Request-ID"] == "req-1234.abc"
    for forged in ("a b", "x" * 201, "<script>", "line\\nbreak"):
        response = client.get("/api/notes", headers={"X-Request-ID": forged})
        assert response.headers["X-Request-ID"] != forged
        assert len(response.headers["X-Request-ID"]) == 32
    pages = client.get("/no/such/page")
    assert len(pages.headers["X-Request-ID"]) == 32


def test_production_logs_are_json_lines_with_the_request_id(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(
        {
            "FLASKSTACK_LOG_FORMAT": "json",
            "PROPAGATE_EXCEPTIONS": False,
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
        },
        name="jsonlogs",
    )

    @app.get("/api/explode")
    def explode() -> str:
        raise KeyError("secret key material")

    response = app.test_client().get("/api/explode")
    assert_problem(response, 500)
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    assert len(lines) == 1
    line = lines[0]
    assert line["level"] == "ERROR"
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["path"] == "/api/explode"
    assert "KeyError" in line["exception"]


# -- marshal -------------------------------------------------------------------


class _Author:
    def __init__(self) -> None:
        self.name = "Ada"
        self.joined = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


class _Post:
    def __init__(self, number: int) -> None:
        self.id = number
        self.title = f"post {number}"
        self.body = None
        self.author = _Author()
        self.tags = ["a", "b"]
        self.score = decimal.Decimal("12.50")


def test_marshal_gives_what_flask_restful_gives() -> None:
    """The deprecated dicts of fields still write what Flask-RESTful writes, with a warning."""
    from flask_restful import fields as restful_fields
    from flask_restful import marshal as restful_marshal

    with pytest.warns(DeprecationWarning, match=r"rest\.fields\.\w+ is deprecated.*rest\.Schema"):
        shape = _legacy_shape(restful_fields)
    posts = [_Post(1), _Post(2)]
    as_dicts = [{"id": 3, "title": "from a dict", "tags": [], "author": {"name": "Bo"}}]

    deprecated = r"rest\.marshal\(data, fields\) with a dict of Flask-RESTful fields"
    for data in (posts, posts[0], as_dicts, as_dicts[0]):
        expected = json.loads(json.dumps(restful_marshal(data, shape)))
        with pytest.warns(DeprecationWarning, match=deprecated):
            assert rest.marshal(data, shape) == expected
        with pytest.warns(DeprecationWarning, match=deprecated):
            assert rest.marshal(data, shape) == expected  # from the cached plan
        with pytest.warns(DeprecationWarning, match=deprecated):
            assert rest.marshal(data, shape, envelope="data") == {"data": expected}

    with pytest.warns(DeprecationWarning, match=r"rest\.fields\.String is deprecated"):
        shape["extra"] = rest.fields.String(attribute="title")  # a dict changed after use
    with pytest.warns(DeprecationWarning, match=deprecated):
        assert rest.marshal(posts[0], shape)["extra"] == "post 1"


def _legacy_shape(restful_fields: t.Any) -> dict[str, t.Any]:
    return {
        "id": rest.fields.Integer,
        "headline": rest.fields.String(attribute="title"),
        "body": rest.fields.String(default="(empty)"),
        "author_name": rest.fields.String(attribute="author.name"),
        "shout": rest.fields.String(attribute=lambda post: str(post).upper()),
        "author": rest.fields.Nested({"name": rest.fields.String, "joined": rest.fields.DateTime}),
        "tags": rest.fields.List(rest.fields.String),
        "score": rest.fields.Decimal,
        "missing": rest.fields.Integer(default=0),
        "grouped": {"first_tag": rest.fields.String(attribute="tags.0"), "id": restful_fields.Raw},
    }
