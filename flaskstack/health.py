"""Liveness and readiness endpoints for load balancers and orchestrators.

``/healthz`` says the process serves requests and touches nothing else.
``/readyz`` runs every registered readiness probe (the database answering
``SELECT 1``; later components add theirs), each against a deadline, and
answers 503 naming what failed. Neither reads the session, so neither sets a
cookie or costs a session-store round trip; both are marked public, which the
CSRF and auth layers honour.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t

from flask import Flask, current_app, jsonify

from .database import db

if t.TYPE_CHECKING:
    from flask import Response

__all__ = ["public"]

_logger = logging.getLogger("flaskstack.health")

_PUBLIC_VIEW_ATTRIBUTE = "_flaskstack_public"
"""Set to ``True`` on a view function that needs neither a session, CSRF nor auth."""

_Probe = t.Callable[[Flask, float], None]
"""A readiness probe: raises when the dependency does not answer within the timeout."""

_F = t.TypeVar("_F", bound=t.Callable[..., t.Any])


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
        connection.exec_driver_sql("SELECT 1")


class _Outcome:
    __slots__ = ("error", "finished")

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.finished = False


def _run_probe(app: Flask, name: str, probe: _Probe, timeout: float) -> str | None:
    """Run ``probe`` in a thread; return ``None`` if it passed, else why it failed.

    The reason returned names the kind of failure only (it may be shown to
    anyone who can reach the endpoint); the full error is logged.

    The thread makes the deadline hold even when a driver ignores its own
    timeouts (a blackholed host): the request answers in time either way.
    """
    outcome = _Outcome()

    def target() -> None:
        try:
            probe(app, timeout)
        except BaseException as exc:  # reported, never raised in a worker thread
            outcome.error = exc
        finally:
            outcome.finished = True

    thread = threading.Thread(target=target, name="flaskstack-readyz", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome.finished:
        _logger.warning("readiness probe %r gave no answer within %g s", name, timeout)
        return f"no answer within {timeout:g} s"
    if outcome.error is not None:
        _logger.warning("readiness probe %r failed: %r", name, outcome.error)
        return type(outcome.error).__name__
    return None


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
    checks: dict[str, dict[str, t.Any]] = {}
    for name, probe in state.readiness_probes.items():
        started = time.perf_counter()
        error = _run_probe(app, name, probe, timeout)
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        if error is None:
            checks[name] = {"status": "ok", "duration_ms": elapsed}
        else:
            checks[name] = {"status": "error", "error": error, "duration_ms": elapsed}
    failed = [name for name, check in checks.items() if check["status"] != "ok"]
    body = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 503 if failed else 200


def _init_app(app: Flask) -> None:
    """Add the endpoints at their configured paths (a path of ``None`` disables one)."""
    health_path = app.config["FLASKSTACK_HEALTH_PATH"]
    ready_path = app.config["FLASKSTACK_READY_PATH"]
    if health_path:
        app.add_url_rule(
            health_path, endpoint="flaskstack.healthz", view_func=_healthz, methods=["GET", "HEAD"]
        )
    if ready_path:
        app.add_url_rule(
            ready_path, endpoint="flaskstack.readyz", view_func=_readyz, methods=["GET", "HEAD"]
        )
