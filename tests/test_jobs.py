"""Background jobs (``flaskstack.jobs``) on a real Redis and real databases, run by RQ workers.

Every job is a function of ``tests/jobs_sample.py`` that records what it saw
into a Redis list of the test's namespace; a test enqueues jobs the way an app
does (from a view, from an app context like a CLI command's), runs RQ's
burst worker in this process (``build_worker(app, simple=True)``) or
``flask stack worker --burst`` in a subprocess, and asserts what a user would
see: what ran and with which context, what is in the queues and registries,
responses, log lines, command output.

RQ keys are not under the app's namespace (``rq:queue:<ns>:default``,
``rq:job:<id>``, ...): the ``jobs_app`` fixture deletes those of the
namespaces it made after each test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import typing as t
from pathlib import Path

import jobs_sample
import pytest
import redis
import sqlalchemy as sa
from conftest import SHARED_REDIS_URL
from flask import Flask, jsonify
from loopback import free_port
from rq.job import Job
from sqlalchemy.orm import Mapped, mapped_column

import flaskstack
from flaskstack import db, jobs
from flaskstack._jobs_worker import _PeriodicScheduler, build_worker
from flaskstack.jobs import JobsUnavailable

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import AppFactory
    from redis_servers import RedisServer

TESTS = Path(__file__).resolve().parent
DEADLINE = 30.0
"""Seconds a test waits, at most, for something it expects to happen."""


class JobsNote(db.Model):  # type: ignore[name-defined,misc]
    """A row a request writes and a job reads."""

    __tablename__ = "jobs_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(sa.String(100))


# -- fixtures --------------------------------------------------------------------------


@dataclasses.dataclass
class JobsApp:
    """An app with jobs on, in its own namespace of the shared Redis, and ways to look inside."""

    app: Flask
    ns: str
    redis: t.Any  # a redis.Redis on the shared server (its replies are typed as unions)

    def key(self, name: str = "ran") -> str:
        """A key of the test's namespace for jobs to record into."""
        return f"{self.ns}:{name}"

    def recorded(self, name: str = "ran") -> list[t.Any]:
        return jobs_sample.recorded(self.redis, self.key(name))

    def queued(self, queue: str = "default") -> list[str]:
        """Ids of the jobs waiting in ``queue``, in order."""
        return [item.decode() for item in self.redis.lrange(f"rq:queue:{self.ns}:{queue}", 0, -1)]

    def registry(self, name: str, queue: str = "default") -> list[str]:
        """Ids in RQ's ``scheduled``, ``failed`` or ``finished`` registry of ``queue``."""
        members = self.redis.zrange(f"rq:{name}:{self.ns}:{queue}", 0, -1)
        return [item.decode() for item in members]

    def job(self, job_id: str) -> Job:
        return Job.fetch(job_id, connection=self.redis)

    def exists(self, job_id: str) -> bool:
        return bool(Job.exists(job_id, connection=self.redis))

    def work(self, queues: t.Sequence[str] = (), *, scheduler: bool = True) -> bool:
        """Run the queued jobs (and the scheduled ones that are due) in a burst worker here."""
        worker = build_worker(self.app, queues, simple=True)
        try:
            return bool(worker.work(burst=True, with_scheduler=scheduler))
        finally:
            worker.connection.close()

    def work_until(self, done: t.Callable[[], bool], what: str) -> None:
        """Run burst workers until ``done()`` (a scheduled job came due), within the deadline."""
        deadline = time.monotonic() + DEADLINE
        while True:
            self.work()
            if done():
                return
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def create_notes_table(self) -> None:
        with self.app.app_context():
            JobsNote.__table__.create(db.engine, checkfirst=True)


def _delete_rq_keys(client: t.Any, namespaces: t.Sequence[str]) -> None:
    """Delete RQ's keys of the queues in ``namespaces``: queues, registries, jobs, workers."""
    if not namespaces:
        return
    origins = tuple(f"{ns}:".encode() for ns in namespaces)

    def field(key: bytes, name: str) -> bytes:
        # Other runs' keys come and go, and not every key is a hash.
        try:
            value: bytes | None = client.hget(key, name)
        except redis.ResponseError:
            return b""
        return value or b""

    doomed: list[bytes] = []
    for key in client.scan_iter(match="rq:*", count=1000):
        if any(b":" + origin in key for origin in origins):
            doomed.append(key)  # rq:queue:<ns>:q, rq:failed:<ns>:q, rq:workers:<ns>:q, ...
        elif key.startswith(b"rq:job:") and key.count(b":") == 2:
            if field(key, "origin").startswith(origins):
                job_id = key.removeprefix(b"rq:job:")
                doomed += [key, b"rq:results:" + job_id, b"rq:executions:" + job_id]
                doomed += list(client.scan_iter(match=b"rq:execution:" + job_id + b":*"))
        elif (
            key.startswith(b"rq:worker:")
            and key.count(b":") == 2
            and any(origin in field(key, "queues") for origin in origins)
        ):
            doomed.append(key)
            client.srem("rq:workers", key)
    if doomed:
        client.delete(*doomed)


@pytest.fixture
def shared_redis() -> Iterator[redis.Redis]:
    with redis.Redis.from_url(SHARED_REDIS_URL) as client:
        yield client


@pytest.fixture
def jobs_app(
    make_app: AppFactory, namespace: t.Callable[[], str], shared_redis: redis.Redis
) -> Iterator[t.Callable[..., JobsApp]]:
    """``jobs_app(**settings)``: an app with jobs on in a new namespace of the shared Redis."""
    made: list[str] = []

    def factory(name: str = "testapp", **settings: t.Any) -> JobsApp:
        ns = namespace()
        made.append(ns)
        config = {
            "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
            "FLASKSTACK_JOBS": True,
            "FLASKSTACK_NAMESPACE": ns,
            "PROPAGATE_EXCEPTIONS": False,
            "JOBS_SAMPLE_GREETING": "hello from the app",
            **settings,
        }
        return JobsApp(make_app(config, name=name), ns, shared_redis)

    yield factory
    _delete_rq_keys(shared_redis, made)


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest) -> dict[str, t.Any]:
    """The settings of an app on a fresh PostgreSQL database, or on SQLite (the default)."""
    if request.param == "postgresql":
        return {"SQLALCHEMY_DATABASE_URI": request.getfixturevalue("postgres_url")}
    return {}


@pytest.fixture
def periodic_registry() -> Iterator[None]:
    """Forget the periodic jobs a test declares (the declarations are process-wide)."""
    before = dict(jobs._PERIODIC)
    yield
    jobs._PERIODIC.clear()
    jobs._PERIODIC.update(before)


def job_lines(text: str, job_id: str) -> list[str]:
    """The log lines of ``text`` that report how job ``job_id`` ended (flaskstack's line).

    RQ's own lines, which mention the job too, go through the same handler:
    flaskstack's is the one whose message starts with the job.
    """
    return [line for line in text.splitlines() if re.search(rf"\] \S+: job {job_id} ", line)]


# -- enqueue, and what a job sees --------------------------------------------------------


def test_a_job_enqueued_by_a_request_runs_in_the_app_context(
    jobs_app: t.Callable[..., JobsApp], postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = jobs_app(SQLALCHEMY_DATABASE_URI=postgres_url, JOBS_SAMPLE_GREETING="bonjour")
    stack.create_notes_table()

    @stack.app.get("/notes/<body>")
    def add_note(body: str) -> str:
        db.session.add(JobsNote(body=body))
        job = jobs.enqueue(jobs_sample.record_context, stack.key())
        db.session.commit()
        return job.id

    response = stack.app.test_client().get("/notes/first", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 200
    job_id = response.text
    assert stack.queued() == [job_id]
    assert stack.recorded() == []  # not run by the request

    capsys.readouterr()
    assert stack.work() is True
    assert stack.recorded() == [{"greeting": "bonjour", "request_id": "req-42", "notes": ["first"]}]
    assert stack.queued() == []
    assert stack.registry("finished") == [job_id]
    (line,) = job_lines(capsys.readouterr().err, job_id)
    assert "[req-42]" in line
    assert f"job {job_id} jobs_sample.record_context finished in " in line


def test_a_job_enqueued_outside_a_request_runs_too(
    jobs_app: t.Callable[..., JobsApp], capsys: pytest.CaptureFixture[str]
) -> None:
    """A CLI command or a script enqueues from an app context, with no request."""
    stack = jobs_app()
    stack.create_notes_table()
    with stack.app.app_context():
        db.session.add(JobsNote(body="from a command"))
        db.session.commit()
        job = jobs.enqueue(jobs_sample.record_context, stack.key())
        declared = jobs_sample.send_to_mail_queue.enqueue(stack.key("mail"))

    assert job.meta["request_id"] == "-"
    assert stack.queued() == [job.id]
    assert stack.queued("mail") == [declared.id]
    capsys.readouterr()
    stack.work(["default", "mail"])
    assert stack.recorded() == [
        {"greeting": "hello from the app", "request_id": "-", "notes": ["from a command"]}
    ]
    assert stack.recorded("mail") == ["mail queue"]
    (line,) = job_lines(capsys.readouterr().err, job.id)
    assert "[-]" in line
    assert "finished" in line


def test_enqueue_needs_an_app_context() -> None:
    with pytest.raises(RuntimeError, match="application context"):
        jobs_sample.keep_a_minute.enqueue("nowhere")


def test_job_log_lines_are_json_in_production_format(
    jobs_app: t.Callable[..., JobsApp], capsys: pytest.CaptureFixture[str]
) -> None:
    stack = jobs_app(name="jobsjson", FLASKSTACK_LOG_FORMAT="json")

    @stack.app.get("/ok")
    def succeed() -> str:
        return jobs.enqueue(jobs_sample.record, stack.key(), "ok").id

    @stack.app.get("/bad")
    def fail() -> str:
        return jobs.enqueue(jobs_sample.explode, stack.key()).id

    client = stack.app.test_client()
    ok_id = client.get("/ok", headers={"X-Request-ID": "req-ok"}).text
    failed_id = client.get("/bad", headers={"X-Request-ID": "req-bad"}).text
    capsys.readouterr()
    stack.work()

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line[:1] == "{"]
    by_id = {line["job"]["id"]: line for line in lines if "job" in line}
    assert set(by_id) == {ok_id, failed_id}
    ok, failed = by_id[ok_id], by_id[failed_id]
    assert ok["request_id"] == "req-ok"
    assert ok["level"] == "INFO"
    assert ok["logger"] == "jobsjson"
    assert ok["job"]["function"] == "jobs_sample.record"
    assert ok["job"]["queue"] == "default"
    assert ok["job"]["status"] == "finished"
    assert isinstance(ok["job"]["duration_ms"], (int, float))
    assert "error" not in ok["job"]
    assert failed["request_id"] == "req-bad"
    assert failed["level"] == "WARNING"
    assert failed["job"]["status"] == "failed"
    assert failed["job"]["function"] == "jobs_sample.explode"
    assert failed["job"]["error"] == f"ValueError: exploded on purpose for {stack.key()}"


# -- options ---------------------------------------------------------------------------


def test_a_job_goes_to_its_queue_and_only_its_workers_run_it(
    jobs_app: t.Callable[..., JobsApp],
) -> None:
    stack = jobs_app(FLASKSTACK_JOBS_QUEUES=["default", "mail"])
    with stack.app.app_context():
        declared = jobs_sample.send_to_mail_queue.enqueue(stack.key())
        through_enqueue = jobs.enqueue(jobs_sample.send_to_mail_queue, stack.key())

    assert stack.queued("mail") == [declared.id, through_enqueue.id]
    assert stack.queued("default") == []
    assert stack.work(["default"]) is False
    assert stack.recorded() == []
    assert stack.queued("mail") == [declared.id, through_enqueue.id]

    assert stack.work(["mail"]) is True
    assert stack.recorded() == ["mail queue", "mail queue"]


def test_enqueue_in_waits_in_the_scheduled_registry_until_due(
    jobs_app: t.Callable[..., JobsApp],
) -> None:
    stack = jobs_app()
    with stack.app.app_context():
        job = jobs.enqueue_in(dt.timedelta(seconds=1), jobs_sample.record, stack.key(), "later")
    assert stack.queued() == []
    assert stack.registry("scheduled") == [job.id]

    stack.work_until(lambda: stack.recorded() != [], "the delayed job to run")
    assert stack.recorded() == ["later"]
    assert stack.registry("scheduled") == []
    stack.work()
    assert stack.recorded() == ["later"]  # once


def test_enqueue_at_reads_a_naive_time_as_utc(jobs_app: t.Callable[..., JobsApp]) -> None:
    stack = jobs_app()
    when = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=1)
    with stack.app.app_context():
        job = jobs_sample.keep_a_minute.enqueue_at(when, stack.key())
    (scheduled,) = stack.redis.zrange(f"rq:scheduled:{stack.ns}:default", 0, -1, withscores=True)
    assert scheduled[0].decode() == job.id
    expected = when.replace(tzinfo=dt.timezone.utc).timestamp()
    assert abs(scheduled[1] - expected) < 1.5

    stack.work_until(lambda: stack.recorded() != [], "the job scheduled at a time to run")
    assert stack.recorded() == ["kept"]


def test_a_failing_job_is_retried_after_its_backoff(jobs_app: t.Callable[..., JobsApp]) -> None:
    stack = jobs_app()
    with stack.app.app_context():
        job = jobs_sample.flaky.enqueue(stack.key())

    stack.work()
    assert stack.recorded() == []
    assert stack.redis.get(stack.key("ran:runs")) == b"1"
    assert stack.registry("scheduled") == [job.id]  # waits for its back-off
    assert stack.registry("failed") == []
    assert stack.job(job.id).get_status() == "scheduled"

    stack.work_until(lambda: stack.recorded() != [], "the retry to run")
    assert stack.recorded() == ["run 2"]
    assert stack.job(job.id).get_status() == "finished"
    assert stack.registry("failed") == []


def test_without_retries_a_failing_job_lands_in_failed(
    jobs_app: t.Callable[..., JobsApp],
) -> None:
    stack = jobs_app()
    with stack.app.app_context():
        job = jobs_sample.flaky_without_retries.enqueue(stack.key())
    stack.work()
    assert stack.registry("failed") == [job.id]
    assert stack.registry("scheduled") == []
    assert stack.job(job.id).get_status() == "failed"
    stack.work()
    assert stack.redis.get(stack.key("ran:runs")) == b"1"  # never run again


def test_a_job_over_its_timeout_fails_with_a_timeout_error(
    jobs_app: t.Callable[..., JobsApp], capsys: pytest.CaptureFixture[str]
) -> None:
    stack = jobs_app()
    with stack.app.app_context():
        job = jobs_sample.overrun.enqueue(stack.key())
    assert job.timeout == 1
    capsys.readouterr()
    stack.work()

    assert stack.registry("failed") == [job.id]
    assert stack.recorded() == []  # stopped before it woke up
    failed = stack.job(job.id)
    result = failed.latest_result()
    assert result is not None
    assert "JobTimeoutException" in str(result.exc_string)
    (line,) = job_lines(capsys.readouterr().err, job.id)
    assert "failed" in line
    assert "JobTimeoutException" in line


def test_the_app_timeout_setting_applies_to_jobs_without_their_own(
    jobs_app: t.Callable[..., JobsApp],
) -> None:
    stack = jobs_app(FLASKSTACK_JOBS_TIMEOUT=1)
    with stack.app.app_context():
        job = jobs.enqueue(jobs_sample.sleep_then_record, stack.key(), 10)
    stack.work()
    assert stack.registry("failed") == [job.id]
    assert stack.recorded() == []


def test_result_ttl_decides_how_long_a_finished_job_is_kept(
    jobs_app: t.Callable[..., JobsApp],
) -> None:
    stack = jobs_app(FLASKSTACK_JOBS_RESULT_TTL=120)
    with stack.app.app_context():
        forgotten = jobs_sample.forget_me.enqueue(stack.key())
        kept = jobs_sample.keep_a_minute.enqueue(stack.key())
        default = jobs.enqueue(jobs_sample.record, stack.key(), "default ttl")
    stack.work()

    assert stack.recorded() == ["forgotten", "kept", "default ttl"]
    assert not stack.exists(forgotten.id)
    assert 0 < stack.redis.ttl(f"rq:job:{kept.id}") <= 60
    assert 60 < stack.redis.ttl(f"rq:job:{default.id}") <= 120
    assert stack.job(kept.id).return_value() == "recorded kept"
    assert set(stack.registry("finished")) == {kept.id, default.id}


# -- with the database transaction -------------------------------------------------------


@pytest.fixture
def txn_app(jobs_app: t.Callable[..., JobsApp], database: dict[str, t.Any]) -> JobsApp:
    """An app on PostgreSQL or SQLite with views that enqueue inside their transaction."""
    stack = jobs_app(**database)
    stack.create_notes_table()
    app = stack.app

    def enqueue(body: str) -> str:
        return jobs.enqueue(jobs_sample.record, stack.key(), body).id

    @app.get("/commit/<body>")
    def commit(body: str) -> str:
        db.session.add(JobsNote(body=body))
        job_id = enqueue(body)
        db.session.commit()
        return job_id

    @app.get("/rollback/<body>")
    def rollback(body: str) -> str:
        db.session.add(JobsNote(body=body))
        db.session.flush()
        job_id = enqueue(body)
        db.session.rollback()
        return job_id

    @app.get("/explode/<body>")
    def explode(body: str) -> str:
        db.session.add(JobsNote(body=body))
        db.session.flush()
        app.config["JOBS_TEST_LAST_ID"] = enqueue(body)
        raise RuntimeError("the view failed after writing")

    @app.get("/enqueue-then-explode/<body>")
    def enqueue_then_explode(body: str) -> str:
        db.session.execute(sa.select(JobsNote.id)).all()  # a transaction is open
        app.config["JOBS_TEST_LAST_ID"] = enqueue(body)
        db.session.add(JobsNote(body=body))
        db.session.flush()
        raise RuntimeError("the view failed after writing")

    @app.get("/read/<body>")
    def read(body: str) -> str:
        db.session.execute(sa.select(JobsNote.id)).all()
        return enqueue(body)  # no commit: the transaction ends with the request

    @app.get("/enqueue-then-write/<body>")
    def enqueue_then_write(body: str) -> t.Any:
        db.session.execute(sa.select(JobsNote.id)).all()
        job_id = enqueue(body)
        before = stack.queued()
        db.session.add(JobsNote(body=body))
        db.session.commit()
        return jsonify(id=job_id, before_commit=before, after_commit=stack.queued())

    @app.get("/savepoint/<body>")
    def savepoint(body: str) -> str:
        db.session.add(JobsNote(body=body))
        db.session.flush()
        job_id = enqueue(body)
        with db.session.begin_nested():  # e.g. an insert that may hit a unique constraint
            db.session.add(JobsNote(body=f"{body} (nested)"))
        db.session.rollback()
        return job_id

    return stack


def notes(stack: JobsApp) -> list[str]:
    with stack.app.app_context():
        return list(db.session.execute(sa.select(JobsNote.body).order_by(JobsNote.body)).scalars())


def test_a_job_enqueued_in_a_request_that_commits_runs(txn_app: JobsApp) -> None:
    job_id = txn_app.app.test_client().get("/commit/saved").text
    assert notes(txn_app) == ["saved"]
    assert txn_app.queued() == [job_id]
    txn_app.work()
    assert txn_app.recorded() == ["saved"]


def test_a_job_enqueued_in_a_transaction_that_rolls_back_never_runs(txn_app: JobsApp) -> None:
    job_id = txn_app.app.test_client().get("/rollback/undone").text
    assert notes(txn_app) == []
    assert txn_app.queued() == []
    assert txn_app.registry("scheduled") == []
    assert not txn_app.exists(job_id)
    assert txn_app.work() is False
    assert txn_app.recorded() == []


@pytest.mark.parametrize("path", ["/explode/boom", "/enqueue-then-explode/boom"])
def test_a_job_enqueued_in_a_view_that_raises_after_writing_never_runs(
    txn_app: JobsApp, path: str
) -> None:
    response = txn_app.app.test_client().get(path)
    assert response.status_code == 500
    job_id = txn_app.app.config["JOBS_TEST_LAST_ID"]
    assert notes(txn_app) == []
    assert txn_app.queued() == []
    assert not txn_app.exists(job_id)
    assert txn_app.work() is False
    assert txn_app.recorded() == []


def test_a_job_enqueued_in_a_read_only_request_runs(txn_app: JobsApp) -> None:
    job_id = txn_app.app.test_client().get("/read/looked").text
    assert txn_app.queued() == [job_id]
    txn_app.work()
    assert txn_app.recorded() == ["looked"]


def test_a_job_enqueued_before_the_write_is_pushed_at_commit(txn_app: JobsApp) -> None:
    seen = txn_app.app.test_client().get("/enqueue-then-write/later").get_json()
    assert seen["before_commit"] == []  # held while the transaction was open
    assert seen["after_commit"] == [seen["id"]]
    txn_app.work()
    assert txn_app.recorded() == ["later"]
    assert notes(txn_app) == ["later"]


def test_a_released_savepoint_does_not_push_the_outer_transactions_jobs(
    txn_app: JobsApp,
) -> None:
    """Releasing a SAVEPOINT is no commit: the outer transaction may still roll back."""
    job_id = txn_app.app.test_client().get("/savepoint/outer").text
    assert notes(txn_app) == []
    assert txn_app.queued() == []
    assert not txn_app.exists(job_id)
    txn_app.work()
    assert txn_app.recorded() == []


# -- Redis down --------------------------------------------------------------------------


def test_enqueue_while_redis_is_down_is_a_clear_503_and_recovers(
    make_app: AppFactory, fresh_redis_server: RedisServer, namespace: t.Callable[[], str]
) -> None:
    app = make_app(
        {
            "FLASKSTACK_REDIS_URL": fresh_redis_server.url,
            "FLASKSTACK_JOBS": True,
            "FLASKSTACK_NAMESPACE": namespace(),
            "FLASKSTACK_REDIS_TIMEOUT": 0.5,
            "FLASKSTACK_REDIS_BACKOFF": 0.2,
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
        }
    )

    @app.get("/api/signup")
    @app.get("/signup")
    def signup() -> str:
        return jobs.enqueue(jobs_sample.record, "welcome", "mail").id

    client = app.test_client()
    assert client.get("/signup").status_code == 200
    fresh_redis_server.stop()

    responses: dict[str, t.Any] = {}

    def request_both() -> None:
        responses["api"] = client.get("/api/signup")
        time.sleep(0.3)  # past the back-off: the page's enqueue tries Redis again
        responses["page"] = client.get("/signup")

    thread = threading.Thread(target=request_both, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), "a request waited on the stopped Redis"

    api, page = responses["api"], responses["page"]
    assert api.status_code == 503
    assert api.mimetype == "application/problem+json"
    assert int(api.headers["Retry-After"]) >= 1
    problem = api.get_json()
    assert problem["status"] == 503
    assert "job queue" in problem["detail"]
    assert page.status_code == 503
    assert page.mimetype == "text/html"
    assert "Retry-After" in page.headers
    assert "job queue cannot be reached" in page.text

    with app.app_context(), pytest.raises(JobsUnavailable) as caught:
        jobs.enqueue(jobs_sample.record, "welcome", "mail")
    assert caught.value.code == 503

    fresh_redis_server.start()
    deadline = time.monotonic() + DEADLINE
    while (response := client.get("/signup")).status_code != 200:
        assert time.monotonic() < deadline, "enqueueing did not recover with Redis back"
        time.sleep(0.1)
    with fresh_redis_server.client() as back:
        assert back.lrange(f"rq:queue:{app.config['FLASKSTACK_NAMESPACE']}:default", 0, -1) == [
            response.text.encode()
        ]


# -- configuration -----------------------------------------------------------------------


def test_jobs_without_a_redis_url_are_refused(make_app: AppFactory) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app({"FLASKSTACK_JOBS": True})
    (problem,) = [p for p in caught.value.problems if p.id.startswith("jobs.")]
    assert problem.id == "jobs.E001"
    assert problem.key == "FLASKSTACK_JOBS"
    assert "REDIS_URL" in problem.fix
    assert "jobs.E001" in str(caught.value)


def test_jobs_on_redis_cluster_are_refused(make_app: AppFactory) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app(
            {"FLASKSTACK_JOBS": True, "FLASKSTACK_REDIS_URL": "redis+cluster://127.0.0.1:7000"}
        )
    (problem,) = caught.value.problems
    assert problem.id == "jobs.E002"
    assert problem.key == "FLASKSTACK_JOBS"
    assert "Cluster" in problem.value
    assert "standalone or Sentinel" in problem.fix


def test_with_jobs_off_enqueue_says_which_setting_turns_them_on(make_app: AppFactory) -> None:
    app = make_app({"FLASKSTACK_REDIS_URL": SHARED_REDIS_URL})
    with app.app_context():
        with pytest.raises(RuntimeError, match="FLASKSTACK_JOBS=true"):
            jobs.enqueue(jobs_sample.record, "k", "v")
        with pytest.raises(RuntimeError, match="FLASKSTACK_JOBS=true"):
            jobs_sample.keep_a_minute.enqueue("k")
        with pytest.raises(RuntimeError, match="FLASKSTACK_JOBS=true"):
            jobs.enqueue_in(dt.timedelta(seconds=5), jobs_sample.record, "k", "v")


def test_with_jobs_off_nothing_of_rq_is_imported(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from flask import Flask
        import flaskstack
        from flaskstack import jobs

        @jobs.job(queue="mail")
        def send(address: str) -> None: ...

        app = Flask("norq", instance_path={str(tmp_path)!r})
        flaskstack.init_app(app, {{"FLASKSTACK_REDIS_URL": {SHARED_REDIS_URL!r}}})

        @app.get("/")
        def index() -> str:
            return "ok"

        client = app.test_client()
        assert client.get("/").status_code == 200
        assert client.get("/healthz").status_code == 200
        print(sorted(m for m in sys.modules if m == "rq" or m.startswith("rq.")))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK", "REDIS_URL"))}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- flask stack jobs / flask stack worker -----------------------------------------------


def stack_cli(stack: JobsApp, *args: str) -> t.Any:
    return stack.app.test_cli_runner().invoke(args=["stack", *args])


def test_flask_stack_jobs_shows_queues_and_failed_jobs(jobs_app: t.Callable[..., JobsApp]) -> None:
    stack = jobs_app()

    @stack.app.get("/enqueue/<what>")
    def enqueue(what: str) -> str:
        func = jobs_sample.explode if what == "explode" else jobs_sample.fail_first_time
        return jobs.enqueue(func, stack.key(what)).id

    client = stack.app.test_client()
    exploded = client.get("/enqueue/explode", headers={"X-Request-ID": "req-cli-1"}).text
    flaky = client.get("/enqueue/flaky").text
    with stack.app.app_context():
        done = jobs.enqueue(jobs_sample.record, stack.key(), "fine")
    stack.work()
    with stack.app.app_context():
        waiting = jobs.enqueue(jobs_sample.record, stack.key(), "waiting")

    overview = stack_cli(stack, "jobs")
    assert overview.exit_code == 0, overview.output
    out = overview.output
    assert f"Queues (namespace {stack.ns}):" in out
    # QUEUE QUEUED STARTED SCHEDULED FAILED FINISHED
    assert ["default", "1", "0", "0", "2", "1"] in [line.split() for line in out.splitlines()]
    failed_rows = {line.split()[0]: line for line in out.splitlines() if exploded in line}
    assert f"ValueError: exploded on purpose for {stack.key('explode')}" in failed_rows[exploded]
    assert flaky in out
    assert "RuntimeError: the first attempt fails" in out
    assert done.id not in out
    assert waiting.id not in out

    shown = stack_cli(stack, "jobs", "show", exploded)
    assert shown.exit_code == 0, shown.output
    assert f"id: {exploded}" in shown.output
    assert "request_id: req-cli-1" in shown.output
    assert "Traceback (most recent call last)" in shown.output
    assert "jobs_sample.py" in shown.output
    assert f"ValueError: exploded on purpose for {stack.key('explode')}" in shown.output

    requeued = stack_cli(stack, "jobs", "requeue", flaky)
    assert requeued.exit_code == 0, requeued.output
    assert "Requeued 1 job(s)." in requeued.output
    assert stack.queued() == [waiting.id, flaky]
    assert flaky not in stack.registry("failed")
    stack.work()
    assert stack.recorded("flaky") == ["run 2"]
    assert stack.recorded() == ["fine", "waiting"]

    deleted = stack_cli(stack, "jobs", "delete", exploded)
    assert deleted.exit_code == 0, deleted.output
    assert "Deleted 1 job(s)." in deleted.output
    assert not stack.exists(exploded)
    assert stack.registry("failed") == []
    assert exploded not in stack_cli(stack, "jobs").output


def test_flask_stack_jobs_names_a_jobs_status_in_plain_words(
    jobs_app: t.Callable[..., JobsApp],
) -> None:
    stack = jobs_app()
    with stack.app.app_context():
        failed = jobs.enqueue(jobs_sample.explode, stack.key())
        finished = jobs.enqueue(jobs_sample.record, stack.key(), "done")
    stack.work()

    shown = stack_cli(stack, "jobs", "show", failed.id)
    assert "status: failed\n" in shown.output
    assert "status: finished\n" in stack_cli(stack, "jobs", "show", finished.id).output

    refused = stack_cli(stack, "jobs", "requeue", finished.id)
    assert refused.exit_code != 0
    assert f"job {finished.id} is finished, not failed: nothing to requeue" in refused.output


@pytest.mark.parametrize("command", [["show"], ["requeue"], ["delete"]])
def test_flask_stack_jobs_refuses_an_unknown_id(
    jobs_app: t.Callable[..., JobsApp], command: list[str]
) -> None:
    stack = jobs_app()
    result = stack_cli(stack, "jobs", *command, "no-such-job")
    assert result.exit_code != 0
    assert "no job 'no-such-job'" in result.output
    assert "Traceback" not in result.output


def test_flask_stack_jobs_refuses_another_apps_job(jobs_app: t.Callable[..., JobsApp]) -> None:
    mine, theirs = jobs_app(), jobs_app()
    with theirs.app.app_context():
        job = jobs.enqueue(jobs_sample.record, theirs.key(), "theirs")
    result = stack_cli(mine, "jobs", "delete", job.id)
    assert result.exit_code != 0
    assert "another app" in result.output
    assert theirs.exists(job.id)


def test_flask_stack_jobs_says_when_redis_is_down(make_app: AppFactory) -> None:
    app = make_app(
        {
            "FLASKSTACK_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "FLASKSTACK_JOBS": True,
            "FLASKSTACK_REDIS_TIMEOUT": 0.5,
        }
    )
    for args in (["jobs"], ["jobs", "show", "some-id"]):
        result = app.test_cli_runner().invoke(args=["stack", *args])
        assert result.exit_code != 0
        assert "Redis is unreachable" in result.output
        assert "check REDIS_URL" in result.output
        assert "Traceback" not in result.output


def test_flask_stack_jobs_says_when_jobs_are_off(make_app: AppFactory) -> None:
    app = make_app({"FLASKSTACK_REDIS_URL": SHARED_REDIS_URL})
    result = app.test_cli_runner().invoke(args=["stack", "jobs"])
    assert result.exit_code != 0
    assert "FLASKSTACK_JOBS=true" in result.output


def worker_environment(stack: JobsApp, tmp_path: Path) -> dict[str, str]:
    """The environment of a process running ``jobs_sample:create_app`` on ``stack``'s queues."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK", "REDIS_URL"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        REDIS_URL=SHARED_REDIS_URL,
        FLASKSTACK_JOBS="true",
        FLASKSTACK_NAMESPACE=stack.ns,
        JOBS_SAMPLE_GREETING="from the worker's app",
        JOBS_SAMPLE_INSTANCE=str(tmp_path / "instance"),
        DATABASE_URL="sqlite://",
    )
    return env


def test_flask_stack_worker_burst_runs_the_queued_jobs(
    jobs_app: t.Callable[..., JobsApp], tmp_path: Path
) -> None:
    stack = jobs_app()
    with stack.app.app_context():
        first = jobs.enqueue(jobs_sample.record, stack.key(), "one")
        second = jobs.enqueue(jobs_sample.record_context, stack.key())
        stuck = jobs_sample.send_to_mail_queue.enqueue(stack.key())

    env = worker_environment(stack, tmp_path)
    # The worker's own database: one the job's context reads.
    database = tmp_path / "worker.sqlite"
    env["DATABASE_URL"] = f"sqlite:///{database}"
    engine = sa.create_engine(env["DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE jobs_note (id INTEGER PRIMARY KEY, body TEXT)"))
        connection.execute(sa.text("INSERT INTO jobs_note (body) VALUES ('in the worker db')"))
    engine.dispose()

    flask = Path(sys.executable).with_name("flask")
    result = subprocess.run(
        [str(flask), "--app", "jobs_sample:create_app", "stack", "worker", "--burst"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert stack.recorded() == [
        "one",
        {"greeting": "from the worker's app", "request_id": "-", "notes": ["in the worker db"]},
    ]
    assert set(stack.registry("finished")) == {first.id, second.id}
    assert stack.queued("mail") == [stuck.id]  # not one of FLASKSTACK_JOBS_QUEUES
    assert f"job {first.id} jobs_sample.record finished" in result.stderr


# -- periodic jobs -----------------------------------------------------------------------


@pytest.mark.usefixtures("periodic_registry")
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron": "* * * * *", "every": 60}, "either cron=... or every=..., not both or neither"),
        ({}, "either cron=... or every=..., not both or neither"),
        ({"cron": "every morning"}, "'every morning' is not a cron expression"),
        ({"cron": "61 * * * *"}, "'61 * * * *' is not a cron expression"),
        ({"every": 0.5}, "every must be at least one second"),
    ],
)
def test_periodic_declarations_are_checked(options: dict[str, t.Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        jobs.periodic(**options)(jobs_sample.tick)


@pytest.mark.usefixtures("periodic_registry")
def test_a_periodic_name_is_declared_once() -> None:
    def another_tick() -> None: ...

    jobs.periodic(every=60, name="jobs-test-tick")(jobs_sample.tick)
    with pytest.raises(ValueError, match="give this one another name=") as caught:
        jobs.periodic(cron="0 3 * * *", name="jobs-test-tick")(another_tick)
    assert "'jobs-test-tick' is already declared (every 0:01:00)" in str(caught.value)
    names = [item.name for item in jobs.periodic_jobs()]
    assert names.count("jobs-test-tick") == 1


@pytest.mark.usefixtures("periodic_registry")
def test_two_schedulers_enqueue_a_periodic_job_once_per_period(
    jobs_app: t.Callable[..., JobsApp],
) -> None:
    stack = jobs_app()
    name = f"{stack.ns}-tick"
    jobs.periodic(every=dt.timedelta(minutes=1), name=name)(jobs_sample.tick)
    (item,) = [p for p in jobs.periodic_jobs() if p.name == name]
    first = _PeriodicScheduler(stack.app, [item], "worker-a")
    second = _PeriodicScheduler(stack.app, [item], "worker-b")

    # A period that starts after both schedulers did, on the minute.
    period = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    period += dt.timedelta(hours=1)
    for now in (period, period + dt.timedelta(seconds=20)):
        first.enqueue_due(now)
        second.enqueue_due(now)
    assert len(stack.queued()) == 1

    following = period + dt.timedelta(minutes=1)
    second.enqueue_due(following + dt.timedelta(seconds=1))
    first.enqueue_due(following + dt.timedelta(seconds=1))
    first.enqueue_due(following + dt.timedelta(seconds=30))
    queued = stack.queued()
    assert len(queued) == 2
    assert [stack.job(job_id).func_name for job_id in queued] == ["jobs_sample.tick"] * 2

    claims = {
        key.decode(): stack.redis.get(key).decode()
        for key in stack.redis.scan_iter(match=f"{stack.ns}:jobs:periodic:{name}:*")
    }
    prefix = f"{stack.ns}:jobs:periodic:{name}"
    assert claims[f"{prefix}:{int(period.timestamp())}"] in {"worker-a", "worker-b"}
    assert claims[f"{prefix}:{int(following.timestamp())}"] == "worker-b"
    assert claims[f"{prefix}:last"] == f"{following.isoformat()} {queued[1]}"

    stack.app.config["JOBS_SAMPLE_KEY"] = stack.key()
    stack.work()
    assert stack.recorded() == ["tick", "tick"]


def test_burst_workers_stop_promptly(jobs_app: t.Callable[..., JobsApp], tmp_path: Path) -> None:
    """A burst worker ends once its queues are empty; it does not wait on Redis first."""
    stack = jobs_app()
    script = textwrap.dedent(
        f"""
        import jobs_sample
        from flaskstack import jobs
        from flaskstack._jobs_worker import run_worker

        app = jobs_sample.create_app()
        for run in range(8):
            with app.app_context():
                jobs.enqueue(jobs_sample.record, {stack.key()!r}, run)
            run_worker(app, burst=True)
        """
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=DEADLINE + 15,
            env=worker_environment(stack, tmp_path),
            cwd=tmp_path,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"8 burst workers of one job each still ran after {DEADLINE + 15:g} s: "
            f"{len(stack.recorded())} jobs done"
        )
    assert result.returncode == 0, result.stderr
    assert stack.recorded() == list(range(8))
