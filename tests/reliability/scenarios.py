"""Users, browsing mixes and checks shared by the fault and load tests."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
import typing as t

from . import app_endpoints

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from .browser import Browser, Load, Reply, Stats
    from .stackfixtures import Stack

__all__ = [
    "Visitor",
    "assert_redis_outage_handled",
    "check_during_redis_outage",
    "mixed_reads",
    "poll",
    "session_answers",
    "sign_in_visitors",
]

#: flaskstack's default Redis timeout, which the suites run with.
REDIS_TIMEOUT = 0.5
#: The Redis back-off of the fault tests' stacks (flaskstack's default is 5 s): the
#: same mechanism, and every worker is back sooner, which keeps the suite short.
REDIS_BACKOFF = 2.0
FAULT_ENV = {"FLASKSTACK_REDIS_BACKOFF": str(REDIS_BACKOFF)}
#: Slack for a busy 2-core machine on top of the Redis timeout, measured server-side:
#: a bound on waiting, not a speed measurement.
MARGIN = 2.0

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


@dataclasses.dataclass
class Visitor:
    """A signed-in browser and what its session should hold."""

    email: str
    browser: Browser
    count: int = 0
    wants_json: bool = False

    @property
    def accept(self) -> dict[str, str]:
        return JSON if self.wants_json else HTML

    def bump(self) -> Reply:
        """Add one to the session counter (one session write)."""
        token = self.browser.csrf_token()
        reply = self.browser.post(
            app_endpoints.SESSION, headers={"X-CSRFToken": token, **JSON}, label="session-write"
        )
        if reply.status == 200:
            self.count = reply.json()["count"]
        return reply

    def copy_browser(self) -> Browser:
        """A browser with a copy of this one's cookies, recording nowhere: for checks made
        while a load thread is using :attr:`browser`."""
        copy = self.browser.use((self.browser.host, self.browser.port))
        copy.cookies = dict(self.browser.cookies)
        copy.stats = None
        return copy

    def session(self, label: str = "session") -> Reply:
        """Read the session."""
        return self.browser.get(app_endpoints.SESSION, headers=self.accept, label=label)


def sign_in_visitors(stack: Stack, count: int, prefix: str = "v") -> list[Visitor]:
    """Register ``count`` users, each in its own browser, with one session write each."""
    visitors = []
    for index in range(count):
        email = f"{prefix}{index}-{time.monotonic_ns()}@example.test"
        browser = stack.browser(client_address=f"198.51.100.{10 + index}")
        reply = app_endpoints.register(browser, email)
        assert reply.status == 302, f"registration failed: {reply.status} {reply.text[:300]}"
        visitor = Visitor(email, browser, wants_json=index % 2 == 1)
        assert visitor.bump().status == 200
        visitors.append(visitor)
    return visitors


def mixed_reads(visitors: list[Visitor]) -> Callable[[Browser, int], None]:
    """A load step: each thread cycles through the probe cache, the session, the health
    check, and the app's cached and database API reads.

    The app's reads go without cookies, as an anonymous visitor's would: with the
    visitor's cookie they read the session (to mark the user's favourites), and are
    session pages like any other.
    """
    counters = [itertools.cycle(range(5)) for _ in visitors]

    def step(browser: Browser, index: int) -> None:
        visitor = visitors[index]
        which = next(counters[index])
        if which == 0:
            browser.get(app_endpoints.CACHED, headers=JSON, label="cached")
        elif which == 1:
            browser.get(app_endpoints.SESSION, headers=visitor.accept, label="session")
        elif which == 2:
            browser.get("/healthz", label="health")
        elif which == 3:
            browser.get(
                app_endpoints.APP_CACHED, headers=JSON, send_cookies=False, label="app-cached"
            )
        else:
            browser.get(app_endpoints.DB_READ, headers=JSON, send_cookies=False, label="db")

    return step


def browser_for(visitors: list[Visitor]) -> Callable[[int, Stats], Browser]:
    """``Load``'s browser factory: thread ``i`` browses as ``visitors[i]``, recording."""

    def make(index: int, stats: Stats) -> Browser:
        browser = visitors[index].browser
        browser.stats = stats
        return browser

    return make


def poll(
    check: Callable[[], bool], what: str, timeout: float = 30.0, interval: float = 0.2
) -> float:
    """Call ``check`` until it returns true; return the seconds it took.

    :raises AssertionError: when it is still false after ``timeout`` s.
    """
    started = time.monotonic()
    stop = threading.Event()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: still not true after {timeout:.0f} s")
        stop.wait(interval)
    return time.monotonic() - started


def check_during_redis_outage(visitor: Visitor) -> None:
    """During a Redis outage: session requests get a 503 with ``Retry-After`` in the format
    the client asked for; the cached page is served, computed afresh each time."""
    browser = visitor.copy_browser()
    cached = [browser.get(app_endpoints.CACHED, headers=JSON) for _ in range(2)]
    assert [reply.status for reply in cached] == [200, 200]
    assert cached[0].json()["computed_at"] != cached[1].json()["computed_at"]
    reply = browser.get(app_endpoints.SESSION, headers=JSON)
    assert reply.status == 503, reply.text[:300]
    assert reply.content_type == "application/problem+json"
    problem = reply.json()
    assert problem["status"] == 503
    assert "session store is unreachable" in problem["detail"]
    assert int(reply.header("Retry-After") or 0) >= 1
    page = browser.get(app_endpoints.SESSION, headers={"Accept": "text/html"})
    assert page.status == 503
    assert page.content_type == "text/html"
    assert "session store is unreachable" in page.text
    assert "Traceback" not in page.text


def session_answers(visitor: Visitor) -> Callable[[], bool]:
    """A check that the visitor's session can be read (while a load uses the visitor)."""
    browser = visitor.copy_browser()

    def check() -> bool:
        return browser.get(app_endpoints.SESSION, headers=JSON).status == 200

    return check


def assert_redis_outage_handled(
    stack: Stack,
    visitors: list[Visitor],
    load: Load,
    outage: tuple[float, float],
    *,
    outage_seen: bool = True,
) -> None:
    """What DESIGN.md promises for a Redis outage, checked on a finished load.

    ``outage`` is when Redis went away and came back (``time.monotonic()``);
    with ``outage_seen`` some session request must have got a 503 (a failover
    may be quick enough for none to).
    """
    stats = load.stats
    began, ended = outage
    # Before the outage and once every worker's back-off is over, everything is 200.
    before = [e for e in stats.between(0, began) if e.started + e.elapsed < began]
    calm = before + stats.between(ended + REDIS_BACKOFF + 1.0, float("inf"))
    assert set(stats.statuses(calm)) == {"200"}, stats.statuses(calm)
    # Throughout: pages without a session (cache, health, database) always answer 200;
    # session pages answer 200 or 503, and nothing ever fails otherwise.
    by_label = stats.by_label()
    for label in ("cached", "app-cached", "health", "db"):
        assert set(by_label[label]) == {"200"}, (label, by_label[label])
    assert set(by_label["session"]) <= {"200", "503"}, by_label["session"]
    if outage_seen:
        assert by_label["session"]["503"] > 0, "the outage was never seen"
    assert not load.failures, load.failure_examples
    # No request waited for Redis longer than its timeout (server-side, from gunicorn's log).
    slowest = max(seconds for _, _, _, seconds in stack.server.access_log())
    assert slowest <= REDIS_TIMEOUT + MARGIN, f"a request took {slowest:.2f} s"
    assert stack.server.tracebacks() == []
    # No session written before the outage is lost.
    for visitor in visitors:
        reply = visitor.session()
        assert reply.status == 200
        assert reply.json()["user"] == visitor.email
        assert reply.json()["count"] == visitor.count
        assert visitor.bump().status == 200
