"""Read replicas: which database server each ``db.session`` read of a request goes to.

Imported only when :setting:`FLASKSTACK_DATABASE_REPLICA_URLS` names a replica: an app
without one runs none of this, sends no statement and sets no cookie.

The rule this module keeps: **a read may go to a replica only when it cannot
see older data than the primary would show this client**, and a replica never
costs a user an error. Inside a request, a ``SELECT`` that ``db.session``
executes (``select()``, ``Model.query``, ``session.get()``, lazy loads) goes
to a healthy replica, chosen round-robin once per request, unless:

- the request has written (a flush, pending changes, any statement that is
  not a ``SELECT``, ``text()`` included) or opened a transaction explicitly
  (``db.session.begin()``, ``begin_nested()``): the rest of it uses the primary;
- the client wrote in the last :setting:`FLASKSTACK_REPLICA_PIN_SECONDS`
  seconds: a request that wrote sets a short cookie
  (:setting:`FLASKSTACK_REPLICA_PIN_COOKIE`) that sends its reads to the
  primary until it expires;
- the statement asks for the primary (``execution_options(flaskstack_primary=True)``,
  for ``SELECT ... FOR UPDATE`` outside a transaction).

Routing uses SQLAlchemy's documented ``do_orm_execute`` session event and
``ORMExecuteState.invoke_statement(bind_arguments=...)``; the user's code does
not change. Outside a request (CLI commands, migrations, jobs, ``flask shell``)
everything uses the primary.

Health is cached per process: each replica's state (``up``, ``lagging``,
``down``) and lag are checked at most every
:setting:`FLASKSTACK_REPLICA_CHECK_INTERVAL` seconds, in a background thread
(the first check of a process runs in the request that needs it), so requests
send no extra statement. A replica whose read fails to connect is marked down
at once and the read runs on the primary; it is tried again after the interval.
Each change of state is logged once on ``flaskstack.database``; every request
whose reads fall back to the primary sends
:data:`flaskstack._signals.replica_skipped`.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
import typing as t
import weakref

import sqlalchemy as sa
from flask import current_app, has_request_context, request
from sqlalchemy.engine import make_url
from sqlalchemy.orm import SessionTransactionOrigin

from . import _processes
from ._signals import replica_skipped
from .config import _mask_url
from .database import _configure_engine, _is_outage, _normalise_database_url, db
from .errors import Problem

if t.TYPE_CHECKING:
    from flask import Flask, Response
    from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

    from ._state import StackState
    from .config import Resolution

__all__: list[str] = []

_logger = logging.getLogger("flaskstack.database")

_PRIMARY_OPTION = "flaskstack_primary"
"""Execution option: this statement runs on the primary."""

# Per request, in the WSGI environ (one per request even where a test keeps
# one app context, and with it one session, across requests).
_WROTE = "flaskstack.replicas.wrote"
_CHOSEN = "flaskstack.replicas.chosen"
_PINNED = "flaskstack.replicas.pinned"  # to the primary, for the rest of this request only

_LAG_QUERY = (
    "SELECT pg_is_in_recovery(), "
    "CASE WHEN NOT pg_is_in_recovery() THEN NULL "
    # Everything received is replayed: the replica is as current as the WAL it
    # has, however long ago the primary last wrote.
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


class Replica:
    """One replica: its engine (made on first use) and its last known health."""

    def __init__(self, url: str, options: t.Mapping[str, t.Any], autocommit: bool) -> None:
        self.url = _normalise_database_url(url)
        self.name = _mask_url(url)
        """The URL as configured, without its password (logs, signals, ``/readyz``)."""
        self._options = dict(options)
        self._autocommit = autocommit
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        self.status = "unknown"
        """``unknown`` (not checked yet), ``up``, ``lagging``, ``down`` or ``not-standby``."""
        self.lag: float | None = None
        self.error: str | None = None
        self.checked_at = -math.inf  # never: the first read checks at once
        self.checking = False

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    engine = sa.create_engine(self.url, **self._options)
                    _configure_engine({None: self._options}, self._autocommit, None, engine)
                    self._engine = engine
        return self._engine

    def dispose(self, *, close: bool) -> None:
        if self._engine is not None:
            self._engine.dispose(close=close)

    def measure(self, timeout: float | None = None) -> tuple[bool, float | None]:
        """``(in recovery, lag in seconds)``, asked now; raises if the server does not answer."""
        with self.engine.connect() as connection:
            if timeout is not None:
                milliseconds = max(1, int(timeout * 1000))
                connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
            row = connection.exec_driver_sql(_LAG_QUERY).one()
            connection.rollback()
        in_recovery, lag = bool(row[0]), row[1]
        return in_recovery, None if lag is None else max(0.0, float(lag))


class ReplicaSet:
    """An app's replicas and the settings that route reads to them."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        options = config["SQLALCHEMY_ENGINE_OPTIONS"]
        autocommit = config["FLASKSTACK_DATABASE_AUTOCOMMIT"]
        self.replicas = [
            Replica(url, options, autocommit) for url in config["FLASKSTACK_DATABASE_REPLICA_URLS"]
        ]
        self.max_lag: float = config["FLASKSTACK_REPLICA_MAX_LAG"]
        self.interval: float = config["FLASKSTACK_REPLICA_CHECK_INTERVAL"]
        self.pin_seconds: float = config["FLASKSTACK_REPLICA_PIN_SECONDS"]
        self.cookie: str = config["FLASKSTACK_REPLICA_PIN_COOKIE"]
        # A background check that hangs (a blackholed host) must end, or no
        # further check of that replica would ever start.
        self.check_timeout: float = config["FLASKSTACK_DATABASE_CONNECT_TIMEOUT"]
        self.secure = bool(config["SESSION_COOKIE_SECURE"])
        self._turn = itertools.count()
        self._app = weakref.ref(app)

    # -- health ---------------------------------------------------------------

    def _set(self, replica: Replica, status: str, lag: float | None, error: str | None) -> None:
        previous = replica.status
        replica.status, replica.lag, replica.error = status, lag, error
        replica.checked_at = time.monotonic()
        if status == previous:
            return
        if status == "up":
            if previous != "unknown":
                _logger.warning("database replica %s is back: reads go to it again", replica.name)
        elif status == "lagging":
            _logger.warning(
                "database replica %s lags %.1f s behind the primary (limit %g s, "
                "FLASKSTACK_REPLICA_MAX_LAG): reads go to the primary until it catches up",
                replica.name,
                lag or 0.0,
                self.max_lag,
            )
        elif status == "not-standby":
            _logger.warning(
                "database replica %s is not a standby (pg_is_in_recovery() is false): reads "
                "go to the primary; correct FLASKSTACK_DATABASE_REPLICA_URLS",
                replica.name,
            )
        else:
            _logger.warning(
                "database replica %s is down (%s): reads go to the primary; trying it again "
                "in %g s",
                replica.name,
                error,
                self.interval,
            )

    def check(self, replica: Replica, timeout: float | None = None) -> None:
        """Ask ``replica`` for its state now and record it (never raises)."""
        try:
            in_recovery, lag = replica.measure(timeout)
        except Exception as exc:  # any failure to answer makes it down, never the caller's error
            self._set(replica, "down", None, _describe(exc))
            return
        if not in_recovery:
            self._set(replica, "not-standby", None, None)
        elif lag is not None and lag > self.max_lag:
            self._set(replica, "lagging", lag, None)
        else:
            self._set(replica, "up", lag, None)

    def mark_down(self, replica: Replica, error: BaseException) -> None:
        self._set(replica, "down", None, _describe(error))

    def _refresh(self, replica: Replica) -> None:
        try:
            self.check(replica, self.check_timeout)
        finally:
            replica.checking = False

    def _schedule(self) -> None:
        """Start a check of each replica whose state is older than the interval."""
        now = time.monotonic()
        for replica in self.replicas:
            if replica.checking or now - replica.checked_at < self.interval:
                continue
            replica.checking = True
            if replica.status == "unknown":
                self._refresh(replica)  # the process's first read: wait for the answer
                continue
            threading.Thread(
                target=self._refresh,
                args=(replica,),
                name="flaskstack-replica-check",
                daemon=True,
            ).start()

    def choose(self) -> Replica | None:
        """A healthy replica for this request's reads, or ``None`` for the primary."""
        self._schedule()
        healthy = [replica for replica in self.replicas if replica.status == "up"]
        if healthy:
            return healthy[next(self._turn) % len(healthy)]
        app = self._app()
        for replica in self.replicas:
            replica_skipped.send(app, replica=replica.name, reason=_reason(replica.status))
        return None

    def probes(self) -> dict[str, t.Callable[[Flask, float], None]]:
        """A readiness probe per replica, by ``"replica <name>"``: each checks it now."""
        return {self.probe_name(replica): self._probe(replica) for replica in self.replicas}

    @staticmethod
    def probe_name(replica: Replica) -> str:
        """The name of ``replica``'s probe in :meth:`probes`."""
        return f"replica {replica.name}"

    def report(self, results: t.Mapping[str, t.Any]) -> dict[str, dict[str, t.Any]]:
        """Each replica's state for ``/readyz``, from the ``results`` of its probes."""
        reports: dict[str, dict[str, t.Any]] = {}
        for replica in self.replicas:
            error = results[self.probe_name(replica)].error
            entry: dict[str, t.Any]
            if error is not None:  # no answer in time: the probe gave up waiting
                entry = {"status": "down", "error": error}
            elif replica.status == "down":
                # The kind of failure only: this may be shown to anyone who can reach it.
                entry = {"status": "down", "error": (replica.error or "").partition(":")[0]}
            else:
                entry = {"status": replica.status}
                if replica.lag is not None:
                    entry["lag_seconds"] = round(replica.lag, 3)
            reports[replica.name] = entry
        return reports

    def _probe(self, replica: Replica) -> t.Callable[[Flask, float], None]:
        def probe(app: Flask, timeout: float) -> None:
            self.check(replica, timeout)

        return probe

    def pinned(self) -> bool:
        """Whether this request's client wrote in the last pin window (its cookie says so)."""
        raw = request.cookies.get(self.cookie)
        if not raw:
            return False
        try:
            until = float(raw)
        except ValueError:
            return False
        now = time.time()
        # A cookie dated further ahead than one window is not one flaskstack set.
        return now < until <= now + self.pin_seconds + 1

    def dispose(self, *, close: bool) -> None:
        for replica in self.replicas:
            replica.dispose(close=close)
            replica.checking = False


def _describe(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _reason(status: str) -> str:
    return "lagging" if status == "lagging" else "down"


# -- routing (db.session events) ----------------------------------------------------


def _replicas_of_current_app() -> ReplicaSet | None:
    if not has_request_context():
        return None  # CLI commands, migrations, jobs: always the primary
    state: StackState | None = current_app.extensions.get("flaskstack")
    return None if state is None else state.replicas


def _route(execute_state: ORMExecuteState) -> t.Any:
    replicas = _replicas_of_current_app()
    if replicas is None:
        return None
    environ = request.environ
    if not execute_state.is_select:
        environ[_WROTE] = True  # text(), insert(), update(), delete(): the primary, from now on
        return None
    session = execute_state.session
    if (
        environ.get(_WROTE)
        or environ.get(_PINNED)
        or session.new
        or session.dirty
        or session.deleted
        or execute_state.execution_options.get(_PRIMARY_OPTION)
    ):
        return None
    if _CHOSEN not in environ:
        environ[_CHOSEN] = None if replicas.pinned() else replicas.choose()
    replica: Replica | None = environ[_CHOSEN]
    if replica is None:
        return None
    try:
        return execute_state.invoke_statement(bind_arguments={"bind": replica.engine})
    except sa.exc.DBAPIError as exc:
        if not _is_outage(exc):
            raise
        # The replica went away: this read, and the rest of the request's, use the primary.
        replicas.mark_down(replica, exc)
    environ[_CHOSEN] = None
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    replica_skipped.send(app, replica=replica.name, reason="down")
    return None


def _after_flush(session: Session, flush_context: object) -> None:
    if has_request_context() and _replicas_of_current_app() is not None:
        request.environ[_WROTE] = True


_EXPLICIT = (SessionTransactionOrigin.BEGIN, SessionTransactionOrigin.BEGIN_NESTED)


def _after_transaction_create(session: Session, transaction: SessionTransaction) -> None:
    # An explicit transaction (begin(), begin_nested()) runs on the primary.
    if (
        transaction.origin in _EXPLICIT
        and has_request_context()
        and _replicas_of_current_app() is not None
    ):
        request.environ[_PINNED] = True


sa.event.listen(db.session, "do_orm_execute", _route)
sa.event.listen(db.session, "after_flush", _after_flush)
sa.event.listen(db.session, "after_transaction_create", _after_transaction_create)


# -- per app ---------------------------------------------------------------------


_SETS: weakref.WeakSet[ReplicaSet] = weakref.WeakSet()


def _after_fork() -> None:
    for replicas in list(_SETS):
        replicas.dispose(close=False)


def _before_exit() -> None:
    for replicas in list(_SETS):
        replicas.dispose(close=True)


_processes.AFTER_FORK.append(_after_fork)
_processes.BEFORE_EXIT.append(_before_exit)


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Refuse replicas behind a primary that is not PostgreSQL, and URLs that are not PostgreSQL."""
    problems: list[Problem] = []
    entry = resolution.entries["FLASKSTACK_DATABASE_REPLICA_URLS"]
    primary = resolution.entries["SQLALCHEMY_DATABASE_URI"].value
    backend = "the SQLite default" if primary is None else make_url(primary).get_backend_name()
    if backend != "postgresql":
        problems.append(
            Problem(
                "config.E001",
                "FLASKSTACK_DATABASE_REPLICA_URLS",
                entry.shown,
                "read replicas only with a PostgreSQL primary (DATABASE_URL); the primary is "
                f"{backend}",
                f"set DATABASE_URL to the PostgreSQL primary, or remove the replicas from "
                f"{entry.origin}",
            )
        )
        return problems
    for url in entry.value:
        try:
            backend = make_url(_normalise_database_url(url)).get_backend_name()
        except sa.exc.ArgumentError as exc:
            backend = f"not a URL ({exc})"
        if backend != "postgresql":
            problems.append(
                Problem(
                    "config.E001",
                    "FLASKSTACK_DATABASE_REPLICA_URLS",
                    repr(_mask_url(url)),
                    "PostgreSQL streaming replicas: 'postgresql://user:password@host/dbname'",
                    f"correct the replica URL in {entry.origin}",
                )
            )
    return problems


def init_app(app: Flask, state: StackState) -> None:
    """Route ``app``'s request reads to its replicas and pin writers to the primary."""
    replicas = ReplicaSet(app)
    state.replicas = replicas
    _SETS.add(replicas)
    app.after_request(_set_pin_cookie)


def _set_pin_cookie(response: Response) -> Response:
    if not request.environ.get(_WROTE):
        return response
    replicas = _replicas_of_current_app()
    if replicas is None:
        return response
    seconds = replicas.pin_seconds
    response.set_cookie(
        replicas.cookie,
        f"{time.time() + seconds:.3f}",
        max_age=max(1, round(seconds)),
        httponly=True,
        secure=replicas.secure,
        samesite="Lax",
    )
    return response


def _check_findings(app: Flask) -> list[tuple[str, str]]:
    """``flask stack check``: one finding per replica, from a check made now."""
    from .health import _run_probes

    replicas: ReplicaSet | None = app.extensions["flaskstack"].replicas
    if replicas is None:
        return []
    timeout = app.config["FLASKSTACK_READY_TIMEOUT"]
    results = _run_probes(app, replicas.probes(), timeout)  # at once: one timeout for all
    findings: list[tuple[str, str]] = []
    for replica in replicas.replicas:
        error = results[replicas.probe_name(replica)].error
        if error is not None or replica.status == "down":
            detail = replica.error or error
            findings.append(
                ("database.W002", f"The read replica {replica.name} does not answer ({detail}).")
            )
        elif replica.status == "not-standby":
            findings.append(
                (
                    "database.E004",
                    f"The read replica {replica.name} is not a standby: pg_is_in_recovery() "
                    "is false.",
                )
            )
        elif replica.status == "lagging":
            findings.append(
                (
                    "database.W003",
                    f"The read replica {replica.name} lags {replica.lag or 0:.1f} s behind the "
                    f"primary (limit {replicas.max_lag:g} s).",
                )
            )
        else:
            findings.append(
                (
                    "database.I001",
                    f"The read replica {replica.name} answers, is a standby and lags "
                    f"{replica.lag or 0:.1f} s behind the primary.",
                )
            )
    return findings
