"""The reference app with a few probe endpoints, as gunicorn serves it in these suites.

``create_app()`` builds the reference app (``example:create_app``) exactly as
production does and adds a blueprint under ``/_probe`` that uses only
flaskstack's public API, so the fault and security tests can watch the
session, the cache and API-token auth whatever the reference app's own pages
are:

``GET /_probe/session``
    ``{"user": <email or null>, "count": n}``: reads the session.
``POST /_probe/session``
    Adds one to ``count`` in the session (CSRF token needed, as for any form).
``GET /_probe/cached``
    A view cached for everyone (``cache.cached``) whose body says when and in
    which process it was computed.
``POST /_probe/cached/clear``
    Deletes that cache entry (CSRF token needed).
``GET /_probe/whoami``
    ``auth_required``: the user's email, for session and API-token users alike.
``GET /_probe/slow?seconds=n``
    Sleeps up to 5 s, to have a request in flight when a worker is killed.
"""

from __future__ import annotations

import os
import time
import typing as t

from flask import Blueprint, Flask, jsonify, request, session
from flask_login import current_user

import flaskstack
from flaskstack.auth import auth_required

__all__ = ["CACHE_KEY", "create_app", "probe"]

CACHE_KEY = "probe-cached"
MAX_SLEEP = 5.0

probe = Blueprint("probe", __name__, url_prefix="/_probe")


@probe.get("/session")
def read_session() -> t.Any:
    """What the session holds."""
    user = current_user.email if current_user.is_authenticated else None
    return jsonify(user=user, count=session.get("count", 0), pid=os.getpid())


@probe.post("/session")
def bump_session() -> t.Any:
    """Add one to the session's counter."""
    session["count"] = session.get("count", 0) + 1
    return jsonify(count=session["count"], pid=os.getpid())


@probe.get("/cached")
@flaskstack.cache.cached(timeout=300, key_prefix=CACHE_KEY)
def cached() -> t.Any:
    """A page cached for everyone: when and where it was computed."""
    return jsonify(computed_at=time.time(), pid=os.getpid())


@probe.post("/cached/clear")
def clear_cached() -> t.Any:
    """Invalidate the cached page."""
    flaskstack.cache.delete(CACHE_KEY)
    return jsonify(cleared=True)


@probe.get("/whoami")
@auth_required
def whoami() -> t.Any:
    """The authenticated user."""
    return jsonify(user=current_user.email)


@probe.get("/slow")
def slow() -> t.Any:
    """Take a while (bounded) to answer."""
    seconds = min(MAX_SLEEP, max(0.0, request.args.get("seconds", 1.0, type=float)))
    time.sleep(seconds)
    return jsonify(slept=seconds, pid=os.getpid())


def create_app() -> Flask:
    """The reference app, configured from the environment, plus the probe endpoints."""
    from example import create_app as create_reference_app

    app = create_reference_app()
    app.register_blueprint(probe)
    return app
