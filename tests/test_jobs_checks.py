"""``flask stack check --deploy`` with jobs on, and how flaskstack's worker differs from RQ's.

The deploy check reads the heartbeats RQ's workers record in Redis: no
worker, or none serving one of the app's queues, or only a silent one, is
``jobs.W001``. The worker has no command channel (the adapter in
``flaskstack/_jobs_worker.py``): the test below fails if RQ subscribes its
worker some other way, which would bring back a minute-long shutdown.
"""

from __future__ import annotations

import typing as t

import pytest

from flaskstack import checks, jobs
from flaskstack._jobs_worker import build_worker
from flaskstack.testing._jobs import delete_job_keys

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from flask import Flask

from conftest import SHARED_REDIS_URL


@jobs.job
def noop() -> str:
    return "done"


@pytest.fixture
def jobs_app(make_app: AppFactory, namespace: Callable[[], str]) -> Iterator[Callable[..., Flask]]:
    made: list[Flask] = []

    def build(**config: t.Any) -> Flask:
        app = make_app(
            {
                "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
                "FLASKSTACK_NAMESPACE": namespace(),
                "FLASKSTACK_JOBS": True,
                **config,
            },
            profile="testing",
        )
        made.append(app)
        return app

    yield build
    for app in made:
        delete_job_keys(app.extensions["flaskstack"].redis)


def job_findings(app: Flask) -> list[checks.Finding]:
    return [
        f for f in checks.run_checks(app, deploy=True, tags=["jobs"]) if f.id.startswith("jobs")
    ]


def test_no_worker_is_reported_by_the_deploy_check(jobs_app: Callable[..., Flask]) -> None:
    app = jobs_app()
    (finding,) = job_findings(app)
    assert finding.id == "jobs.W001"
    assert "no worker is registered" in finding.msg
    assert "flask stack worker" in finding.hint
    assert checks.run_checks(app, deploy=False, tags=["jobs"]) == []  # a deploy check only


def test_a_live_worker_satisfies_it_until_it_stops(jobs_app: Callable[..., Flask]) -> None:
    app = jobs_app()
    worker = build_worker(app)
    worker.register_birth()
    try:
        worker.heartbeat()
        assert job_findings(app) == []
    finally:
        worker.register_death()
        worker.connection.close()
    (finding,) = job_findings(app)
    assert finding.id == "jobs.W001"


def test_a_queue_nobody_serves_is_reported(jobs_app: Callable[..., Flask]) -> None:
    app = jobs_app(FLASKSTACK_JOBS_QUEUES=["default", "mail"])
    worker = build_worker(app, ["default"])
    worker.register_birth()
    try:
        worker.heartbeat()
        (finding,) = job_findings(app)
    finally:
        worker.register_death()
        worker.connection.close()
    assert "no worker serves mail" in finding.msg


def test_the_worker_does_not_listen_on_rqs_command_channel(jobs_app: Callable[..., Flask]) -> None:
    app = jobs_app()
    with app.app_context():
        noop.enqueue()
    worker = build_worker(app, simple=True)
    try:
        assert worker.work(burst=True) is True
    finally:
        worker.connection.close()
    # RQ's own worker would have subscribed (worker.pubsub set, a listener thread started).
    assert worker.pubsub is None
    assert worker.pubsub_thread is None


def test_jobs_off_costs_no_check(make_app: AppFactory) -> None:
    app = make_app({"FLASKSTACK_REDIS_URL": SHARED_REDIS_URL}, profile="testing")
    assert job_findings(app) == []
