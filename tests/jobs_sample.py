"""Job functions the jobs tests enqueue, and an app factory for ``flask --app`` subprocesses.

A worker imports a job's function by its dotted path, so these live in an
importable module (``tests/`` is on ``sys.path`` under pytest and in the
subprocesses, through ``PYTHONPATH``). Each job records what it saw into a
Redis list named by its caller (a key in the test's namespace): the test
reads the list to learn what ran, in which order, and with what context.
"""

from __future__ import annotations

import json
import os
import time
import typing as t

import sqlalchemy as sa
from flask import Flask, current_app

import flaskstack
from flaskstack import db, jobs
from flaskstack.logs import request_id
from flaskstack.redis import get_redis


def _record(key: str, value: t.Any) -> None:
    """Append ``value`` (JSON) to the Redis list ``key``, through the app's Redis."""
    get_redis().client.rpush(key, json.dumps(value))


def recorded(client: t.Any, key: str) -> list[t.Any]:
    """What the jobs recorded into ``key``, oldest first (``client``: any redis-py client)."""
    return [json.loads(item) for item in client.lrange(key, 0, -1)]


def record(key: str, value: t.Any) -> str:
    """Record ``value``; the job's result is ``"recorded <value>"``."""
    _record(key, value)
    return f"recorded {value}"


def record_context(key: str) -> None:
    """Record what the job sees of its app: a setting, the request id, the notes in the database."""
    notes = db.session.execute(sa.text("SELECT body FROM jobs_note ORDER BY body")).scalars()
    _record(
        key,
        {
            "greeting": current_app.config["JOBS_SAMPLE_GREETING"],
            "request_id": request_id(),
            "notes": list(notes),
        },
    )


def fail_first_time(key: str) -> str:
    """Fail on the first run (counted in ``<key>:runs``), succeed and record on the next."""
    runs = get_redis().client.incr(f"{key}:runs")
    if runs == 1:
        raise RuntimeError("the first attempt fails")
    _record(key, f"run {runs}")
    return "done"


def explode(key: str) -> None:
    """Record the attempt, then fail with a recognisable error."""
    _record(key, "attempted")
    raise ValueError(f"exploded on purpose for {key}")


def sleep_then_record(key: str, seconds: float) -> None:
    """Sleep ``seconds`` (a job that overruns its timeout), then record."""
    time.sleep(seconds)
    _record(key, "woke up")


@jobs.job(queue="mail")
def send_to_mail_queue(key: str) -> None:
    """A job declared on the ``mail`` queue."""
    _record(key, "mail queue")


@jobs.job(retries=1, backoff=(1,))
def flaky(key: str) -> str:
    """A job that fails once and is retried after a one-second back-off."""
    return fail_first_time(key)


@jobs.job(retries=0)
def flaky_without_retries(key: str) -> str:
    """The same job, declared without retries."""
    return fail_first_time(key)


@jobs.job(timeout=1)
def overrun(key: str) -> None:
    """A job allowed one second that takes ten."""
    sleep_then_record(key, 10)


@jobs.job(result_ttl=0)
def forget_me(key: str) -> str:
    """A job whose result is not kept."""
    return record(key, "forgotten")


@jobs.job(result_ttl=60)
def keep_a_minute(key: str) -> str:
    """A job whose result is kept for a minute."""
    return record(key, "kept")


def tick() -> None:
    """A periodic job: records into the key named by the app's ``JOBS_SAMPLE_KEY``."""
    _record(current_app.config["JOBS_SAMPLE_KEY"], "tick")


def create_app() -> Flask:
    """The factory ``flask --app jobs_sample:create_app`` loads (settings from the environment).

    ``JOBS_SAMPLE_GREETING`` and ``JOBS_SAMPLE_KEY`` come from the environment variables of
    those names, the instance folder from ``JOBS_SAMPLE_INSTANCE``.
    """
    app = Flask("jobs_sample", instance_path=os.environ.get("JOBS_SAMPLE_INSTANCE"))
    app.config["JOBS_SAMPLE_GREETING"] = os.environ.get("JOBS_SAMPLE_GREETING", "hello")
    app.config["JOBS_SAMPLE_KEY"] = os.environ.get("JOBS_SAMPLE_KEY", "jobs-sample:ticks")
    flaskstack.init_app(app)
    return app
