"""What flaskstack's parts announce, for its other parts that count or trace it.

Blinker signals (Flask's own signal library), in flaskstack's namespace. A part
that has something to tell (a read replica skipped, the Redis breaker opening)
sends a signal; a part that wants to know (the metrics, when configured)
connects to it. Sending a signal nobody connected to costs one check of an
empty list, so a feature that is off costs nothing to the parts that send.

Every signal's sender is the :class:`~flask.Flask` app concerned.
"""

from __future__ import annotations

from blinker import Namespace

__all__ = [
    "job_ended",
    "redis_breaker_closed",
    "redis_breaker_opened",
    "redis_failed",
    "replica_skipped",
]

_signals = Namespace()

replica_skipped = _signals.signal("flaskstack.replica-skipped")
"""A read went to the primary instead of a replica. Keyword arguments: ``replica`` (the
replica's name, as :setting:`FLASKSTACK_DATABASE_REPLICA_URLS` gives it, without its password)
and ``reason`` (``"down"`` or ``"lagging"``)."""

redis_failed = _signals.signal("flaskstack.redis-failed")
"""A Redis call failed: Redis unreachable, or a command Redis refused. Keyword argument:
``error`` (the exception)."""

redis_breaker_opened = _signals.signal("flaskstack.redis-breaker-opened")
"""The Redis circuit breaker opened: Redis is unreachable, calls fail at once for
:setting:`FLASKSTACK_REDIS_BACKOFF` seconds at a time until one succeeds. No keyword arguments."""

redis_breaker_closed = _signals.signal("flaskstack.redis-breaker-closed")
"""The Redis circuit breaker closed: a call succeeded after an outage. No keyword arguments."""

job_ended = _signals.signal("flaskstack.job-ended")
"""A background job's run ended, in the process that ran it. Keyword arguments: ``queue`` (the
app's name of the queue) and ``outcome`` (``"finished"`` or ``"failed"``)."""
