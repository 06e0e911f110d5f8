"""``flask stack worker --processes N``: N workers under one parent, stopped together.

The workers are real processes started by the real command, on the shared
Redis under a namespace of the test's own.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
import redis
from conftest import SHARED_REDIS_URL

from flaskstack.testing._jobs import delete_job_keys

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from flask import Flask

import jobs_processes_app

TESTS = Path(__file__).parent
DEADLINE = 60


@pytest.fixture
def app(namespace: Callable[[], str]) -> Iterator[Flask]:
    os.environ["REDIS_URL"] = SHARED_REDIS_URL
    os.environ["TEST_NAMESPACE"] = namespace()
    app = jobs_processes_app.create_app()
    yield app
    delete_job_keys(app.extensions["flaskstack"].redis)


def start_worker(app: Flask, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)]),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "jobs_processes_app:create_app",
            "stack",
            "worker",
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, output.decode()


def stopped_workers(output: str) -> int:
    return sum(
        1 for line in output.splitlines() if re.search(r"worker \w+ \(pid \d+\) stopped$", line)
    )


def workers_serving(app: Flask) -> int:
    """How many RQ workers have registered for the app's default queue."""
    from rq import Queue, Worker

    name = app.extensions["flaskstack"].jobs.rq_name("default")
    with redis.Redis.from_url(SHARED_REDIS_URL) as client:
        return Worker.count(queue=Queue(name, connection=client))


def recorded(key: str) -> list[str]:
    with redis.Redis.from_url(SHARED_REDIS_URL, decode_responses=True) as client:
        return list(client.lrange(key, 0, -1))


def test_two_processes_share_the_queue(app: Flask) -> None:
    key = app.extensions["flaskstack"].redis.key("ran")
    with app.app_context():
        for _ in range(6):
            jobs_processes_app.record_worker.enqueue(key, 0.5)
    status, output = finish(start_worker(app, "--processes", "2", "--burst"))
    assert status == 0, output
    ran = recorded(key)
    assert len(ran) == 6
    assert len(set(ran)) == 2, f"both worker processes ran jobs: {ran}"
    assert stopped_workers(output) == 2


def test_sigterm_stops_every_process_and_requeues_the_job_in_flight(app: Flask) -> None:
    release = app.extensions["flaskstack"].redis.key("release")
    with app.app_context():
        job = jobs_processes_app.wait_for.enqueue(release, 30)
    process = start_worker(app, "--processes", "2")
    try:
        end = time.monotonic() + DEADLINE
        # Both workers up (one of them running the job) before the stop: each must say so.
        while job.get_status(refresh=True) != "started" or workers_serving(app) < 2:
            assert time.monotonic() < end, "the job never started, or a worker never did"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGTERM)  # the parent only
        status, output = finish(process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert status == 0, output
    assert stopped_workers(output) == 2, output
    assert job.get_status(refresh=True) == "queued", output  # back in the queue, not failed
    assert recorded(f"{release}:finished") == []
