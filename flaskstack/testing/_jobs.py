"""The jobs fixtures: what a test enqueued, and a real worker to run it.

``enqueued_jobs`` reads the app's queues and scheduled registries in Redis;
``jobs_worker`` runs RQ's own worker in burst mode, in the test's process
(RQ's ``SimpleWorker``, which does not fork), on the app the test uses: the
jobs see the test's database transaction, its Redis namespace and its
settings, and whatever they commit is rolled back with the test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from flask import Flask

    from flaskstack.redis import RedisConnection

__all__ = ["EnqueuedJob", "EnqueuedJobs", "JobsWorker", "RanJob", "delete_job_keys"]


def _name_of(func: object) -> str:
    if isinstance(func, str):
        return func
    target = getattr(func, "func", func)  # a flaskstack Task wraps its function
    return f"{target.__module__}.{target.__qualname__}"  # type: ignore[attr-defined]


@dataclasses.dataclass(frozen=True)
class EnqueuedJob:
    """A job waiting in one of the app's queues (or scheduled for later).

    :ivar scheduled_for: When a delayed job becomes due; ``None`` when it is queued.
    """

    id: str
    function: str
    args: tuple[t.Any, ...]
    kwargs: dict[str, t.Any]
    queue: str
    scheduled_for: dt.datetime | None


class EnqueuedJobs:
    """The jobs the app has queued or scheduled now (the ``enqueued_jobs`` fixture).

    Each read goes to Redis: iterate again after the code under test ran::

        def test_signup_sends_welcome(client, enqueued_jobs):
            client.post("/signup", data=...)
            (job,) = enqueued_jobs.of(send_welcome)
            assert job.args == (42,)
    """

    def __init__(self, app: Flask) -> None:
        self.app = app

    def all(self) -> list[EnqueuedJob]:
        """Every queued and scheduled job, queue by queue, in queue order."""
        from rq.job import Job

        from flaskstack._jobs_ops import queue_names
        from flaskstack.jobs import _jobs_of, _queue, _rq_client

        _jobs, connection = _jobs_of(self.app)
        found: list[EnqueuedJob] = []
        client = _rq_client(connection)
        for name in queue_names(self.app):
            queue = _queue(self.app, name, client)
            registry = queue.scheduled_job_registry
            waiting = [(job_id, None) for job_id in queue.get_job_ids()]
            for job_id in registry.get_job_ids():
                waiting.append((job_id, registry.get_scheduled_time(job_id)))
            fetched = Job.fetch_many([w[0] for w in waiting], connection=client)
            for (_job_id, when), job in zip(waiting, fetched, strict=True):
                if job is None:
                    continue
                found.append(
                    EnqueuedJob(
                        job.id,
                        job.func_name or "?",
                        tuple(job.args),
                        dict(job.kwargs),
                        name,
                        when,
                    )
                )
        return found

    def of(self, func: object) -> list[EnqueuedJob]:
        """The jobs of ``func``: a :func:`~flaskstack.jobs.job`, a function or its dotted name."""
        name = _name_of(func)
        return [job for job in self.all() if job.function == name]

    def __iter__(self) -> Iterator[EnqueuedJob]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self.all())

    def __repr__(self) -> str:
        return f"EnqueuedJobs({self.all()!r})"


@dataclasses.dataclass(frozen=True)
class RanJob:
    """A job the ``jobs_worker`` fixture ran.

    :ivar status: ``"finished"`` or ``"failed"`` (or ``"scheduled"``: failed, to be retried).
    :ivar result: What the function returned (finished jobs).
    :ivar error: The traceback (failed jobs).
    """

    id: str
    function: str
    status: str
    result: t.Any
    error: str | None


class JobsWorker:
    """Runs the app's jobs in a real RQ worker (the ``jobs_worker`` fixture)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def run(self, queues: t.Sequence[str] = (), *, raise_errors: bool = True) -> list[RanJob]:
        """Run every job queued now, and every scheduled job already due, then return.

        Jobs run one after the other in this process, inside app contexts of
        the test's app; jobs they enqueue run too.

        :param queues: The queues to serve (default: :setting:`FLASKSTACK_JOBS_QUEUES`
            and any other queue of the app that holds jobs).
        :param raise_errors: Raise :exc:`AssertionError` with the traceback when a job failed.
        :returns: The jobs that ran, in order.
        """
        from rq.job import Job

        from flaskstack._jobs_ops import queue_names
        from flaskstack._jobs_worker import build_worker

        names = list(queues) or queue_names(self.app)
        worker = build_worker(self.app, names, simple=True)
        try:
            worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
            runs: list[tuple[str, str | None]] = list(
                getattr(worker.job_class, "flaskstack_ran", [])
            )
            fetched = Job.fetch_many([job_id for job_id, _ in runs], connection=worker.connection)
            ran = [
                self._ran(job_id, error, job)
                for (job_id, error), job in zip(runs, fetched, strict=True)
            ]
        finally:
            worker.connection.close()
        failed = [job for job in ran if job.status != "finished"]
        if raise_errors and failed:
            details = "\n\n".join(f"{job.function} ({job.id}):\n{job.error}" for job in failed)
            raise AssertionError(f"{len(failed)} job(s) failed:\n{details}")
        return ran

    @staticmethod
    def _ran(job_id: str, error: str | None, job: t.Any) -> RanJob:
        if job is None:  # finished with a result TTL of 0: gone already
            return RanJob(job_id, "?", "finished" if error is None else "failed", None, error)
        from flaskstack._jobs_ops import _status

        status = _status(job)
        result = job.return_value() if error is None and status == "finished" else None
        return RanJob(job.id, job.func_name or "?", status, result, error)


def delete_job_keys(connection: RedisConnection) -> None:
    """Delete the RQ keys of the namespace's queues and their jobs (after a test).

    RQ's keys are not under the namespace: they are found through the
    queues' names, which are.
    """
    client = connection.client
    prefix = f"{connection.namespace}:"
    keys: set[bytes | str] = set()
    for key in client.scan_iter(match=f"rq:*:{prefix}*", count=1000):
        keys.add(key)
    job_ids: set[str] = set()
    for key in keys:
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        members: list[t.Any] = []
        if kind == "list":
            members = client.lrange(key, 0, -1)
        elif kind == "zset":
            members = client.zrange(key, 0, -1)
        for member in members:
            text = member.decode() if isinstance(member, bytes) else str(member)
            job_ids.add(text.partition(":")[0])
    for job_id in job_ids:
        keys.update(
            (
                f"rq:job:{job_id}",
                f"rq:job:{job_id}:dependents",
                f"rq:job:{job_id}:dependencies",
                f"rq:results:{job_id}",
                f"rq:executions:{job_id}",
            )
        )
    if keys:
        client.delete(*keys)
    queues = [q for q in client.smembers("rq:queues") if _text(q).startswith(f"rq:queue:{prefix}")]
    if queues:
        client.srem("rq:queues", *queues)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
