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


GADGET = {"id": rest.fields.Integer, "name": rest.fields.String}


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
    small = rest.Integer(minimum=0, maximum=2**31 - 1)


class Echo(rest.Resource):
    @rest.query(Numbers)
    def get(self, query: dict[str, t.Any]) -> t.Any:
        return query

    @rest.body(Numbers)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        return body


class Pages(rest.Resource):
    @rest.paginated(GADGET)
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
    assert response.status_code == 400
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
    assert response.status_code == 400
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

    username = rest.String(min_length=1, max_length=40, pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
    image = rest.String(nullable=True, max_length=500, pattern=r"(https?://\S+)?")
    password = rest.String(min_length=8, max_length=64)
    limit = rest.Integer(minimum=1)
    offset = rest.Integer(minimum=0)
    id = rest.Integer(minimum=0, maximum=2**31 - 1)
    order = rest.String(choices=["new", "old"])


def _accepted_by_field(field: rest.Field, value: object) -> bool:
    if value is None:
        return field.nullable
    try:
        field.load(value)
    except Invalid:
        return False
    return True


# Surrounding whitespace is stripped before the length is checked, and text a
# database cannot store (NUL) is refused; JSON Schema can say neither, so
# those characters are left out of the values generated.
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=60)


def _storable(text: str) -> bool:
    """Whether a database can store ``text`` (no NUL, no lone surrogate), as above."""
    return "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


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
        matching = st.from_regex(pattern).filter(_storable)
        candidates.append(matching)
        candidates.append(matching.map(lambda s: s + "\n"))
    if "enum" in schema:
        candidates.append(st.sampled_from(schema["enum"]))
    return st.one_of(candidates)


def _fields() -> list[tuple[str, rest.Field]]:
    return [(f"Sample.{name}", field) for name, field in Sample.fields.items()]


@pytest.mark.parametrize(("where", "field"), _fields(), ids=[w for w, _ in _fields()])
def test_the_document_accepts_exactly_what_the_validators_accept(
    where: str, field: rest.Field
) -> None:
    schema = field.json_schema()
    validator = jsonschema.Draft202012Validator(schema)

    @settings(max_examples=150, suppress_health_check=list(HealthCheck), deadline=None)
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
