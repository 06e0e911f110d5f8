"""Uploads: a rest.File field reads a multipart/form-data body, held to its limits.

As a client sees it: the view gets the file and the form's other fields,
validated by the same schema; a file over its field's ``max_size`` is 413
naming the field and the limit (also sent chunked, with no
``Content-Length``), the wrong content type or a missing file is 422, a JSON
body is 415, a broken multipart body 400. Token-authenticated uploads need no
CSRF token; cookie-authenticated ones do. The OpenAPI document describes the
body as multipart/form-data with binary files.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
import typing as t

import openapi_spec_validator
import pytest
from conftest import resources_on_api
from werkzeug.serving import make_server

import flaskstack
from flaskstack import rest
from flaskstack.auth import auth_required

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient

PROBLEM = "application/problem+json"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
LIMIT = 1000


class NewPicture(rest.Schema):
    """A picture and its caption."""

    image = rest.File(required=True, max_size=LIMIT, content_types=("image/png", "image/jpeg"))
    caption = rest.String(max_length=10)
    rating = rest.Integer(bits=32, minimum=1, maximum=5)
    public = rest.Boolean(default=False)


class NewDocument(rest.Schema):
    """Any file, with a limit of its own."""

    unknown = "reject"

    file = rest.File(max_size=50_000)


RECEIVED: list[dict[str, t.Any]] = []


class Pictures(rest.Resource):
    method_decorators = [auth_required]  # noqa: RUF012

    @rest.body(NewPicture)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Upload a picture."""
        image = body.pop("image")
        content = image.read()
        RECEIVED.append({**body, "filename": image.filename, "content": content})
        return {"filename": image.filename, "size": len(content), **body}, 201


@flaskstack.csrf.exempt
class Documents(rest.Resource):
    @rest.body(NewDocument)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Upload a document."""
        file = body.get("file")
        return {"size": len(file.read()) if file is not None else None}


@pytest.fixture
def app(app: Flask) -> Iterator[Flask]:
    RECEIVED.clear()
    with resources_on_api([(Pictures, ("/pictures",)), (Documents, ("/documents",))]):
        yield app


@pytest.fixture
def flaskstack_config(flaskstack_config: dict[str, t.Any]) -> dict[str, t.Any]:
    return {**flaskstack_config, "PROPAGATE_EXCEPTIONS": False, "MAX_CONTENT_LENGTH": 100_000}


@pytest.fixture
def uploader(
    api_client: Callable[..., FlaskClient], make_user: Callable[..., t.Any]
) -> FlaskClient:
    return api_client(make_user(email="uploader@example.com"))


def _picture(content: bytes = PNG, **fields: t.Any) -> dict[str, t.Any]:
    content_type = fields.pop("content_type", "image/png")
    return {"image": (io.BytesIO(content), "cat.png", content_type), **fields}


def _problem(response: t.Any, status: int) -> dict[str, t.Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body: dict[str, t.Any] = response.get_json()
    return body


def test_a_token_authenticated_upload_gets_the_file_and_the_fields(uploader: FlaskClient) -> None:
    response = uploader.post(
        "/api/pictures", data=_picture(caption="A cat", rating="5", public="yes")
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json() == {
        "filename": "cat.png",
        "size": len(PNG),
        "caption": "A cat",
        "rating": 5,
        "public": True,
    }
    assert RECEIVED[0]["content"] == PNG


def test_the_other_form_fields_are_validated_by_the_same_schema(uploader: FlaskClient) -> None:
    response = uploader.post(
        "/api/pictures", data=_picture(caption="far too long", rating=str(2**31), colour="red")
    )
    assert _problem(response, 422)["errors"] == {
        "caption": ["Must be at most 10 characters long."],
        "rating": ["Must be at most 5."],
    }  # colour is not declared: dropped, as in JSON bodies
    assert RECEIVED == []


def test_a_file_over_its_limit_is_413_naming_the_field_and_the_limit(
    uploader: FlaskClient,
) -> None:
    response = uploader.post("/api/pictures", data=_picture(b"x" * (LIMIT + 1)))
    problem = _problem(response, 413)
    assert "'image' (at most 1000 bytes)" in problem["detail"]
    assert problem["errors"] == {"image": ["Must be at most 1000 bytes."]}
    assert uploader.post("/api/pictures", data=_picture(b"x" * LIMIT)).status_code == 201
    assert len(RECEIVED) == 1


def test_a_chunked_upload_is_held_to_the_limit_while_it_streams(
    app: Flask, make_app: AppFactory
) -> None:
    """Sent without a Content-Length, the body is read as it comes; the file stops at its limit."""
    served = make_app(
        {"MAX_CONTENT_LENGTH": 1_000_000, "SQLALCHEMY_DATABASE_URI": "sqlite://"}, name="served"
    )
    with served.test_request_context(
        "/", method="POST", data={"file": (io.BytesIO(b"x" * 60_000), "big.bin")}
    ) as context:
        content_type = context.request.headers["Content-Type"]
        raw = context.request.get_data()
    server = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        # An iterable body without a length is sent with Transfer-Encoding: chunked.
        chunks = (raw[i : i + 4096] for i in range(0, len(raw), 4096))
        connection.request(
            "POST",
            "/api/documents",
            body=chunks,
            headers={"Content-Type": content_type},
            encode_chunked=True,
        )
        response = connection.getresponse()
        status, document = response.status, json.loads(response.read())
    finally:
        connection.close()
        server.shutdown()
        server.server_close()
        thread.join()
    assert status == 413, document
    assert document["errors"] == {"file": ["Must be at most 50000 bytes."]}


def test_the_wrong_type_or_no_file_is_422_naming_the_field(uploader: FlaskClient) -> None:
    wrong = uploader.post("/api/pictures", data=_picture(b"GIF89a", content_type="image/gif"))
    assert _problem(wrong, 422)["errors"] == {
        "image": [
            "Must be a file of type image/png, image/jpeg (the part's Content-Type is image/gif)."
        ]
    }
    missing = uploader.post(
        "/api/pictures", data={"caption": "No file"}, content_type="multipart/form-data"
    )
    assert _problem(missing, 422)["errors"] == {"image": ["This file is required."]}
    empty_input = uploader.post(
        "/api/pictures", data={"image": (io.BytesIO(b""), "", "application/octet-stream")}
    )
    assert _problem(empty_input, 422)["errors"] == {"image": ["This file is required."]}
    assert RECEIVED == []


def test_json_and_broken_multipart_bodies_are_refused(uploader: FlaskClient) -> None:
    as_json = uploader.post("/api/pictures", json={"image": "a file"})
    assert "multipart/form-data" in _problem(as_json, 415)["detail"]
    broken = uploader.post(
        "/api/pictures",
        data=b"--b\r\nContent-Disposition: form-data; name=image\r\n\r\nno end",
        content_type="multipart/form-data; boundary=b",
    )
    assert _problem(broken, 400)["detail"].startswith("The multipart/form-data body is malformed")
    no_boundary = uploader.post("/api/pictures", data=b"x", content_type="multipart/form-data")
    _problem(no_boundary, 400)


def test_unknown_form_fields_follow_the_schemas_policy(client: FlaskClient) -> None:
    response = client.post(
        "/api/documents", data={"file": (io.BytesIO(b"abc"), "a.txt"), "note": "hi"}
    )
    assert _problem(response, 422)["errors"] == {"note": ["Unknown field."]}
    ok = client.post("/api/documents", data={"file": (io.BytesIO(b"abc"), "a.txt")})
    assert ok.get_json() == {"size": 3}
    no_file = client.post("/api/documents", data={"file": (io.BytesIO(b""), "")})
    assert no_file.get_json() == {"size": None}  # an empty file input: the file is left out


def test_cookie_authenticated_uploads_need_the_csrf_token(
    client: FlaskClient,
    make_user: Callable[..., t.Any],
    login: Callable[..., t.Any],
    csrf_token: Callable[[FlaskClient], str],
) -> None:
    login(client, make_user(email="uploader@example.com"))
    refused = client.post("/api/pictures", data=_picture())
    assert "CSRF" in _problem(refused, 400)["detail"]
    assert RECEIVED == []

    token = csrf_token(client)
    created = client.post("/api/pictures", data=_picture(), headers={"X-CSRFToken": token})
    assert created.status_code == 201, created.get_json()
    # The token may come as a form field too; the schema does not count it as a field.
    in_form = client.post(
        "/api/documents", data={"csrf_token": token, "file": (io.BytesIO(b"a"), "a")}
    )
    assert in_form.get_json() == {"size": 1}
    # The CSRF check read the body first: the limit is checked on what it stored.
    too_big = client.post(
        "/api/pictures", data=_picture(b"x" * (LIMIT + 1)), headers={"X-CSRFToken": token}
    )
    assert _problem(too_big, 413)["errors"] == {"image": ["Must be at most 1000 bytes."]}
    assert len(RECEIVED) == 1


def test_the_document_describes_a_multipart_body(client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    openapi_spec_validator.validate(document)
    body = document["paths"]["/api/pictures"]["post"]["requestBody"]["content"]
    assert list(body) == ["multipart/form-data"]
    assert body["multipart/form-data"]["encoding"] == {
        "image": {"contentType": "image/png, image/jpeg"}
    }
    schema = document["components"]["schemas"]["NewPicture"]
    assert schema["required"] == ["image"]
    image = schema["properties"]["image"]
    assert (image["type"], image["format"]) == ("string", "binary")
    assert image["contentMediaType"] == "application/octet-stream"
    assert image["description"] == "At most 1000 bytes."
    assert schema["properties"]["rating"]["maximum"] == 5
    assert "additionalProperties" not in schema
    assert document["components"]["schemas"]["NewDocument"]["additionalProperties"] is False
