"""A gunicorn configuration for flaskstack apps, for production.

Name it with ``-c``, and give the address and the app on the command line::

    gunicorn -c python:flaskstack.gunicorn --bind 0.0.0.0:8000 'myapp:create_app()'

What it sets, each from gunicorn's documented settings and hooks:

- :data:`workers`: ``WEB_CONCURRENCY`` from the environment, otherwise one
  sync worker per CPU the process may use (its CPU affinity and its cgroup's
  CPU quota, as a container's ``--cpus`` sets it), at least 2. Sync workers,
  gunicorn's default: threaded (gthread) workers gave flaskstack's requests no
  more throughput in the benchmarks and twice the 99th-percentile latency;
  ``--threads 4`` on the command line turns them on for views that wait long
  on other services (flaskstack's sessions, circuit breaker and engines are
  safe under threads).
- Worker recycling (:data:`max_requests`, :data:`max_requests_jitter`), a
  :data:`timeout` for a stuck worker and a :data:`graceful_timeout` shorter
  than the 30 s most orchestrators wait before they kill a stopping container.
- :data:`forwarded_allow_ips`: the addresses whose ``X-Forwarded-*`` headers
  gunicorn believes, from ``FORWARDED_ALLOW_IPS`` (loopback only by default,
  never ``*``). The app's own proxy handling is :setting:`FLASKSTACK_PROXY_FIX`.
- Logs (:data:`logconfig_dict`): gunicorn's error lines on stderr, its access
  lines on stdout, and every other line of the process on stderr, all in the
  app's format (``FLASKSTACK_LOG_FORMAT`` from the environment, otherwise JSON
  in the ``production`` profile and text in the others; ``none`` keeps
  gunicorn's own logging). An access line in JSON carries the request's id
  (the app's ``X-Request-ID`` response header, or
  :setting:`FLASKSTACK_REQUEST_ID_HEADER`), method, path, status, size and
  duration.
- :func:`post_fork`: in each new worker, the database pools and Redis
  connections inherited from the master are dropped (they exist when the app
  was loaded before the fork, with ``--preload``), so each worker opens its
  own; then the per-worker set-up of flaskstack's other features runs (with
  :setting:`FLASKSTACK_TRACING` on, a span exporter of the worker's own).
  :func:`worker_exit`: a worker that ends sends the spans it still queues and
  closes its connections properly.
- Metrics (:mod:`flaskstack.metrics`): with ``FLASKSTACK_METRICS=true`` in the
  environment, the workers count in prometheus-client's multiprocess mode, in
  ``PROMETHEUS_MULTIPROC_DIR`` (a temporary directory made at start and
  removed at exit when the variable is unset). :func:`on_starting` empties
  it; :func:`child_exit` drops the live gauges of a worker that ended, so a
  replaced worker leaves no stale in-flight requests, while its counters stay
  in the sums.

Any setting given on the command line or in ``GUNICORN_CMD_ARGS`` wins over
this module's (``--workers 8``, ``--timeout 60``). To change more, write your
own ``gunicorn.conf.py`` that starts with ``from flaskstack.gunicorn import *``.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import shutil
import tempfile
import typing as t
from collections.abc import Mapping
from pathlib import Path

from . import _processes
from .logs import JSONFormatter, RequestIdFilter, TextFormatter, _StackHandler

__all__ = [
    "AccessFormatter",
    "access_log_format",
    "accesslog",
    "child_exit",
    "control_socket_disable",
    "forwarded_allow_ips",
    "graceful_timeout",
    "logconfig_dict",
    "max_requests",
    "max_requests_jitter",
    "on_exit",
    "on_starting",
    "post_fork",
    "timeout",
    "worker_exit",
    "worker_tmp_dir",
    "workers",
]


# -- reading the environment ---------------------------------------------------------


def _quota_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """The CPUs the process's cgroup (v2) may use, rounded up; ``None`` without a quota."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def _usable_cpus() -> int:
    """The CPUs this process may run on: its affinity, capped by its cgroup's quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    quota = _quota_cpus()
    return count if quota is None else min(count, quota)


def _workers(environ: t.Mapping[str, str]) -> int:
    given = environ.get("WEB_CONCURRENCY", "").strip()
    if not given:
        return max(2, _usable_cpus())
    try:
        value = int(given)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(
            f"WEB_CONCURRENCY={given!r}: expected the number of gunicorn workers, a whole "
            "number of at least 1; unset it to start one worker per CPU"
        )
    return value


def _forwarded_allow_ips(environ: t.Mapping[str, str]) -> str:
    return environ.get("FORWARDED_ALLOW_IPS", "").strip() or "127.0.0.1,::1"


_FORMATS = ("text", "json", "none")


def _log_format(environ: t.Mapping[str, str]) -> str:
    given = environ.get("FLASKSTACK_LOG_FORMAT", "").strip().lower()
    if not given:
        profile = environ.get("FLASKSTACK_PROFILE", "").strip().lower()
        return "json" if profile == "production" else "text"
    if given not in _FORMATS:
        raise ValueError(
            f"FLASKSTACK_LOG_FORMAT={given!r}: expected one of {', '.join(map(repr, _FORMATS))}"
        )
    return given


def _request_id_atom(environ: t.Mapping[str, str]) -> str:
    return _header_atom(environ.get("FLASKSTACK_REQUEST_ID_HEADER", "").strip() or "X-Request-ID")


def _trace_id_atom(environ: t.Mapping[str, str]) -> str:
    return _header_atom(environ.get("FLASKSTACK_TRACE_ID_HEADER", "").strip() or "X-Trace-Id")


def _header_atom(header: str) -> str:
    return f"{{{header.lower()}}}o"  # gunicorn's name for a response header in its log atoms


def _metrics_dir(environ: t.MutableMapping[str, str]) -> tuple[str | None, bool]:
    """prometheus-client's multiprocess directory for the workers, and whether it was made here.

    ``PROMETHEUS_MULTIPROC_DIR`` when it is set; otherwise, with
    ``FLASKSTACK_METRICS`` on in the environment, a new temporary directory,
    put in the environment before the app is loaded (prometheus-client reads
    it once, when it is imported).
    """
    given = environ.get(_MULTIPROC_VARIABLE, "").strip()
    if given:
        return given, False
    if environ.get("FLASKSTACK_METRICS", "").strip().lower() not in ("1", "true", "yes", "on"):
        return None, False
    made = tempfile.mkdtemp(prefix="flaskstack-metrics-")
    environ[_MULTIPROC_VARIABLE] = made
    return made, True


_MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


# -- logging ---------------------------------------------------------------------------


class AccessFormatter(JSONFormatter):
    """gunicorn's access lines as JSON objects, with the request's fields.

    Besides :class:`~flaskstack.logs.JSONFormatter`'s fields (``message`` is
    gunicorn's line in its ``access_log_format``), each line has
    ``request_id`` (from the response's request id header), ``method``,
    ``path``, ``query`` (when there is one), ``status``, ``bytes``,
    ``duration_ms``, ``remote_addr`` and ``user_agent``; and ``trace_id``
    with :setting:`FLASKSTACK_TRACING` on (from the response's trace id
    header), so the line joins the request's trace and its other log lines.

    :param request_id_atom: gunicorn's name of the response header holding
        the request id, ``"{x-request-id}o"`` by default.
    :param trace_id_atom: gunicorn's name of the response header holding
        the trace id, ``"{x-trace-id}o"`` by default.
    """

    def __init__(
        self, request_id_atom: str = "{x-request-id}o", trace_id_atom: str = "{x-trace-id}o"
    ) -> None:
        super().__init__()
        self.request_id_atom = request_id_atom
        self.trace_id_atom = trace_id_atom

    def fields(self, record: logging.LogRecord) -> dict[str, t.Any]:
        data = super().fields(record)
        atoms = record.args
        if not isinstance(atoms, Mapping):
            return data
        status = str(atoms.get("s", ""))
        sent = atoms.get("B")
        duration = atoms.get("D")
        data.update(
            {
                "request_id": atoms.get(self.request_id_atom) or "-",
                "method": atoms.get("m"),
                "path": atoms.get("U"),
                "status": int(status) if status.isdigit() else status,
                "bytes": sent if isinstance(sent, int) else None,
                "duration_ms": duration / 1000 if isinstance(duration, int) else None,
                "remote_addr": atoms.get("h"),
                "user_agent": atoms.get("a"),
            }
        )
        if atoms.get("q"):
            data["query"] = atoms["q"]
        trace_id = atoms.get(self.trace_id_atom)
        if trace_id and trace_id != "-":
            data["trace_id"] = trace_id
        return data


def _logconfig(
    log_format: str, request_id_atom: str, trace_id_atom: str = "{x-trace-id}o"
) -> dict[str, t.Any]:
    """gunicorn's ``logconfig_dict`` for ``log_format`` (``{}``, gunicorn's own, for ``none``)."""
    if log_format == "none":
        return {}
    if log_format == "json":
        line: dict[str, t.Any] = {"()": JSONFormatter}
        access: dict[str, t.Any] = {
            "()": AccessFormatter,
            "request_id_atom": request_id_atom,
            "trace_id_atom": trace_id_atom,
        }
    else:
        line = {"()": TextFormatter}
        access = {"()": TextFormatter}
    return {
        "version": 1,
        # flaskstack's and the libraries' loggers exist before gunicorn sets up
        # its logging (the app may be imported first): keep them working.
        "disable_existing_loggers": False,
        "formatters": {"line": line, "access": access},
        "filters": {"request_id": {"()": RequestIdFilter}},
        "handlers": {
            # The handler flaskstack.init_app looks for: the app's set-up
            # takes it over (or removes it, when the app configured logging
            # of its own) rather than adding a second one.
            "process": {"()": _StackHandler, "formatter": "line"},
            "error": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "filters": ["request_id"],
            },
            "access": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "access",
                "filters": ["request_id"],
            },
        },
        "root": {"level": "WARNING", "handlers": ["process"]},
        # No level: gunicorn's --log-level applies to gunicorn.error.
        "loggers": {
            "gunicorn.error": {"handlers": ["error"], "propagate": False},
            "gunicorn.access": {"handlers": ["access"], "propagate": False},
        },
    }


# -- the settings ------------------------------------------------------------------------

_LOG_FORMAT = _log_format(os.environ)
_METRICS_DIR, _METRICS_DIR_MADE = _metrics_dir(os.environ)

#: ``WEB_CONCURRENCY``, or one sync worker per usable CPU (at least 2). Each
#: worker has its own database pool: workers times replicas times pool size must stay
#: under PostgreSQL's ``max_connections``.
workers = _workers(os.environ)

#: A worker is replaced after this many requests (give or take
#: :data:`max_requests_jitter`, so they are not all replaced at once): what a
#: slow leak in the app or a library holds goes with it.
max_requests = 1000

#: Up to this many requests more, at random per worker.
max_requests_jitter = 100

#: Seconds a worker may stay silent (one request taking this long) before the
#: master kills and replaces it.
timeout = 30

#: Seconds the workers get to finish the requests in flight when gunicorn is
#: stopped (SIGTERM); Docker and Kubernetes wait 30 s by default before they kill.
graceful_timeout = 25

#: The addresses whose ``X-Forwarded-*`` headers gunicorn believes:
#: ``FORWARDED_ALLOW_IPS`` (comma-separated addresses or networks), loopback
#: by default. Never ``*`` unless nothing but your proxy can reach the workers.
forwarded_allow_ips = _forwarded_allow_ips(os.environ)

#: The workers' heartbeat files live in memory (``/dev/shm``) where there is
#: one: on a container's disk, a slow write can make a worker look stuck.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None

#: gunicorn's control socket is off: a container needs none, and gunicorns
#: started side by side would take one path from each other.
control_socket_disable = True

#: Access lines go to stdout: through :data:`logconfig_dict`, or as plain
#: lines with ``FLASKSTACK_LOG_FORMAT=none``.
accesslog = "-"

#: The ``message`` of each access line; a JSON line has each part as a field too.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms' + (
    "" if _LOG_FORMAT == "json" else f" request_id=%({_request_id_atom(os.environ)})s"
)

#: Every line of the process in the app's format (see the module's documentation).
logconfig_dict = _logconfig(_LOG_FORMAT, _request_id_atom(os.environ), _trace_id_atom(os.environ))


def on_starting(server: t.Any) -> None:
    """In the master, before anything else: Python's warnings become log lines."""
    if _LOG_FORMAT == "json":
        # Otherwise Python prints them on stderr as bare text, which log
        # collectors cannot parse; the workers inherit this.
        logging.captureWarnings(True)
    if _METRICS_DIR is not None:
        # prometheus-client's files of a previous run would count again.
        os.makedirs(_METRICS_DIR, exist_ok=True)
        for stale in glob.glob(os.path.join(_METRICS_DIR, "*.db")):
            os.remove(stale)


def post_fork(server: t.Any, worker: t.Any) -> None:
    """In each new worker: drop inherited connections, then set up the worker."""
    _processes.after_fork()


def worker_exit(server: t.Any, worker: t.Any) -> None:
    """In a worker that ends: send its queued spans, close its database and Redis connections."""
    _processes.before_exit()


def child_exit(server: t.Any, worker: t.Any) -> None:
    """In the master, once a worker ended: drop its live gauges from the metrics."""
    if _METRICS_DIR is None or not glob.glob(os.path.join(_METRICS_DIR, f"*_{worker.pid}.db")):
        return  # metrics off, or the worker counted nothing: prometheus-client is not needed
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _METRICS_DIR)  # type: ignore[no-untyped-call]


def on_exit(server: t.Any) -> None:
    """In the master, as gunicorn exits: remove the metrics directory it made."""
    if _METRICS_DIR_MADE and _METRICS_DIR is not None:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)
