"""Values the database cannot hold, and an OpenAPI document that says what validation does.

Ids and numbers a client can send but no column can hold are 404 in a path
and 4xx naming the bound in a query or body, on SQLite and on PostgreSQL
(where ``db.Integer`` is a 32-bit ``integer``), never a 500. The OpenAPI
document's schemas accept exactly what the validators accept.
"""

from __future__ import annotations

import logging
import re
import typing as t

import jsonschema
import pytest
import sqlalchemy as sa
from conftest import resources_on_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Mapped, mapped_column

from flaskstack import db, rest
from flaskstack.rest._inputs import Invalid

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import AppFactory
    from flask import Flask

PROBLEM = "application/problem+json"
BEYOND = [2**31, 2**63 - 1, 2**63, 10**30]


class Gadget(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "defects_gadgets"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)  # int4 on PostgreSQL
    name: Mapped[str] = mapped_column(sa.String(50))


class GadgetOut(rest.Schema):
    id = rest.Integer()
    name = rest.String()


class GadgetItem(rest.Resource):
    def get(self, gadget_id: int) -> t.Any:
        gadget = db.session.get(Gadget, gadget_id)
        if gadget is None:
            rest.abort(404, f"There is no gadget {gadget_id}.")
        return {"id": gadget.id, "name": gadget.name}

    def delete(self, gadget_id: int) -> t.Any:
        gadget = db.session.get(Gadget, gadget_id)
        if gadget is None:
            rest.abort(404, f"There is no gadget {gadget_id}.")
        db.session.delete(gadget)
        db.session.commit()
        return "", 204


class Numbers(rest.Schema):
    n = rest.Integer()
    small = rest.Integer(bits=32, minimum=0)  # a 32-bit column: int4 on PostgreSQL


class Echo(rest.Resource):
    @rest.query(Numbers)
    def get(self, query: dict[str, t.Any]) -> t.Any:
        return query

    @rest.body(Numbers)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        return body


class Pages(rest.Resource):
    @rest.paginated(GadgetOut)
    def get(self) -> t.Any:
        return sa.select(Gadget).order_by(Gadget.id)


@pytest.fixture
def resources() -> Iterator[None]:
    with resources_on_api(
        [(GadgetItem, ("/gadgets/<int:gadget_id>",)), (Echo, ("/echo",)), (Pages, ("/gadgets",))]
    ):
        yield


@pytest.fixture(params=["sqlite", "postgresql"])
def gadget_app(request: pytest.FixtureRequest, make_app: AppFactory, resources: None) -> Flask:
    config: dict[str, t.Any] = {"WTF_CSRF_ENABLED": False, "PROPAGATE_EXCEPTIONS": False}
    if request.param == "postgresql":
        config["SQLALCHEMY_DATABASE_URI"] = request.getfixturevalue("postgres_url")
    app = make_app(config)

    @app.get("/page/gadgets/<int:gadget_id>")
    def gadget_page(gadget_id: int) -> str:
        return db.get_or_404(Gadget, gadget_id).name

    with app.app_context():
        Gadget.__table__.create(db.engine)
        db.session.add(Gadget(id=1, name="one"))
        db.session.commit()
    return app


@pytest.mark.parametrize("value", BEYOND)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_path_ids_no_column_can_hold_are_404_not_500(
    gadget_app: Flask, method: str, value: int, caplog: pytest.LogCaptureFixture
) -> None:
    client = gadget_app.test_client()
    with caplog.at_level(logging.ERROR):
        response = client.open(f"/api/gadgets/{value}", method=method)
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The connection is still usable afterwards.
    assert client.get("/api/gadgets/1").get_json() == {"id": 1, "name": "one"}


@pytest.mark.parametrize("value", BEYOND)
def test_the_apps_own_pages_get_the_same_404(gadget_app: Flask, value: int) -> None:
    client = gadget_app.test_client()
    assert client.get(f"/page/gadgets/{value}").status_code == 404
    assert client.get("/page/gadgets/1").get_data(as_text=True) == "one"


def test_query_and_body_integers_beyond_64_bits_name_the_bound(gadget_app: Flask) -> None:
    client = gadget_app.test_client()
    huge = "9" * 25
    response = client.get(f"/api/echo?n={huge}&small=2147483648")
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "n": ["Must be at most 9223372036854775807."],
        "small": ["Must be at most 2147483647."],
    }
    response = client.get(f"/api/echo?n=-{huge}")
    assert response.get_json()["errors"] == {"n": ["Must be at least -9223372036854775808."]}
    assert client.get("/api/echo?n=9223372036854775807").get_json() == {"n": 2**63 - 1}
    response = client.post("/api/echo", json={"n": 2**63, "small": -1})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "n": ["Must be at most 9223372036854775807."],
        "small": ["Must be at least 0."],
    }


def test_long_page_numbers_get_an_honest_message_and_the_bound(gadget_app: Flask) -> None:
    client = gadget_app.test_client()
    response = client.get("/api/gadgets?page=" + "1" * 25)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"page": ["Must be at most 2147483647."]}
    response = client.get("/api/gadgets?page=0")
    assert response.get_json()["errors"] == {"page": ["Must be at least 1."]}
    response = client.get("/api/gadgets?per_page=" + "7" * 25)
    assert response.status_code == 200
    assert response.get_json()["per_page"] == gadget_app.config["FLASKSTACK_API_MAX_PER_PAGE"]
    document = client.get("/api/openapi.json").get_json()
    parameters = document["paths"]["/api/gadgets"]["get"]["parameters"]
    page = next(p for p in parameters if p["name"] == "page")
    assert page["schema"]["maximum"] == 2**31 - 1
    item = document["paths"]["/api/gadgets/{gadget_id}"]["parameters"][0]
    assert item["schema"]["maximum"] == 2**63 - 1


# -- the OpenAPI document agrees with validation ---------------------------------------------


class Sample(rest.Schema):
    """The kinds of fields the reference app declares: patterns, lengths, bounds, choices."""

    username = rest.String(
        strip=True, min_length=1, max_length=40, pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}"
    )
    title = rest.String(strip=True, min_length=1, max_length=20)
    body = rest.String(min_length=1)
    image = rest.Url(nullable=True, blank=True, max_length=500)
    website = rest.Url()
    email = rest.Email()
    password = rest.String(min_length=8, max_length=64)
    limit = rest.Integer(minimum=1)
    offset = rest.Integer(minimum=0)
    id = rest.Integer(bits=32, minimum=0)
    order = rest.String(choices=["new", "old"])
    kind = rest.String(strip=True, choices=["a b", "c"])
    code = rest.String(strip=True, pattern=r"[a-z]*")
    ref = rest.UUID()
    at = rest.DateTime()
    day = rest.Date()


def _validator(schema: dict[str, t.Any]) -> jsonschema.Draft202012Validator:
    """A validator that asserts ``format`` too (calendar dates, e-mail, UUIDs), as clients may."""
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _accepted_by_field(field: rest.Field, value: object) -> bool:
    if value is None:
        return field.nullable
    try:
        field.load(value)
    except Invalid:
        return False
    return True


# Whitespace (which strip removes before the length is checked), NUL and the
# text around them: the document says what validation does with each.
_TEXT = st.text(
    st.one_of(
        st.characters(blacklist_categories=("Cs",)),
        st.sampled_from(" \t\n\x1c\x85\xa0\u2028\u3000\ufeff\x00ab@.:/%é"),
    ),
    max_size=60,
)


def _values(schema: dict[str, t.Any]) -> st.SearchStrategy[object]:
    candidates: list[st.SearchStrategy[object]] = [
        _TEXT,
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([-(2**63) - 1, -(2**63), 0, 1, 2**31 - 1, 2**31, 2**63 - 1, 2**63]),
        st.booleans(),
        st.none(),
    ]
    pattern = schema.get("pattern")
    if pattern:
        matching = st.from_regex(pattern)
        candidates.append(matching)
        candidates.append(matching.map(lambda s: s + "\n"))
        candidates.append(matching.map(lambda s: f"  {s} "))
    if "enum" in schema:
        candidates.append(st.sampled_from(schema["enum"]))
    return st.one_of(candidates)


_EDGES: dict[str, list[object]] = {
    "username": ["a", " a ", "\u3000a", "a\x1c", "a" * 40, " " + "a" * 40 + " ", "a" * 41, " ", ""],
    "title": ["x", "  ", "", " x ", "x" * 20, " " + "x" * 20 + "\n", "x" * 21, "x\x00", "x \ufeff"],
    "image": ["", " ", "http://a", "HTTPS://a.b/c?d#e", "http://a b", "http://ä", " http://a",
              "ftp://a", "http://", "http://a:80/%41", "http://a/%4", "javascript:alert(1)"],
    "website": ["", "http://a", "https://user:pw@host/p/a;t?q=1&r[]=2#f"],
    "email": ["a@b.c", " a@b.c ", "a@b", "a b@c.d", "a@b.c\x85", "@b.c", "a@@b.c", "a@b.c\n"],
    "order": ["new", "old", " new", "NEW", ""],
    "kind": ["a b", " a b ", "a  b", "c", " c\t", "", "a", "b"],
    "code": ["", " ", "abc", " abc ", "a c", "ABC", "\x00"],
    "ref": ["6f1c2b0e-8d3a-4c9b-a1f2-3e4d5c6b7a80", "6F1C2B0E-8D3A-4C9B-A1F2-3E4D5C6B7A80",
            "{6f1c2b0e-8d3a-4c9b-a1f2-3e4d5c6b7a80}", "6f1c2b0e8d3a4c9ba1f23e4d5c6b7a80"],
    "at": ["2026-11-22T09:30:00Z", "2026-11-22t09:30:00.1z", "2026-11-22T09:30:00+01:00",
           "2026-11-22T09:30:00", "2026-11-22 09:30:00Z", "20261122T093000Z",
           " 2026-11-22T09:30:00Z", "2026-02-29T00:00:00Z", "2026-12-31T23:59:60Z"],
    "day": ["2026-11-22", "2026-11-22 ", "20261122", "2026-W47-7"],
    "id": [-1, 0, 2**31 - 1, 2**31, 1.0, 2.5, True],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_EDGES))
def test_the_document_and_validation_agree_at_the_edges(name: str) -> None:
    """Values just inside and just outside each bound, and patterns that match only a part."""
    field = Sample.fields[name]
    validator = _validator(field.json_schema())
    for value in _EDGES[name]:
        assert validator.is_valid(value) == _accepted_by_field(field, value), (name, value)


def _fields() -> list[tuple[str, rest.Field]]:
    return [(f"Sample.{name}", field) for name, field in Sample.fields.items()]


@pytest.mark.parametrize(("where", "field"), _fields(), ids=[w for w, _ in _fields()])
def test_the_document_accepts_exactly_what_the_validators_accept(
    where: str, field: rest.Field
) -> None:
    schema = field.json_schema()
    validator = _validator(schema)

    @settings(max_examples=60, suppress_health_check=list(HealthCheck), deadline=None)
    @given(_values(schema))
    def agrees(value: object) -> None:
        assert validator.is_valid(value) == _accepted_by_field(field, value), (where, value)

    agrees()


def test_patterns_are_anchored_in_the_document_as_validation_anchors_them() -> None:
    field = rest.String(pattern=r"[a-z]+")
    pattern = field.json_schema()["pattern"]
    for value in ("abc", "abc1", "1abc", "abc\n", ""):
        assert bool(re.search(pattern, value)) == _accepted_by_field(field, value), value


# SQLite stores 64-bit values: only PostgreSQL's int4 column raises DataError below 2**63.
@pytest.mark.parametrize("gadget_app", ["postgresql"], indirect=True)
def test_the_apps_own_data_error_handler_answers_first(gadget_app: Flask) -> None:
    seen: list[str] = []

    @gadget_app.errorhandler(sa.exc.DataError)
    def own(error: sa.exc.DataError) -> tuple[str, int]:
        seen.append(type(error.orig).__name__)
        db.session.rollback()
        return "the app's own answer", 418

    response = gadget_app.test_client().get(f"/api/gadgets/{2**31}")
    assert (response.status_code, response.get_data(as_text=True)) == (
        418,
        "the app's own answer",
    )
    assert seen == ["NumericValueOutOfRange"]
