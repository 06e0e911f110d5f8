"""A real OTLP/HTTP traces receiver on loopback, run as a process of its own.

It accepts what an OpenTelemetry collector accepts on ``POST /v1/traces``:
a protobuf ``ExportTraceServiceRequest`` (``Content-Type:
application/x-protobuf``), gzip-compressed or not, and answers with an empty
``ExportTraceServiceResponse``. Every span it receives is appended to a file
as one JSON object per line: ``trace_id``, ``span_id``, ``parent_span_id``
(hex; ``""`` for a root span), ``name``, ``kind`` (``SERVER``, ``CLIENT``...),
``service`` (the resource's ``service.name``), ``attributes`` and ``peer``
(the client port of the connection the span came over).

Run it as ``python otlp_receiver.py SPANS_FILE``: it prints ``PORT <n>`` once
it listens. In tests, :class:`OTLPReceiver` starts and stops it::

    with OTLPReceiver(tmp_path / "spans.jsonl") as receiver:
        app = make_app({"FLASKSTACK_TRACING": True, "FLASKSTACK_TRACING_ENDPOINT": receiver.url})
        ...
        spans = receiver.wait_for(lambda spans: len(spans) >= 3)
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOST = "127.0.0.1"
DEADLINE = 30.0
"""Upper bound, in seconds, of every wait for the receiver."""

Span = dict[str, t.Any]


def _value(any_value: t.Any) -> t.Any:
    kind = any_value.WhichOneof("value")
    return None if kind is None else getattr(any_value, kind)


def spans_of(body: bytes) -> list[Span]:
    """The spans of one ``ExportTraceServiceRequest``, as the receiver writes them."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    found = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": ProtoSpan.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                        "scope": scope_spans.scope.name,
                        "service": resource.get("service.name"),
                        "attributes": {a.key: _value(a.value) for a in span.attributes},
                    }
                )
    return found


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector: exporters reuse connections

    def do_POST(self) -> None:
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        try:
            spans = spans_of(body)
        except Exception as exc:  # a malformed body is the exporter's bug: say so
            self.send_error(400, f"not an ExportTraceServiceRequest: {exc}")
            return
        with self.server.lock, self.server.output.open("a") as out:
            for span in spans:
                span["peer"] = self.client_address[1]  # the exporter's connection
                out.write(json.dumps(span) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: t.Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def __init__(self, output: Path) -> None:
        super().__init__((HOST, 0), _Handler)
        self.output = output
        self.lock = threading.Lock()


def main(output: str) -> None:
    server = _Server(Path(output))
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


class OTLPReceiver:
    """The receiver as a process of its own, for one test."""

    def __init__(self, output: Path) -> None:
        self.output = output
        output.touch()
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(output)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.kill()
            raise AssertionError(f"the OTLP receiver did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://{HOST}:{self.port}/v1/traces"

    def spans(self) -> list[Span]:
        """Every span received so far."""
        return [json.loads(line) for line in self.output.read_text().splitlines() if line]

    def wait_for(self, enough: t.Callable[[list[Span]], bool]) -> list[Span]:
        """The spans received, once ``enough(spans)`` holds (fails after :data:`DEADLINE`)."""
        deadline = time.monotonic() + DEADLINE
        while True:
            spans = self.spans()
            if enough(spans):
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(f"the spans expected did not arrive; received: {spans}")
            time.sleep(0.05)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(DEADLINE)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> OTLPReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    main(sys.argv[1])
