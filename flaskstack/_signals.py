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

__all__ = ["replica_skipped"]

_signals = Namespace()

replica_skipped = _signals.signal("flaskstack.replica-skipped")
"""A read went to the primary instead of a replica. Keyword arguments: ``replica`` (the
replica's name, as :setting:`DATABASE_REPLICA_URLS` gives it, without its password) and
``reason`` (``"down"`` or ``"lagging"``)."""
