"""OpenTelemetry traces for an app: the provider, the exporter and the instrumentation.

Imported only when ``FLASKSTACK_TRACING`` is on: this is (with
:mod:`flaskstack.tracing`'s functions, once called) the only module that
imports OpenTelemetry.

- **One provider per app.** Each traced app has an SDK ``TracerProvider``
  (its resource names the service) exporting through a batch processor to
  an OTLP/HTTP exporter. The app's requests are traced with
  ``FlaskInstrumentor().instrument_app(app, tracer_provider=...)``.
- **The libraries once per process, routed per app.** SQLAlchemy, redis-py
  and requests are instrumented process-wide by their instrumentors (the
  only way they offer for engines and clients created later, as flaskstack's
  are); their tracer is :class:`_RoutingTracer`, which hands each span to the
  provider of the app in whose context it starts, and drops it where no
  trace is active: a SQL statement, Redis command or outgoing HTTP call is
  recorded as a child of a request's span (or of a span the app opened), and
  never as a stray trace of its own.
- **One exporter per process.** A batch processor's thread does not survive
  a fork, and the exporter's HTTP connections would be shared with the
  parent: :func:`_after_fork` gives each traced app a new processor and
  exporter in every new worker (gunicorn ``--preload``), and
  :func:`_before_exit` sends what is queued before a worker ends.
"""

from __future__ import annotations

import os
import re
import threading
import typing as t
import weakref

from flask import Flask, current_app, has_app_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from . import _processes
from ._hooks import after_response

if t.TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span
    from werkzeug.wrappers import Response

__all__: list[str] = []

EXTENSION_KEY = "flaskstack.tracing"
"""``app.extensions`` key of a traced app's :class:`AppTracing`."""

_INSTRUMENTATION_NAME = "flaskstack"


class _RenewableProcessor(SpanProcessor):
    """A batch processor and its exporter that a new worker process replaces.

    The provider keeps this object for its whole life (a provider's
    processors cannot be removed); what it holds is renewed after a fork.
    """

    def __init__(self, endpoint: str | None) -> None:
        self._endpoint = endpoint
        self._inner = self._new()

    def _new(self) -> BatchSpanProcessor:
        # endpoint=None: the exporter reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
        # OTEL_EXPORTER_OTLP_ENDPOINT, the headers and compression variables itself.
        return BatchSpanProcessor(OTLPSpanExporter(endpoint=self._endpoint))

    def renew(self) -> None:
        """In a new process: a new processor and exporter, the inherited ones let go."""
        old, self._inner = self._inner, self._new()
        # Its queue was the parent's and is empty here; shutting it down ends
        # the thread the SDK restarted in this process and closes its copies
        # of the parent's connections (the parent's own stay open).
        old.shutdown()  # type: ignore[no-untyped-call]

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self._inner.on_end(span)

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class AppTracing:
    """What tracing holds for one app: its provider and its processor."""

    def __init__(self, provider: TracerProvider, processor: _RenewableProcessor) -> None:
        self.provider = provider
        self.processor = processor
        self._tracers: dict[tuple[str, str | None, str | None], trace.Tracer] = {}

    def tracer(
        self, name: str, version: str | None = None, schema_url: str | None = None
    ) -> trace.Tracer:
        """The app's tracer for one instrumentation scope (created once)."""
        key = (name, version, schema_url)
        found = self._tracers.get(key)
        if found is None:
            found = self._tracers[key] = self.provider.get_tracer(name, version, schema_url)
        return found


_TRACED: weakref.WeakSet[AppTracing] = weakref.WeakSet()
_NO_OP = trace.NoOpTracer()


class _RoutingTracer(trace.Tracer):
    """A library's tracer: the current app's, inside an active trace only."""

    def __init__(self, name: str, version: str | None, schema_url: str | None) -> None:
        self._scope = (name, version, schema_url)

    def _delegate(self, context: Context | None) -> trace.Tracer:
        if not has_app_context():
            return _NO_OP
        tracing: AppTracing | None = current_app.extensions.get(EXTENSION_KEY)
        if tracing is None or not trace.get_current_span(context).get_span_context().is_valid:
            return _NO_OP
        return tracing.tracer(*self._scope)

    def start_span(
        self, name: str, context: Context | None = None, *args: t.Any, **kwargs: t.Any
    ) -> trace.Span:
        return self._delegate(context).start_span(name, context, *args, **kwargs)

    def start_as_current_span(
        self, name: str, context: Context | None = None, *args: t.Any, **kwargs: t.Any
    ) -> t.Any:
        return self._delegate(context).start_as_current_span(name, context, *args, **kwargs)


class _RoutingProvider(trace.TracerProvider):
    """The provider given to the process-wide instrumentors: see :class:`_RoutingTracer`."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        *args: t.Any,
        **kwargs: t.Any,
    ) -> trace.Tracer:
        return _RoutingTracer(instrumenting_module_name, instrumenting_library_version, schema_url)


_process_lock = threading.Lock()
_process_instrumented = False


def _instrument_process() -> None:
    """Instrument SQLAlchemy, redis-py and requests, once per process.

    Runs before the app's database engines are created, so that the
    SQLAlchemy instrumentor sees them being made.
    """
    global _process_instrumented
    with _process_lock:
        if _process_instrumented:
            return
        routing = _RoutingProvider()
        instrumentors: list[tuple[t.Any, dict[str, t.Any]]] = [
            # The SQLAlchemy instrumentation declares "sqlalchemy < 2.1" (a bound
            # set while 2.0 was the newest release) and would refuse 2.1. It
            # works through engine events that 2.1 keeps; its documented
            # skip_dep_check lets it run, and tests/test_tracing.py fails if
            # the SQL spans stop arriving.
            (SQLAlchemyInstrumentor(), {"skip_dep_check": True}),
            (RedisInstrumentor(), {}),
            (RequestsInstrumentor(), {}),
        ]
        for instrumentor, options in instrumentors:
            # An instrumentor the app (or opentelemetry-instrument) already
            # turned on keeps the app's set-up.
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(tracer_provider=routing, **options)
        _processes.AFTER_FORK.append(_after_fork)
        _processes.BEFORE_EXIT.append(_before_exit)
        _process_instrumented = True


def _service_name(app: Flask) -> str | None:
    """The service name flaskstack gives; ``None`` leaves it to ``OTEL_SERVICE_NAME``."""
    name: str | None = app.config["FLASKSTACK_TRACING_SERVICE_NAME"]
    if name is not None:
        return name
    named = "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if os.environ.get("OTEL_SERVICE_NAME") or named:
        return None
    return app.import_name.split(".")[0]


def init_app(app: Flask) -> AppTracing:
    """Trace ``app``'s requests, export its spans, send the trace id back."""
    _instrument_process()
    service = _service_name(app)
    resource = Resource.create({SERVICE_NAME: service} if service is not None else {})
    # The sampler comes from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (the SDK reads them).
    provider = TracerProvider(resource=resource)
    processor = _RenewableProcessor(app.config["FLASKSTACK_TRACING_ENDPOINT"])
    provider.add_span_processor(processor)
    tracing = AppTracing(provider, processor)
    app.extensions[EXTENSION_KEY] = tracing
    # An app that is gone (a test suite makes many) sends what it queued and
    # ends its exporter's thread, rather than keeping both to the end of the process.
    weakref.finalize(app, processor.shutdown)
    _TRACED.add(tracing)
    FlaskInstrumentor.instrument_app(  # type: ignore[no-untyped-call]
        app, tracer_provider=provider, excluded_urls=_excluded_urls(app)
    )
    header = app.config["FLASKSTACK_TRACE_ID_HEADER"]
    if header is not None:
        after_response(app, _ReturnTraceId(header))
    return tracing


def _excluded_urls(app: Flask) -> str | None:
    """The health and readiness endpoints: probes every few seconds are no traces worth keeping.

    ``None`` (the instrumentation reads ``OTEL_PYTHON_FLASK_EXCLUDED_URLS``)
    when the environment names the URLs to leave out itself.
    """
    if "OTEL_PYTHON_FLASK_EXCLUDED_URLS" in os.environ or "OTEL_PYTHON_EXCLUDED_URLS" in os.environ:
        return None
    paths = [app.config["FLASKSTACK_HEALTH_PATH"], app.config["FLASKSTACK_READY_PATH"]]
    # Matched against the request's whole URL: after the host, the path, then
    # the query or the end (an app's own "/api/healthz" stays traced).
    patterns = [rf"^[^:/]+://[^/]+{re.escape(path)}(\?|$)" for path in paths if path is not None]
    return ",".join(patterns) or None


class _ReturnTraceId:
    """The response hook that sends the request's trace id back."""

    def __init__(self, header: str) -> None:
        self.header = header

    def __call__(self, response: Response) -> Response:
        trace_id = current_trace_id()
        if trace_id is not None:
            response.headers[self.header] = trace_id
        return response


def current_trace_id() -> str | None:
    """The id of the recorded trace the current code runs in (32 hex digits), or ``None``."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return trace.format_trace_id(context.trace_id)


def app_tracer(app: Flask, name: str) -> trace.Tracer:
    """``app``'s tracer for instrumentation scope ``name``; a no-op one if it is not traced."""
    tracing: AppTracing | None = app.extensions.get(EXTENSION_KEY)
    if tracing is None:
        return _NO_OP
    return tracing.tracer(name)


def _after_fork() -> None:
    for tracing in list(_TRACED):
        tracing.processor.renew()


def _before_exit() -> None:
    for tracing in list(_TRACED):
        tracing.processor.force_flush()
