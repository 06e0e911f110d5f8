"""What PostgreSQL itself says about a test app's connections."""

from __future__ import annotations

import psycopg

from flaskstack import db


def session_backend_state(url: str) -> str:
    """``idle`` or ``idle in transaction``: the server's view of ``db.session``'s connection.

    Asked from a connection of its own, in ``pg_stat_activity``.
    """
    pid = db.session.connection().connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None, f"no backend {pid}"
    return str(row[0])
