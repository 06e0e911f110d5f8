"""Every logger of the process goes through the app's logging set-up (issue #21, item 1).

flaskstack's own loggers (``flaskstack.redis``, ``flaskstack.sessions``, ...),
the wrapped libraries' (``werkzeug``, ``sqlalchemy``, ``rq``,
``flask_limiter``) and Python's warnings are written by the one handler
flaskstack puts on the root logger: JSON lines with the request id in
production, readable text in development; nothing at all from flaskstack when
the app configured logging of its own. gunicorn's lines are in
tests/test_gunicorn_config.py, and the connections renewed after a fork here.
"""

from __future__ import annotations

import io
import json
import logging
import os
import typing as t
import warnings

import pytest
from conftest import SHARED_REDIS_URL
from flask import session
from loopback import free_port

import flaskstack
import flaskstack.logs
from flaskstack import _processes

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import AppFactory
    from flask import Flask

LIBRARY_LOGGERS = ("werkzeug", "sqlalchemy.pool.impl.QueuePool", "rq.worker", "flask_limiter")


@pytest.fixture(autouse=True)
def process_logging() -> Iterator[None]:
    """Put the root logger and Python's warnings back as they were."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    root.setLevel(level)


def _json_lines(err: str) -> list[dict[str, t.Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def _redis_down_app(make_app: AppFactory, **options: t.Any) -> Flask:
    """An app whose Redis URL names a port nothing listens on."""
    app = make_app(
        {"FLASKSTACK_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
        name="logs_everywhere",
        **options,
    )

    @app.get("/visit")
    def visit() -> str:
        session["visits"] = 1
        return "visited"

    return app


def test_flaskstacks_warnings_in_an_outage_are_json_lines_with_the_request_id(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _redis_down_app(make_app, log_format="json")
    capsys.readouterr()
    response = app.test_client().get("/visit", headers={"X-Request-ID": "outage-1"})
    assert response.status_code == 503
    lines = _json_lines(capsys.readouterr().err)
    assert lines, "no JSON line"
    assert not [line for line in capsys.readouterr().err.splitlines() if line[:1] != "{"]
    redis_lines = [line for line in lines if line["logger"] == "flaskstack.redis"]
    assert redis_lines, lines
    for line in redis_lines:
        assert line["level"] == "WARNING"
        assert line["request_id"] == "outage-1"
        assert line["path"] == "/visit"
        assert "Redis is unreachable" in line["message"]
        assert {"time", "pid"} <= set(line)


def test_the_wrapped_libraries_loggers_write_the_same_json_lines(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(name="logs_everywhere", log_format="json")
    capsys.readouterr()
    with app.test_request_context("/x", headers={"X-Request-ID": "libraries-1"}):
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).warning("a warning of %s", name)
    err = capsys.readouterr().err
    lines = _json_lines(err)
    assert [line["logger"] for line in lines] == list(LIBRARY_LOGGERS), err
    assert {line["request_id"] for line in lines} == {"libraries-1"}
    assert [line["message"] for line in lines] == [f"a warning of {n}" for n in LIBRARY_LOGGERS]


def test_pythons_warnings_become_json_lines_in_production_format(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.captureWarnings(False)  # as in a fresh process
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        app = make_app(name="logs_everywhere", log_format="json")
        capsys.readouterr()
        with app.test_request_context("/x", headers={"X-Request-ID": "warned-1"}):
            warnings.warn("a deprecated call", DeprecationWarning, stacklevel=1)
    (line,) = _json_lines(capsys.readouterr().err)
    assert line["logger"] == "py.warnings"
    assert line["level"] == "WARNING"
    assert line["request_id"] == "warned-1"
    assert "DeprecationWarning: a deprecated call" in line["message"]


def test_development_lines_stay_readable_text(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _redis_down_app(make_app, profile="development")
    capsys.readouterr()
    app.test_client().get("/visit", headers={"X-Request-ID": "dev-1"})
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if " flaskstack.redis: " in line]
    assert lines, err
    assert " WARNING [dev-1] flaskstack.redis: Redis is unreachable" in lines[0]
    assert not any(line.startswith("{") for line in err.splitlines())


def test_one_handler_serves_every_app_of_the_process(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    first = make_app(name="logs_first", log_format="json")
    second = make_app(name="logs_second", log_format="json")
    stack_handlers = [
        h for h in logging.getLogger().handlers if isinstance(h, flaskstack.logs._StackHandler)
    ]
    assert len(stack_handlers) == 1
    # On app.logger too, for code that looks for the app's handler there.
    assert first.logger.handlers == second.logger.handlers == stack_handlers
    capsys.readouterr()
    with first.test_request_context("/"):
        first.logger.warning("once")
        logging.getLogger("flaskstack.sessions").warning("once too")
    lines = _json_lines(capsys.readouterr().err)
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("logs_first", "once"),
        ("flaskstack.sessions", "once too"),
    ]


def test_an_app_that_configured_logging_gets_every_line_once_and_none_from_flaskstack(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    make_app(name="logs_earlier", log_format="json")  # an earlier app's handler is on the root
    stream = io.StringIO()
    own = logging.StreamHandler(stream)
    own.setFormatter(logging.Formatter("%(name)s|%(message)s"))
    logging.getLogger().addHandler(own)  # what logging.basicConfig does
    app = _redis_down_app(make_app)
    capsys.readouterr()
    response = app.test_client().get("/visit")
    assert response.status_code == 503
    assert capsys.readouterr().err == ""
    lines = stream.getvalue().splitlines()
    assert any(line.startswith("flaskstack.redis|Redis is unreachable") for line in lines), lines
    assert len(lines) == len(set(lines)), lines
    assert not [
        h for h in logging.getLogger().handlers if isinstance(h, flaskstack.logs._StackHandler)
    ]


def test_the_trace_id_is_in_the_json_lines_when_a_trace_is_active(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(name="logs_everywhere", log_format="json")
    with app.test_request_context("/"):
        app.logger.warning("outside a trace")
        monkeypatch.setattr(
            flaskstack.logs, "_trace_id", lambda: "4bf92f3577b34da6a3ce929d0e0e4736"
        )
        app.logger.warning("inside a trace")
    outside, inside = _json_lines(capsys.readouterr().err)
    assert "trace_id" not in outside
    assert inside["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


# -- connections after a fork ----------------------------------------------------------------


def _backend_and_client_ids(app: Flask) -> tuple[int, int]:
    with app.app_context():
        backend = flaskstack.db.session.scalar(flaskstack.db.text("SELECT pg_backend_pid()"))
        flaskstack.db.session.remove()
    client = flaskstack.redis.get_redis(app).client.client_id()
    return int(backend), int(client)


def test_a_forked_worker_opens_connections_of_its_own(
    make_app: AppFactory, postgres_url: str
) -> None:
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": postgres_url.replace(
                "postgresql://", "postgresql+psycopg://"
            ),
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
        },
        name="logs_forked",
    )
    parent = _backend_and_client_ids(app)  # pooled in the parent, as under --preload
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        status = 1
        try:
            _processes.after_fork()
            os.write(write, json.dumps(_backend_and_client_ids(app)).encode())
            _processes.before_exit()
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = json.loads(pipe.read() or "null")
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert child is not None
    assert child[0] != parent[0], "the worker used the parent's database connection"
    assert child[1] != parent[1], "the worker used the parent's Redis connection"
    # The parent's own connections were left alone and still work.
    assert _backend_and_client_ids(app) == parent
