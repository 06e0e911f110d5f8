"""``flask stack worker`` as a process: shutdown, periodic jobs, logs, Sentinel, burst.

Each worker is a real ``flask --app reliability.jobsapp:create_app stack worker``
process in the ``production`` profile (JSON logs), in its own process group,
started by the test and killed (its work horses too) when the test ends. The
jobs of :mod:`reliability.jobsapp` record in Redis which worker started and
finished them; the test enqueues them from an app of its own on the same
Redis and namespace. Each test has a Redis of its own (a standalone server,
or a Sentinel setup), so nothing is left on the shared one.

Every wait is for an event, with a generous deadline; nothing here asserts
how long anything took.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
from rq import Queue, Worker
from rq.job import Job, JobStatus

from flaskstack.jobs import JobsUnavailable
from flaskstack.redis import get_redis
from flaskstack.testing import dispose_app
from reliability import jobsapp
from reliability.stackrun import (
    REPOSITORY,
    StackProcessError,
    _die_with_parent,
    _end,
    production_environment,
    wait_for,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    import redis
    from conftest import PostgresDatabases
    from flask import Flask
    from redis_servers import RedisServer, SentinelSetup
    from rq.worker import BaseWorker

APP = "reliability.jobsapp:create_app"
#: Upper bound of every wait for a worker to start, run a job or stop: generous, for a
#: loaded 2-core machine.
DEADLINE = 60.0
#: The period of the periodic job, in seconds.
PERIOD = 2


@dataclasses.dataclass
class WorkerProcess:
    """One ``flask stack worker`` process, its stdout and stderr in files of their own."""

    name: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """What it wrote so far, stdout then stderr (for failure messages)."""
        parts = []
        for label, path in (("stdout", self.stdout), ("stderr", self.stderr)):
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {self.name} {label} ({path}) ---\n{text[-8000:]}")
        return "\n".join(parts)

    def lines(self) -> list[str]:
        """Every line it wrote to stdout and stderr."""
        return [
            line
            for path in (self.stdout, self.stderr)
            for line in path.read_text(errors="replace").splitlines()
        ]

    def signal(self, signum: int, to: str = "worker") -> None:
        """Send ``signum`` to the worker (``to="worker"``), to its process group
        (``"process-group"``: ``kill -TERM -<pgid>``), or to each of its processes
        (``"every-process"``: systemd's default ``KillMode=control-group``).

        RQ runs each job in a work horse that leads a process group of its own.
        """
        if to == "process-group":
            os.killpg(self.pid, signum)
            return
        if to == "every-process":
            for pid in _children(self.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
        os.kill(self.pid, signum)

    def wait(self, timeout: float = DEADLINE) -> int:
        """Wait until it exits by itself; return its exit status."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        # Where it hangs: faulthandler prints every thread's stack on SIGABRT.
        for pid in [*_children(self.pid), self.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        raise StackProcessError(
            f"worker {self.name} did not exit within {timeout:.0f} s\n{self.output()}"
        )


class JobsRun:
    """Workers, and an app in the test process, on one Redis and one namespace."""

    def __init__(self, directory: Path, redis_url: str, database_url: str) -> None:
        self.directory = directory
        self.redis_url = redis_url
        self.namespace = f"jobs-{secrets.token_hex(5)}"
        self.env = production_environment(
            database_url=database_url,
            redis_url=redis_url,
            namespace=self.namespace,
            extra={
                "FLASKSTACK_JOBS": "true",
                "PYTHONFAULTHANDLER": "1",
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPOSITORY / "tests"), os.environ.get("PYTHONPATH")])
                ),
            },
        )
        self.workers: list[WorkerProcess] = []
        self._app: Flask | None = None

    # -- processes -----------------------------------------------------------------

    def start_worker(
        self, name: str, *args: str, env: Mapping[str, str | None] | None = None
    ) -> WorkerProcess:
        """Start ``flask stack worker --name <name> <args>`` with the run's environment."""
        full_env = dict(self.env)
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        stdout = self.directory / f"worker-{name}.out"
        stderr = self.directory / f"worker-{name}.err"
        command = [sys.executable, "-m", "flask", "--app", APP, "stack", "worker"]
        command += ["--name", f"{self.namespace}-{name}", *args]
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                command,
                cwd=self.directory,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        worker = WorkerProcess(name, process, stdout, stderr)
        self.workers.append(worker)
        return worker

    def registered(self, *workers: WorkerProcess) -> bool:
        """Whether RQ lists every one of ``workers`` as serving the default queue."""
        names = {found.name for found in Worker.all(queue=self.queue())}
        return {f"{self.namespace}-{w.name}" for w in workers} <= names

    def worker_record(self, worker: WorkerProcess) -> BaseWorker:
        """RQ's record of ``worker`` (name, state, shutdown requested...)."""
        found = Worker.find_by_key(
            f"{Worker.redis_worker_namespace_prefix}{self.namespace}-{worker.name}",
            connection=self.client,
        )
        if found is None:
            raise LookupError(f"worker {worker.name} is not registered")
        return found

    def close(self) -> None:
        """Kill every worker, and any work horse left behind, then the test app's pool."""
        horses = set()
        for worker in self.workers:
            horses |= _children(worker.pid)
        with contextlib.suppress(Exception):
            horses |= {int(pid) for pid in self.client.lrange(self.key("rec", "horses"), 0, -1)}
        for pid in horses:
            _kill_horse(pid)
        for worker in self.workers:
            _end(worker.process, signal.SIGKILL, DEADLINE)
        if self._app is not None:
            dispose_app(self._app)

    # -- the test's side --------------------------------------------------------------

    @property
    def app(self) -> Flask:
        """The jobs app in the test process, on the workers' Redis and namespace."""
        if self._app is None:
            self._app = jobsapp.create_app(
                {
                    "FLASKSTACK_JOBS": True,
                    "FLASKSTACK_REDIS_URL": self.redis_url,
                    "FLASKSTACK_NAMESPACE": self.namespace,
                    "SECRET_KEY": secrets.token_urlsafe(32),
                    "SQLALCHEMY_DATABASE_URI": "sqlite://",
                    "FLASKSTACK_LOG_FORMAT": "none",
                    "WTF_CSRF_ENABLED": False,
                }
            )
        return self._app

    @property
    def client(self) -> redis.Redis:
        """The test app's Redis client (a Sentinel-managed one on a Sentinel URL)."""
        return t.cast("redis.Redis", get_redis(self.app).client)

    def key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    def queue(self, name: str = "default") -> Queue:
        """RQ's view of the app's queue ``name`` (RQ names it ``<namespace>:<name>``)."""
        return Queue(f"{self.namespace}:{name}", connection=self.client)

    def enqueue(self, task: t.Any, *args: t.Any) -> Job:
        """``task.enqueue(*args)`` in the test app."""
        with self.app.app_context():
            return t.cast("Job", task.enqueue(*args))

    def enqueue_in(self, delay: dt.timedelta, task: t.Any, *args: t.Any) -> Job:
        """``task.enqueue_in(delay, *args)`` in the test app."""
        with self.app.app_context():
            return t.cast("Job", task.enqueue_in(delay, *args))

    def records(self, name: str) -> list[tuple[int, str]]:
        """``(worker pid, token)`` pairs the jobs pushed to ``<ns>:rec:<name>``."""
        pairs = []
        for raw in self.client.lrange(self.key("rec", name), 0, -1):
            text = raw.decode() if isinstance(raw, bytes) else raw
            pid, _, token = text.partition(" ")
            pairs.append((int(pid), token))
        return pairs

    def release(self, token: str) -> None:
        """Let :func:`~reliability.jobsapp.blocking` with ``token`` finish."""
        self.client.set(self.key("release", token), b"1")

    def status(self, job: Job) -> JobStatus:
        """The job's status in Redis now."""
        return JobStatus(Job.fetch(job.id, connection=self.client).get_status())


def _wait(condition: Callable[[], bool], what: str, *workers: WorkerProcess) -> None:
    """:func:`wait_for` with :data:`DEADLINE`; on timeout, the failure shows the workers' output."""
    try:
        wait_for(condition, what, DEADLINE)
    except StackProcessError as exc:
        pytest.fail("\n".join([str(exc), *(worker.output() for worker in workers)]))


def _children(pid: int) -> set[int]:
    """The live children of ``pid`` (a worker's work horse and scheduler)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill_horse(pid: int) -> None:
    """SIGKILL a work horse (it leads a process group of its own) if it is still ours."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if APP.encode() in command:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def database_url(postgres: PostgresDatabases) -> str:
    """A PostgreSQL database for the production profile (the workers never write to it)."""
    return postgres.create("jobs")


@pytest.fixture
def make_run(tmp_path: Path, database_url: str) -> Iterator[Callable[[str], JobsRun]]:
    """Make a :class:`JobsRun` on a Redis URL; its workers are killed after the test."""
    runs: list[JobsRun] = []

    def make(redis_url: str) -> JobsRun:
        directory = tmp_path / f"run-{len(runs)}"
        directory.mkdir()
        runs.append(JobsRun(directory, redis_url, database_url))
        return runs[-1]

    try:
        yield make
    finally:
        for run in runs:
            run.close()


@pytest.fixture
def run(make_run: Callable[[str], JobsRun], fresh_redis_server: RedisServer) -> JobsRun:
    """A :class:`JobsRun` on a standalone Redis of the test's own."""
    return make_run(fresh_redis_server.url)


# -- shutdown --------------------------------------------------------------------------


@pytest.mark.parametrize("to", ["worker", "process-group", "every-process"])
def test_sigterm_requeues_a_job_longer_than_the_shutdown_timeout(run: JobsRun, to: str) -> None:
    shutdown = {"FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT": "1"}
    a = run.start_worker("a", env=shutdown)
    long_job = run.enqueue(jobsapp.blocking, "long")
    behind = run.enqueue(jobsapp.record, "behind")
    _wait(lambda: run.records("started") == [(a.pid, "long")], "worker a to start the job", a)
    [horse] = [int(pid) for pid in run.client.lrange(run.key("rec", "horses"), 0, -1)]

    a.signal(signal.SIGTERM, to)

    assert a.wait() == 0, a.output()
    # The job was stopped with the worker, not left running...
    assert not _alive(horse)
    # ...and is back at the front of its queue, not failed.
    assert run.status(long_job) == JobStatus.QUEUED, a.output()
    assert run.queue().job_ids == [long_job.id, behind.id]
    assert run.queue().failed_job_registry.get_job_ids() == []
    assert run.records("finished") == []

    b = run.start_worker("b")
    _wait(
        lambda: run.records("started") == [(a.pid, "long"), (b.pid, "long")],
        "worker b to start the requeued job",
        b,
    )
    run.release("long")
    _wait(lambda: run.records("ran") == [(b.pid, "behind")], "worker b to run the next job", b)

    assert run.records("finished") == [(b.pid, "long")], b.output()
    assert run.status(long_job) == JobStatus.FINISHED
    assert run.queue().failed_job_registry.get_job_ids() == []


def test_sigterm_lets_a_job_finish_within_the_shutdown_timeout(run: JobsRun) -> None:
    a = run.start_worker("a", env={"FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT": str(DEADLINE)})
    job = run.enqueue(jobsapp.blocking, "short")
    _wait(lambda: run.records("started") == [(a.pid, "short")], "worker a to start the job", a)

    a.signal(signal.SIGTERM)
    _wait(
        lambda: run.worker_record(a).shutdown_requested_date is not None,
        "worker a to take the shutdown request",
        a,
    )
    assert a.process.poll() is None, a.output()  # it waits for the job
    run.release("short")

    assert a.wait() == 0, a.output()
    assert run.records("finished") == [(a.pid, "short")], a.output()
    assert run.records("started") == [(a.pid, "short")]
    assert run.status(job) == JobStatus.FINISHED
    assert run.queue().job_ids == []
    assert run.queue().failed_job_registry.get_job_ids() == []


# -- periodic jobs -----------------------------------------------------------------------


def test_two_workers_run_each_period_of_a_periodic_job_once(run: JobsRun) -> None:
    periodic = {jobsapp.PERIODIC_ENV: str(PERIOD)}
    a = run.start_worker("a", env=periodic)
    b = run.start_worker("b", env=periodic)
    _wait(lambda: run.registered(a, b), "both workers to start", a, b)
    both_up = time.time()

    def ticks() -> list[tuple[int, str, float]]:
        found = []
        for pid, rest in run.records("ticks"):
            job_id, _, enqueued_at = rest.partition(" ")
            found.append((pid, job_id, float(enqueued_at)))
        return found

    def period(enqueued_at: float) -> int:
        # A period's run is enqueued as soon as a worker sees the period begin.
        return int(enqueued_at // PERIOD) * PERIOD

    _wait(
        lambda: len({period(e) for _, _, e in ticks() if e >= both_up}) >= 4,
        "four periods' runs with both workers up",
        a,
        b,
    )
    for worker in (a, b):
        worker.signal(signal.SIGTERM)
    for worker in (a, b):
        assert worker.wait() == 0, worker.output()

    runs = ticks()
    per_period = collections.Counter(period(e) for _, _, e in runs)
    assert [p for p, n in per_period.items() if n > 1] == [], runs
    assert len({job_id for _, job_id, _ in runs}) == len(runs)
    assert {pid for pid, _, _ in runs} <= {a.pid, b.pid}
    # Every period from the first that began with both workers up has its run.
    first = min(p for p in per_period if p >= both_up)
    expected = set(range(first, max(per_period) + PERIOD, PERIOD))
    assert expected <= set(per_period), (sorted(expected - set(per_period)), runs)


# -- logs --------------------------------------------------------------------------------


def test_worker_logs_are_json_with_one_line_per_job(run: JobsRun) -> None:
    client = run.app.test_client()
    ok_request, failing_request = (
        f"req-ok-{secrets.token_hex(4)}",
        f"req-fail-{secrets.token_hex(4)}",
    )
    ok = client.post("/enqueue/record/ok", headers={"X-Request-ID": ok_request})
    failing = client.post("/enqueue/fail/boom", headers={"X-Request-ID": failing_request})
    assert ok.status_code == failing.status_code == 200, (ok.text, failing.text)
    ok_id, failing_id = ok.json["id"], failing.json["id"]  # type: ignore[index]

    worker = run.start_worker("logs", "--burst")
    assert worker.wait() == 0, worker.output()

    lines = worker.lines()
    assert lines, "the worker wrote nothing"
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\n{worker.output()}")
    assert all(isinstance(record, dict) for record in records), lines
    job_lines = {}
    for record in records:
        if "job" in record:
            job_id = record["job"]["id"]
            assert job_id not in job_lines, f"two lines for job {job_id}:\n{worker.output()}"
            job_lines[job_id] = record
    assert set(job_lines) == {ok_id, failing_id}, worker.output()
    assert job_lines[ok_id]["job"]["status"] == "finished"
    assert job_lines[ok_id]["request_id"] == ok_request
    assert job_lines[failing_id]["job"]["status"] == "failed"
    assert job_lines[failing_id]["request_id"] == failing_request
    assert "fails on purpose" in job_lines[failing_id]["job"]["error"]


# -- Sentinel ------------------------------------------------------------------------------


def _waits_for_jobs(server: RedisServer) -> bool:
    """Whether a client of ``server`` is blocked (the worker waiting on its queues)."""
    clients = str(server.execute("CLIENT", "LIST")).splitlines()
    return any(
        "b" in dict(f.split("=", 1) for f in c.split() if "=" in f)["flags"] for c in clients
    )


def _enqueue_when_reachable(
    run: JobsRun, enqueue: Callable[[], Job], *workers: WorkerProcess
) -> Job:
    """Enqueue, retrying while the test app's client finds the new master.

    Its circuit breaker refuses calls for a moment after a failure, as in any
    web process; a user would try again.
    """
    made: list[Job] = []

    def attempt() -> bool:
        try:
            with run.app.app_context():
                made.append(enqueue())
        except JobsUnavailable:
            return False
        return True

    _wait(attempt, "an enqueue on the new master", *workers)
    return made[0]


def test_idle_worker_on_sentinel_keeps_running_jobs_after_a_failover(
    make_run: Callable[[str], JobsRun], fresh_redis_sentinel: SentinelSetup
) -> None:
    run = make_run(fresh_redis_sentinel.url)
    worker = run.start_worker("sentinel")
    run.enqueue(jobsapp.record, "before")
    _wait(lambda: run.records("ran") == [(worker.pid, "before")], "the first job", worker)
    _wait(
        lambda: _waits_for_jobs(fresh_redis_sentinel.master),
        "the worker to block on its queues",
        worker,
    )
    # What the master acknowledged has reached the replica before the master dies.
    assert fresh_redis_sentinel.master.execute("WAIT", "1", "5000") == 1

    fresh_redis_sentinel.failover(restart_old_master=False)

    _enqueue_when_reachable(run, lambda: jobsapp.record.enqueue("after"), worker)
    _wait(
        lambda: (worker.pid, "after") in run.records("ran"),
        "the same worker to run a job enqueued after the failover",
        worker,
    )
    assert worker.process.poll() is None, worker.output()
    assert run.records("ran") == [(worker.pid, "before"), (worker.pid, "after")]


def test_worker_on_sentinel_survives_a_failover_as_a_job_ends(
    make_run: Callable[[str], JobsRun], fresh_redis_sentinel: SentinelSetup, tmp_path: Path
) -> None:
    run = make_run(fresh_redis_sentinel.url)
    worker = run.start_worker("sentinel")
    release = tmp_path / "release"
    run.enqueue(jobsapp.wait_for_file, str(release))
    _wait(lambda: run.records("started") == [(worker.pid, str(release))], "the job", worker)
    assert fresh_redis_sentinel.master.execute("WAIT", "1", "5000") == 1

    # The master dies, and the job ends before the sentinels promote the replica.
    fresh_redis_sentinel.master.kill()
    release.touch()
    fresh_redis_sentinel.failover(restart_old_master=False)

    _enqueue_when_reachable(run, lambda: jobsapp.record.enqueue("after"), worker)
    _wait(
        lambda: worker.process.poll() is not None or (worker.pid, "after") in run.records("ran"),
        "the worker to run a job enqueued after the failover",
        worker,
    )
    assert worker.process.poll() is None, worker.output()
    assert run.records("ran") == [(worker.pid, "after")]


def test_worker_on_sentinel_runs_a_delayed_job(
    make_run: Callable[[str], JobsRun], redis_sentinel: SentinelSetup
) -> None:
    run = make_run(redis_sentinel.url)
    worker = run.start_worker("delayed")
    run.enqueue_in(dt.timedelta(seconds=1), jobsapp.record, "delayed")

    _wait(
        lambda: run.records("ran") == [(worker.pid, "delayed")],
        "the worker to run the delayed job",
        worker,
    )


def test_worker_on_sentinel_runs_a_delayed_job_enqueued_after_a_failover(
    make_run: Callable[[str], JobsRun], fresh_redis_sentinel: SentinelSetup
) -> None:
    run = make_run(fresh_redis_sentinel.url)
    worker = run.start_worker("delayed")
    run.enqueue_in(dt.timedelta(seconds=1), jobsapp.record, "before")
    _wait(lambda: run.records("ran") == [(worker.pid, "before")], "the first delayed job", worker)
    _wait(
        lambda: _waits_for_jobs(fresh_redis_sentinel.master),
        "the worker to block on its queues",
        worker,
    )
    assert fresh_redis_sentinel.master.execute("WAIT", "1", "5000") == 1

    fresh_redis_sentinel.failover(restart_old_master=False)

    _enqueue_when_reachable(
        run, lambda: jobsapp.record.enqueue_in(dt.timedelta(seconds=1), "after"), worker
    )
    _wait(
        lambda: (worker.pid, "after") in run.records("ran"),
        "the same worker to run a delayed job enqueued after the failover",
        worker,
    )
    assert worker.process.poll() is None, worker.output()


# -- burst, and jobs off -----------------------------------------------------------------


def test_burst_worker_runs_the_queued_jobs_and_exits(run: JobsRun) -> None:
    jobs = [run.enqueue(jobsapp.record, token) for token in ("one", "two")]
    worker = run.start_worker("burst", "--burst")

    assert worker.wait() == 0, worker.output()
    assert run.records("ran") == [(worker.pid, "one"), (worker.pid, "two")]
    assert [run.status(job) for job in jobs] == [JobStatus.FINISHED] * 2
    assert run.queue().job_ids == []


def test_worker_with_jobs_off_exits_with_a_message_naming_the_setting(run: JobsRun) -> None:
    worker = run.start_worker("off", env={"FLASKSTACK_JOBS": None})

    status = worker.wait()
    assert status != 0, worker.output()
    assert "FLASKSTACK_JOBS" in worker.output()
