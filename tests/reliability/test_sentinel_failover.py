"""Redis Sentinel fails over under load: sessions and cache keep working.

Master, replica and three sentinels are the test's own (``fresh_redis_sentinel``);
the master is killed (SIGKILL) and the sentinels promote the replica while
signed-in users keep browsing.
"""

from __future__ import annotations

import time
import typing as t

from reliability import app_endpoints
from reliability.browser import Load
from reliability.figures import FIGURES
from reliability.scenarios import (
    FAULT_ENV,
    JSON,
    REDIS_BACKOFF,
    assert_redis_outage_handled,
    browser_for,
    mixed_reads,
    poll,
    session_answers,
    sign_in_visitors,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from redis_servers import SentinelSetup

    from reliability.stackfixtures import StackFactory

CONCURRENCY = 4


def test_sessions_and_cache_survive_a_sentinel_failover(
    make_stack: StackFactory,
    make_database: Callable[[], str],
    fresh_redis_sentinel: SentinelSetup,
) -> None:
    stack = make_stack(
        database_url=make_database(),
        redis_url=fresh_redis_sentinel.url,
        name="sentinel",
        env=FAULT_ENV,
    )
    visitors = sign_in_visitors(stack, CONCURRENCY)
    cached_before = visitors[0].browser.get(app_endpoints.CACHED, headers=JSON).json()
    # What the master acknowledged has reached the replica before the master dies.
    assert fresh_redis_sentinel.master.execute("WAIT", "1", "5000") == 1
    old_master = fresh_redis_sentinel.master.port

    with Load(
        browser_for(visitors), mixed_reads(visitors), concurrency=CONCURRENCY, duration=90
    ) as load:
        time.sleep(1.5)
        failover_wall_clock = time.time()  # the probe app stamps entries with time.time()
        began = time.monotonic()
        fresh_redis_sentinel.failover(restart_old_master=False)
        ended = time.monotonic()
        recovery = poll(session_answers(visitors[0]), "sessions after the failover", 30)
        time.sleep(REDIS_BACKOFF + 2)

    assert fresh_redis_sentinel.master.port != old_master
    assert_redis_outage_handled(stack, visitors, load, (began, ended), outage_seen=False)
    # The cache is whole on the promoted replica, and works: the entry made before is
    # served, unless a load request whose read came while no master answered (a miss)
    # computed the view again and stored it once the new master was up; then that
    # entry, made after the failover began, is served from the cache from then on.
    cached_after = visitors[0].browser.get(app_endpoints.CACHED, headers=JSON).json()
    if cached_after != cached_before:
        assert cached_after["computed_at"] >= failover_wall_clock, (cached_before, cached_after)
    assert visitors[0].browser.get(app_endpoints.CACHED, headers=JSON).json() == cached_after
    FIGURES.add("faults_survived")
    FIGURES.add("fault_requests", load.stats.total)
    FIGURES.detail(
        "sentinel_failover",
        {
            "failover_seconds": round(ended - began, 2),
            "recovery_seconds": round(recovery, 2),
            **load.stats.summary(),
        },
    )
