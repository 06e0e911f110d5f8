"""A small app for the process-level tests of ``flask stack worker``.

Workers start it with ``flask --app reliability.jobsapp:create_app stack worker``
(``tests/`` on ``PYTHONPATH``), their settings in the environment. The jobs
record what happens to them in Redis, under the app's namespace, so the test
reads from outside which worker ran what:

- :func:`blocking` pushes ``<worker pid> <token>`` to ``<ns>:rec:started``
  when it starts and to ``<ns>:rec:finished`` when it ends, and in between
  waits until the key ``<ns>:release:<token>`` exists (at most
  :data:`BLOCK_DEADLINE` seconds; then it fails, so no job outlives a test).
  It also adds its work horse's pid to ``<ns>:rec:horses``, for the test's
  clean-up. The worker's pid is the horse's parent.
- :func:`wait_for_file` is the same but waits for a file to exist, and records
  only its start: it can end while Redis is unreachable.
- :func:`record` and :func:`fail` run at once (the latter raises).
- :func:`tick` is the periodic job, declared when the worker's environment
  has ``JOBSAPP_PERIODIC_EVERY`` (seconds): it pushes ``<worker pid>
  <job id> <enqueued-at epoch>`` to ``<ns>:rec:ticks``.

``POST /enqueue/<kind>`` (``record`` or ``fail``) enqueues a job from a
request, so its log line carries that request's id.
"""

from __future__ import annotations

import os
import time
import typing as t

from flask import Flask, jsonify
from rq import get_current_job

import flaskstack
from flaskstack import jobs
from flaskstack.redis import get_redis

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from flask.typing import ResponseReturnValue

__all__ = [
    "BLOCK_DEADLINE",
    "PERIODIC_ENV",
    "blocking",
    "create_app",
    "fail",
    "record",
    "tick",
    "wait_for_file",
]

#: Seconds :func:`blocking` waits for its release before it gives up and fails.
BLOCK_DEADLINE = 90.0
#: The environment variable that declares :func:`tick` periodic, every that many seconds.
PERIODIC_ENV = "JOBSAPP_PERIODIC_EVERY"


def _push(name: str, value: str) -> None:
    connection = get_redis()
    connection.client.rpush(connection.key("rec", name), value)


@jobs.job
def blocking(token: str) -> str:
    """Record the start, wait for ``<ns>:release:<token>``, record the end."""
    connection = get_redis()
    worker = os.getppid()
    _push("horses", str(os.getpid()))
    _push("started", f"{worker} {token}")
    release = connection.key("release", token)
    deadline = time.monotonic() + BLOCK_DEADLINE
    while not connection.client.exists(release):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} did not appear within {BLOCK_DEADLINE:g} s")
        time.sleep(0.05)
    _push("finished", f"{worker} {token}")
    return token


@jobs.job
def wait_for_file(path: str) -> None:
    """Record the start, then wait until the file ``path`` exists."""
    _push("horses", str(os.getpid()))
    _push("started", f"{os.getppid()} {path}")
    deadline = time.monotonic() + BLOCK_DEADLINE
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {BLOCK_DEADLINE:g} s")
        time.sleep(0.05)


@jobs.job
def record(token: str) -> str:
    """Push ``<worker pid> <token>`` to ``<ns>:rec:ran``."""
    _push("ran", f"{os.getppid()} {token}")
    return token


@jobs.job
def fail(token: str) -> None:
    """Fail at once."""
    raise RuntimeError(f"job {token} fails on purpose")


def tick() -> None:
    """The periodic job: push ``<worker pid> <job id> <enqueued at>`` to ``<ns>:rec:ticks``."""
    job = get_current_job()
    assert job is not None
    assert job.enqueued_at is not None
    _push("ticks", f"{os.getppid()} {job.id} {job.enqueued_at.timestamp()!r}")


_TASKS: dict[str, jobs.Task[[str], t.Any]] = {"record": record, "fail": fail}


def _enqueue(kind: str, token: str) -> ResponseReturnValue:
    task = _TASKS.get(kind)
    if task is None:
        return jsonify(error=f"no job {kind!r}"), 404
    return jsonify(id=task.enqueue(token).id)


def create_app(config: Mapping[str, t.Any] | None = None) -> Flask:
    """The app; settings from the environment, ``config`` over them."""
    app = Flask(__name__)
    flaskstack.init_app(app, dict(config or {}))
    every = os.environ.get(PERIODIC_ENV)
    if every:
        jobs.periodic(every=float(every), name="tick")(tick)
    app.add_url_rule("/enqueue/<kind>/<token>", "enqueue", _enqueue, methods=["POST"])
    return app
