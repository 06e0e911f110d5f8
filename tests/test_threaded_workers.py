"""flaskstack under gunicorn's threaded worker: many requests at once in one process.

One gthread worker with 8 threads, the shipped configuration, production
profile, PostgreSQL and a Redis server of the test's own. Eight clients, each
signed in to a session of its own, write rows at the same time: every answer
is its own client's, every row is written once, in order, and what the
session counts equals what the database holds. Then Redis stops while they
keep going: the requests that need the session get 503 (never 500, never
another client's data) and write nothing; when Redis is back, every client
carries on without a restart of the worker.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import os
import threading
import time
import typing as t
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, session
from sqlalchemy.orm import Mapped, mapped_column
from test_gunicorn_config import DEADLINE, HOST, Gunicorn, _production

import flaskstack
from flaskstack import db

if t.TYPE_CHECKING:
    from redis_servers import RedisServer

CLIENTS = 8
WRITES = 25


class Bump(db.Model):  # type: ignore[misc,name-defined]
    """One write of one client: its name and the session's count at the time."""

    __tablename__ = "threaded_bumps"

    id: Mapped[int] = mapped_column(primary_key=True)
    who: Mapped[str] = mapped_column(sa.String(40))
    count: Mapped[int]


def create_app() -> Flask:
    """An app whose session names its client and counts that client's writes."""
    app = Flask("threaded_app", instance_path=os.environ["THREADED_TEST_INSTANCE"])
    flaskstack.init_app(app)

    @app.get("/as/<name>")
    def sign_as(name: str) -> str:
        session["who"] = name
        session["count"] = 0
        return name

    @app.get("/bump")
    def bump() -> str:
        who = session.get("who", "nobody")
        count = session.get("count", 0) + 1
        db.session.add(Bump(who=who, count=count))
        db.session.commit()
        session["count"] = count
        return f"{who} {count}"

    return app


class Client:
    """One browser: its own cookies, one connection per request."""

    def __init__(self, server: Gunicorn, name: str) -> None:
        self.server = server
        self.name = name
        self.cookies: dict[str, str] = {}

    def get(self, path: str) -> tuple[int, str]:
        headers = {"X-Forwarded-Proto": "https"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection = http.client.HTTPConnection(HOST, self.server.port, timeout=DEADLINE)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read().decode()
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, value = header.split(";", 1)[0].partition("=")
                self.cookies[name.strip()] = value.strip()
            return response.status, body
        finally:
            connection.close()


def test_threads_keep_sessions_rows_and_the_breaker_apart(
    tmp_path: Path, postgres_url: str, fresh_redis_server: RedisServer
) -> None:
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        Bump.__table__.create(connection)
    env = _production(
        postgres_url,
        fresh_redis_server.url,
        THREADED_TEST_INSTANCE=str(tmp_path / "instance"),
        WEB_CONCURRENCY="1",
    )
    server = Gunicorn(
        tmp_path,
        env,
        app="test_threaded_workers:create_app()",
        options=("--worker-class", "gthread", "--threads", "8"),
    )
    answered: dict[str, list[int]] = {}  # the counts each client was told were written
    lock = threading.Lock()
    try:
        server.wait_until_serving()
        clients = [Client(server, f"client-{n}") for n in range(CLIENTS)]
        start = threading.Barrier(CLIENTS)

        def write(client: Client) -> None:
            assert client.get(f"/as/{client.name}") == (200, client.name)
            start.wait(DEADLINE)
            for expected in range(1, WRITES + 1):
                assert client.get("/bump") == (200, f"{client.name} {expected}")
                with lock:
                    answered.setdefault(client.name, []).append(expected)

        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            for future in [pool.submit(write, client) for client in clients]:
                future.result()

        # Redis stops while every client keeps writing.
        statuses: list[int] = []
        stopped = threading.Event()

        def keep_writing(client: Client) -> None:
            deadline = time.monotonic() + DEADLINE
            refused = 0
            while refused < 5 and time.monotonic() < deadline:
                status, body = client.get("/bump")
                with lock:
                    statuses.append(status)
                if status == 200:
                    who, _, count = body.partition(" ")
                    assert who == client.name, body
                    with lock:
                        answered[client.name].append(int(count))
                else:
                    assert status == 503, (status, body)
                    assert stopped.is_set()
                    refused += 1

        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(keep_writing, client) for client in clients]
            time.sleep(0.2)
            stopped.set()
            fresh_redis_server.stop()
            for future in futures:
                future.result()
        assert statuses.count(503) >= 5 * CLIENTS, statuses

        # Redis is back (empty: it keeps no data): the same worker serves every client again.
        fresh_redis_server.start()

        def carry_on(client: Client) -> None:
            deadline = time.monotonic() + DEADLINE
            while True:
                status, body = client.get(f"/as/{client.name}-again")
                if status == 200:
                    break
                assert status == 503, (status, body)  # within the back-off after the outage
                assert time.monotonic() < deadline, "Redis is back and requests still fail"
                time.sleep(0.1)
            assert client.get("/bump") == (200, f"{client.name}-again 1")

        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            for future in [pool.submit(carry_on, client) for client in clients]:
                future.result()
    finally:
        server.stop()

    # Each 200 wrote exactly its row, once. A request in flight when Redis stopped may have
    # written its row and still be answered 503 (its session could not be saved after the
    # view ran): at most one such row per client, the next count after its last answer.
    with engine.connect() as connection:
        rows = connection.execute(sa.select(Bump.who, Bump.count).order_by(Bump.id)).all()
    engine.dispose()
    written: dict[str, list[int]] = {}
    for who, count in rows:
        written.setdefault(who, []).append(count)
    for client_name, counts in answered.items():
        rows_of_client = written.pop(client_name)
        assert len(set(rows_of_client)) == len(rows_of_client), (client_name, rows_of_client)
        assert counts[:WRITES] == list(range(1, WRITES + 1)), client_name
        unanswered = sorted(set(rows_of_client) - set(counts))
        assert set(counts) <= set(rows_of_client), (client_name, counts, rows_of_client)
        assert unanswered in ([], [max(counts) + 1]), (client_name, unanswered)
    assert written == {f"client-{n}-again": [1] for n in range(CLIENTS)}
    errors = server.stderr.read_text()
    assert "Using worker: gthread" in errors, errors[-3000:]
    assert "Traceback" not in errors, errors[-3000:]
    with contextlib.suppress(FileNotFoundError):
        assert '"status": 500' not in server.stdout.read_text()
