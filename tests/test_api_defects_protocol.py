"""HTTP details API clients rely on under the API prefix, as a client sees them.

- A trailing slash reaches the same resource, for every method, without a
  redirect; outside the prefix the app's URL rules keep their strictness.
- A token that was sent but is wrong, expired or revoked is answered 401
  ``invalid_token`` (in the problem and in ``WWW-Authenticate``, RFC 6750);
  no token at all keeps the plain "authentication is required" answer.
- ``OPTIONS`` answers 204 with ``Allow`` and no body.
- A chunked body (no ``Content-Length``) over ``MAX_CONTENT_LENGTH`` is
  413, over a real HTTP connection to a served app.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import threading
import typing as t

import pytest
from conftest import resources_on_api
from werkzeug.serving import make_server

from flaskstack import csrf, db, rest
from flaskstack.auth import auth_required, create_token, current_user, revoke_token

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

PROBLEM = "application/problem+json"
LIMIT = 4096


class NewGadget(rest.Schema):
    name = rest.String(required=True, min_length=1, max_length=50)
    notes = rest.String(default="")


class Gadgets(rest.Resource):
    method_decorators = {"post": [auth_required]}  # noqa: RUF012

    def get(self) -> t.Any:
        """List the gadgets."""
        return {"gadgets": []}

    @rest.body(NewGadget)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Make a gadget."""
        return {"name": body["name"], "owner": current_user.email}, 201


class GadgetItem(rest.Resource):
    method_decorators = [auth_required]  # noqa: RUF012

    def get(self, gadget_id: int) -> t.Any:
        """One gadget."""
        return {"id": gadget_id}

    @rest.body(NewGadget)
    def put(self, gadget_id: int, body: dict[str, t.Any]) -> t.Any:
        """Replace a gadget."""
        return {"id": gadget_id, "name": body["name"]}

    def delete(self, gadget_id: int) -> t.Any:
        """Throw a gadget away."""
        return None, 204


class Shelves(rest.Resource):
    def get(self) -> t.Any:
        """Declared with a trailing slash."""
        return {"shelves": []}


@csrf.exempt
class Echo(rest.Resource):
    @rest.body(NewGadget)
    def post(self, body: dict[str, t.Any]) -> t.Any:
        """Answer what was sent (no credentials needed)."""
        return body


RESOURCES: list[tuple[type[t.Any], tuple[str, ...]]] = [
    (Gadgets, ("/gadgets",)),
    (GadgetItem, ("/gadgets/<int:gadget_id>",)),
    (Shelves, ("/shelves/",)),
    (Echo, ("/echo",)),
]


@pytest.fixture
def protocol_api() -> Iterator[None]:
    """The resources above on ``flaskstack.api``, for this test only."""
    with resources_on_api(RESOURCES):
        yield


@pytest.fixture
def flaskstack_config(flaskstack_config: dict[str, t.Any]) -> dict[str, t.Any]:
    return {**flaskstack_config, "PROPAGATE_EXCEPTIONS": False, "MAX_CONTENT_LENGTH": LIMIT}


@pytest.fixture
def app(protocol_api: None, app: Flask) -> Flask:
    """The plugin's app with the resources above and two pages of its own."""

    @app.get("/pages")
    def pages() -> str:
        return "pages"

    @app.get("/api/status")
    def status() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.fixture
def writer(api_client: Callable[..., FlaskClient], make_user: Callable[..., t.Any]) -> FlaskClient:
    return api_client(make_user(email="writer@example.com"))


def assert_problem(response: TestResponse, status: int) -> dict[str, t.Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    body: dict[str, t.Any] = response.get_json(force=True)
    assert body["status"] == status
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


# -- trailing slashes --------------------------------------------------------


def test_a_trailing_slash_reaches_the_same_resource_for_every_method(writer: FlaskClient) -> None:
    created = writer.post("/api/gadgets/", json={"name": "lamp"})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json() == {"name": "lamp", "owner": "writer@example.com"}

    assert writer.get("/api/gadgets/").get_json() == {"gadgets": []}
    assert writer.get("/api/gadgets/7/").get_json() == {"id": 7}
    replaced = writer.put("/api/gadgets/7/", json={"name": "desk lamp"})
    assert replaced.status_code == 200
    assert replaced.get_json() == {"id": 7, "name": "desk lamp"}
    assert writer.delete("/api/gadgets/7/").status_code == 204


def test_a_resource_declared_with_a_slash_answers_without_it_and_without_a_redirect(
    client: FlaskClient,
) -> None:
    for path in ("/api/shelves/", "/api/shelves"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.get_json() == {"shelves": []}


def test_the_trailing_slash_still_needs_the_same_credentials(client: FlaskClient) -> None:
    assert_problem(client.post("/api/gadgets/", json={"name": "lamp"}), 401)
    assert_problem(client.get("/api/gadgets/notanumber/"), 404)


def test_outside_the_api_prefix_the_apps_rules_keep_their_strictness(client: FlaskClient) -> None:
    assert client.get("/pages").status_code == 200
    assert client.get("/pages/").status_code == 404


# -- invalid tokens ----------------------------------------------------------


def _token(app: Flask, user: t.Any, **options: t.Any) -> tuple[str, t.Any]:
    with app.app_context():
        owner = db.session.get(type(user), user.id)
        token, record = create_token(owner, "test", **options)
        db.session.commit()
        return token, record.id


def _assert_invalid_token(response: TestResponse) -> None:
    body = assert_problem(response, 401)
    assert body["error"] == "invalid_token"
    assert "invalid" in body["detail"]
    assert "expired" in body["detail"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="')
    assert 'error="invalid_token"' in challenge


def test_a_wrong_token_is_answered_invalid_token(app: Flask, client: FlaskClient) -> None:
    wrong = {"Authorization": "Bearer fst_" + "x" * 43}
    _assert_invalid_token(client.post("/api/gadgets", json={"name": "lamp"}, headers=wrong))
    _assert_invalid_token(client.get("/api/gadgets/1", headers=wrong))
    garbage = {"Authorization": "Bearer not-even-a-token"}
    _assert_invalid_token(client.get("/api/gadgets/1", headers=garbage))


def test_an_expired_token_is_answered_invalid_token(
    app: Flask, client: FlaskClient, make_user: Callable[..., t.Any]
) -> None:
    token, _ = _token(app, make_user(), expires_in=dt.timedelta(seconds=-1))
    response = client.get("/api/gadgets/1", headers={"Authorization": f"Bearer {token}"})
    _assert_invalid_token(response)


def test_a_revoked_token_is_answered_invalid_token(
    app: Flask, client: FlaskClient, make_user: Callable[..., t.Any]
) -> None:
    user = make_user()
    token, record_id = _token(app, user)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/gadgets/1", headers=headers).status_code == 200
    with app.app_context():
        from flaskstack._state import current_state

        record = db.session.get(current_state().auth.token_model, record_id)
        revoke_token(record)
        db.session.commit()
    _assert_invalid_token(client.get("/api/gadgets/1", headers=headers))


def test_no_token_at_all_keeps_the_plain_answer(client: FlaskClient) -> None:
    response = client.get("/api/gadgets/1")
    body = assert_problem(response, 401)
    assert "Authentication is required" in body["detail"]
    assert "error" not in body
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="')
    assert "error=" not in challenge


# -- OPTIONS -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/gadgets", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("/api/gadgets/", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("/api/gadgets/3", {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}),
        ("/api/status", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_options_answers_allow_and_no_body(
    client: FlaskClient, path: str, allowed: set[str]
) -> None:
    response = client.options(path)
    assert response.status_code == 204, response.get_data(as_text=True)
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers


def test_options_outside_the_api_prefix_is_flasks_own(client: FlaskClient) -> None:
    response = client.options("/pages")
    assert response.status_code == 200
    assert "GET" in response.headers["Allow"]


def test_options_on_an_unknown_url_under_the_prefix_is_a_404_problem(client: FlaskClient) -> None:
    assert_problem(client.options("/api/no/such/thing"), 404)


# -- oversize chunked bodies -------------------------------------------------


@pytest.fixture
def served(
    protocol_api: None, make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> Iterator[tuple[str, int]]:
    """An app (no database work) served over HTTP on a loopback port by Werkzeug's server."""
    served_app = make_app({**flaskstack_config, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    server = make_server("127.0.0.1", 0, served_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.host, server.port
    server.shutdown()
    server.server_close()
    thread.join()


def _post_chunked(where: tuple[str, int], body: bytes) -> tuple[int, str, dict[str, t.Any]]:
    connection = http.client.HTTPConnection(*where, timeout=30)
    try:
        # An iterable body without a length is sent with Transfer-Encoding: chunked.
        chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))
        connection.request(
            "POST",
            "/api/echo",
            body=chunks,
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        document = json.loads(response.read())
        return response.status, response.getheader("Content-Type") or "", document
    finally:
        connection.close()


def test_a_chunked_json_body_over_the_limit_is_413(served: tuple[str, int]) -> None:
    body = json.dumps({"name": "big", "notes": "x" * (LIMIT * 2)}).encode()
    status, content_type, document = _post_chunked(served, body)
    assert status == 413, document
    assert content_type == PROBLEM
    assert document["status"] == 413
    assert str(LIMIT) in document["detail"]


def test_a_chunked_json_body_within_the_limit_is_read_whole(served: tuple[str, int]) -> None:
    body = json.dumps({"name": "small", "notes": "y" * (LIMIT // 2)}).encode()
    status, _, document = _post_chunked(served, body)
    assert status == 200, document
    assert document == {"name": "small", "notes": "y" * (LIMIT // 2)}


def test_a_chunked_json_body_of_exactly_the_limit_is_accepted(served: tuple[str, int]) -> None:
    skeleton = json.dumps({"name": "edge", "notes": ""}).encode()
    notes = "z" * (LIMIT - len(skeleton))
    body = json.dumps({"name": "edge", "notes": notes}).encode()
    assert len(body) == LIMIT
    status, _, document = _post_chunked(served, body)
    assert status == 200, document
    assert document["notes"] == notes


def test_a_chunked_body_whose_first_part_parses_is_still_413(served: tuple[str, int]) -> None:
    # What fits under the limit is a complete JSON object (whitespace follows
    # it): the view must not act on part of a body.
    body = json.dumps({"name": "padded", "notes": "p"}).encode() + b" " * (LIMIT * 2)
    status, content_type, document = _post_chunked(served, body)
    assert status == 413, document
    assert content_type == PROBLEM
