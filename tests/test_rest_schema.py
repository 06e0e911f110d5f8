"""One schema vocabulary: a rest.Schema validates requests, writes responses, and is documented.

What a client sees: the JSON a resource answers (formats, renamed and
read-only fields, nested objects), what happens to fields a schema does not
declare (dropped, or refused when the app or the schema says so), the
OpenAPI document's components for requests and responses, and that the
document's request schemas give the server's verdict on values at the edges.
The deprecated Flask-RESTful field dicts still work and warn.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import typing as t
import uuid

import jsonschema
import openapi_spec_validator
import pytest
from conftest import resources_on_api
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from flaskstack import rest

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient

PROBLEM = "application/problem+json"


@dataclasses.dataclass
class Person:
    name: str
    email: str | None = None


@dataclasses.dataclass
class Row:
    id: int
    title: str
    owner: Person
    amount: decimal.Decimal
    ref: uuid.UUID
    created_at: dt.datetime
    tags: list[str]
    secret: str = "hunter2"


class Owner(rest.Schema):
    """Who owns a row."""

    name = rest.String(required=True, min_length=1)
    email = rest.Email(nullable=True)


class Item(rest.Schema):
    """A row: written back as it was read, with what the server adds."""

    id = rest.Integer(dump_only=True)
    title = rest.String(required=True, strip=True, min_length=1, max_length=20)
    owner = rest.Nested(Owner)
    owner_name = rest.String(attribute="owner.name", dump_only=True)
    amount = rest.Decimal(places=2)
    ref = rest.UUID(dump_only=True)
    created_at = rest.DateTime(dump_only=True)
    tags = rest.List(rest.String(max_length=5), default=list)
    secret = rest.String(load_only=True)


class Strict(rest.Schema):
    """Refuses fields it does not declare, whatever the app says."""

    unknown = "reject"

    name = rest.String(required=True)
    id = rest.Integer(dump_only=True)


class Lenient(rest.Schema):
    """Drops fields it does not declare, whatever the app says."""

    unknown = "ignore"

    name = rest.String(required=True)


class Counter(rest.Schema):
    """A count stored in a 32-bit column."""

    count = rest.Integer(bits=32, minimum=0)


class NewAccount(rest.Schema):
    """A sign-up."""

    password = rest.Password(required=True)
    website = rest.Url(nullable=True, blank=True, max_length=100)


def _row() -> Row:
    return Row(
        id=7,
        title="First",
        owner=Person("Ada", "ada@example.com"),
        amount=decimal.Decimal("12.50"),
        ref=uuid.UUID("6f1c2b0e-8d3a-4c9b-a1f2-3e4d5c6b7a80"),
        created_at=dt.datetime(2026, 11, 22, 9, 30),  # naive: taken as UTC
        tags=["a", "b"],
    )


SEEN: list[dict[str, t.Any]] = []


class Items(rest.Resource):
    @rest.paginated(Item())  # an instance works as well as the class
    def get(self) -> t.Any:
        """The rows."""
        return rest.Page(items=[_row(), _row()], page=1, per_page=20, total=2)

    @rest.body(Item)
    @rest.marshal_with(Item, status=201)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Write a row."""
        SEEN.append(body)
        return dataclasses.replace(_row(), title=body["title"], tags=body["tags"])


class StrictItems(rest.Resource):
    @rest.body(Strict)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Strictly."""
        return body

    @rest.body(Lenient)
    def put(self, body: dict[str, t.Any]) -> t.Any:
        """Leniently."""
        return body


class Counters(rest.Resource):
    @rest.body(Counter)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Count."""
        return body


class Accounts(rest.Resource):
    @rest.body(NewAccount)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Sign up."""
        return {"ok": True}


@pytest.fixture
def resources() -> Iterator[None]:
    SEEN.clear()
    with resources_on_api(
        [
            (Items, ("/items",)),
            (StrictItems, ("/strict",)),
            (Counters, ("/counters",)),
            (Accounts, ("/accounts",)),
        ]
    ):
        yield


def _app(make_app: AppFactory, **config: t.Any) -> Flask:
    return make_app(
        {
            "WTF_CSRF_ENABLED": False,
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "FLASKSTACK_PASSWORD_MIN_LENGTH": 10,
            **config,
        }
    )


@pytest.fixture
def client(make_app: AppFactory, resources: None) -> FlaskClient:
    return _app(make_app).test_client()


# -- out -----------------------------------------------------------------------------------


def test_a_schema_writes_what_the_resource_returns(client: FlaskClient) -> None:
    response = client.post("/api/items", json={"title": " New ", "tags": ["x"]})
    assert response.status_code == 201, response.get_json()
    assert response.get_json() == {
        "id": 7,
        "title": "New",
        "owner": {"name": "Ada", "email": "ada@example.com"},
        "owner_name": "Ada",
        "amount": "12.50",
        "ref": "6f1c2b0e-8d3a-4c9b-a1f2-3e4d5c6b7a80",
        "created_at": "2026-11-22T09:30:00+00:00",
        "tags": ["x"],
    }  # no "secret": it is load_only

    page = client.get("/api/items").get_json()
    assert page["total"] == 2
    assert [item["title"] for item in page["items"]] == ["First", "First"]


def test_dump_and_marshal_take_objects_mappings_and_lists() -> None:
    row = _row()
    assert Item.dump(row)["owner"] == {"name": "Ada", "email": "ada@example.com"}
    assert Owner.dump({"name": "Bo"}) == {"name": "Bo", "email": None}
    assert rest.marshal([row], Item(), envelope="items")["items"][0]["id"] == 7
    assert rest.marshal((row,), Item) == [Item.dump(row)]
    assert Item.dump(dataclasses.replace(row, owner=None))["owner_name"] is None  # type: ignore[arg-type]


def test_a_field_can_write_its_own_format() -> None:
    class Millis(rest.DateTime):
        def format(self, value: t.Any) -> str:
            return str(value.isoformat(timespec="milliseconds"))

    class Stamped(rest.Schema):
        at = Millis(attribute="created_at")

    assert Stamped.dump(_row()) == {"at": "2026-11-22T09:30:00.000"}


# -- unknown fields --------------------------------------------------------------------------


def test_fields_a_schema_does_not_declare_are_dropped_by_default(client: FlaskClient) -> None:
    sent = {"title": "Back", "id": 99, "ref": "x", "colour": "red", "owner": {"name": "Bo", "x": 1}}
    response = client.post("/api/items", json=sent)
    assert response.status_code == 201, response.get_json()
    assert SEEN == [{"title": "Back", "owner": {"name": "Bo"}, "tags": []}]


def test_the_setting_refuses_unknown_fields(make_app: AppFactory, resources: None) -> None:
    client = _app(make_app, FLASKSTACK_API_UNKNOWN_FIELDS="reject").test_client()
    response = client.post(
        "/api/items", json={"title": "x", "id": 1, "owner": {"name": "B", "x": 1}}
    )
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    assert response.get_json()["errors"] == {
        "id": ["Unknown field."],
        "owner.x": ["Unknown field."],
    }
    assert SEEN == []
    # A schema's own policy wins over the setting, both ways.
    lenient = client.put("/api/strict", json={"name": "a", "extra": 1})
    assert lenient.get_json() == {"name": "a"}


def test_a_schema_can_refuse_unknown_fields_on_its_own(client: FlaskClient) -> None:
    response = client.post("/api/strict", json={"name": "a", "id": 3, "extra": 1})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"id": ["Unknown field."], "extra": ["Unknown field."]}


def test_the_unknown_fields_setting_is_validated(make_app: AppFactory) -> None:
    import flaskstack

    with pytest.raises(flaskstack.ConfigError, match="FLASKSTACK_API_UNKNOWN_FIELDS"):
        make_app({"FLASKSTACK_API_UNKNOWN_FIELDS": "drop", "SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_a_schema_with_a_wrong_unknown_policy_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match=r"unknown must be 'ignore', 'reject' or None"):

        class Wrong(rest.Schema):
            unknown = "drop"  # type: ignore[assignment]


# -- the document --------------------------------------------------------------------------


def _document(client: FlaskClient) -> dict[str, t.Any]:
    document: dict[str, t.Any] = client.get("/api/openapi.json").get_json()
    openapi_spec_validator.validate(document)
    return document


def test_a_schema_used_both_ways_is_two_components(client: FlaskClient) -> None:
    document = _document(client)
    schemas = document["components"]["schemas"]
    post = document["paths"]["/api/items"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ItemInput"
    }
    assert post["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Item"
    }
    listing = document["paths"]["/api/items"]["get"]["responses"]["200"]
    items = listing["content"]["application/json"]["schema"]["properties"]["items"]
    assert items["items"] == {"$ref": "#/components/schemas/Item"}

    out, into = schemas["Item"], schemas["ItemInput"]
    assert set(out["properties"]) == {
        "id", "title", "owner", "owner_name", "amount", "ref", "created_at", "tags",
    }  # fmt: skip
    assert set(out["required"]) == set(out["properties"])
    assert out["properties"]["id"] == {"type": "integer", "readOnly": True}
    assert out["properties"]["amount"] == {"type": "string"}
    assert out["properties"]["owner"] == {"$ref": "#/components/schemas/Owner"}
    assert set(into["properties"]) == {"title", "owner", "amount", "tags", "secret"}
    assert into["required"] == ["title"]
    assert into["properties"]["secret"]["writeOnly"] is True
    assert into["properties"]["owner"] == {"$ref": "#/components/schemas/OwnerInput"}
    # Fields that are ignored must not be declared refused, or a fuzzer expects a 422.
    assert "additionalProperties" not in into
    assert schemas["Strict"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["Lenient"]


def test_the_document_says_additional_properties_false_when_the_app_refuses_them(
    make_app: AppFactory, resources: None
) -> None:
    client = _app(make_app, FLASKSTACK_API_UNKNOWN_FIELDS="reject").test_client()
    schemas = _document(client)["components"]["schemas"]
    assert schemas["ItemInput"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["Lenient"]
    assert "additionalProperties" not in schemas["Item"]  # responses are not requests


def test_a_32_bit_integer_is_bounded_in_validation_and_document(client: FlaskClient) -> None:
    refused = client.post("/api/counters", json={"count": 2**31})
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == {"count": ["Must be at most 2147483647."]}
    assert client.post("/api/counters", json={"count": 2**31 - 1}).status_code == 200
    count = _document(client)["components"]["schemas"]["Counter"]["properties"]["count"]
    assert (count["minimum"], count["maximum"]) == (0, 2**31 - 1)


def test_password_lengths_come_from_the_policy_in_both(client: FlaskClient) -> None:
    short = client.post("/api/accounts", json={"password": "x" * 9})
    assert short.get_json()["errors"] == {"password": ["Use at least 10 characters."]}
    assert client.post("/api/accounts", json={"password": "x" * 10}).status_code == 200
    password = _document(client)["components"]["schemas"]["NewAccount"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (10, 256)
    assert password["writeOnly"] is True


# The server's verdict on a whole body against the document's: values just inside
# and just outside each bound, whitespace strip removes, patterns that match only a part.
EDGES: dict[str, list[tuple[str, object]]] = {
    "ItemInput": [
        ("title", "x"), ("title", " x "), ("title", "   "), ("title", "x" * 20),
        ("title", " " + "x" * 20 + "\n"), ("title", "x" * 21), ("title", "a\x00"),
        ("amount", "12.5"), ("amount", 12.555), ("tags", ["abcde"]), ("tags", ["abcdef"]),
        ("tags", "abc"), ("owner", {"name": ""}), ("owner", {"name": "a", "email": "a@b.c"}),
        ("owner", {"name": "a", "email": "a@b"}), ("owner", None), ("secret", 3),
    ],
    "Counter": [
        ("count", -1), ("count", 0), ("count", 2**31 - 1), ("count", 2**31), ("count", 2**63),
        ("count", 1.0), ("count", True), ("count", "1"),
    ],
    "NewAccount": [
        ("password", "x" * 9), ("password", "x" * 10), ("password", "x" * 256),
        ("password", "x" * 257), ("website", ""), ("website", None), ("website", "https://a.b/c"),
        ("website", "https://a.b/" + "c" * 89), ("website", "https://a.b/" + "c" * 90),
        ("website", " https://a.b"), ("website", "mailto:a@b.c"), ("website", "https://a b"),
    ],
}  # fmt: skip
BASE: dict[str, dict[str, t.Any]] = {
    "ItemInput": {"title": "ok"},
    "Counter": {},
    "NewAccount": {"password": "x" * 12},
}
URLS = {"ItemInput": "/api/items", "Counter": "/api/counters", "NewAccount": "/api/accounts"}


@pytest.mark.parametrize("component", sorted(EDGES))
def test_the_server_and_the_document_give_the_same_verdict(
    client: FlaskClient, component: str
) -> None:
    document = _document(client)
    registry: Registry[t.Any] = Registry().with_resource(
        "urn:doc", DRAFT202012.create_resource(document)
    )
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"urn:doc#/components/schemas/{component}"},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    for name, value in EDGES[component]:
        body = {**BASE[component], name: value}
        response = client.post(URLS[component], json=body)
        assert response.status_code in (200, 201, 422), response.get_json()
        server = response.status_code != 422
        assert validator.is_valid(body) == server, (component, name, value, response.get_json())


# -- the old spelling ----------------------------------------------------------------------


def test_flask_restful_field_dicts_still_work_and_warn(make_app: AppFactory) -> None:
    with pytest.warns(
        DeprecationWarning, match=r"rest\.fields\.Integer is deprecated.*rest\.Integer\(\)"
    ):
        integer = rest.fields.Integer
    with pytest.warns(
        DeprecationWarning, match=r"rest\.fields\.String is deprecated.*rest\.String\(\)"
    ):
        string = rest.fields.String
    old = {"id": integer, "title": string}
    with pytest.warns(
        DeprecationWarning, match=r"rest\.marshal_with\(fields\).*marshal_with\(Schema\)"
    ):

        class Old(rest.Resource):
            @rest.marshal_with(old, envelope="row")
            def get(self) -> t.Any:
                return _row()

    with pytest.warns(DeprecationWarning, match=r"rest\.paginated\(fields\).*paginated\(Schema\)"):

        class OldPages(rest.Resource):
            @rest.paginated(old)
            def get(self) -> t.Any:
                return rest.Page(items=[_row()], page=1, per_page=20, total=1)

    with resources_on_api([(Old, ("/old",)), (OldPages, ("/old-pages",))]):
        client = _app(make_app).test_client()
        assert client.get("/api/old").get_json() == {"row": {"id": 7, "title": "First"}}
        assert client.get("/api/old-pages").get_json()["items"] == [{"id": 7, "title": "First"}]
        document = _document(client)
    row = document["paths"]["/api/old"]["get"]["responses"]["200"]["content"]["application/json"]
    assert set(row["schema"]["properties"]["row"]["properties"]) == {"id", "title"}


def test_marshal_takes_flask_restfuls_keyword_and_warns() -> None:
    with pytest.warns(DeprecationWarning, match=r"rest\.fields\.Integer is deprecated"):
        integer = rest.fields.Integer
    with pytest.warns(DeprecationWarning, match=r"rest\.marshal\(data, fields\)"):
        written = rest.marshal(_row(), fields={"id": integer}, envelope="row")

    assert written == {"row": {"id": 7}}
    with pytest.raises(TypeError, match="schema or fields, not both"):
        rest.marshal(_row(), {"id": integer}, fields={"id": integer})
