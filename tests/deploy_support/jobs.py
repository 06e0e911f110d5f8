"""The worker service, run here: waiting for its heartbeat, reading its log lines about jobs."""

from __future__ import annotations

import json
import typing as t

import redis

if t.TYPE_CHECKING:
    from .server import Server

__all__ = ["job_log_lines", "wait_for_a_worker", "wait_for_job_log_line"]


def wait_for_a_worker(
    server: Server, redis_url: str, redis_namespace: str, queue: str = "default"
) -> None:
    """Wait until a worker serving the namespace's ``queue`` is registered in Redis."""
    from rq import Queue, Worker

    client = redis.Redis.from_url(redis_url)
    try:
        rq_queue = Queue(f"{redis_namespace}:{queue}", connection=client)
        server.wait_until(
            lambda: bool(Worker.all(connection=client, queue=rq_queue)),
            timeout=60,
            what=f"a worker registered for queue {rq_queue.name}",
        )
    finally:
        client.close()


def job_log_lines(server: Server, request_id: str) -> list[dict[str, t.Any]]:
    """The worker's JSON log lines about jobs that the request ``request_id`` enqueued."""
    found = []
    for line in server.output().splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "job" in record and record.get("request_id") == request_id:
            found.append(record)
    return found


def wait_for_job_log_line(server: Server, request_id: str) -> dict[str, t.Any]:
    """The worker's one log line about the job the request ``request_id`` enqueued.

    Written when the job has ended, so possibly after what the job did was seen.
    """
    server.wait_until(
        lambda: bool(job_log_lines(server, request_id)),
        timeout=60,
        what=f"a job log line with request id {request_id}",
    )
    lines = job_log_lines(server, request_id)
    assert len(lines) == 1, server.output()
    return lines[0]
