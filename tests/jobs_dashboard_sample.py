"""Job functions the jobs dashboard tests enqueue: a worker imports them from here."""

from __future__ import annotations


def succeed(value: str) -> str:
    """Return ``value``: a job that finishes."""
    return value


def fail(message: str) -> None:
    """Raise with ``message``: a job that fails, leaving a traceback."""
    raise RuntimeError(message)
