"""Read replicas, against a real PostgreSQL primary and its streaming replica (tests/pg_pair.py).

Which server ran a read is what the server itself says: ``inet_server_port()``
inside the app's own ``db.session`` query.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify
from pg_pair import PostgresPair, pg_pair  # noqa: F401, TC002  (the fixture; a runtime name)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flaskstack import ConfigError, db
from flaskstack._signals import replica_skipped

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import AppFactory

_TABLE = "replica_notes"


class _Base(DeclarativeBase):
    """Not ``db.Model``: other tests' ``create_all()`` must not see this table."""


class ReplicaNote(_Base):
    __tablename__ = _TABLE
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.String(200))


@pytest.fixture(scope="module")
def pair(pg_pair: PostgresPair) -> PostgresPair:  # noqa: F811
    pg_pair.primary_execute(
        f"CREATE TABLE IF NOT EXISTS {_TABLE} (id serial PRIMARY KEY, text varchar(200) NOT NULL)"
    )
    pg_pair.wait_caught_up()
    return pg_pair


def _port() -> int:
    return int(db.session.execute(sa.select(sa.func.inet_server_port())).scalar_one())


def _add_views(app: Flask) -> None:
    @app.get("/where")
    def where() -> t.Any:
        return jsonify(port=_port())

    @app.post("/notes")
    def add_note() -> t.Any:
        note = ReplicaNote(text="hello")
        db.session.add(note)
        db.session.commit()
        # Read after write, in the same request: must see the row just written.
        found = db.session.execute(sa.select(ReplicaNote).filter_by(id=note.id)).scalar_one()
        return jsonify(id=found.id, port=_port())

    @app.get("/notes/<int:note_id>")
    def get_note(note_id: int) -> t.Any:
        note = db.session.get(ReplicaNote, note_id)
        return jsonify(found=note is not None, port=_port())

    @app.post("/read-then-write")
    def read_then_write() -> t.Any:
        before = _port()  # a replica read: the session now holds a replica connection too
        db.session.add(ReplicaNote(text="after a read"))
        db.session.commit()
        return jsonify(before=before, after=_port())

    @app.get("/raw")
    def raw() -> t.Any:
        port = db.session.execute(sa.text("SELECT inet_server_port()")).scalar_one()
        return jsonify(raw=port, then=_port())

    @app.get("/in-transaction")
    def in_transaction() -> t.Any:
        with db.session.begin():
            return jsonify(port=_port())


@pytest.fixture
def make_replica_app(make_app: AppFactory, pair: PostgresPair) -> t.Callable[..., Flask]:
    def make(**settings: t.Any) -> Flask:
        config = {
            "SQLALCHEMY_DATABASE_URI": pair.primary_url,
            "FLASKSTACK_DATABASE_REPLICA_URLS": [pair.replica_url],
            "FLASKSTACK_REPLICA_CHECK_INTERVAL": 0.2,
            "FLASKSTACK_REPLICA_MAX_LAG": 1.0,
            "FLASKSTACK_REPLICA_PIN_SECONDS": 1.0,
            "WTF_CSRF_ENABLED": False,
            **settings,
        }
        app = make_app(config)
        _add_views(app)
        return app

    return make


@contextlib.contextmanager
def _skips(app: Flask) -> Iterator[list[dict[str, t.Any]]]:
    received: list[dict[str, t.Any]] = []

    def receiver(sender: Flask, **kwargs: t.Any) -> None:
        received.append(kwargs)

    with replica_skipped.connected_to(receiver, sender=app):
        yield received


def _wait_until(condition: t.Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def test_a_plain_read_goes_to_the_replica(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair
) -> None:
    client = make_replica_app().test_client()
    for _ in range(3):
        response = client.get("/where")
        assert response.status_code == 200
        assert response.json == {"port": pair.replica.port}
    # A read-only request sets no pinning cookie.
    assert "Set-Cookie" not in response.headers


def test_a_write_pins_the_request_then_the_client_to_the_primary(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair
) -> None:
    app = make_replica_app()
    client = app.test_client()
    assert client.get("/where").json == {"port": pair.replica.port}

    response = client.post("/notes")
    assert response.status_code == 200
    # The read after the write in the same request ran on the primary and saw the row.
    assert response.json["port"] == pair.primary.port
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("fs_primary=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Max-Age=1" in cookie

    # The next request of the same client reads its write from the primary.
    note_id = response.json["id"]
    assert client.get(f"/notes/{note_id}").json == {"found": True, "port": pair.primary.port}
    # Another client, without the cookie, reads from the replica.
    assert app.test_client().get("/where").json == {"port": pair.replica.port}

    # Once the pin window is over, the same client reads from the replica again.
    time.sleep(1.1)
    pair.wait_caught_up()
    assert client.get(f"/notes/{note_id}").json == {"found": True, "port": pair.replica.port}


def test_a_request_that_reads_then_writes_commits_on_the_primary(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair
) -> None:
    client = make_replica_app().test_client()
    count = f"SELECT count(*) FROM {_TABLE} WHERE text = 'after a read'"
    with pair.primary_connection() as connection:
        before = connection.execute(count).fetchone()
    response = client.post("/read-then-write")
    assert response.status_code == 200
    assert response.json == {"before": pair.replica.port, "after": pair.primary.port}
    with pair.primary_connection() as connection:
        after = connection.execute(count).fetchone()
    assert before is not None
    assert after is not None
    assert after[0] == before[0] + 1


def test_raw_sql_runs_on_the_primary_and_counts_as_a_write(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair
) -> None:
    # flaskstack cannot tell whether text() writes: it runs it on the primary, as a write.
    response = make_replica_app().test_client().get("/raw")
    assert response.json == {"raw": pair.primary.port, "then": pair.primary.port}
    assert response.headers["Set-Cookie"].startswith("fs_primary=")


def test_outside_a_request_everything_uses_the_primary(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair
) -> None:
    app = make_replica_app()
    assert app.test_client().get("/where").json == {"port": pair.replica.port}
    with app.app_context():  # a CLI command, a migration, a job
        assert _port() == pair.primary.port


def test_the_pinning_cookie_is_secure_like_the_session_cookie(
    make_replica_app: t.Callable[..., Flask],
) -> None:
    client = make_replica_app(SESSION_COOKIE_SECURE=True).test_client()
    cookie = client.post("/notes", base_url="https://localhost").headers["Set-Cookie"]
    assert "; Secure" in cookie
    assert "HttpOnly" in cookie


def test_an_explicit_transaction_runs_on_the_primary(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair
) -> None:
    client = make_replica_app().test_client()
    assert client.get("/in-transaction").json == {"port": pair.primary.port}
    assert client.get("/where").json == {"port": pair.replica.port}


def test_a_lagging_replica_is_skipped_with_a_log_line_and_a_signal(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flaskstack.database")
    app = make_replica_app()
    client = app.test_client()
    assert client.get("/where").json == {"port": pair.replica.port}
    pair.pause_replay()
    try:
        pair.primary_execute(f"INSERT INTO {_TABLE} (text) VALUES ('while paused')")
        with _skips(app) as skips:
            _wait_until(
                lambda: client.get("/where").json == {"port": pair.primary.port},
                "reads to leave the lagging replica",
            )
            assert client.get("/where").json == {"port": pair.primary.port}
        assert skips
        assert {skip["reason"] for skip in skips} == {"lagging"}
        assert {skip["replica"] for skip in skips} == {pair.replica_url}
        lag_lines = [r for r in caplog.records if "lags" in r.getMessage()]
        assert len(lag_lines) == 1  # once per change of state, not per request
        body = client.get("/readyz")
        assert body.status_code == 200
        assert body.json["replicas"][pair.replica_url]["status"] == "lagging"
        assert body.json["replicas"][pair.replica_url]["lag_seconds"] > 1.0
    finally:
        pair.resume_replay()
    _wait_until(
        lambda: client.get("/where").json == {"port": pair.replica.port},
        "reads to return to the replica",
    )
    assert "is back" in caplog.text


def test_a_stopped_replica_costs_no_request_an_error(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flaskstack.database")
    app = make_replica_app()
    client = app.test_client()
    assert client.get("/where").json == {"port": pair.replica.port}
    ready = client.get("/readyz")
    assert ready.json["replicas"] == {
        pair.replica_url: {
            "status": "up",
            "lag_seconds": ready.json["replicas"][pair.replica_url]["lag_seconds"],
        }
    }
    pair.stop_replica()
    try:
        with _skips(app) as skips:
            for _ in range(5):
                response = client.get("/where")
                assert response.status_code == 200
                assert response.json == {"port": pair.primary.port}
            note = client.post("/notes")
            assert note.status_code == 200
            ready = client.get("/readyz")
        assert skips
        assert {skip["reason"] for skip in skips} == {"down"}
        down_lines = [r for r in caplog.records if "is down" in r.getMessage()]
        assert len(down_lines) == 1
        # Readiness holds: the primary serves every read meanwhile.
        assert ready.status_code == 200
        assert ready.json["status"] == "ok"
        assert ready.json["replicas"][pair.replica_url]["status"] == "down"
    finally:
        pair.start_replica()
    _wait_until(
        lambda: client.get("/where").json == {"port": pair.replica.port},
        "reads to return to the replica after the back-off",
    )
    assert "is back" in caplog.text


def test_a_replica_read_that_fails_to_connect_runs_on_the_primary(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair, caplog: pytest.LogCaptureFixture
) -> None:
    # No background check comes before the failing read: the read itself finds out.
    caplog.set_level(logging.WARNING, logger="flaskstack.database")
    app = make_replica_app(FLASKSTACK_REPLICA_CHECK_INTERVAL=600)
    client = app.test_client()
    assert client.get("/where").json == {"port": pair.replica.port}
    pair.stop_replica()
    try:
        with _skips(app) as skips:
            first = client.get("/where")
            second = client.get("/where")
            written = client.post("/read-then-write")
    finally:
        pair.start_replica()
    assert first.status_code == second.status_code == written.status_code == 200
    assert first.json == second.json == {"port": pair.primary.port}
    assert written.json == {"before": pair.primary.port, "after": pair.primary.port}
    assert skips == [{"replica": pair.replica_url, "reason": "down"}] * 3
    assert len([r for r in caplog.records if "is down" in r.getMessage()]) == 1


def test_stack_check_reports_each_replica(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair
) -> None:
    app = make_replica_app(FLASKSTACK_DATABASE_REPLICA_URLS=[pair.replica_url, pair.primary_url])
    result = app.test_cli_runner().invoke(args=["stack", "check", "--tag", "replicas"])
    assert "database.I001" in result.output
    assert f"The read replica {pair.replica_url} answers, is a standby" in result.output
    assert "database.E004" in result.output
    assert f"The read replica {pair.primary_url} is not a standby" in result.output
    assert result.exit_code != 0


def test_reads_never_go_to_a_server_that_is_not_a_standby(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair, caplog: pytest.LogCaptureFixture
) -> None:
    # The "replica" is the primary itself: which port answered cannot tell them apart, but
    # the skip, the log line and /readyz can.
    caplog.set_level(logging.WARNING, logger="flaskstack.database")
    app = make_replica_app(FLASKSTACK_DATABASE_REPLICA_URLS=[pair.primary_url])
    client = app.test_client()
    with _skips(app) as skips:
        assert client.get("/where").json == {"port": pair.primary.port}
    assert skips == [{"replica": pair.primary_url, "reason": "down"}]
    assert "is not a standby" in caplog.text
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["replicas"] == {pair.primary_url: {"status": "not-standby"}}


def _count_statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        seen.append(statement)

    return seen


def test_a_replica_read_sends_one_statement_and_nothing_to_the_primary(
    make_replica_app: t.Callable[..., Flask], pair: PostgresPair
) -> None:
    app = make_replica_app(FLASKSTACK_REPLICA_CHECK_INTERVAL=600)
    client = app.test_client()
    assert client.get("/where").json == {"port": pair.replica.port}  # the first check is made
    state = app.extensions["flaskstack"]
    with app.app_context():
        primary = _count_statements(db.engine)
    replica = _count_statements(state.replicas.replicas[0].engine)
    assert client.get("/where").json == {"port": pair.replica.port}
    assert primary == []
    assert len(replica) == 1


def test_off_no_cookie_and_no_extra_statement(make_app: AppFactory, pair: PostgresPair) -> None:
    app = make_app({"SQLALCHEMY_DATABASE_URI": pair.primary_url, "WTF_CSRF_ENABLED": False})
    _add_views(app)
    assert app.extensions["flaskstack"].replicas is None
    client = app.test_client()
    client.get("/where")
    with app.app_context():
        statements = _count_statements(db.engine)
    assert client.get("/where").json == {"port": pair.primary.port}
    assert len(statements) == 1
    response = client.post("/notes")
    assert response.json["port"] == pair.primary.port
    assert "Set-Cookie" not in response.headers


def test_replicas_need_a_postgresql_primary(make_app: AppFactory, pair: PostgresPair) -> None:
    with pytest.raises(ConfigError) as caught:
        make_app({"FLASKSTACK_DATABASE_REPLICA_URLS": [pair.replica_url]})
    message = str(caught.value)
    assert "FLASKSTACK_DATABASE_REPLICA_URLS" in message
    assert "PostgreSQL primary" in message


def test_replica_urls_from_the_environment_with_passwords_masked(
    make_app: AppFactory, pair: PostgresPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DATABASE_REPLICA_URLS",
        "postgresql://app:s3cret@replica-a/app, postgresql://app:s3cret@replica-b/app",
    )
    app = make_app({"SQLALCHEMY_DATABASE_URI": pair.primary_url})
    assert app.config["FLASKSTACK_DATABASE_REPLICA_URLS"] == [
        "postgresql://app:s3cret@replica-a/app",
        "postgresql://app:s3cret@replica-b/app",
    ]
    result = app.test_cli_runner().invoke(args=["stack", "config"])
    assert "replica-a" in result.output
    assert "s3cret" not in result.output


def test_a_replica_url_that_is_not_postgresql_is_refused(
    make_app: AppFactory, pair: PostgresPair
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_app(
            {
                "SQLALCHEMY_DATABASE_URI": pair.primary_url,
                "FLASKSTACK_DATABASE_REPLICA_URLS": "mysql://u:pw@replica/app",
            }
        )
    assert "mysql://u:***@replica/app" in str(caught.value)
    assert "pw@" not in str(caught.value)


_IMPORTS = """
import json, sys
from flask import Flask
import flaskstack

def build(name, **settings):
    app = Flask(name, instance_path=sys.argv[1] + "/" + name)
    flaskstack.init_app(app, {"SQLALCHEMY_DATABASE_URI": sys.argv[2], **settings})
    return app

seen = {}
app = build("off")
with app.app_context():
    seen["read"] = flaskstack.db.session.scalar(flaskstack.db.text("SELECT 7"))
seen["off"] = "flaskstack._replicas" in sys.modules
build("on", FLASKSTACK_DATABASE_REPLICA_URLS=[sys.argv[3]])
seen["on"] = "flaskstack._replicas" in sys.modules
print(json.dumps(seen))
"""


def test_the_replica_module_is_imported_only_with_a_replica(
    pair: PostgresPair, tmp_path: t.Any
) -> None:
    # A fresh interpreter: this one imported everything long ago.
    result = subprocess.run(
        [sys.executable, "-c", _IMPORTS, str(tmp_path), pair.primary_url, pair.replica_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"read": 7, "off": False, "on": True}
