"""Does asking for a password reset link take as long with an account as without?

The sign-in page's "Forgot your password?" answers the same whether the
address has an account or not; this measures whether it also answers in the
same time, which an attacker could otherwise use to find accounts. The app
sends over SMTP to a real server on loopback (``tests/smtp_server.py``), as
in production, so the link is stored and sent after the response. Each
request is timed to the end of the response, alternating an address with an
account and one without; the first ten of each are warm-up.

Run::

    .venv/bin/python benchmarks/reset_timing.py [requests per address, default 200]

Prints the median and the 90th percentile of each, in milliseconds, and how
many messages the SMTP server received (one per request for the account).
Needs the local PostgreSQL and Redis; makes and drops a database of its own.
"""

from __future__ import annotations

import re
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg
from flask import Flask
from psycopg import sql

import flaskstack
from flaskstack import db

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from smtp_server import SMTPServer

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
WARM_UP = 10


def main(rounds: int) -> None:
    name = f"flaskstack_reset_timing_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with SMTPServer() as smtp:
            timings = measure(f"postgresql://postgres@127.0.0.1:5432/{name}", smtp, rounds)
            received = len(smtp.wait_for(rounds, timeout=30))
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    for label, values in timings.items():
        kept = values[WARM_UP:]
        median = statistics.median(kept)
        p90 = statistics.quantiles(kept, n=10)[-1]
        print(f"{label:<16} median {median:6.2f} ms   p90 {p90:6.2f} ms   ({len(kept)} requests)")
    print(f"messages received: {received}")


def measure(database_url: str, smtp: SMTPServer, rounds: int) -> dict[str, list[float]]:
    app = Flask("reset_timing", instance_path=f"/tmp/reset-timing-{uuid.uuid4().hex[:8]}")
    flaskstack.init_app(
        app,
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "FLASKSTACK_REDIS_URL": "redis://127.0.0.1:6379/0",
            "FLASKSTACK_NAMESPACE": f"reset-timing-{uuid.uuid4().hex[:8]}",
            "MAIL_URL": smtp.url(),
            "FLASKSTACK_MAIL_FROM": "app@example.com",
            "FLASKSTACK_PASSWORD_METHOD": "pbkdf2:sha256:1000",
            # Every request is let through: the throttles are not what is measured.
            "FLASKSTACK_ACCOUNT_EMAIL_LIMIT": 1_000_000,
            "FLASKSTACK_ACCOUNT_ADDRESS_LIMIT": 1_000_000,
        },
        profile="testing",
    )
    with app.app_context():
        auth = flaskstack.get_state(app).auth
        db.metadata.create_all(db.engine, tables=[m.__table__ for m in auth.models])
        user = auth.user_model(email="ada@example.com")
        user.set_password("correct horse battery staple")
        db.session.add(user)
        db.session.commit()
    client = app.test_client()
    found = CSRF.search(client.get("/auth/reset-password").text)
    assert found is not None
    token = found.group(1)
    timings: dict[str, list[float]] = {"with account": [], "without account": []}
    addresses = {"with account": "ada@example.com", "without account": "nobody@example.com"}
    for _ in range(rounds):
        for label, email in addresses.items():
            start = time.perf_counter()
            response = client.post(
                "/auth/reset-password", data={"csrf_token": token, "email": email}
            )
            elapsed = time.perf_counter() - start
            assert response.status_code == 302, response.status_code
            response.close()  # as a server does once it has sent the answer: the mail goes now
            timings[label].append(elapsed * 1000)
    with app.app_context():
        db.engine.dispose()
    flaskstack.get_state(app).redis.close()  # type: ignore[union-attr]
    return timings


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
