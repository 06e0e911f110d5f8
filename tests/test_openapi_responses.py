"""The responses of the OpenAPI document: what the server can answer, and nothing else.

Each operation lists every error flaskstack itself can answer for it, as an
``application/problem+json`` document whose schema (the ``Problem``
component, its ``status`` fixed to the HTTP status) the server's real
problems validate against, with the headers the server sends (``WWW-Authenticate``
on 401, ``Retry-After`` on 503, ``ETag``). A number the client sent that
the database column cannot hold is refused 422 (in a body or a query
string), naming the field, never a 500.
"""

from __future__ import annotations

import functools
import logging
import typing as t

import jsonschema
import openapi_spec_validator
import pytest
import sqlalchemy as sa
from conftest import resources_on_api
from loopback import free_port
from sqlalchemy.orm import Mapped, mapped_column

from flaskstack import db, rest
from flaskstack.auth import auth_required
from flaskstack.rest._meta import describe

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import AppFactory
    from flask import Flask
    from werkzeug.test import TestResponse

PROBLEM = "application/problem+json"
WIDE = [2**31, -(2**31) - 1, 2**40, 2**63 - 1]


class Counter(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "openapi_responses_counters"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    count: Mapped[int] = mapped_column(sa.Integer)  # int4 on PostgreSQL


class NewCounter(rest.Schema):
    count = rest.Integer(required=True)  # 64-bit bounds: wider than the column


class CountQuery(rest.Schema):
    count = rest.Integer(required=True)


class COUNTER(rest.Schema):
    id = rest.Integer()
    count = rest.Integer()


class Counters(rest.Resource):
    method_decorators = {"put": [auth_required]}  # noqa: RUF012

    @rest.marshal_with(COUNTER)
    def get(self) -> t.Any:
        """The first counter."""
        return db.session.scalars(sa.select(Counter).order_by(Counter.id)).first()

    @rest.body(NewCounter)
    @rest.marshal_with(COUNTER, status=201)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Add a counter."""
        counter = Counter(count=body["count"])
        db.session.add(counter)
        db.session.commit()
        return counter

    @rest.body(NewCounter)
    def put(self, body: dict[str, t.Any]) -> t.Any:
        """Replace the counters (signed-in users)."""
        return "", 204


class CounterFromQuery(rest.Resource):
    @rest.query(CountQuery)
    def post(self, query: dict[str, t.Any]) -> t.Any:
        """Add a counter from the query string."""
        db.session.add(Counter(count=query["count"]))
        db.session.commit()
        return "", 204


class Doubled(rest.Resource):
    def post(self) -> t.Any:
        """Store a number the app computes itself: its overflow is the app's bug."""
        db.session.add(Counter(count=2**40))
        db.session.commit()
        return "", 204


class CounterItem(rest.Resource):
    @rest.etag
    @rest.marshal_with(COUNTER)
    def get(self, counter_id: int) -> t.Any:
        """One counter."""
        return db.get_or_404(Counter, counter_id)


@pytest.fixture
def resources() -> Iterator[None]:
    with resources_on_api(
        [
            (Counters, ("/counters",)),
            (CounterFromQuery, ("/counters/from-query",)),
            (Doubled, ("/counters/doubled",)),
            (CounterItem, ("/counters/<int:counter_id>",)),
        ]
    ):
        yield


def _make(make_app: AppFactory, url: str, **config: t.Any) -> Flask:
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "PROPAGATE_EXCEPTIONS": False,
            "MAX_CONTENT_LENGTH": 1000,
            "WTF_CSRF_ENABLED": False,
            **config,
        }
    )
    return app


@pytest.fixture
def counter_app(make_app: AppFactory, postgres_url: str, resources: None) -> Flask:
    app = _make(make_app, postgres_url)
    with app.app_context():
        Counter.__table__.create(db.engine)
        db.session.add(Counter(count=1))  # id 1
        db.session.commit()
    return app


def _document(app: Flask) -> dict[str, t.Any]:
    document: dict[str, t.Any] = app.test_client().get("/api/openapi.json").get_json()
    return document


def _counters(app: Flask) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Counter.count).order_by(Counter.id)))


# -- what each operation lists ---------------------------------------------------------


def test_each_operation_lists_the_errors_its_declarations_make_possible(
    counter_app: Flask,
) -> None:
    document = _document(counter_app)
    openapi_spec_validator.validate(document)
    paths = document["paths"]
    everywhere = {"500", "503", "default"}
    assert set(paths["/api/counters"]["get"]["responses"]) == {"200"} | everywhere
    assert (
        set(paths["/api/counters"]["post"]["responses"])
        == {
            "201",
            "400",
            "413",
            "415",
            "422",
        }
        | everywhere
    )
    assert (
        set(paths["/api/counters"]["put"]["responses"])
        == {
            "2XX",
            "400",
            "401",
            "403",
            "413",
            "415",
            "422",
        }
        | everywhere
    )
    assert (
        set(paths["/api/counters/from-query"]["post"]["responses"])
        == {
            "2XX",
            "400",
            "422",
        }
        | everywhere
    )
    assert (
        set(paths["/api/counters/{counter_id}"]["get"]["responses"])
        == {
            "200",
            "304",
            "404",
        }
        | everywhere
    )


def test_errors_declare_their_headers_and_status(counter_app: Flask) -> None:
    paths = _document(counter_app)["paths"]
    put = paths["/api/counters"]["put"]["responses"]
    assert put["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert put["503"]["headers"]["Retry-After"]["required"] is True
    schema = put["422"]["content"][PROBLEM]["schema"]
    assert schema["allOf"][0] == {"$ref": "#/components/schemas/Problem"}
    assert schema["allOf"][1]["properties"]["status"] == {"const": 422}
    item = paths["/api/counters/{counter_id}"]["get"]["responses"]
    assert item["200"]["headers"]["ETag"]["required"] is True
    assert item["304"]["headers"]["ETag"]["required"] is True
    assert "content" not in item["304"]


# -- the server answers as declared ----------------------------------------------------


def _assert_as_declared(
    document: dict[str, t.Any], path: str, method: str, response: TestResponse
) -> None:
    """``response`` has a status, headers and body the document declares for the operation."""
    responses = document["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in responses, (status, sorted(responses))
    declared = responses[status]
    for name, header in declared.get("headers", {}).items():
        if header.get("required"):
            assert response.headers.get(name), f"{status} without {name}"
    if "content" not in declared:
        assert response.get_data() == b""
        return
    (media,) = declared["content"]
    assert response.mimetype == media
    root = {"components": document["components"], **declared["content"][media]["schema"]}
    jsonschema.Draft202012Validator(root).validate(response.get_json())


def test_real_problems_match_what_the_document_declares(
    counter_app: Flask, make_app: AppFactory
) -> None:
    document = _document(counter_app)
    client = counter_app.test_client()
    json_headers = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, TestResponse]] = [
        ("/api/counters", "post", client.post("/api/counters", data="{", headers=json_headers)),
        (
            "/api/counters",
            "post",
            client.post("/api/counters", data="1" * 2000, headers=json_headers),
        ),
        ("/api/counters", "post", client.post("/api/counters", data="count=1")),
        ("/api/counters", "post", client.post("/api/counters", json={"count": "many"})),
        (
            "/api/counters",
            "post",
            client.post(
                "/api/counters",
                json={"count": 2},
            ),
        ),
        ("/api/counters", "put", client.put("/api/counters", json={"count": 2})),
        ("/api/counters/from-query", "post", client.post("/api/counters/from-query")),
        ("/api/counters/{counter_id}", "get", client.get("/api/counters/99")),
        ("/api/counters/{counter_id}", "get", client.get("/api/counters/1")),
        ("/api/counters/doubled", "post", client.post("/api/counters/doubled")),
    ]
    etag = client.get("/api/counters/1").headers["ETag"]
    not_modified = client.get("/api/counters/1", headers={"If-None-Match": etag})
    cases.append(("/api/counters/{counter_id}", "get", not_modified))
    statuses = [response.status_code for *_, response in cases]
    assert statuses == [400, 413, 415, 422, 201, 401, 422, 404, 200, 500, 304]
    for path, method, response in cases:
        _assert_as_declared(document, path, method, response)

    # No database: 503 with Retry-After, as declared.
    down = _make(make_app, f"postgresql://flaskstack@127.0.0.1:{free_port()}/nothing")
    unavailable = down.test_client().get("/api/counters")
    assert unavailable.status_code == 503
    _assert_as_declared(_document(down), "/api/counters", "get", unavailable)


# -- numbers the column cannot hold ----------------------------------------------------


@pytest.mark.parametrize("value", WIDE)
def test_a_body_number_the_column_cannot_hold_is_422_naming_the_field(
    counter_app: Flask, value: int, caplog: pytest.LogCaptureFixture
) -> None:
    client = counter_app.test_client()
    with caplog.at_level(logging.ERROR):
        response = client.post("/api/counters", json={"count": value})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    bound = "at most 2147483647" if value > 0 else "at least -2147483648"
    assert response.get_json()["errors"] == {
        "count": [f"Must be {bound}: the database stores it in 32 bits."]
    }
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Nothing was written, and the connection is usable again.
    assert _counters(counter_app) == [1]
    assert client.post("/api/counters", json={"count": 2}).status_code == 201


def test_a_query_number_the_column_cannot_hold_is_422_naming_the_parameter(
    counter_app: Flask,
) -> None:
    response = counter_app.test_client().post(f"/api/counters/from-query?count={2**40}")
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["errors"] == {
        "count": ["Must be at most 2147483647: the database stores it in 32 bits."]
    }
    assert _counters(counter_app) == [1]


def test_a_number_the_app_computed_itself_stays_a_500(
    counter_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    # The client sent a wide number too, but not the one the statement stored.
    response = counter_app.test_client().post(f"/api/counters/doubled?n={2**41}")
    assert response.status_code == 500
    assert "errors" not in response.get_json()
    assert any(record.exc_info for record in caplog.records)


def test_with_rate_limits_on_429_is_declared_and_answered_so(
    make_app: AppFactory, postgres_url: str, resources: None
) -> None:
    app = _make(
        make_app,
        postgres_url,
        FLASKSTACK_RATE_LIMITS=True,
        FLASKSTACK_RATE_LIMIT_API_DEFAULT="1/minute",
    )
    with app.app_context():
        Counter.__table__.create(db.engine)
    document = _document(app)
    client = app.test_client()
    assert client.get("/api/counters").status_code == 200
    limited = client.get("/api/counters")
    assert limited.status_code == 429
    _assert_as_declared(document, "/api/counters", "get", limited)


class Claims(rest.Resource):
    @functools.partial(describe, statuses=("409",))
    def post(self) -> t.Any:
        """Claim a name; a name already claimed is 409."""
        rest.abort(409, "The name is claimed already.")


def test_a_declared_409_is_described(make_app: AppFactory, postgres_url: str) -> None:
    with resources_on_api([(Claims, ("/claims",))]):
        app = _make(make_app, postgres_url)
        document = _document(app)
        answer = app.test_client().post("/api/claims", json={})
    openapi_spec_validator.validate(document)
    conflict = document["paths"]["/api/claims"]["post"]["responses"]["409"]
    assert "conflicts" in conflict["description"]
    assert answer.status_code == 409
    assert answer.mimetype == "application/problem+json"
