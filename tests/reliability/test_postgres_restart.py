"""PostgreSQL restarts under load: clean failures meanwhile, full service right after.

The cluster is the run's own (``pg_cluster``), never the shared server. A
fast shutdown ends every session, so each worker's pooled connections are
dead when the server is back; the pool's checkout check must replace them
before they are used.
"""

from __future__ import annotations

import threading
import time
import typing as t

from reliability import app_endpoints
from reliability.browser import Browser, Load, Stats
from reliability.figures import FIGURES
from reliability.scenarios import JSON

if t.TYPE_CHECKING:
    from reliability.stackfixtures import Stack
    from reliability.stackrun import PostgresCluster

READERS = 2
WRITERS = 2


class Writes:
    """Writes the load made, by outcome; threads past the readers write."""

    def __init__(self, stack: Stack) -> None:
        self.lock = threading.Lock()
        self.acknowledged: list[str] = []
        self.refused: list[str] = []
        self.writers = [app_endpoints.Writer(stack.browser()) for _ in range(WRITERS)]

    def step(self, browser: Browser, index: int) -> None:
        if index < READERS:
            browser.get(app_endpoints.DB_READ, headers=JSON, label="db")
            return
        writer = self.writers[index - READERS]
        writer.browser.stats = browser.stats
        key = app_endpoints.write_key()
        try:
            done = writer.acknowledged(key)
        except OSError:
            done = False
        with self.lock:
            (self.acknowledged if done else self.refused).append(key)


def _browser(stack: Stack) -> t.Callable[[int, Stats], Browser]:
    def make(index: int, stats: Stats) -> Browser:
        return stack.browser(client_address=f"198.51.100.{50 + index}", stats=stats)

    return make


def test_postgres_restart_under_load(stack: Stack, pg_cluster: PostgresCluster) -> None:
    writes = Writes(stack)
    with Load(_browser(stack), writes.step, concurrency=READERS + WRITERS, duration=60) as load:
        time.sleep(1.5)
        began = time.monotonic()
        pg_cluster.stop()
        time.sleep(0.5)
        during = stack.browser().get(app_endpoints.DB_READ, headers=JSON)
        page = stack.browser().get(app_endpoints.DB_READ, headers={"Accept": "text/html"})
        pg_cluster.start()
        back = time.monotonic()
        first = [stack.browser().get(app_endpoints.DB_READ, headers=JSON) for _ in range(4)]
        time.sleep(2.5)

    stats = load.stats
    lost = set(writes.acknowledged) - app_endpoints.stored(stack.database_url, writes.acknowledged)
    FIGURES.add("fault_requests", stats.total)
    FIGURES.add("fault_writes_acknowledged", len(writes.acknowledged))
    FIGURES.add("fault_writes_lost", len(lost))
    FIGURES.detail(
        "postgres_restart", {"outage_seconds": round(back - began, 2), **stats.summary()}
    )
    # Every broken promise is listed, not only the first.
    broken = []
    # While the database is down: a clean 503 (problem+json for JSON clients), no traceback.
    if (during.status, during.content_type) != (503, "application/problem+json"):
        broken.append(f"JSON client during the outage got {during.status} {during.content_type}")
    if page.status != 503 or "Traceback" in page.text or "psycopg" in page.text:
        broken.append(f"browser during the outage got {page.status}: {page.text[:200]!r}")
    if not set(stats.statuses()) <= {"200", "201", "503"}:
        broken.append(f"statuses under load: {dict(stats.statuses())}")
    # Right after: the first requests succeed (no stale pooled connection is used).
    if [reply.status for reply in first] != [200] * 4:
        broken.append(f"first requests after the restart: {[r.status for r in first]}")
    after = stats.statuses(stats.between(back, float("inf")))
    if not set(after) <= {"200", "201"}:
        broken.append(f"statuses after the restart: {dict(after)}")
    if load.failures:
        broken.append(f"scenario failures: {load.failure_examples}")
    # No acknowledged write is lost.
    if not writes.acknowledged or lost:
        broken.append(f"{len(writes.acknowledged)} writes acknowledged, lost: {sorted(lost)}")
    assert broken == [], "\n".join(broken)
    FIGURES.add("faults_survived")
