"""A gunicorn worker dies mid-request: the others keep serving, sessions survive."""

from __future__ import annotations

import os
import signal
import threading
import time
import typing as t

from reliability.browser import Load, Reply
from reliability.figures import FIGURES
from reliability.scenarios import JSON, browser_for, mixed_reads, sign_in_visitors
from reliability.stackrun import wait_for

if t.TYPE_CHECKING:
    from reliability.stackfixtures import Stack

CONCURRENCY = 2


def test_killing_a_worker_mid_request_loses_only_that_request(stack: Stack) -> None:
    visitors = sign_in_visitors(stack, CONCURRENCY)
    workers = stack.server.worker_pids()
    assert len(workers) == 2
    outcome: dict[str, Reply | BaseException] = {}

    def slow_request() -> None:
        try:
            outcome["reply"] = stack.browser().get("/_probe/slow?seconds=4", headers=JSON)
        except OSError as exc:
            outcome["error"] = exc

    with Load(
        browser_for(visitors), mixed_reads(visitors), concurrency=CONCURRENCY, duration=60
    ) as load:
        time.sleep(1)
        in_flight = threading.Thread(target=slow_request)
        in_flight.start()
        time.sleep(0.5)
        # While one worker sleeps in the slow request, every other request lands on the other.
        free = {stack.browser().get("/_probe/slow?seconds=0").json()["pid"] for _ in range(5)}
        busy = set(workers) - free
        assert len(busy) == 1, (workers, free)
        victim = busy.pop()
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        in_flight.join(30)
        # The master replaces the worker.
        wait_for(
            lambda: len(set(stack.server.worker_pids()) - {victim}) == 2,
            "gunicorn to replace the killed worker",
        )
        time.sleep(3)

    # Only the request the dead worker was serving is lost: its connection is closed.
    assert "error" in outcome, outcome
    # Everything else was served, before, during and after.
    stats = load.stats
    assert set(stats.statuses()) == {"200"}, stats.statuses()
    assert not load.failures, load.failure_examples
    # Sessions live in Redis, not in the worker: every visitor is still signed in.
    for visitor in visitors:
        reply = visitor.session()
        assert reply.status == 200
        assert (reply.json()["user"], reply.json()["count"]) == (visitor.email, visitor.count)
    assert stack.server.tracebacks() == []
    FIGURES.add("faults_survived")
    FIGURES.add("fault_requests", stats.total)
    FIGURES.detail(
        "worker_kill",
        {"served_after_kill": len(stats.between(killed, float("inf"))), **stats.summary()},
    )
