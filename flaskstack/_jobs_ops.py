"""What ``flask stack jobs``, the jobs dashboard and ``--deploy`` read and do.

Everything goes through RQ's public API on the app's Redis connection, for
the app's queues only (those of :setting:`FLASKSTACK_JOBS_QUEUES` and any
other queue in the app's namespace that holds jobs).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

from .jobs import _jobs_of, _last_run_key, _queue, periodic_jobs

if t.TYPE_CHECKING:
    import redis
    from flask import Flask
    from rq.job import Job

__all__ = [
    "FailedJob",
    "Overview",
    "PeriodicRow",
    "QueueRow",
    "WorkerRow",
    "delete_jobs",
    "overview",
    "requeue_jobs",
]


@dataclasses.dataclass(frozen=True)
class QueueRow:
    name: str
    queued: int
    started: int
    scheduled: int
    failed: int
    finished: int


@dataclasses.dataclass(frozen=True)
class WorkerRow:
    name: str
    state: str
    queues: tuple[str, ...]
    hostname: str
    pid: int | None
    current_job: str | None
    last_heartbeat: dt.datetime | None
    successful: int
    failed: int


@dataclasses.dataclass(frozen=True)
class PeriodicRow:
    name: str
    schedule: str
    queue: str
    next_run: dt.datetime
    last_run: str | None


@dataclasses.dataclass(frozen=True)
class FailedJob:
    id: str
    queue: str
    function: str
    ended_at: dt.datetime | None
    error: str

    @property
    def error_line(self) -> str:
        """The last line of the error (the exception), for tables."""
        lines = [line for line in self.error.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""


@dataclasses.dataclass(frozen=True)
class Overview:
    namespace: str
    queues: list[QueueRow]
    workers: list[WorkerRow]
    periodic: list[PeriodicRow]
    failed: list[FailedJob]

    def newest_heartbeat(self) -> dt.datetime | None:
        beats = [w.last_heartbeat for w in self.workers if w.last_heartbeat is not None]
        return max(beats) if beats else None


def queue_names(app: Flask) -> list[str]:
    """The app's queues: the configured ones first, then any other in its namespace."""
    from rq import Queue

    jobs, connection = _jobs_of(app)
    names = list(jobs.queues)
    prefix = f"{jobs.namespace}:"
    found = connection.run(lambda client: Queue.all(connection=t.cast("redis.Redis", client)))
    for queue in found:
        if queue.name.startswith(prefix):
            short = jobs.short_name(queue.name)
            if short not in names:
                names.append(short)
    return names


def _error_of(job: Job) -> str:
    result = job.latest_result()
    if result is not None and result.exc_string:
        return str(result.exc_string)
    return ""


def overview(app: Flask, failed_limit: int = 20) -> Overview:
    """Counts by queue, workers and their heartbeats, periodic jobs, the newest failed jobs.

    :raises flaskstack.redis.RedisUnavailable: when Redis cannot be reached.
    """
    from rq import Worker

    jobs, connection = _jobs_of(app)
    names = queue_names(app)

    def read(client: t.Any) -> Overview:
        rows: list[QueueRow] = []
        workers: dict[str, WorkerRow] = {}
        failed: list[FailedJob] = []
        for name in names:
            queue = _queue(app, name, client)
            failed_ids = queue.failed_job_registry.get_job_ids()
            rows.append(
                QueueRow(
                    name,
                    queue.count,
                    queue.started_job_registry.count,
                    queue.scheduled_job_registry.count,
                    len(failed_ids),
                    queue.finished_job_registry.count,
                )
            )
            newest_failed = failed_ids[-failed_limit:] if failed_limit else []
            for job in queue.job_class.fetch_many(newest_failed, connection=client):
                if job is not None:
                    failed.append(
                        FailedJob(job.id, name, job.func_name or "?", job.ended_at, _error_of(job))
                    )
            for worker in Worker.all(connection=client, queue=queue):
                if worker.name in workers:
                    continue
                workers[worker.name] = WorkerRow(
                    name=worker.name,
                    state=str(getattr(worker.get_state(), "value", worker.get_state())),
                    queues=tuple(jobs.short_name(q) for q in worker.queue_names()),
                    hostname=worker.hostname or "?",
                    pid=worker.pid,
                    current_job=worker.get_current_job_id(),
                    last_heartbeat=worker.last_heartbeat,
                    successful=worker.successful_job_count,
                    failed=worker.failed_job_count,
                )
        failed.sort(key=lambda f: f.ended_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc))
        return Overview(
            jobs.namespace,
            rows,
            sorted(workers.values(), key=lambda w: w.name),
            _periodic_rows(app, client),
            failed[::-1][:failed_limit],
        )

    return connection.run(read)


def _periodic_rows(app: Flask, client: t.Any) -> list[PeriodicRow]:
    jobs, connection = _jobs_of(app)
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for item in periodic_jobs():
        raw = client.get(_last_run_key(connection, item))
        last = raw.decode() if isinstance(raw, bytes) else raw
        rows.append(
            PeriodicRow(
                item.name,
                item.schedule,
                item.task.job_options.queue or jobs.queues[0],
                item.next_start(now),
                last,
            )
        )
    return rows


def requeue_jobs(
    app: Flask, job_ids: t.Iterable[str] = (), *, all_failed: bool = False
) -> list[str]:
    """Put failed jobs back in their queues; returns the ids requeued.

    :raises LookupError: naming an id that is not a failed job of the app's.
    """
    _jobs, connection = _jobs_of(app)

    def requeue(client: t.Any) -> list[str]:
        done = []
        if all_failed:
            for name in queue_names(app):
                registry = _queue(app, name, client).failed_job_registry
                for job_id in registry.get_job_ids():
                    registry.requeue(job_id)
                    done.append(job_id)
            return done
        for job_id in job_ids:
            job = _own_job(app, client, job_id)
            if not job.is_failed:
                raise LookupError(f"job {job_id} is {_status(job)}, not failed: nothing to requeue")
            job.requeue()
            done.append(job_id)
        return done

    return connection.run(requeue)


def delete_jobs(app: Flask, job_ids: t.Iterable[str]) -> list[str]:
    """Delete jobs (from their queue or registry, with their results); returns the ids."""
    _jobs, connection = _jobs_of(app)

    def delete(client: t.Any) -> list[str]:
        done = []
        for job_id in job_ids:
            job = _own_job(app, client, job_id)
            if job.get_status() == "started":
                raise LookupError(f"job {job_id} is running: stop its worker first")
            job.delete()
            done.append(job_id)
        return done

    return connection.run(delete)


def job_details(app: Flask, job_id: str) -> dict[str, t.Any]:
    """What ``flask stack jobs show`` prints about one job."""
    jobs, connection = _jobs_of(app)

    def read(client: t.Any) -> dict[str, t.Any]:
        job = _own_job(app, client, job_id)
        return {
            "id": job.id,
            "queue": jobs.short_name(job.origin),
            "function": job.func_name,
            "call": job.get_call_string(),
            "status": _status(job),
            "enqueued_at": job.enqueued_at,
            "started_at": job.started_at,
            "ended_at": job.ended_at,
            "request_id": (job.meta or {}).get("request_id"),
            "error": _error_of(job) or None,
        }

    return connection.run(read)


def _status(job: Job) -> str:
    """The job's status as RQ stores it (``queued``, ``failed``...)."""
    status = job.get_status()
    return str(getattr(status, "value", status))


def _own_job(app: Flask, client: t.Any, job_id: str) -> Job:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    jobs, _connection = _jobs_of(app)
    try:
        job = Job.fetch(job_id, connection=client)
    except NoSuchJobError:
        raise LookupError(f"no job {job_id!r} (it may have expired)") from None
    if not job.origin.startswith(f"{jobs.namespace}:"):
        raise LookupError(f"job {job_id} belongs to another app's queues ({job.origin})")
    return job
