"""The series behind :mod:`flaskstack.metrics`, and the endpoint that serves them.

Imported only with :setting:`FLASKSTACK_METRICS` on. The series are
prometheus-client objects in its default registry, made once per process
(prometheus-client's registry is per process, so two apps of one process
count together). What each app adds is its own: hooks on its requests, its
signals (:mod:`flaskstack._signals`), listeners on its engines' pools, its
endpoint.

The rule this module keeps: prometheus-client's public API only, and on the
request path nothing but a lookup of cached label children and their
``inc``/``observe`` (in multiprocess mode each is a write to a memory-mapped
file, no system call).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import typing as t
import weakref

from flask import Response, abort, current_app, request, request_started
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from ._hooks import after_response, on_first_request
from ._metrics_access import Access, multiprocess_dir
from ._routes import add_own_rule
from ._signals import (
    job_ended,
    redis_breaker_closed,
    redis_breaker_opened,
    redis_failed,
    replica_skipped,
)
from ._state import get_state
from .health import public

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import sqlalchemy as sa
    from flask import Flask
    from prometheus_client.metrics_core import Metric
    from werkzeug.wrappers import Response as BaseResponse

__all__: list[str] = []

_logger = logging.getLogger("flaskstack.metrics")

EXTENSION_KEY = "flaskstack.metrics"
ENDPOINT = "flaskstack.metrics"
UNMATCHED = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_START = "flaskstack.metrics.start"
_STATUS = "flaskstack.metrics.status"
_CHECKOUT = "flaskstack.metrics.checkout"


@dataclasses.dataclass(frozen=True)
class _Series:
    requests: Counter
    duration: Histogram
    in_flight: Gauge
    pool_checked_out: Gauge
    pool_checkout: Histogram
    replica_skipped: Counter
    breaker_open: Gauge
    redis_errors: Counter


_series: _Series | None = None
_series_lock = threading.Lock()


def series() -> _Series:
    """The process's series, made on first use."""
    global _series
    if _series is None:
        with _series_lock:
            if _series is None:
                _series = _make_series()
    return _series


def _make_series() -> _Series:
    return _Series(
        requests=Counter(
            "flaskstack_http_requests",
            "Requests answered, by Flask endpoint, method and status.",
            ["endpoint", "method", "status"],
        ),
        duration=Histogram(
            "flaskstack_http_request_duration_seconds",
            "Time from the start of a request to its response, by Flask endpoint.",
            ["endpoint"],
        ),
        in_flight=Gauge(
            "flaskstack_http_requests_in_flight",
            "Requests being served now.",
            multiprocess_mode="livesum",
        ),
        pool_checked_out=Gauge(
            "flaskstack_db_pool_checked_out",
            "Database connections checked out of the pool now, by bind.",
            ["bind"],
            multiprocess_mode="livesum",
        ),
        pool_checkout=Histogram(
            "flaskstack_db_pool_checkout_duration_seconds",
            "How long each database connection stayed checked out of the pool, by bind.",
            ["bind"],
        ),
        replica_skipped=Counter(
            "flaskstack_db_replica_skipped",
            "Reads sent to the primary because a replica was down or lagging.",
            ["replica", "reason"],
        ),
        breaker_open=Gauge(
            "flaskstack_redis_breaker_open",
            "1 while the Redis circuit breaker is open (Redis unreachable), else 0.",
            multiprocess_mode="livemax",
        ),
        redis_errors=Counter(
            "flaskstack_redis_errors",
            "Redis calls that failed, by exception type.",
            ["error"],
        ),
    )


_warned_single_process: list[bool] = []


def _warn_if_one_worker_of_many(environ: t.Mapping[str, t.Any]) -> None:
    """Once per process: say so when gunicorn serves a scrape that holds one worker's counts."""
    if _warned_single_process or multiprocess_dir() is not None:
        return
    if str(environ.get("SERVER_SOFTWARE", "")).startswith("gunicorn"):
        _warned_single_process.append(True)
        _logger.warning(
            "the metrics are served by a gunicorn worker without PROMETHEUS_MULTIPROC_DIR: "
            "each worker serves only its own counts. Start gunicorn with "
            "-c python:flaskstack.gunicorn and FLASKSTACK_METRICS=true in its environment, or "
            "set PROMETHEUS_MULTIPROC_DIR to an empty directory before the server starts."
        )


# -- requests ----------------------------------------------------------------------------

_Children = tuple[t.Any, t.Any]
_children: dict[tuple[str, str, int], _Children] = {}


def _children_for(endpoint: str, method: str, status: int) -> _Children:
    key = (endpoint, method, status)
    found = _children.get(key)
    if found is None:
        s = series()
        found = _children[key] = (
            s.requests.labels(endpoint, method, str(status)),
            s.duration.labels(endpoint),
        )
    return found


def _request_started(sender: Flask, **extra: t.Any) -> None:
    current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    rule = current.url_rule
    if rule is not None and rule.endpoint == ENDPOINT:
        return  # scrapes are left out
    current.environ[_START] = time.perf_counter()
    series().in_flight.inc()


def _record_status(response: BaseResponse) -> BaseResponse:
    request.environ[_STATUS] = response.status_code
    return response


def _request_ended(error: BaseException | None) -> None:
    current = request._get_current_object()  # type: ignore[attr-defined]
    environ = current.environ
    started = environ.pop(_START, None)
    if started is None:
        return
    elapsed = time.perf_counter() - started
    # No status: the error propagated past Flask's handlers (testing), a 500 for the client.
    status = environ.get(_STATUS) or 500
    rule = current.url_rule
    endpoint = rule.endpoint if rule is not None and rule.endpoint else UNMATCHED
    method = current.method if current.method in _METHODS else "other"
    counter, histogram = _children_for(endpoint, method, status)
    counter.inc()
    histogram.observe(elapsed)
    series().in_flight.dec()


# -- database pools ----------------------------------------------------------------------


def _instrument_engines(app: Flask) -> None:
    """Listen to the pool of each engine of ``app`` (created now if they were not yet)."""
    import sqlalchemy as sa

    from .database import db

    with app.app_context():
        engines = dict(db.engines.items())
    for bind, engine in engines.items():
        if isinstance(engine, sa.Engine):  # not a test's connection (flaskstack.testing)
            _instrument_engine(engine, "default" if bind is None else str(bind))


_instrumented: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


def _instrument_engine(engine: sa.Engine, bind: str) -> None:
    import sqlalchemy as sa

    if engine in _instrumented:
        return
    _instrumented.add(engine)
    listener = _PoolListener(bind)
    # Engine-level pool listeners stay with the engine when dispose() makes a new pool.
    sa.event.listen(engine, "checkout", listener.checkout)
    sa.event.listen(engine, "checkin", listener.checkin)


class _PoolListener:
    def __init__(self, bind: str) -> None:
        self.checked_out = series().pool_checked_out.labels(bind)
        self.duration = series().pool_checkout.labels(bind)

    def checkout(self, dbapi_connection: object, record: t.Any, proxy: object) -> None:
        # record_info lives as long as the pool's record, across reconnections.
        record.record_info[_CHECKOUT] = time.perf_counter()
        self.checked_out.inc()

    def checkin(self, dbapi_connection: object, record: t.Any) -> None:
        started = record.record_info.pop(_CHECKOUT, None)
        if started is None:
            return
        self.checked_out.dec()
        self.duration.observe(time.perf_counter() - started)


# -- signals -----------------------------------------------------------------------------


def _replica_skipped(sender: Flask, *, replica: str, reason: str, **extra: t.Any) -> None:
    series().replica_skipped.labels(replica, reason).inc()


def _redis_failed(sender: Flask, *, error: BaseException, **extra: t.Any) -> None:
    series().redis_errors.labels(type(error).__name__).inc()


def _breaker_opened(sender: Flask, **extra: t.Any) -> None:
    series().breaker_open.set(1)


def _breaker_closed(sender: Flask, **extra: t.Any) -> None:
    series().breaker_open.set(0)


def _job_runs_key(app: Flask) -> str:
    state = get_state(app)
    assert state.redis is not None  # jobs need Redis (jobs.E001)
    return state.redis.key("metrics", "job-runs")


def _job_ended(sender: Flask, *, queue: str, outcome: str, **extra: t.Any) -> None:
    """Count the run in Redis: the job ran in a worker process, the web processes report it."""
    from .redis import RedisUnavailable

    connection = get_state(sender).redis
    if connection is None:
        return
    key = _job_runs_key(sender)
    try:
        connection.run(lambda client: client.hincrby(key, f"{queue}:{outcome}", 1))
    except RedisUnavailable:
        _logger.warning(
            "could not count the %s run of a job of queue %r: Redis is down", outcome, queue
        )


class _JobsCollector:
    """The job series of one app, read from Redis at each scrape."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        from .jobs import _queue
        from .redis import RedisUnavailable

        state = get_state(self.app)
        if state.jobs is None or state.redis is None:
            return
        queues = state.jobs.queues
        key = _job_runs_key(self.app)

        def read(client: t.Any) -> tuple[list[int], dict[bytes, bytes]]:
            depths = [_queue(self.app, name, client).count for name in queues]
            return depths, client.hgetall(key)

        try:
            with self.app.app_context():
                depths, runs = state.redis.run(read)
        except RedisUnavailable as exc:
            _logger.warning("the job series are left out of this scrape: %s", exc)
            return
        depth = GaugeMetricFamily(
            "flaskstack_job_queue_depth", "Jobs waiting in each queue.", labels=["queue"]
        )
        for name, count in zip(queues, depths, strict=True):
            depth.add_metric([name], count)
        yield depth
        total = CounterMetricFamily(
            "flaskstack_job_runs",
            "Job runs that ended, by queue and outcome (finished or failed).",
            labels=["queue", "outcome"],
        )
        for field, value in sorted(runs.items()):
            queue, _, outcome = field.decode().rpartition(":")
            total.add_metric([queue, outcome], int(value))
        yield total


# -- the endpoint ------------------------------------------------------------------------


class _DefaultRegistry:
    """prometheus-client's default registry, as one collector of a scrape's registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape_registry(app: Flask) -> CollectorRegistry:
    if EXTENSION_KEY not in app.extensions:
        raise RuntimeError(
            f"metrics are off for app {app.name!r}: set FLASKSTACK_METRICS=true to count them"
        )
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir() is not None:
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_DefaultRegistry())
    if get_state(app).jobs is not None:
        registry.register(_JobsCollector(app))
    return registry


@public
def _serve() -> Response:
    """The scrape: the series in the format Prometheus asked for, to allowed clients only."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    access: Access = app.extensions[EXTENSION_KEY]
    refusal = access.refusal(request.remote_addr, request.headers)
    if refusal == 404:
        abort(404)
    if refusal is not None:
        return Response(
            "A bearer token is required: Authorization: Bearer <FLASKSTACK_METRICS_TOKEN>.\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"},
            mimetype="text/plain",
        )
    _warn_if_one_worker_of_many(request.environ)
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(scrape_registry(app))
    return Response(body, 200, {"Content-Type": content_type, "Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    config = app.config
    series()  # made now: a bad multiprocess directory fails the start, not a request
    app.extensions[EXTENSION_KEY] = Access(
        config["FLASKSTACK_METRICS_ALLOW"],
        config["FLASKSTACK_METRICS_TOKEN"],
        proxies_trusted=bool(config["FLASKSTACK_PROXY_FIX"]),
    )
    request_started.connect(_request_started, sender=app)
    after_response(app, _record_status)
    app.teardown_request(_request_ended)
    replica_skipped.connect(_replica_skipped, sender=app)
    redis_failed.connect(_redis_failed, sender=app)
    redis_breaker_opened.connect(_breaker_opened, sender=app)
    redis_breaker_closed.connect(_breaker_closed, sender=app)
    job_ended.connect(_job_ended, sender=app)
    on_first_request(app, _instrument_engines)
    path = config["FLASKSTACK_METRICS_PATH"]
    if path:
        add_own_rule(app, path, ENDPOINT, _serve, "FLASKSTACK_METRICS_PATH", ("GET", "HEAD"))
