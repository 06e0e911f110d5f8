"""OpenTelemetry traces of the app's requests, exported over OTLP/HTTP.

With ``FLASKSTACK_TRACING = True`` (and ``pip install 'flaskstack[otel]'``)
every request of the app is a trace: the view's server span, with the SQL
statements (SQLAlchemy), Redis commands (redis-py) and outgoing HTTP calls
(requests) made while serving it as its children. The spans go, in batches
and off the request's path, to an OTLP/HTTP endpoint (a collector, an
agent, a tracing service): :setting:`FLASKSTACK_TRACING_ENDPOINT`, else
OpenTelemetry's own ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_ENDPOINT`` variables, else ``http://localhost:4318``.
The response carries the trace id (:setting:`FLASKSTACK_TRACE_ID_HEADER`,
``X-Trace-Id``) and so does every JSON log line written inside the trace.

The rules this module keeps:

- **Off until configured, free when off.** Off, OpenTelemetry is not
  imported, no hook runs on a request and no header is added.
  :func:`trace_id` works either way without importing anything.
- **Guest, not owner.** flaskstack sets no global tracer provider and
  leaves an instrumentor the process already turned on as it is: the
  app's own OpenTelemetry set-up keeps working beside flaskstack's.
- **Per worker.** Under gunicorn (:mod:`flaskstack.gunicorn`), each worker
  exports through its own connection and sends its queued spans before it
  ends, with or without ``--preload``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import typing as t
from urllib.parse import urlsplit

from flask import current_app

from .errors import MissingDependencyError, Problem

if t.TYPE_CHECKING:
    from flask import Flask
    from opentelemetry.trace import Tracer

    from .config import Resolution

__all__ = ["trace_id", "tracer"]

_INSTALL = "pip install 'flaskstack[otel]'"

# What the extra brings, as the modules flaskstack imports from it.
_EXTRA_MODULES = (
    "opentelemetry.sdk",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.instrumentation.flask",
    "opentelemetry.instrumentation.sqlalchemy",
    "opentelemetry.instrumentation.redis",
    "opentelemetry.instrumentation.requests",
)

_DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"


def tracer(name: str = "app") -> Tracer:
    """The current app's OpenTelemetry tracer, for spans of the app's own.

    ::

        from flaskstack.tracing import tracer

        with tracer().start_as_current_span("render-invoice"):
            ...

    The span joins the request's trace, and SQL, Redis and HTTP calls made
    inside it become its children. With tracing off the tracer records
    nothing (OpenTelemetry's no-op tracer), so such code needs no ``if``.

    :param name: The instrumentation scope the spans are reported under.
    :raises MissingDependencyError: without the ``otel`` extra installed.
    """
    try:
        from . import _tracing
    except ImportError as exc:
        raise MissingDependencyError(
            f"flaskstack.tracing.tracer() needs OpenTelemetry: {_INSTALL} ({exc})"
        ) from exc
    return _tracing.app_tracer(current_app, name)


def trace_id() -> str | None:
    """The id of the recorded trace the current code runs in: 32 hexadecimal digits.

    ``None`` outside a trace, in a trace the sampler did not record, and
    whenever tracing is off (nothing is imported to find that out).
    """
    tracing = sys.modules.get("flaskstack._tracing")
    if tracing is None:
        return None
    found: str | None = tracing.current_trace_id()
    return found


def _missing_extra() -> list[str]:
    """The modules of the ``otel`` extra that cannot be found (empty when it is installed)."""
    missing = []
    for name in _EXTRA_MODULES:
        try:
            found = importlib.util.find_spec(name)
        except ImportError:
            found = None
        if found is None:
            missing.append(name)
    return missing


def _extra_problem(missing: t.Sequence[str]) -> Problem:
    """The refusal of ``FLASKSTACK_TRACING`` without the extra's ``missing`` modules."""
    return Problem(
        "tracing.E001",
        "FLASKSTACK_TRACING",
        f"True, and OpenTelemetry is not installed ({', '.join(missing)} missing)",
        "the otel extra installed",
        f"{_INSTALL}, or set FLASKSTACK_TRACING = False",
    )


def _effective_endpoint(config: t.Mapping[str, t.Any], environ: t.Mapping[str, str]) -> str:
    """Where the spans go: the setting, OpenTelemetry's variables, or the default.

    The order is OpenTelemetry's own for the variables:
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is used as it is,
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` gets ``/v1/traces`` appended.
    """
    given: str | None = config.get("FLASKSTACK_TRACING_ENDPOINT")
    if given:
        return given
    traces = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if base:
        return base.rstrip("/") + "/v1/traces"
    return _DEFAULT_ENDPOINT


def _is_loopback(host: str) -> bool:
    import ipaddress  # only for --deploy checks

    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_findings(config: t.Mapping[str, t.Any]) -> list[tuple[str, str]]:
    """``(id, message)`` of what ``flask stack check --deploy`` says about tracing."""
    if not config.get("FLASKSTACK_TRACING"):
        return []
    endpoint = _effective_endpoint(config, os.environ)
    parts = urlsplit(endpoint)
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        return [
            (
                "tracing.W001",
                f"Spans are sent over plain http to {parts.hostname!r} ({endpoint}).",
            )
        ]
    return []


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """With tracing on: the extra is installed."""
    if not resolution["FLASKSTACK_TRACING"]:
        return []
    missing = _missing_extra()
    return [_extra_problem(missing)] if missing else []


def _init_app(app: Flask) -> None:
    """With tracing on: trace the app's requests and return the trace id.

    Runs before the app's database engines are made (the SQLAlchemy
    instrumentation sees them being created) and before flaskstack's other
    request hooks (they run inside the request's span).
    """
    if app.config["FLASKSTACK_TRACING"]:
        from . import _tracing  # only when it is on: OpenTelemetry is imported here

        _tracing.init_app(app)
