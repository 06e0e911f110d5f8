"""Prometheus metrics: what the app serves, its database pool, Redis and jobs.

Turn them on with :setting:`FLASKSTACK_METRICS` (install ``flaskstack[metrics]``,
which brings prometheus-client). flaskstack then counts, in every process
that serves the app:

``flaskstack_http_requests_total{endpoint, method, status}``
    Requests answered, by Flask endpoint name (not the raw path, so the number
    of series stays bounded; a URL no rule matched is ``endpoint="<unmatched>"``),
    method (an unusual one is ``"other"``) and status code.
``flaskstack_http_request_duration_seconds{endpoint}``
    A histogram of the time from the start of a request to its response.
``flaskstack_http_requests_in_flight``
    Requests being served now, summed over the live worker processes.
``flaskstack_db_pool_checked_out{bind}``
    Database connections checked out of the pool now, by bind (``"default"``
    for the main database).
``flaskstack_db_pool_checkout_duration_seconds{bind}``
    A histogram of how long each connection stayed checked out, from the
    pool's checkout to its checkin.
``flaskstack_db_replica_skipped_total{replica, reason}``
    Reads sent to the primary because a replica was down or lagging.
``flaskstack_redis_breaker_open``
    1 while the Redis circuit breaker of a live worker is open (Redis
    unreachable), else 0.
``flaskstack_redis_errors_total{error}``
    Redis calls that failed, by exception type.
``flaskstack_job_queue_depth{queue}`` and ``flaskstack_job_runs_total{queue, outcome}``
    With :setting:`FLASKSTACK_JOBS`: the jobs waiting in each configured
    queue, and the runs that ended (``outcome`` ``"finished"`` or
    ``"failed"``), counted in Redis by the job workers. Both are read from
    Redis at scrape time, so every web process reports the same values:
    aggregate them with ``max``, not ``sum``.

Scrapes of the endpoint itself are left out of the request series.

**The endpoint** (:setting:`FLASKSTACK_METRICS_PATH`, ``/metrics``) answers
only clients in :setting:`FLASKSTACK_METRICS_ALLOW` (loopback by default; any
other client gets a 404, as for a URL that does not exist) and, when
:setting:`FLASKSTACK_METRICS_TOKEN` is set, only requests carrying
``Authorization: Bearer <token>`` (401 otherwise). It never reads the session
or sets a cookie. The ``production`` profile refuses an endpoint open to a
network that is not private without a token (``metrics.E001``).

**Under gunicorn** the workers count in prometheus-client's multiprocess mode:
each process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` and the
endpoint adds them up, whichever worker answers the scrape. The shipped
configuration (``gunicorn -c python:flaskstack.gunicorn``) sets this up when
``FLASKSTACK_METRICS=true`` is in its environment; see :doc:`/guides/metrics`.

**Your own metrics** go in the same scrape: declare them with prometheus-client
as usual, at module level, in its default registry::

    from prometheus_client import Counter

    signups = Counter("myapp_signups_total", "Accounts created.")

    signups.inc()

Under gunicorn a :class:`~prometheus_client.Gauge` needs a
``multiprocess_mode`` (``"livesum"``, ``"max"``...), as prometheus-client
documents. :func:`scrape_registry` gives what the endpoint serves, to serve or
push it some other way.

The rule this module keeps: it imports prometheus-client only when called, and
:mod:`flaskstack.stack` imports it only when :setting:`FLASKSTACK_METRICS` is
on: with metrics off, nothing is counted and nothing is imported.
"""

from __future__ import annotations

import importlib.util
import os
import typing as t

from . import _metrics_access
from ._metrics_access import MULTIPROCESS_VARIABLE as _MULTIPROCESS_VARIABLE
from ._routes import clashes_with_existing
from .errors import Problem

if t.TYPE_CHECKING:
    from flask import Flask
    from prometheus_client import CollectorRegistry

    from .config import Resolution

__all__ = ["multiprocess_dir", "scrape_registry"]


def multiprocess_dir() -> str | None:
    """The directory of prometheus-client's multiprocess mode, or ``None`` in a single process."""
    return _metrics_access.multiprocess_dir()


def scrape_registry(app: Flask) -> CollectorRegistry:
    """What the metrics endpoint of ``app`` serves, collected afresh at each call.

    In multiprocess mode, the values of every process (live or not) added up;
    otherwise prometheus-client's default registry. Either way, with the
    job series of ``app`` when it has jobs. Pass it to
    :func:`prometheus_client.generate_latest` or
    :func:`prometheus_client.push_to_gateway`.

    :raises RuntimeError: if :setting:`FLASKSTACK_METRICS` is off for ``app``.
    """
    from . import _metrics

    return _metrics.scrape_registry(app)


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Refuse metrics without prometheus-client, a bad multiprocess directory, a taken path."""
    problems: list[Problem] = []
    if importlib.util.find_spec("prometheus_client") is None:
        problems.append(
            Problem(
                "metrics.E002",
                "FLASKSTACK_METRICS",
                "true, and prometheus-client is not installed",
                "prometheus-client installed in the app's environment",
                "install flaskstack[metrics] (pip install 'flaskstack[metrics]'), or turn "
                "FLASKSTACK_METRICS off",
            )
        )
    directory = multiprocess_dir()
    if directory is not None and not (os.path.isdir(directory) and os.access(directory, os.W_OK)):
        problems.append(
            Problem(
                "metrics.E003",
                "FLASKSTACK_METRICS",
                f"true, and {_MULTIPROCESS_VARIABLE}={directory!r} is not a writable directory",
                f"{_MULTIPROCESS_VARIABLE} unset (one process) or naming a writable directory, "
                "emptied before the server starts",
                f"create the directory, or unset {_MULTIPROCESS_VARIABLE}; under gunicorn, start "
                "it with -c python:flaskstack.gunicorn, which prepares one",
            )
        )
    path = resolution["FLASKSTACK_METRICS_PATH"]
    if path:
        problems.extend(
            clashes_with_existing(app, "FLASKSTACK_METRICS_PATH", path, ("GET", "HEAD"))
        )
    return problems


def _init_app(app: Flask) -> None:
    """Start counting for ``app`` and add its endpoint (with metrics on)."""
    from . import _metrics

    _metrics.init_app(app)
