"""The worker behind ``flask stack worker``: RQ's worker, inside the app.

Imported by the worker command and the test fixtures only: a web process
never imports RQ's worker.

- Each job runs in an app context of the app the command was started with
  (:class:`_AppJob`), with the id of the request that enqueued it as its
  log lines' request id, and ends with one log line through the app's
  logger (JSON in production) saying how it went.
- SIGTERM (or SIGINT) lets the job in flight finish for at most
  :setting:`FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT`; then the job is stopped and
  put back at the front of its queue, where another worker takes it. The
  work horse (in a process group of its own) ignores SIGTERM, so a SIGTERM
  sent to every process of the worker (systemd's ``KillMode=control-group``)
  is handled the same way.
- A thread keeps the periodic jobs' schedule (:class:`_PeriodicScheduler`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import threading
import time
import traceback
import typing as t

from redis.exceptions import RedisError
from rq import SimpleWorker, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from ._signals import job_ended
from .jobs import Periodic, _jobs_of, _last_run_key, periodic_jobs
from .logs import _carrying_request_id
from .redis import RedisConnection, RedisUnavailable, _make_client

if t.TYPE_CHECKING:
    import redis
    from flask import Flask

    from .jobs import JobsState

__all__ = ["build_worker", "run_worker", "run_workers"]

_logger = logging.getLogger("flaskstack.jobs")
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _AppJob(Job):
    """A job that runs inside the app's context and logs one line when it ends."""

    flaskstack_app: t.ClassVar[Flask]
    # The jobs this class ran, in order, with the traceback of those that
    # raised (read by the test fixture, whose worker does not fork; RQ keeps
    # no traceback of a job it retries).
    flaskstack_ran: t.ClassVar[list[tuple[str, str | None]]]

    def perform(self) -> t.Any:
        app = self.flaskstack_app
        meta = self.meta or {}
        request_id = str(meta.get("request_id") or "-")
        started = time.perf_counter()
        with app.app_context(), _carrying_request_id(request_id):
            try:
                result = super().perform()
            except BaseException as exc:
                self.flaskstack_ran.append((self.id, traceback.format_exc()))
                _log_run(app, self, "failed", started, exc)
                raise
            self.flaskstack_ran.append((self.id, None))
            _log_run(app, self, "finished", started)
        return result


def _log_run(
    app: Flask, job: Job, status: str, started: float, exc: BaseException | None = None
) -> None:
    jobs, _connection = _jobs_of(app)
    job_ended.send(app, queue=jobs.short_name(job.origin), outcome=status)
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    details: dict[str, t.Any] = {
        "id": job.id,
        "function": job.func_name,
        "queue": jobs.short_name(job.origin),
        "status": status,
        "duration_ms": duration_ms,
    }
    if exc is not None:
        details["error"] = f"{type(exc).__name__}: {exc}"
    level = logging.INFO if exc is None else logging.WARNING
    app.logger.log(
        level,
        "job %s %s %s in %.1f ms%s",
        job.id,
        job.func_name,
        status,
        duration_ms,
        f" ({details['error']})" if exc is not None else "",
        extra={"job": details},
    )


class _NoCommandChannel:
    """No subscription to RQ's command channel (``rq.command``: stop a job, kill a horse).

    flaskstack's workers are stopped with signals. The channel's listener
    thread also holds up the worker's exit: with redis-py 8, stopping it
    waits for its pending ``get_message(timeout=60)``, a minute per worker
    shutdown, longer than a platform's grace period.
    """

    def subscribe(self) -> None:
        return None


class _SimpleWorker(_NoCommandChannel, SimpleWorker):
    """RQ's worker that runs jobs in its own process (the test fixture's)."""


class _Worker(_NoCommandChannel, Worker):
    """RQ's forking worker with a deadline on the warm shutdown."""

    flaskstack_shutdown_timeout: float = 20.0

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.flaskstack_interrupted: str | None = None
        self.flaskstack_timer: threading.Timer | None = None
        self.flaskstack_stopping = False

    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()  # type: ignore[no-untyped-call]
        # The worker decides when the job stops; a SIGTERM sent to every
        # process (systemd) must not end the job before the deadline.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]
        self.flaskstack_stopping = True
        job_id = self.get_current_job_id()
        if job_id is None or self.flaskstack_timer is not None:
            return
        _logger.warning(
            "worker %s stopping: job %s may finish for %g s; then it is stopped and requeued",
            self.name,
            job_id,
            self.flaskstack_shutdown_timeout,
        )
        timer = threading.Timer(self.flaskstack_shutdown_timeout, self.flaskstack_stop, (job_id,))
        timer.daemon = True
        self.flaskstack_timer = timer
        timer.start()

    def flaskstack_stop(self, job_id: str) -> None:
        """Stop the work horse if it still runs ``job_id`` (the deadline passed)."""
        if self.get_current_job_id() != job_id or not self.horse_pid:
            return
        self.flaskstack_interrupted = job_id
        _logger.warning(
            "worker %s: job %s still running after %g s; stopping it to requeue it",
            self.name,
            job_id,
            self.flaskstack_shutdown_timeout,
        )
        self.kill_horse()

    def teardown(self) -> None:
        if self.flaskstack_timer is not None:
            self.flaskstack_timer.cancel()
        try:
            super().teardown()  # type: ignore[no-untyped-call]
        except (RedisError, OSError) as exc:
            # Ending on a Redis outage: its registration expires by itself.
            _logger.warning("worker %s could not unregister: %s", self.name, exc)


def _requeue_interrupted(worker: _Worker) -> None:
    """Put the job the shutdown stopped back at the front of its queue."""
    job_id = worker.flaskstack_interrupted
    if job_id is None:
        return
    try:
        job = worker.job_class.fetch(job_id, connection=worker.connection)
        if job.get_status() != JobStatus.FAILED:
            return  # retried by its own retry policy: queued or scheduled again
        job.requeue(at_front=True)
    except (NoSuchJobError, InvalidJobOperation, RedisError) as exc:
        _logger.error("job %s stopped by the shutdown could not be requeued: %s", job_id, exc)
        return
    _logger.warning("job %s stopped by the shutdown is back at the front of its queue", job_id)


class _PeriodicScheduler(threading.Thread):
    """Enqueues each periodic job once per period, whatever the number of workers.

    Every worker's scheduler looks at the clock several times a second; the
    first to see a new period claims it with ``SET … NX`` on one key per job
    and period, and only the claimer enqueues. A period that started before
    this scheduler did is left to the workers that were up then: nothing is
    caught up after downtime. It costs one Redis command per job and period
    per worker.
    """

    TICK = 0.2

    def __init__(self, app: Flask, periodic: list[Periodic], worker_name: str) -> None:
        super().__init__(name="flaskstack-periodic", daemon=True)
        self.app = app
        self.periodic = periodic
        self.worker_name = worker_name
        self.started_at = dt.datetime.now(dt.timezone.utc)
        self.handled: dict[str, dt.datetime] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.TICK):
            try:
                self.enqueue_due(dt.datetime.now(dt.timezone.utc))
            except Exception:  # keep the schedule alive; the next tick tries again
                _logger.exception("the periodic job scheduler failed; trying again")

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)

    def enqueue_due(self, now: dt.datetime) -> None:
        """Claim and enqueue every job whose current period has not been handled here."""
        _jobs, connection = _jobs_of(self.app)
        for item in self.periodic:
            start = item.period_start(now)
            if start < self.started_at or self.handled.get(item.name) == start:
                continue
            try:
                claimed = self.claim(connection, item, start)
            except RedisUnavailable as exc:
                _logger.warning("periodic job %s not enqueued for %s: %s", item.name, start, exc)
                continue  # tried again on the next tick
            self.handled[item.name] = start
            if claimed:
                with self.app.app_context():
                    new_job = item.task.enqueue()
                connection.run(
                    lambda client, key, value: client.set(key, value, ex=_LAST_RUN_TTL),
                    _last_run_key(connection, item),
                    f"{start.isoformat()} {new_job.id}",
                )

    def claim(self, connection: RedisConnection, item: Periodic, start: dt.datetime) -> bool:
        key = connection.key("jobs", "periodic", item.name, str(int(start.timestamp())))
        ttl = max(60, int(2 * (item.next_start(start) - start).total_seconds()))
        claimed = connection.run(
            lambda client: client.set(key, self.worker_name, nx=True, ex=min(ttl, _LAST_RUN_TTL))
        )
        return bool(claimed)


_LAST_RUN_TTL = 30 * 24 * 3600

MAINTENANCE_INTERVAL = 30
"""Seconds between a worker's maintenance runs (registry clean-up, scheduler restart)."""


def build_worker(
    app: Flask,
    queues: t.Sequence[str] = (),
    *,
    name: str | None = None,
    simple: bool = False,
) -> _Worker | _SimpleWorker:
    """A worker for ``app``'s ``queues`` (by default :setting:`FLASKSTACK_JOBS_QUEUES`).

    It has a Redis client of its own: RQ waits for jobs with blocking
    commands, which need a longer read timeout than the app's requests get.
    """
    jobs, connection = _jobs_of(app)
    names = list(queues) or list(jobs.queues)
    client = t.cast("redis.Redis", _make_client(connection.target, connection.timeout))
    job_class = type("FlaskstackJob", (_AppJob,), {"flaskstack_app": app, "flaskstack_ran": []})
    worker_class: type[_Worker | _SimpleWorker] = _SimpleWorker if simple else _Worker
    worker = worker_class(
        [jobs.rq_name(queue) for queue in names],
        name=name,
        connection=client,
        job_class=job_class,
        default_result_ttl=jobs.result_ttl,
        # RQ starts its scheduler process again (it ends on a Redis error) only
        # in maintenance, which an idle worker reaches when its wait for jobs
        # times out (its TTL less 15 s): every 30 s rather than RQ's 10 min, so
        # delayed jobs and retries wait at most that long after a failover.
        maintenance_interval=MAINTENANCE_INTERVAL,
        worker_ttl=MAINTENANCE_INTERVAL + 15,
    )
    if isinstance(worker, _Worker):
        worker.flaskstack_shutdown_timeout = jobs.shutdown_timeout
    return worker


def run_worker(
    app: Flask,
    queues: t.Sequence[str] = (),
    *,
    burst: bool = False,
    scheduler: bool = True,
    name: str | None = None,
    max_jobs: int | None = None,
) -> bool:
    """Serve ``app``'s job queues until stopped (or, with ``burst``, until they are empty).

    RQ's worker stops when Redis fails outside its wait for jobs (a
    heartbeat during a Sentinel failover, a restarted server): unless a stop
    was asked for, a new worker takes over after :data:`RESTART_DELAY`
    seconds, so one ``flask stack worker`` keeps serving through outages.

    :returns: Whether any job ran.
    """
    jobs: JobsState
    jobs, _connection = _jobs_of(app)
    # RQ's and flaskstack's lines reach the handler flaskstack.logs put on the
    # root logger (JSON in production); RQ adds a handler of its own only when
    # none would see them (an app that left its logging unconfigured).
    periodic = periodic_jobs() if scheduler and not burst else []
    keeper: _PeriodicScheduler | None = None
    stop = threading.Event()
    worked = False
    run = 0
    try:
        while True:
            worker = build_worker(
                app, queues, name=name if name is None or run == 0 else f"{name}.{run}"
            )
            assert isinstance(worker, _Worker)
            if periodic and keeper is None:
                keeper = _PeriodicScheduler(app, periodic, worker.name)
                keeper.start()
            app.logger.info(
                "worker %s started (pid %d): queues %s%s",
                worker.name,
                os.getpid(),
                ", ".join(jobs.short_name(queue) for queue in worker.queue_names()),
                f"; periodic jobs {', '.join(item.name for item in periodic)}" if periodic else "",
            )
            try:
                worked = (
                    bool(
                        worker.work(
                            burst=burst,
                            with_scheduler=scheduler,
                            # One line per job comes from the job itself; RQ's own
                            # per-job lines are left to debugging.
                            logging_level="DEBUG"
                            if app.logger.getEffectiveLevel() <= logging.DEBUG
                            else "WARNING",
                            max_jobs=max_jobs,
                        )
                    )
                    or worked
                )
            finally:
                _requeue_interrupted(worker)
                worker.connection.close()
                app.logger.info("worker %s (pid %d) stopped", worker.name, os.getpid())
            if burst or max_jobs is not None or worker.flaskstack_stopping:
                return worked
            app.logger.warning(
                "worker %s ended on an error (logged above); a new worker starts in %g s",
                worker.name,
                RESTART_DELAY,
            )
            # Between two workers a signal is this loop's: RQ's handlers belong to the last one.
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
            if stop.wait(RESTART_DELAY):
                return worked
            run += 1
    finally:
        if keeper is not None:
            keeper.stop()


RESTART_DELAY = 5.0
"""Seconds before a worker that ended on a Redis error is replaced."""


def run_workers(
    app: Flask,
    processes: int,
    queues: t.Sequence[str] = (),
    *,
    burst: bool = False,
    scheduler: bool = True,
    name: str | None = None,
    max_jobs: int | None = None,
) -> None:
    """Run ``processes`` workers, each a child process running :func:`run_worker`.

    The parent forwards SIGTERM and SIGINT to every child (each then finishes
    or requeues its job, as one worker does) and returns once all have
    stopped. A child that dies while no stop was asked for is started again
    after a second. Each child makes its own connections: the parent has
    opened none when it forks.
    """
    if processes == 1:
        run_worker(app, queues, burst=burst, scheduler=scheduler, name=name, max_jobs=max_jobs)
        return
    children: dict[int, int] = {}
    stopping = False

    def start(index: int) -> None:
        # A stop signal arriving while the child is being forked waits until the child has
        # its own handlers (it then stops at once) and the parent knows its pid (it then
        # forwards the stop to it too); without the mask the child could run the parent's
        # handler, start its worker anyway, and keep the parent waiting.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:  # the child: one worker, then exit without the parent's clean-up
                status = 0
                try:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                    run_worker(
                        app,
                        queues,
                        burst=burst,
                        scheduler=scheduler,
                        name=None if name is None else f"{name}.{index}",
                        max_jobs=max_jobs,
                    )
                except BaseException:
                    _logger.exception("worker process %d failed", index)
                    status = 1
                finally:
                    logging.shutdown()
                    os._exit(status)
            children[pid] = index
        finally:  # the parent's: the child never gets here
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in _STOP_SIGNALS}
    try:
        for index in range(processes):
            start(index)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index = children.pop(pid, -1)
            if index < 0 or stopping or burst or os.waitstatus_to_exitcode(status) == 0:
                continue
            app.logger.warning(
                "worker process %d (pid %d) ended unexpectedly (status %d); starting it again",
                index,
                pid,
                os.waitstatus_to_exitcode(status),
            )
            time.sleep(1)
            if not stopping:
                start(index)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
