"""Two app instances (separate gunicorn processes) on one PostgreSQL and one Redis.

A load balancer may send each request of a user to either instance: a session
made on one works on the other, a logout on one kills the cookie everywhere,
and a cache invalidation on one is seen by the other.
"""

from __future__ import annotations

import typing as t
import uuid

from reliability import app_endpoints
from reliability.figures import FIGURES
from reliability.scenarios import JSON

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from redis_servers import RedisServer

    from reliability.stackfixtures import Stack, StackFactory


def _two_instances(
    make_stack: StackFactory, make_database: Callable[[], str], redis: RedisServer
) -> tuple[Stack, Stack]:
    database = make_database()
    first = make_stack(database_url=database, redis_url=redis.url, name="a")
    second = make_stack(database_url=database, redis_url=redis.url, name="b", like=first)
    assert first.server.port != second.server.port
    return first, second


def test_sessions_and_cache_are_shared_between_instances(
    make_stack: StackFactory, make_database: Callable[[], str], stack_redis: RedisServer
) -> None:
    a, b = _two_instances(make_stack, make_database, stack_redis)
    on_a = a.browser()
    email = app_endpoints.write_key()
    assert app_endpoints.register(on_a, email).status == 302
    stolen_cookies = dict(on_a.cookies)  # what an attacker who saw the cookie would hold

    on_b = on_a.use(b.server.address)
    assert on_b.get(app_endpoints.SESSION, headers=JSON).json()["user"] == email
    # A CSRF token issued by A is good on B: same session, same secret.
    token = on_a.csrf_token()
    bumped = on_b.post(app_endpoints.SESSION, headers={"X-CSRFToken": token, **JSON})
    assert bumped.status == 200
    assert on_a.get(app_endpoints.SESSION, headers=JSON).json()["count"] == 1

    assert app_endpoints.logout(on_b).status == 302
    replay = a.browser()
    replay.cookies.update(stolen_cookies)
    after = replay.get(app_endpoints.SESSION, headers=JSON).json()
    assert (after["user"], after["count"]) == (None, 0)
    whoami = replay.get("/_probe/whoami", headers=JSON)
    assert whoami.status == 401
    FIGURES.add("scale_out_checks", 4)

    # A cache invalidation on one instance is seen by the other.
    on_a, on_b = a.browser(), b.browser()
    first = on_a.get(app_endpoints.CACHED, headers=JSON).json()
    # B serves A's entry: one cache for both.
    assert on_b.get(app_endpoints.CACHED, headers=JSON).json() == first
    token = on_b.csrf_token()
    cleared = on_b.post("/_probe/cached/clear", headers={"X-CSRFToken": token, **JSON})
    assert cleared.status == 200
    fresh = on_a.get(app_endpoints.CACHED, headers=JSON).json()
    assert fresh["computed_at"] > first["computed_at"]
    assert on_b.get(app_endpoints.CACHED, headers=JSON).json() == fresh
    FIGURES.add("scale_out_checks", 2)

    # The app's own caches too: tags and articles written through A are fresh on B.
    writer = app_endpoints.Writer(a.browser())
    anonymous_b = b.browser()
    tags_before = anonymous_b.get(app_endpoints.APP_CACHED, headers=JSON).json()["tags"]
    tag = f"t{uuid.uuid4().hex[:8]}"
    created = writer.write(app_endpoints.write_key(), tags=[tag])
    assert created.status == 201
    assert tag not in tags_before
    assert tag in anonymous_b.get(app_endpoints.APP_CACHED, headers=JSON).json()["tags"]
    slug = created.json()["article"]["slug"]
    assert anonymous_b.get(f"/api/articles/{slug}", headers=JSON).json()["article"]["body"] == "b"
    edited = writer.browser.request(
        "PUT",
        f"/api/articles/{slug}",
        json={"article": {"body": "edited on A"}},
        headers=writer.auth,
    )
    assert edited.status == 200
    article = anonymous_b.get(f"/api/articles/{slug}", headers=JSON).json()["article"]
    assert article["body"] == "edited on A"
    FIGURES.add("scale_out_checks", 2)
