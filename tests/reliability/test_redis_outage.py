"""Redis goes away under load and comes back: what users see meanwhile and afterwards.

DESIGN.md promises: pages that don't need a session keep working, cached views
are computed, session-dependent requests get a clear 503, everything recovers
by itself when Redis is back, and no request waits longer than the Redis
timeout. Redis here persists every write (``appendfsync always``), as a
production Redis does, so a restart must not lose a session either.
"""

from __future__ import annotations

import os
import signal
import time
import typing as t

import pytest

from reliability.browser import Load
from reliability.figures import FIGURES
from reliability.scenarios import (
    FAULT_ENV,
    REDIS_BACKOFF,
    assert_redis_outage_handled,
    browser_for,
    check_during_redis_outage,
    mixed_reads,
    poll,
    session_answers,
    sign_in_visitors,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from redis_servers import RedisServer

    from reliability.stackfixtures import Stack, StackFactory

CONCURRENCY = 4


def _figures(name: str, load: Load, recovery: float) -> None:
    FIGURES.add("faults_survived")
    FIGURES.add("fault_requests", load.stats.total)
    FIGURES.add(
        "fault_5xx_other_than_503",
        sum(
            1
            for e in load.stats.entries
            if e.status is None or (e.status >= 500 and e.status != 503)
        ),
    )
    FIGURES.detail(name, {"recovery_seconds": round(recovery, 2), **load.stats.summary()})


@pytest.fixture
def redis_stack(
    make_stack: StackFactory, make_database: Callable[[], str], durable_redis: RedisServer
) -> Stack:
    return make_stack(
        database_url=make_database(), redis_url=durable_redis.url, name="redis", env=FAULT_ENV
    )


def test_redis_stopped_and_restarted_under_load(
    redis_stack: Stack, durable_redis: RedisServer
) -> None:
    visitors = sign_in_visitors(redis_stack, CONCURRENCY)
    with Load(
        browser_for(visitors), mixed_reads(visitors), concurrency=CONCURRENCY, duration=60
    ) as load:
        time.sleep(1.5)
        began = time.monotonic()
        durable_redis.stop()
        time.sleep(0.5)
        check_during_redis_outage(visitors[1])
        time.sleep(1)
        durable_redis.start()
        ended = time.monotonic()
        recovery = poll(session_answers(visitors[0]), "sessions after Redis came back", 30)
        time.sleep(REDIS_BACKOFF + 2)
    assert_redis_outage_handled(redis_stack, visitors, load, (began, ended))
    _figures("redis_restart", load, recovery)


def test_redis_frozen_then_thawed_under_load(
    redis_stack: Stack, durable_redis: RedisServer
) -> None:
    """A Redis that accepts connections but never answers (SIGSTOP): the timeout must hold."""
    visitors = sign_in_visitors(redis_stack, CONCURRENCY)
    pid = int(durable_redis.info("server")["process_id"])
    with Load(
        browser_for(visitors), mixed_reads(visitors), concurrency=CONCURRENCY, duration=60
    ) as load:
        time.sleep(1.5)
        began = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(0.5)
            check_during_redis_outage(visitors[1])
            time.sleep(1)
        finally:
            os.kill(pid, signal.SIGCONT)
        ended = time.monotonic()
        recovery = poll(session_answers(visitors[0]), "sessions after Redis thawed", 30)
        time.sleep(REDIS_BACKOFF + 2)
    assert_redis_outage_handled(redis_stack, visitors, load, (began, ended))
    _figures("redis_freeze", load, recovery)
