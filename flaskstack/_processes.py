"""The apps set up in this process, and what happens to their connections at a fork and at exit.

A server that loads the app before it forks its workers (gunicorn's
``--preload``) hands every worker a copy of the app's database pool and Redis
pool: two processes on one socket mix their replies. :func:`after_fork`,
called first thing in a new worker, drops those copies without closing the
parent's connections, so each worker opens its own. :func:`before_exit`
closes a worker's connections properly as it ends, so PostgreSQL and Redis
see a client leave rather than a connection reset.

The rule this module keeps: it holds the apps weakly and imports nothing of
the package at import time, so it costs nothing to a process that never
forks, and an app that is gone is forgotten.
"""

from __future__ import annotations

import logging
import typing as t
import weakref

if t.TYPE_CHECKING:
    from flask import Flask

__all__: list[str] = []

_APPS: weakref.WeakSet[Flask] = weakref.WeakSet()

AFTER_FORK: list[t.Callable[[], None]] = []
"""Further steps for each new worker process (per-worker tracing or metrics set-up), in order."""

BEFORE_EXIT: list[t.Callable[[], None]] = []
"""Further steps for a worker about to end (sending the spans still queued), in order."""


def register(app: Flask) -> None:
    """Remember ``app``, set up by :func:`flaskstack.init_app` in this process."""
    _APPS.add(app)


def _release(app: Flask, *, close: bool) -> None:
    from .database import db
    from .redis import get_redis

    with app.app_context():
        for engine in db.engines.values():
            # close=False: the connections are the parent's too; the child only
            # forgets them (SQLAlchemy's documented way for a forked process).
            engine.dispose(close=close)
        try:
            connection = get_redis(app)
        except LookupError:
            return
        # In a process that did not open them, redis-py's pool forgets the
        # connections instead of closing them (it compares pids): the
        # parent's stay up, and the next command opens the worker's own.
        connection.close()


def after_fork() -> None:
    """In a new worker process: drop the connections inherited from the parent."""
    for app in list(_APPS):
        _release(app, close=False)
    for step in AFTER_FORK:
        step()


def before_exit() -> None:
    """In a worker about to end: close every connection of its apps.

    A connection that cannot be closed (its server is down) is logged and
    left to the end of the process: nothing here stops a worker from ending.
    The :data:`BEFORE_EXIT` steps run first, while the connections are up.
    """
    for step in BEFORE_EXIT:
        try:
            step()
        except Exception:
            logging.getLogger("flaskstack").warning(
                "a step before the process ends failed", exc_info=True
            )
    for app in list(_APPS):
        try:
            _release(app, close=True)
        except Exception:
            logging.getLogger("flaskstack.database").warning(
                "could not close the connections of app %r as the process ends",
                app.name,
                exc_info=True,
            )
