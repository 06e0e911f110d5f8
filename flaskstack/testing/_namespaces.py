"""Redis key namespaces for tests: one per test, deleted when the test ends.

This module owns the Redis side of :mod:`flaskstack.testing`. Every key
flaskstack writes starts with ``FLASKSTACK_NAMESPACE`` and a colon, so a
namespace of its own per test keeps tests apart even when they run in
parallel on one Redis, and deleting the test's keys is a ``SCAN`` for
``<namespace>:*`` followed by ``DEL`` in batches. The rule it keeps: it only
ever deletes keys under a namespace it issued itself, and never runs
``FLUSHDB`` or ``FLUSHALL``.
"""

from __future__ import annotations

import itertools
import typing as t
import uuid

if t.TYPE_CHECKING:
    from flaskstack.redis import RedisConnection

__all__ = ["Namespaces", "delete_namespace"]

_BATCH = 500


class Namespaces:
    """Issues namespaces unique to one test run and one process.

    :param worker: The pytest-xdist worker id (``gw0``…), or ``main``.

    Names look like ``test-gw0-1a2b3c4d-17``: letters, digits and ``-``
    only, as ``FLASKSTACK_NAMESPACE`` requires, and never containing a
    ``SCAN`` pattern character.
    """

    def __init__(self, worker: str = "main") -> None:
        self.prefix = f"test-{worker}-{uuid.uuid4().hex[:8]}"
        self._counter = itertools.count(1)
        self._issued: set[str] = set()

    def issue(self) -> str:
        """A namespace no test has had yet."""
        namespace = f"{self.prefix}-{next(self._counter)}"
        self._issued.add(namespace)
        return namespace

    def issued(self, namespace: str) -> bool:
        """Whether ``namespace`` came from :meth:`issue` (so its keys may be deleted)."""
        return namespace in self._issued


def delete_namespace(connection: RedisConnection) -> int:
    """Delete every key under ``connection``'s namespace; return how many there were.

    ``SCAN`` with ``MATCH <namespace>:*``, then ``DEL`` in batches of 500
    (split by slot on a cluster by redis-py).
    """
    client = connection.client
    deleted = 0
    batch: list[t.Any] = []
    for key in client.scan_iter(match=connection.key("*"), count=_BATCH):
        batch.append(key)
        if len(batch) >= _BATCH:
            deleted += int(client.delete(*batch))
            batch.clear()
    if batch:
        deleted += int(client.delete(*batch))
    return deleted
