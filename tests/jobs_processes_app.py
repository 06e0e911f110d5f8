"""An app for ``tests/test_jobs_processes.py``: settings from the environment, two jobs."""

from __future__ import annotations

import os
import time

from flask import Flask

import flaskstack
from flaskstack import jobs
from flaskstack.redis import get_redis


def create_app() -> Flask:
    app = Flask("jobs_processes_app")
    flaskstack.init_app(
        app,
        {
            "FLASKSTACK_REDIS_URL": os.environ["REDIS_URL"],
            "FLASKSTACK_NAMESPACE": os.environ["TEST_NAMESPACE"],
            "FLASKSTACK_JOBS": True,
            "FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT": 1,
            "SECRET_KEY": "a test secret key that is long enough for production",
        },
        profile="testing",
    )
    return app


@jobs.job
def record_worker(key: str, seconds: float) -> None:
    """Sleep, then record the pid of the worker process that ran the job (the horse's parent)."""
    time.sleep(seconds)
    get_redis().client.rpush(key, os.getppid())


@jobs.job
def wait_for(key: str, deadline: float) -> None:
    """Wait until ``key`` exists (at most ``deadline`` seconds), then record that it finished."""
    client = get_redis().client
    end = time.monotonic() + deadline
    while time.monotonic() < end and not client.exists(key):
        time.sleep(0.05)
    client.rpush(f"{key}:finished", os.getppid())
