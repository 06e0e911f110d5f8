"""A PostgreSQL primary and its streaming replica, owned by the tests, on loopback.

The primary is a fresh cluster (``initdb``) of its own; the replica is made
from it with ``pg_basebackup -R`` (which writes ``standby.signal`` and the
``primary_conninfo`` it streams from) and runs as a hot standby on another
free port. Both are ``postgres`` processes in the foreground, run as the
``postgres`` user (PostgreSQL refuses root), started and stopped through
:mod:`reliability.stackrun`, which keeps the rule that nothing outlives the
test run and nothing waits forever.

``pg_pair`` (session fixture) yields a :class:`PostgresPair`; a test that
stops the replica (:meth:`PostgresPair.stop_replica`) starts it again before
it ends (:meth:`PostgresPair.start_replica`), and one that pauses replay
resumes it.
"""

from __future__ import annotations

import typing as t

import psycopg
import pytest
from reliability.stackrun import (
    HOST,
    WAIT_TIMEOUT,
    PostgresCluster,
    wait_for,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["PostgresPair", "pg_pair"]


class _Replica(PostgresCluster):
    """A cluster whose data directory is a base backup of ``primary`` (a hot standby)."""

    def __init__(self, primary: PostgresCluster) -> None:
        super().__init__()
        self.primary = primary

    def initdb(self) -> None:
        command = [
            str(self.bin / "pg_basebackup"),
            "-D",
            str(self.data),
            "-h",
            HOST,
            "-p",
            str(self.primary.port),
            "-U",
            "postgres",
            "-R",  # standby.signal + primary_conninfo: stream from the primary
            "--checkpoint=fast",  # else it waits for a spread checkpoint (minutes)
            "-X",
            "stream",
            "--no-sync",
        ]
        self.run_tool(command, "pg_basebackup")


class PostgresPair:
    """A primary and a streaming replica of it; :attr:`database` exists on both."""

    database = "app"

    def __init__(self) -> None:
        self.primary = PostgresCluster()
        self.replica = _Replica(self.primary)

    def __enter__(self) -> PostgresPair:
        try:
            self.primary.initdb()
            self.primary.start()
            self.primary.create_database(self.database)
            self.replica.initdb()
            self.replica.start()
            wait_for(self._streaming, "the replica to stream from the primary")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.replica.close()
        finally:
            self.primary.close()

    @property
    def primary_url(self) -> str:
        return self.primary.url(self.database)

    @property
    def replica_url(self) -> str:
        return self.replica.url(self.database)

    def _streaming(self) -> bool:
        with psycopg.connect(self.primary.url(), autocommit=True, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone()
        return bool(row and row[0])

    def primary_connection(self) -> psycopg.Connection[t.Any]:
        return psycopg.connect(self.primary_url, autocommit=True, connect_timeout=5)

    def primary_execute(self, statement: str) -> None:
        with psycopg.connect(self.primary_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def replica_scalar(self, query: str) -> t.Any:
        with psycopg.connect(self.replica_url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(query).fetchone()  # type: ignore[arg-type]
        return None if row is None else row[0]

    def wait_caught_up(self) -> None:
        """Wait until the replica has replayed everything the primary has written."""
        with psycopg.connect(self.primary.url(), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        wait_for(
            lambda: bool(
                self.replica_scalar(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
            ),
            "the replica to replay the primary's writes",
        )

    def pause_replay(self) -> None:
        self.replica_scalar("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.replica_scalar("SELECT pg_wal_replay_resume()")

    def stop_replica(self) -> None:
        """Stop the replica at once (SIGQUIT: ``pg_ctl stop -m immediate``)."""
        import signal

        from reliability.stackrun import _end

        _end(self.replica._process, signal.SIGQUIT, WAIT_TIMEOUT)
        self.replica._process = None

    def start_replica(self) -> None:
        self.replica.start()
        wait_for(self._streaming, "the replica to stream from the primary again")


@pytest.fixture(scope="session")
def pg_pair() -> Iterator[PostgresPair]:
    """A PostgreSQL primary and its streaming replica for the whole run."""
    with PostgresPair() as pair:
        yield pair
