"""Liveness and readiness endpoints for load balancers and orchestrators.

``/healthz`` says the process serves requests and touches nothing else.
``/readyz`` runs every registered readiness probe (the database answering
``SELECT 1``; later components add theirs), each against a deadline, and
answers 503 naming what failed. Neither reads the session, so neither sets a
cookie or costs a session-store round trip; both are marked public, which the
CSRF and auth layers honour.

``FLASKSTACK_HEALTH_PATH`` and ``FLASKSTACK_READY_PATH`` move either one, or
turn it off with ``None``. An app that already serves one of these paths
keeps it: :func:`flaskstack.init_app` refuses with a
:class:`~flaskstack.ConfigError` naming the setting to change, rather than
shadow the app's view.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t

from flask import Flask, current_app, jsonify

from ._routes import add_own_rule, clashes_with_existing
from .database import db

if t.TYPE_CHECKING:
    from flask import Response

    from .config import Resolution
    from .errors import Problem

__all__ = ["public"]

_logger = logging.getLogger("flaskstack.health")

_PUBLIC_VIEW_ATTRIBUTE = "_flaskstack_public"
"""Set to ``True`` on a view function that needs neither a session, CSRF nor auth."""

_Probe = t.Callable[[Flask, float], None]
"""A readiness probe: raises when the dependency does not answer within the timeout."""

_F = t.TypeVar("_F", bound=t.Callable[..., t.Any])
_View = t.Callable[..., t.Any]
_METHODS = ("GET", "HEAD")


def public(view: _F) -> _F:
    """Mark ``view`` as needing no session, CSRF token or authentication."""
    setattr(view, _PUBLIC_VIEW_ATTRIBUTE, True)
    return view


def _is_public(view: t.Callable[..., t.Any] | None) -> bool:
    """Whether ``view`` was marked with :func:`public`."""
    return bool(getattr(view, _PUBLIC_VIEW_ATTRIBUTE, False))


def _probe_database(app: Flask, timeout: float) -> None:
    """Run ``SELECT 1`` on the app's engine; on PostgreSQL with a statement timeout."""
    with app.app_context():
        engine = db.engine
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            milliseconds = max(1, int(timeout * 1000))
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
        if connection.dialect.name == "sqlite":
            # SELECT 1 never reads the file: one that is not a database, or
            # is locked, would pass. Reading the schema does read it.
            connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
        else:
            connection.exec_driver_sql("SELECT 1")


class _Outcome:
    __slots__ = ("error", "finished", "seconds")

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.finished = False
        self.seconds = 0.0


class _Result(t.NamedTuple):
    """What one probe found: why it failed (``None``: it passed), and how long it took."""

    error: str | None
    duration_ms: float


def _run_probe(app: Flask, name: str, probe: _Probe, timeout: float) -> str | None:
    """Run ``probe`` in a thread; return ``None`` if it passed, else why it failed."""
    return _run_probes(app, {name: probe}, timeout)[name].error


def _run_probes(app: Flask, probes: t.Mapping[str, _Probe], timeout: float) -> dict[str, _Result]:
    """Run ``probes`` at once, each in a thread, all within one ``timeout``.

    The reason returned names the kind of failure only (it may be shown to
    anyone who can reach the endpoint); the full error is logged.

    The threads make the deadline hold even when a driver ignores its own
    timeouts (a blackholed host), and running them at once makes it hold for
    all of them together: the request answers in time however many fail.
    """
    outcomes = {name: _Outcome() for name in probes}

    def run(probe: _Probe, outcome: _Outcome) -> None:
        started = time.perf_counter()
        try:
            probe(app, timeout)
        except BaseException as exc:  # reported, never raised in a worker thread
            outcome.error = exc
        finally:
            outcome.seconds = time.perf_counter() - started
            outcome.finished = True

    started = time.perf_counter()
    threads = [
        threading.Thread(
            target=run, args=(probe, outcomes[name]), name="flaskstack-readyz", daemon=True
        )
        for name, probe in probes.items()
    ]
    for thread in threads:
        thread.start()
    deadline = started + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.perf_counter()))
    results = {}
    for name, outcome in outcomes.items():
        if not outcome.finished:
            _logger.warning("readiness probe %r gave no answer within %g s", name, timeout)
            results[name] = _Result(f"no answer within {timeout:g} s", round(timeout * 1000, 1))
            continue
        duration_ms = round(outcome.seconds * 1000, 1)
        if outcome.error is not None:
            _logger.warning("readiness probe %r failed: %r", name, outcome.error)
            results[name] = _Result(type(outcome.error).__name__, duration_ms)
        else:
            results[name] = _Result(None, duration_ms)
    return results


@public
def _healthz() -> Response:
    """Answer 200 while the process is serving requests."""
    response = jsonify(status="ok")
    response.headers["Cache-Control"] = "no-store"
    return response


@public
def _readyz() -> tuple[Response, int]:
    """Answer 200 when every readiness probe passes, else 503 naming the failures."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions["flaskstack"]
    timeout = app.config["FLASKSTACK_READY_TIMEOUT"]
    # The app's probes and its replicas' at once: one timeout bounds the answer.
    replica_probes = state.replicas.probes() if state.replicas is not None else {}
    results = _run_probes(app, {**state.readiness_probes, **replica_probes}, timeout)
    checks: dict[str, dict[str, t.Any]] = {}
    for name in state.readiness_probes:
        error, elapsed = results[name]
        if error is None:
            checks[name] = {"status": "ok", "duration_ms": elapsed}
        else:
            checks[name] = {"status": "error", "error": error, "duration_ms": elapsed}
    failed = [name for name, check in checks.items() if check["status"] != "ok"]
    body: dict[str, t.Any] = {
        "status": "unavailable" if failed else "ok",
        "failed": failed,
        "checks": checks,
    }
    if state.replicas is not None:
        # Reported, never failing readiness: while a replica is down or lagging the
        # app serves its reads from the primary.
        body["replicas"] = state.replicas.report(results)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 503 if failed else 200


def _endpoints(config: t.Mapping[str, t.Any]) -> list[tuple[str, str, str, _View]]:
    """``(setting, path, endpoint, view)`` of each endpoint turned on in ``config``."""
    found = []
    for setting, endpoint, view in (
        ("FLASKSTACK_HEALTH_PATH", "flaskstack.healthz", _healthz),
        ("FLASKSTACK_READY_PATH", "flaskstack.readyz", _readyz),
    ):
        path = config[setting]
        if path:
            found.append((setting, path, endpoint, view))
    return found


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Refuse a path where the app already has a rule of its own (its view keeps the URL)."""
    problems: list[Problem] = []
    config = {key: resolution[key] for key in ("FLASKSTACK_HEALTH_PATH", "FLASKSTACK_READY_PATH")}
    for setting, path, _endpoint, _view in _endpoints(config):
        problems.extend(clashes_with_existing(app, setting, path, _METHODS))
    return problems


def _init_app(app: Flask) -> None:
    """Add the endpoints at their configured paths (a path of ``None`` disables one)."""
    for setting, path, endpoint, view in _endpoints(app.config):
        add_own_rule(app, path, endpoint, view, setting, _METHODS)
