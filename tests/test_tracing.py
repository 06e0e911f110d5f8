"""OpenTelemetry traces (flaskstack.tracing), exported to a real OTLP/HTTP receiver.

The receiver (``otlp_receiver.py``) is a process of its own on loopback that
decodes what the app's exporter sends; the tests assert on the spans as it
received them: one trace per request, the view's server span as its root,
the SQL and Redis spans as its children, its id in the response header and
in the request's JSON log line. Under gunicorn with the shipped configuration
and ``--preload``, both workers export their spans. Off, nothing of
OpenTelemetry is imported.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import typing as t
import uuid
from pathlib import Path

import pytest
from conftest import SHARED_REDIS_URL
from flask import Flask, jsonify
from otlp_receiver import OTLPReceiver, Span
from test_gunicorn_config import Gunicorn, _production

import flaskstack
from flaskstack.checks import run_checks
from flaskstack.redis import get_redis

if t.TYPE_CHECKING:
    from conftest import AppFactory

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def receiver(tmp_path: Path) -> t.Iterator[OTLPReceiver]:
    with OTLPReceiver(tmp_path / "spans.jsonl") as server:
        yield server
        # What the test's apps still queue goes now, while the receiver
        # listens, not at the end of the run to a closed port.
        from flaskstack import _tracing

        _tracing._before_exit()


def _is_sql(span: Span) -> bool:
    attributes = span["attributes"]
    return "postgresql" in (attributes.get("db.system"), attributes.get("db.system.name"))


def _is_redis(span: Span) -> bool:
    attributes = span["attributes"]
    return "redis" in (attributes.get("db.system"), attributes.get("db.system.name"))


def _add_work_view(app: Flask) -> None:
    """``/work``: one SQL statement, one Redis command and one log line, as a view does."""

    @app.get("/work")
    def work() -> t.Any:
        from opentelemetry import trace

        trace.get_current_span().set_attribute("test.pid", os.getpid())
        answer = flaskstack.db.session.scalar(flaskstack.db.text("SELECT 41 + 1"))
        connection = get_redis()
        visits = connection.run(lambda client: client.incr(connection.key("visits")))
        app.logger.warning("served the work")
        return jsonify(answer=answer, visits=visits, pid=os.getpid())


def _check_trace(spans: list[Span], trace_id: str) -> tuple[Span, list[Span], list[Span]]:
    """The root server span, SQL spans and Redis spans of one trace; each a child of the root."""
    mine = [span for span in spans if span["trace_id"] == trace_id]
    (root,) = [span for span in mine if not span["parent_span_id"]]
    assert root["kind"] == "SERVER"
    assert root["name"] == "GET /work"
    sql = [span for span in mine if _is_sql(span)]
    commands = [span for span in mine if _is_redis(span)]
    assert sql, f"no SQL span in {mine}"
    assert commands, f"no Redis span in {mine}"
    for child in (*sql, *commands):
        assert child["kind"] == "CLIENT"
        assert child["parent_span_id"] == root["span_id"], child
    return root, sql, commands


# -- one request ---------------------------------------------------------------------------


def test_one_request_is_one_trace_with_its_sql_and_redis_spans(
    make_app: AppFactory,
    postgres_url: str,
    namespace: t.Callable[[], str],
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # milliseconds: no wait for the batch
    service = f"traced-{uuid.uuid4().hex[:8]}"
    app = make_app(
        {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_LOG_FORMAT": "json",
            "FLASKSTACK_TRACING": True,
            "FLASKSTACK_TRACING_ENDPOINT": receiver.url,
            "FLASKSTACK_TRACING_SERVICE_NAME": service,
        }
    )
    _add_work_view(app)
    capsys.readouterr()

    response = app.test_client().get("/work")

    assert response.status_code == 200
    assert response.json == {"answer": 42, "visits": 1, "pid": os.getpid()}
    trace_id = response.headers["X-Trace-Id"]
    assert len(trace_id) == 32
    assert int(trace_id, 16)
    spans = receiver.wait_for(
        lambda spans: any(s["trace_id"] == trace_id and not s["parent_span_id"] for s in spans)
    )
    assert {span["trace_id"] for span in spans} == {trace_id}, "the request is one trace"
    _, sql, commands = _check_trace(spans, trace_id)
    assert {span["service"] for span in spans} == {service}
    assert any("SELECT 41 + 1" in str(span["attributes"]) for span in sql)
    assert [span["name"] for span in commands] == ["INCRBY"]  # redis-py sends INCR as INCRBY key 1

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    (served,) = [line for line in lines if line["message"] == "served the work"]
    assert served["trace_id"] == trace_id
    assert served["request_id"] == response.headers["X-Request-ID"]


def test_the_trace_id_header_can_be_renamed_or_left_out(
    make_app: AppFactory, receiver: OTLPReceiver
) -> None:
    renamed = make_app(
        {"FLASKSTACK_TRACING": True, "FLASKSTACK_TRACING_ENDPOINT": receiver.url},
        trace_id_header="Trace-Id",
    )
    response = renamed.test_client().get("/healthz/nothing-here")
    assert response.status_code == 404
    assert len(response.headers["Trace-Id"]) == 32
    assert "X-Trace-Id" not in response.headers

    omitted = make_app(
        {"FLASKSTACK_TRACING": True, "FLASKSTACK_TRACING_ENDPOINT": receiver.url},
        trace_id_header=None,
    )
    response = omitted.test_client().get("/healthz/nothing-here")
    assert response.status_code == 404
    assert "X-Trace-Id" not in response.headers
    assert "Trace-Id" not in response.headers


def test_spans_of_the_apps_own_join_the_request_trace(
    make_app: AppFactory,
    namespace: t.Callable[[], str],
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    app = make_app(
        {
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_TRACING": True,
            "FLASKSTACK_TRACING_ENDPOINT": receiver.url,
        }
    )

    @app.get("/report")
    def report() -> str:
        from flaskstack.tracing import trace_id, tracer

        with tracer().start_as_current_span("render-report"):
            get_redis().run(lambda client: client.ping())
        return trace_id() or "-"

    response = app.test_client().get("/report")
    trace_id = response.headers["X-Trace-Id"]
    assert response.text == trace_id
    spans = receiver.wait_for(lambda spans: len(spans) >= 3)
    by_name = {span["name"]: span for span in spans}
    assert {span["trace_id"] for span in spans} == {trace_id}
    assert {span["service"] for span in spans} == {"testapp"}, "the app's package by default"
    assert by_name["render-report"]["parent_span_id"] == by_name["GET /report"]["span_id"]
    assert by_name["PING"]["parent_span_id"] == by_name["render-report"]["span_id"]


def test_redis_and_sql_outside_a_trace_make_no_spans(
    make_app: AppFactory,
    namespace: t.Callable[[], str],
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    app = make_app(
        {
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_TRACING": True,
            "FLASKSTACK_TRACING_ENDPOINT": receiver.url,
        }
    )
    with app.app_context():  # a script or a job: no request, no span of the app's
        get_redis().run(lambda client: client.ping())
        flaskstack.db.session.scalar(flaskstack.db.text("SELECT 1"))
        assert flaskstack.tracing.trace_id() is None
    response = app.test_client().get("/healthz/nothing-here")  # then one request
    spans = receiver.wait_for(lambda spans: len(spans) >= 1)
    assert [span["trace_id"] for span in spans] == [response.headers["X-Trace-Id"]]


def test_health_probes_are_not_traced(
    make_app: AppFactory, receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    app = make_app({"FLASKSTACK_TRACING": True, "FLASKSTACK_TRACING_ENDPOINT": receiver.url})
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert "X-Trace-Id" not in client.get("/healthz").headers
    assert client.get("/readyz").status_code == 200
    traced = [client.get(path).headers["X-Trace-Id"] for path in ("/healthz-not", "/api/healthz")]
    spans = receiver.wait_for(lambda spans: len(spans) >= 2)
    assert sorted(span["trace_id"] for span in spans) == sorted(traced)


def _exporter_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name.startswith("OtelBatch"))


def test_an_app_that_is_gone_sends_its_spans_and_ends_its_exporter_thread(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    gc.collect()  # the apps of earlier tests that are gone already
    before = _exporter_threads()
    app = Flask("short_lived", instance_path=str(tmp_path / "instance"))
    flaskstack.init_app(
        app, {"FLASKSTACK_TRACING": True, "FLASKSTACK_TRACING_ENDPOINT": receiver.url}
    )
    assert _exporter_threads() == before + 1
    trace_id = app.test_client().get("/nothing-here").headers["X-Trace-Id"]
    del app
    gc.collect()
    assert _exporter_threads() == before
    assert [span["trace_id"] for span in receiver.spans()] == [trace_id]


# -- under gunicorn --------------------------------------------------------------------------


def create_traced_app() -> Flask:
    """The app gunicorn's master loads (``--preload``), using the database while it does.

    The master exports a span of its own before it forks: its exporter then
    holds a connection to the receiver, which the workers must not share.
    """
    app = Flask("gunicorn_traced_app")
    flaskstack.init_app(app)
    with app.app_context():
        with flaskstack.tracing.tracer().start_as_current_span("master-start-up"):
            flaskstack.db.session.scalar(flaskstack.db.text("SELECT 1"))  # the master's pool
        app.extensions["flaskstack.tracing"].provider.force_flush()
    _add_work_view(app)
    return app


def test_under_gunicorn_with_preload_each_worker_exports_its_traces(
    tmp_path: Path, postgres_url: str, receiver: OTLPReceiver
) -> None:
    env = _production(
        postgres_url,
        SHARED_REDIS_URL,
        FLASKSTACK_TRACING="true",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.port}",
        OTEL_SERVICE_NAME="gunicorn-traced",
        # A minute between batches: what arrives was sent as each worker ended.
        OTEL_BSP_SCHEDULE_DELAY="60000",
    )
    server = Gunicorn(
        tmp_path,
        env,
        app="test_tracing:create_traced_app()",
        options=["--preload"],
    )
    traces: dict[str, int] = {}
    try:
        server.wait_until_serving()
        for attempt in range(200):
            response = server.request("/work", request_id=f"work-{attempt}")
            assert response.status == 200, server.output()
            traces[response.headers["X-Trace-Id"]] = json.loads(server.body)["pid"]
            if len(set(traces.values())) == 2 and len(traces) >= 4:
                break
    finally:
        assert server.stop() == 0, server.output()
        with redis_client() as client:
            client.delete(f"{env['FLASKSTACK_NAMESPACE']}:visits")
    assert len(set(traces.values())) == 2, "both workers served"

    spans = receiver.wait_for(
        lambda spans: set(traces) <= {s["trace_id"] for s in spans if not s["parent_span_id"]}
    )
    for trace_id, pid in traces.items():
        root, _, _ = _check_trace(spans, trace_id)
        assert root["attributes"]["test.pid"] == pid
        assert root["service"] == "gunicorn-traced"
    (start_up,) = [s for s in spans if s["name"] == "master-start-up"]
    assert {s["trace_id"] for s in spans} == {*traces, start_up["trace_id"]}, "no other trace"
    # Each worker exported over connections of its own, not the master's.
    peers: dict[int, set[int]] = {}
    for span in spans:
        if span["name"] == "GET /work":
            peers.setdefault(span["attributes"]["test.pid"], set()).add(span["peer"])
    first, second = peers.values()
    assert not first & second, "two workers exported over one connection"
    assert start_up["peer"] not in first | second, "a worker exported over the master's connection"


def redis_client() -> t.Any:
    import redis

    return redis.Redis.from_url(SHARED_REDIS_URL)


# -- off, refused, checked ----------------------------------------------------------------


OFF = textwrap.dedent(
    """
    import json, sys

    from flask import Flask

    import flaskstack

    app = Flask("untraced", instance_path=sys.argv[1])
    flaskstack.init_app(app)

    @app.get("/")
    def home():
        return "home"

    response = app.test_client().get("/")
    print(json.dumps({
        "status": response.status_code,
        "headers": sorted(response.headers.keys()),
        "imported": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
        "tracing": "flaskstack._tracing" in sys.modules,
        "trace_id": flaskstack.tracing.trace_id(),
    }))
    """
)


def _run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK", "OTEL_"))}
    environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent)])
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "instance")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_off_nothing_of_opentelemetry_is_imported_and_no_header_is_sent(tmp_path: Path) -> None:
    result = _run(OFF, tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["status"] == 200
    assert seen["imported"] == []
    assert seen["tracing"] is False
    assert seen["trace_id"] is None
    assert "X-Trace-Id" not in seen["headers"]
    assert "X-Request-ID" in seen["headers"]


WITHOUT_THE_EXTRA = textwrap.dedent(
    """
    import sys

    class NoOpenTelemetry:
        # The otel extra is not installed, as far as this process can tell.
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoOpenTelemetry())

    from flask import Flask

    import flaskstack

    try:
        flaskstack.init_app(Flask("traced", instance_path=sys.argv[1]), tracing=True)
    except flaskstack.ConfigError as exc:
        print(exc)
    try:
        flaskstack.tracing.tracer()
    except flaskstack.MissingDependencyError as exc:
        print(exc)
    """
)


def test_tracing_without_the_extra_is_refused_with_the_command_that_installs_it(
    tmp_path: Path,
) -> None:
    result = _run(WITHOUT_THE_EXTRA, tmp_path)
    assert result.returncode == 0, result.stderr
    refusal, _, tracer_error = result.stdout.partition("\n  - ")[2].partition("\n")
    assert refusal.startswith("[tracing.E001] 'FLASKSTACK_TRACING' = True, and OpenTelemetry")
    assert "Fix: pip install 'flaskstack[otel]', or set FLASKSTACK_TRACING = False" in refusal
    assert "pip install 'flaskstack[otel]'" in tracer_error


@pytest.mark.parametrize(
    ("settings", "environment", "expected"),
    [
        ({"FLASKSTACK_TRACING_ENDPOINT": "http://collector.example:4318/v1/traces"}, {}, True),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://10.0.0.7:4318"}, True),
        ({"FLASKSTACK_TRACING_ENDPOINT": "https://collector.example/v1/traces"}, {}, False),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otlp.example/v1/traces"}, False),
        ({}, {}, False),  # the default: an agent on this host
        ({"FLASKSTACK_TRACING_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, {}, False),
    ],
)
def test_deploy_check_flags_spans_sent_in_plain_http_over_the_network(
    make_app: AppFactory,
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, str],
    environment: dict[str, str],
    expected: bool,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    app = make_app({"FLASKSTACK_TRACING": True, **settings})
    ids = [finding.id for finding in run_checks(app, deploy=True, tags=["tracing"])]
    assert ids == (["tracing.W001"] if expected else [])
    assert [f.id for f in run_checks(app, tags=["tracing"])] == []
