"""A bounded soak on the mixed endpoint set: zero 5xx, zero lost writes.

Runs ``$FLASKSTACK_SOAK_SECONDS`` seconds (default 15; a long job sets 60 or more)
at a fixed concurrency, each thread a signed-in user who reads cached,
database and session pages, writes to the session, and writes articles
through the API. Afterwards every acknowledged write must be in the database
and every session must hold exactly the writes it acknowledged.
"""

from __future__ import annotations

import itertools
import os
import threading
import typing as t

from reliability import app_endpoints
from reliability.browser import Browser, Load
from reliability.figures import FIGURES
from reliability.scenarios import JSON, browser_for, sign_in_visitors

if t.TYPE_CHECKING:
    from reliability.scenarios import Visitor
    from reliability.stackfixtures import Stack

SOAK_SECONDS = float(os.environ.get("FLASKSTACK_SOAK_SECONDS") or 15)
CONCURRENCY = 4


class Mix:
    """Each thread cycles through the mix; writes are recorded by outcome."""

    PLAN = ("cached", "db", "session", "app-cached", "health", "session-write", "db", "write")

    def __init__(self, stack: Stack, visitors: list[Visitor]) -> None:
        self.visitors = visitors
        self.writers = [app_endpoints.Writer(stack.browser()) for _ in visitors]
        self.cycles = [itertools.cycle(self.PLAN) for _ in visitors]
        self.lock = threading.Lock()
        self.acknowledged: list[str] = []
        self.unacknowledged: list[str] = []

    def step(self, browser: Browser, index: int) -> None:
        visitor = self.visitors[index]
        action = next(self.cycles[index])
        if action == "cached":
            browser.get(app_endpoints.CACHED, headers=JSON, label="cached")
        elif action == "db":
            browser.get(app_endpoints.DB_READ, headers=JSON, label="db")
        elif action == "session":
            reply = visitor.session()
            if reply.status == 200 and reply.json()["user"] is None:
                raise AssertionError(f"{visitor.email} was signed out")
        elif action == "app-cached":
            browser.get(app_endpoints.APP_CACHED, headers=JSON, label="app-cached")
        elif action == "health":
            browser.get("/healthz", label="health")
        elif action == "session-write":
            visitor.bump()
        else:
            writer = self.writers[index]
            writer.browser.stats = browser.stats
            key = app_endpoints.write_key()
            done = writer.acknowledged(key)
            with self.lock:
                (self.acknowledged if done else self.unacknowledged).append(key)


def test_soak_mixed_endpoints(stack: Stack) -> None:
    visitors = sign_in_visitors(stack, CONCURRENCY, prefix="soak")
    mix = Mix(stack, visitors)
    with Load(
        browser_for(visitors), mix.step, concurrency=CONCURRENCY, duration=SOAK_SECONDS
    ) as load:
        load.wait()

    stats = load.stats
    five_xx = [e for e in stats.entries if e.status is not None and e.status >= 500]
    no_answer = [e for e in stats.entries if e.status is None]
    lost = set(mix.acknowledged) - app_endpoints.stored(stack.database_url, mix.acknowledged)
    seconds = load.finished - load.started
    FIGURES.add("soak_requests", stats.total)
    FIGURES.add("soak_5xx", len(five_xx))
    FIGURES.add("soak_no_answer", len(no_answer))
    FIGURES.add("soak_writes_acknowledged", len(mix.acknowledged))
    FIGURES.add("soak_writes_lost", len(lost))
    FIGURES.detail(
        "soak",
        {
            "seconds": round(seconds, 1),
            "concurrency": CONCURRENCY,
            "requests_per_second": round(stats.total / seconds, 1),
            **stats.summary(),
        },
    )
    assert five_xx == []
    assert no_answer == []
    assert not load.failures, load.failure_examples
    assert mix.unacknowledged == []
    assert mix.acknowledged
    assert lost == set()
    # Session writes are not lost either: each session holds every acknowledged bump.
    for visitor in visitors:
        assert visitor.session().json()["count"] == visitor.count
    assert set(stats.statuses()) <= {"200", "201"}, stats.statuses()
    assert stack.server.tracebacks() == []
