"""Background jobs on RQ, on the app's Redis and under its namespace.

Turn them on with :setting:`FLASKSTACK_JOBS` (a Redis URL is needed), declare
a job with :func:`job`, enqueue it, and run ``flask stack worker``::

    from flaskstack import jobs

    @jobs.job(queue="mail", retries=3)
    def send_digest(user_id: int) -> None:
        user = db.session.get(User, user_id)  # the app's context: db, config, mail
        ...

    send_digest.enqueue(user.id)                      # as soon as possible
    send_digest.enqueue_in(timedelta(hours=1), user.id)

A job runs in a worker process started from the same app factory, inside an
app context of its own: the same settings, database and Redis. Its arguments
are pickled into Redis, so pass ids and plain values, not model instances.

**With the database transaction.** A job enqueued while ``db.session`` holds
uncommitted writes is pushed to Redis only when that transaction commits; if
it rolls back, the job is dropped and never runs. A job enqueued before the
writes that it needs is held the same way until the transaction ends. A
job enqueued with no transaction open is pushed at once.

**When Redis is down**, enqueueing raises :exc:`JobsUnavailable` (a 503 with
``Retry-After`` when a request lets it through) after at most
:setting:`FLASKSTACK_REDIS_TIMEOUT`, or at once while the circuit breaker
is open. A job held for a commit is pushed after the commit: if Redis is
down by then, ``commit()`` raises :exc:`JobsUnavailable` and the error is
logged with the job's id and function, as the data is already committed.

**Delivery** is at least once: a job stopped by a worker shutting down is
put back in its queue and runs again from the start, so write jobs that may
run twice (look up the state, then act).

**Periodic jobs** are declared with :func:`periodic`; every worker started
without ``--no-scheduler`` keeps the schedule, and one Redis key per period
makes sure each period's run is enqueued once, however many workers run.

With jobs off, this module imports nothing of RQ: enqueueing raises
:exc:`RuntimeError` naming the setting.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import typing as t

from flask import current_app

from ._state import get_state
from .problems import _ServiceUnavailableProblem

if t.TYPE_CHECKING:
    import redis
    from flask import Flask
    from rq.job import Job
    from rq.queue import Queue
    from sqlalchemy.orm import Session, SessionTransaction

    from .config import Resolution
    from .errors import Problem
    from .redis import RedisConnection

__all__ = [
    "DEFAULT_BACKOFF",
    "JobOptions",
    "JobsState",
    "JobsUnavailable",
    "Periodic",
    "Task",
    "enqueue",
    "enqueue_at",
    "enqueue_in",
    "job",
    "periodic",
    "periodic_jobs",
]

_logger = logging.getLogger("flaskstack.jobs")

_P = t.ParamSpec("_P")
_R = t.TypeVar("_R")

DEFAULT_BACKOFF = (10, 60, 300)
"""Seconds between a failed job's retries: the first, the second, then every later one."""


class JobsUnavailable(_ServiceUnavailableProblem):
    """503: the job queue (Redis) cannot be reached; the job was not enqueued.

    Carries ``Retry-After`` when it ends a request.
    """

    description = (
        "The background job queue cannot be reached right now, so this action could not be "
        "completed. Please try again in a few seconds."
    )


@dataclasses.dataclass(frozen=True)
class JobOptions:
    """How a job is enqueued; ``None`` means the app's setting.

    :ivar queue: The queue's name (:setting:`FLASKSTACK_JOBS_QUEUES`' first by default).
    :ivar timeout: Seconds the job may run (:setting:`FLASKSTACK_JOBS_TIMEOUT`).
    :ivar retries: How many times a failed job is tried again.
    :ivar backoff: Seconds before each retry; the last value repeats.
    :ivar result_ttl: Seconds a finished job is kept (:setting:`FLASKSTACK_JOBS_RESULT_TTL`).
    """

    queue: str | None = None
    timeout: float | None = None
    retries: int = 0
    backoff: tuple[int, ...] = DEFAULT_BACKOFF
    result_ttl: int | None = None

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, not {self.retries!r}")
        if not self.backoff or any(not isinstance(s, int) or s < 0 for s in self.backoff):
            raise ValueError(f"backoff must be whole numbers of seconds, not {self.backoff!r}")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be greater than 0, not {self.timeout!r}")


class Task(t.Generic[_P, _R]):
    """A function declared with :func:`job`: call it to run it here, enqueue it to run later.

    The wrapped function stays a plain function: ``send_digest(42)`` runs it
    in the caller, which is what unit tests of the job itself want.
    """

    def __init__(self, func: t.Callable[_P, _R], options: JobOptions) -> None:
        self.func = func
        self.job_options = options
        functools.update_wrapper(self, func)

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return self.func(*args, **kwargs)

    def enqueue(self, *args: _P.args, **kwargs: _P.kwargs) -> Job:
        """Enqueue a run with these arguments, as soon as a worker is free.

        :returns: RQ's :class:`~rq.job.Job` (its ``id`` identifies the run).
        :raises JobsUnavailable: Redis cannot be reached.
        """
        return _enqueue(self.func, args, kwargs, self.job_options, None)

    def enqueue_in(self, delay: dt.timedelta, *args: _P.args, **kwargs: _P.kwargs) -> Job:
        """Enqueue a run that starts ``delay`` from now (at the earliest)."""
        return _enqueue(self.func, args, kwargs, self.job_options, _utcnow() + delay)

    def enqueue_at(self, when: dt.datetime, *args: _P.args, **kwargs: _P.kwargs) -> Job:
        """Enqueue a run that starts at ``when`` (at the earliest; naive means UTC)."""
        return _enqueue(self.func, args, kwargs, self.job_options, _aware(when))

    def __repr__(self) -> str:
        return f"<flaskstack job {_function_name(self.func)}>"


@t.overload
def job(func: t.Callable[_P, _R], /) -> Task[_P, _R]: ...


@t.overload
def job(
    *,
    queue: str | None = None,
    timeout: float | None = None,
    retries: int = 0,
    backoff: t.Sequence[int] = DEFAULT_BACKOFF,
    result_ttl: int | None = None,
) -> t.Callable[[t.Callable[_P, _R]], Task[_P, _R]]: ...


def job(
    func: t.Callable[..., t.Any] | None = None,
    /,
    *,
    queue: str | None = None,
    timeout: float | None = None,
    retries: int = 0,
    backoff: t.Sequence[int] = DEFAULT_BACKOFF,
    result_ttl: int | None = None,
) -> t.Any:
    """Declare a job: ``@job`` or ``@job(queue="mail", retries=3)``.

    The function must be importable by the worker: defined at the top level
    of a module the app factory imports (not in ``__main__``, not nested).

    :param queue: The queue (by default the first of :setting:`FLASKSTACK_JOBS_QUEUES`).
    :param timeout: Seconds a run may take (:setting:`FLASKSTACK_JOBS_TIMEOUT`).
    :param retries: How many times a failed run is tried again (0: never).
    :param backoff: Seconds before each retry; the last value repeats.
    :param result_ttl: Seconds a finished run is kept (:setting:`FLASKSTACK_JOBS_RESULT_TTL`).
    """
    options = JobOptions(queue, timeout, retries, tuple(backoff), result_ttl)

    def declare(function: t.Callable[_P, _R]) -> Task[_P, _R]:
        return Task(function, options)

    return declare if func is None else declare(func)


def enqueue(func: t.Callable[_P, t.Any], /, *args: _P.args, **kwargs: _P.kwargs) -> Job:
    """Enqueue ``func(*args, **kwargs)`` (a :func:`job`, or any importable function)."""
    function, options = _split(func)
    return _enqueue(function, args, kwargs, options, None)


def enqueue_in(
    delay: dt.timedelta, func: t.Callable[_P, t.Any], /, *args: _P.args, **kwargs: _P.kwargs
) -> Job:
    """Enqueue ``func(*args, **kwargs)`` to start ``delay`` from now (at the earliest)."""
    function, options = _split(func)
    return _enqueue(function, args, kwargs, options, _utcnow() + delay)


def enqueue_at(
    when: dt.datetime, func: t.Callable[_P, t.Any], /, *args: _P.args, **kwargs: _P.kwargs
) -> Job:
    """Enqueue ``func(*args, **kwargs)`` to start at ``when`` (naive means UTC)."""
    function, options = _split(func)
    return _enqueue(function, args, kwargs, options, _aware(when))


# -- periodic jobs --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Periodic:
    """A job run once per period (see :func:`periodic`).

    :ivar name: Its name, unique in the process (the function's dotted path by default).
    :ivar task: The job.
    :ivar cron: A cron expression, as croniter reads it (``minute hour day month weekday``).
    :ivar every: Or a fixed period, counted from the Unix epoch.
    """

    name: str
    task: Task[..., t.Any]
    cron: str | None = None
    every: dt.timedelta | None = None

    @property
    def schedule(self) -> str:
        """The schedule as people read it: the cron expression, or ``every 0:05:00``."""
        return self.cron if self.cron is not None else f"every {self.every}"

    def period_start(self, now: dt.datetime) -> dt.datetime:
        """The start of the period ``now`` falls in (the last time the job was due)."""
        if self.every is not None:
            step = self.every.total_seconds()
            return dt.datetime.fromtimestamp((now.timestamp() // step) * step, dt.timezone.utc)
        from croniter import croniter

        assert self.cron is not None
        # A time exactly on the schedule is its own period's start.
        base = now + dt.timedelta(microseconds=1)
        start: dt.datetime = croniter(self.cron, base).get_prev(dt.datetime)
        return start.astimezone(dt.timezone.utc)

    def next_start(self, now: dt.datetime) -> dt.datetime:
        """When the job is next due after ``now``."""
        if self.every is not None:
            return self.period_start(now) + self.every
        from croniter import croniter

        assert self.cron is not None
        following: dt.datetime = croniter(self.cron, now).get_next(dt.datetime)
        return following.astimezone(dt.timezone.utc)


_PERIODIC: dict[str, Periodic] = {}


def periodic(
    *,
    cron: str | None = None,
    every: dt.timedelta | float | None = None,
    name: str | None = None,
    queue: str | None = None,
    timeout: float | None = None,
    retries: int = 0,
    backoff: t.Sequence[int] = DEFAULT_BACKOFF,
) -> t.Callable[[t.Callable[[], _R]], Task[[], _R]]:
    """Declare a job that runs once per period, on whichever worker gets there first.

    ``@periodic(cron="0 3 * * *")`` runs at 03:00 (the worker's time zone;
    UTC in the shipped images), ``@periodic(every=timedelta(minutes=5))``
    at every multiple of five minutes since the Unix epoch. A period that
    passed with no worker running is not caught up: the next run is the next
    period's. The function takes no arguments.

    :param cron: A cron expression (``minute hour day month weekday``).
    :param every: Or a period, a :class:`~datetime.timedelta` or seconds.
    :param name: Its name in ``flask stack jobs`` and in Redis; the function's
        dotted path by default. Renaming starts a new schedule.
    :raises ValueError: for both or neither of ``cron`` and ``every``, a cron
        expression croniter refuses, or a name already declared.
    """
    if (cron is None) == (every is None):
        raise ValueError("periodic() takes either cron=... or every=..., not both or neither")
    period = None
    if every is not None:
        period = every if isinstance(every, dt.timedelta) else dt.timedelta(seconds=every)
        if period.total_seconds() < 1:
            raise ValueError(f"every must be at least one second, not {period}")
    if cron is not None:
        from croniter import croniter

        if not croniter.is_valid(cron):
            raise ValueError(f"{cron!r} is not a cron expression croniter accepts")
    options = JobOptions(queue, timeout, retries, tuple(backoff), None)

    def declare(function: t.Callable[[], _R]) -> Task[[], _R]:
        task: Task[[], _R] = Task(function, options)
        key = name or _function_name(function)
        known = _PERIODIC.get(key)
        if known is not None and known.task.func is not function:
            raise ValueError(
                f"a periodic job named {key!r} is already declared ({known.schedule}); "
                "give this one another name=..."
            )
        _PERIODIC[key] = Periodic(key, task, cron, period)
        return task

    return declare


def _last_run_key(connection: RedisConnection, item: Periodic) -> str:
    """The key holding when ``item`` last ran, and the id of that run's job."""
    return connection.key("jobs", "periodic", item.name, "last")


def periodic_jobs() -> list[Periodic]:
    """Every periodic job declared in this process, by name."""
    return [_PERIODIC[key] for key in sorted(_PERIODIC)]


# -- the app's jobs --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class JobsState:
    """The jobs settings of one app (at ``StackState.jobs``)."""

    namespace: str
    queues: tuple[str, ...]
    timeout: float
    result_ttl: int
    shutdown_timeout: float

    def rq_name(self, queue: str) -> str:
        """The name RQ knows the app's ``queue`` by: prefixed with the namespace."""
        return f"{self.namespace}:{queue}"

    def short_name(self, rq_name: str) -> str:
        """The app's name of an RQ queue name (the inverse of :meth:`rq_name`)."""
        return rq_name.removeprefix(f"{self.namespace}:")


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Refuse jobs without a Redis, or on Redis Cluster, which RQ does not support."""
    from ._redis_url import parse_redis_url
    from .errors import Problem

    if not resolution["FLASKSTACK_JOBS"]:
        return []
    entry = resolution.entries["FLASKSTACK_REDIS_URL"]
    if entry.value is None:
        return [
            Problem(
                "jobs.E001",
                "FLASKSTACK_JOBS",
                "true, and no Redis URL is set",
                "a Redis URL for the job queues",
                "set REDIS_URL (FLASKSTACK_REDIS_URL), or turn FLASKSTACK_JOBS off",
            )
        ]
    try:
        kind = parse_redis_url(entry.value).kind
    except ValueError:
        return []  # reported by the Redis URL's own check
    if kind == "cluster":
        return [
            Problem(
                "jobs.E002",
                "FLASKSTACK_JOBS",
                f"true, and the Redis URL is a Redis Cluster ({entry.shown})",
                "a standalone or Sentinel Redis: RQ keeps a job's keys together and cannot "
                "spread them over cluster slots",
                "point REDIS_URL at a standalone or Sentinel Redis, or turn FLASKSTACK_JOBS off",
            )
        ]
    return []


def _init_app(app: Flask) -> JobsState | None:
    config = app.config
    if not config["FLASKSTACK_JOBS"]:
        return None
    return JobsState(
        namespace=config["FLASKSTACK_NAMESPACE"],
        queues=tuple(config["FLASKSTACK_JOBS_QUEUES"]),
        timeout=config["FLASKSTACK_JOBS_TIMEOUT"],
        result_ttl=config["FLASKSTACK_JOBS_RESULT_TTL"],
        shutdown_timeout=config["FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT"],
    )


def _jobs_of(app: Flask) -> tuple[JobsState, RedisConnection]:
    """The app's jobs settings and Redis connection.

    :raises RuntimeError: when jobs are off.
    """
    state = get_state(app)
    if state.jobs is None or state.redis is None:
        raise RuntimeError(
            f"background jobs are off for app {app.name!r}: set FLASKSTACK_JOBS=true "
            "(with REDIS_URL) to enqueue jobs"
        )
    return state.jobs, state.redis


def _rq_client(connection: RedisConnection) -> redis.Redis:
    """The app's redis-py client, as RQ takes it (never a cluster client: refused at start)."""
    return t.cast("redis.Redis", connection.client)


def _queue(app: Flask, name: str, client: redis.Redis | None = None) -> Queue:
    """The RQ queue of ``app`` called ``name`` (in the app's namespace)."""
    from rq import Queue

    jobs, connection = _jobs_of(app)
    return Queue(
        jobs.rq_name(name),
        connection=client if client is not None else _rq_client(connection),
        default_timeout=_whole_seconds(jobs.timeout),
    )


# -- enqueueing --------------------------------------------------------------------------


def _enqueue(
    func: t.Callable[..., t.Any],
    args: tuple[t.Any, ...],
    kwargs: dict[str, t.Any],
    options: JobOptions,
    when: dt.datetime | None,
) -> Job:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    jobs, connection = _jobs_of(app)
    if connection.breaker.is_open:
        raise JobsUnavailable(connection.breaker.backoff)
    from rq import Retry

    from .logs import request_id

    queue_name = options.queue or jobs.queues[0]
    queue = _queue(app, queue_name)
    retry = Retry(max=options.retries, interval=list(options.backoff)) if options.retries else None
    new_job = queue.create_job(
        func,
        args=args,
        kwargs=kwargs,
        timeout=_whole_seconds(options.timeout if options.timeout is not None else jobs.timeout),
        result_ttl=options.result_ttl if options.result_ttl is not None else jobs.result_ttl,
        retry=retry,
        meta={"request_id": request_id()},
    )
    push = functools.partial(_push, connection, queue, new_job, when)
    session = _open_session(app)
    if session is None:
        push()
    else:
        _hold_until_commit(session, push, new_job)
    return new_job


def _push(connection: RedisConnection, queue: Queue, job: Job, when: dt.datetime | None) -> None:
    """Write ``job`` to Redis: into its queue, or the scheduled registry for ``when``."""
    from .redis import RedisUnavailable

    def write(client: object) -> object:
        if when is None:
            return queue.enqueue_job(job)
        return queue.schedule_job(job, when)

    try:
        connection.run(write)
    except RedisUnavailable as exc:
        raise JobsUnavailable(connection.breaker.backoff) from exc


# Jobs held for the end of db.session's transaction, in ``session.info``.
_HELD_KEY = "flaskstack.jobs.held"
# True in ``session.info`` once the transaction wrote (flushed, or had pending changes).
_WROTE_KEY = "flaskstack.jobs.wrote"


def _open_session(app: Flask) -> Session | None:
    """``db.session`` when it has a transaction open now, else ``None``.

    Only an app context that has already used the session has one; looking
    does not create a transaction (nor a connection).
    """
    from .database import db

    if "sqlalchemy" not in app.extensions:
        return None
    registry = db.session.registry
    if not registry.has():
        return None
    session: Session = registry()
    if not session.in_transaction():
        return None
    return session


def _hold_until_commit(session: Session, push: t.Callable[[], None], new_job: Job) -> None:
    import sqlalchemy as sa

    from .database import _has_written

    if _has_written(session):
        session.info[_WROTE_KEY] = True
    held: list[tuple[t.Callable[[], None], Job]] = session.info.setdefault(_HELD_KEY, [])
    held.append((push, new_job))
    if not sa.event.contains(session, "after_commit", _after_commit):
        sa.event.listen(session, "after_flush", _after_flush)
        sa.event.listen(session, "after_commit", _after_commit)
        sa.event.listen(session, "after_transaction_end", _after_transaction_end)


def _after_flush(session: Session, flush_context: object) -> None:
    session.info[_WROTE_KEY] = True


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: the jobs wait for the transaction around it
    session.info.pop(_WROTE_KEY, None)
    held = session.info.pop(_HELD_KEY, [])
    _push_all(held)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    """A transaction ended without a commit: drop its jobs if it wrote, push them if not."""
    if transaction.parent is not None or transaction.nested:
        return
    held = session.info.pop(_HELD_KEY, [])
    wrote = session.info.pop(_WROTE_KEY, False)
    if not held:
        return
    if wrote:
        for _push_job, dropped in held:
            _logger.info(
                "job %s (%s) dropped: the transaction it was enqueued in rolled back",
                dropped.id,
                dropped.func_name,
            )
        return
    _push_all(held)


def _push_all(held: list[tuple[t.Callable[[], None], Job]]) -> None:
    for index, (push, _held_job) in enumerate(held):
        try:
            push()
        except JobsUnavailable:
            for _push_job, lost in held[index:]:
                _logger.error(
                    "job %s (%s) was not enqueued: Redis could not be reached when the "
                    "transaction committed",
                    lost.id,
                    lost.func_name,
                )
            raise


# -- helpers -----------------------------------------------------------------------------


def _split(func: t.Callable[..., t.Any]) -> tuple[t.Callable[..., t.Any], JobOptions]:
    if isinstance(func, Task):
        return func.func, func.job_options
    return func, JobOptions()


def _function_name(func: t.Callable[..., t.Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def _whole_seconds(seconds: float) -> int:
    return max(1, round(seconds))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)
