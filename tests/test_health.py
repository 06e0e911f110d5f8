"""/healthz and /readyz: what a load balancer sees."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import typing as t

import pytest
from loopback import free_port

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import AppFactory
    from flask.testing import FlaskClient


def test_healthz_answers_without_touching_the_session(make_app: AppFactory) -> None:
    client = make_app().test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert "Cookie" not in response.headers.get("Vary", "")


def test_readyz_on_sqlite(make_app: AppFactory) -> None:
    response = make_app().test_client().get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert body["checks"]["database"]["status"] == "ok"
    assert "Set-Cookie" not in response.headers


def test_readyz_on_postgres(client: FlaskClient) -> None:
    # The plugin's client: PostgreSQL, inside the test's rolled-back transaction.
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["database"]["status"] == "ok"


def test_readyz_names_a_refused_database(make_app: AppFactory) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    response = make_app({"SQLALCHEMY_DATABASE_URI": url}).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["database"]
    assert body["checks"]["database"]["status"] == "error"
    assert body["checks"]["database"]["error"] == "OperationalError"
    assert "nothing" not in response.get_data(as_text=True)  # no connection details leak


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers: a PostgreSQL driver waits
    there for the server's greeting until its own connect timeout (longer than the probes')."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        yield silent.getsockname()[1]
    # The probes that gave up still wait in their threads; with the port closed they fail
    # now, and what they log belongs to this test, not to whichever runs next.
    for thread in threading.enumerate():
        if thread.name == "flaskstack-readyz":
            thread.join(30)


def test_readyz_answers_within_its_deadline_when_the_database_hangs(
    make_app: AppFactory,
) -> None:
    with silent_port() as port:
        app = make_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"postgresql://postgres@127.0.0.1:{port}/x",
                "FLASKSTACK_READY_TIMEOUT": 0.3,
                "FLASKSTACK_DATABASE_CONNECT_TIMEOUT": 2,
            }
        )
        response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"]["error"] == "no answer within 0.3 s"


def test_readyz_waits_one_deadline_for_every_probe_and_replica_at_once(
    make_app: AppFactory,
) -> None:
    # The database and four read replicas all hang. Each probe gives up after the deadline;
    # run one after another they would hold the answer for five deadlines, longer than a
    # load balancer's probe waits, and the pod would look down because of its replicas.
    timeout = 0.5
    with silent_port() as port:
        app = make_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"postgresql://postgres@127.0.0.1:{port}/x",
                "FLASKSTACK_DATABASE_REPLICA_URLS": [
                    f"postgresql://postgres@127.0.0.1:{port}/replica{n}" for n in range(4)
                ],
                "FLASKSTACK_READY_TIMEOUT": timeout,
                "FLASKSTACK_DATABASE_CONNECT_TIMEOUT": 5,
            }
        )
        started = time.monotonic()
        response = app.test_client().get("/readyz")
        waited = time.monotonic() - started
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"]["error"] == "no answer within 0.5 s"
    assert len(body["replicas"]) == 4
    for replica in body["replicas"].values():
        assert replica == {"status": "down", "error": "no answer within 0.5 s"}, body
    assert waited < 3 * timeout, f"/readyz took {waited:.2f} s for a {timeout} s deadline"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_health_endpoints_only_read(make_app: AppFactory, method: str) -> None:
    client = make_app().test_client()
    assert client.open("/healthz", method=method).status_code == 405
    assert client.open("/readyz", method=method).status_code == 405


def test_head_is_answered(make_app: AppFactory) -> None:
    client = make_app().test_client()
    assert client.head("/healthz").status_code == 200
    assert client.head("/readyz").status_code == 200


def test_paths_are_configurable_and_can_be_disabled(make_app: AppFactory) -> None:
    app = make_app({"FLASKSTACK_HEALTH_PATH": "/-/live", "FLASKSTACK_READY_PATH": None})
    client = app.test_client()
    assert client.get("/-/live").status_code == 200
    assert client.get("/healthz").status_code == 404
    assert client.get("/readyz").status_code == 404


def test_health_views_are_marked_public(make_app: AppFactory) -> None:
    from flaskstack.health import _is_public

    app = make_app()
    assert _is_public(app.view_functions["flaskstack.healthz"])
    assert _is_public(app.view_functions["flaskstack.readyz"])
    assert not _is_public(app.view_functions["static"])
