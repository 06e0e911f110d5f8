"""Servers the harness owns for one run: Redis, a PostgreSQL cluster, gunicorn apps.

Each listens on a free loopback port, lives in a temporary directory and is
stopped (its directory removed) when the run ends, however it ends.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import psycopg
import redis

__all__ = [
    "AppServer",
    "HarnessError",
    "PostgresCluster",
    "RedisServer",
    "children_of",
    "cpu_seconds",
    "free_port",
    "memory_kib",
]


class HarnessError(RuntimeError):
    """Something the harness needs is missing or failed; the message says what to do."""


_random = random.SystemRandom()


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody is bound to right now.

    It is picked below the kernel's ephemeral range: a port from that range
    (what binding to port 0 gives) can be handed to an outgoing connection to
    PostgreSQL or Redis before the server meant to listen on it binds it.
    """
    top = _ephemeral_floor()
    if top <= 11_000:
        raise HarnessError(
            f"the ephemeral port range starts at {top}; raise its lower bound in "
            "/proc/sys/net/ipv4/ip_local_port_range so servers can take ports below it"
        )
    for _ in range(500):
        port = _random.randrange(10_000, top)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise HarnessError(f"no free port on 127.0.0.1 between 10000 and {top}")


def _wait_for(check: t.Callable[[], bool], timeout: float, what: str, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise HarnessError(f"{what} did not become ready within {timeout:.0f} s.{tail}")


class RedisServer:
    """``redis-server`` on a free loopback port, without persistence."""

    def __init__(self, workdir: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise HarnessError(
                "redis-server was not found on PATH: install Redis (Debian/Ubuntu: "
                "apt-get install redis-server; macOS: brew install redis)."
            )
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = workdir / "redis.log"
        self.process = subprocess.Popen(
            [
                executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(workdir),
                "--logfile", str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.client = redis.Redis.from_url(self.url, socket_timeout=10)
        _wait_for(self._answers, 15, "redis-server", self.log)
        self.version = str(self.client.info("server")["redis_version"])

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise HarnessError(f"redis-server exited at start; see {self.log}")
        try:
            return bool(self.client.ping())
        except redis.exceptions.ConnectionError:
            return False

    def reset_stats(self) -> None:
        self.client.config_resetstat()

    def command_calls(self) -> dict[str, int]:
        """Calls per command since the last reset, without the harness's own INFO/CONFIG."""
        stats = self.client.info("commandstats")
        calls: dict[str, int] = {}
        for name, values in stats.items():
            command = name.removeprefix("cmdstat_")
            if command.split("|")[0] in ("info", "config"):
                continue
            calls[command] = int(values["calls"])
        return calls

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_STATEMENT = re.compile(r"LOG:  (?:statement|execute [^:]*): (.*)$")


def _postgres_bin(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version_key)
    if candidates:
        return Path(candidates[-1]).parent
    raise HarnessError(
        "PostgreSQL's pg_ctl and initdb were not found: install the PostgreSQL server "
        "(Debian/Ubuntu: apt-get install postgresql) or pass --pg-bin DIR."
    )


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path))


class PostgresCluster:
    """A throw-away PostgreSQL cluster (``initdb``) on a free loopback port.

    Statements are counted from the server's own log: while
    :meth:`counting` is on, ``log_statement = 'all'`` logs every statement
    a client runs (``BEGIN``, ``ROLLBACK`` and the empty ``;`` of a
    connection ping included), which no client-side hook could see for
    every app alike.
    """

    def __init__(self, workdir: Path, pg_bin: str | None = None) -> None:
        self.bin = _postgres_bin(pg_bin)
        self.dir = Path(tempfile.mkdtemp(prefix="pg-", dir=workdir))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: the cluster belongs to "postgres".
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise HarnessError(
                    "running as root, but there is no 'postgres' user to own the benchmark's "
                    "PostgreSQL cluster: run the harness as an ordinary user."
                ) from None
            os.chown(workdir, account.pw_uid, account.pw_gid)
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"],
            "initdb",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# stackbench\n"
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\n"
                "max_connections = 60\n"
                # Commits do not wait for the disk: the form POST measures the
                # framework, not a shared machine's fsync.
                "synchronous_commit = off\n"
                "log_line_prefix = '%m [%p] '\n"
                "log_min_messages = warning\n"
            )
        self._run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
             "-t", "60", "start"],
            "pg_ctl start",
        )  # fmt: skip
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with self.admin() as conn:
            self.version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]

    def _run(self, command: list[str], what: str) -> None:
        result = subprocess.run(
            [*self._as, *command], capture_output=True, text=True, cwd=self.dir, check=False
        )
        if result.returncode != 0:
            raise HarnessError(f"{what} failed ({result.returncode}):\n{result.stderr}")

    def admin(self, database: str = "postgres") -> psycopg.Connection[t.Any]:
        url = self.admin_url.rsplit("/", 1)[0] + "/" + database
        return psycopg.connect(url, autocommit=True, connect_timeout=10)

    def create_database(self, name: str) -> str:
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def execute(self, database: str, sql: str) -> None:
        with self.admin(database) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def _log_statements(self, value: str) -> None:
        with self.admin() as conn:
            conn.execute(f"ALTER SYSTEM SET log_statement = '{value}'")
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)  # backends pick the setting up at their next command

    @contextlib.contextmanager
    def counting(self) -> t.Iterator[None]:
        """Log every statement while the block runs."""
        self._log_statements("all")
        try:
            yield
        finally:
            self._log_statements("none")

    def log_offset(self) -> int:
        return self.log.stat().st_size

    def statements_since(self, offset: int) -> list[str]:
        """The statements logged after ``offset``, as the clients sent them (first line)."""
        with self.log.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
        found = []
        for line in text.splitlines():
            match = _STATEMENT.search(line)
            if match:
                found.append(match.group(1).strip())
        return found

    def pids(self) -> list[int]:
        """The postmaster and every process it started (backends, autovacuum…)."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
            return [postmaster, *children_of(postmaster)]
        return []

    def stop(self) -> None:
        if self.data.exists():
            with contextlib.suppress(HarnessError):
                self._run(
                    [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                    "pg_ctl stop",
                )


class AppServer:
    """One app under gunicorn on a free loopback port: sync workers, or gthread workers
    with ``threads`` threads each."""

    def __init__(
        self,
        name: str,
        target: str,
        env: dict[str, str],
        cwd: Path,
        workdir: Path,
        workers: int,
        threads: int = 1,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"gunicorn-{name}.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn",
                "--workers", str(workers),
                "--worker-class", "sync" if threads == 1 else "gthread",
                "--threads", str(threads),
                "--bind", f"127.0.0.1:{self.port}",
                "--log-level", "warning",
                "--error-logfile", "-",
                target,
            ],
            cwd=cwd,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.workers = workers

    def wait_ready(self, probe: t.Callable[[], bool], timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise HarnessError(
                    f"gunicorn for {self.name} exited with {self.process.returncode}; "
                    f"its log:\n{self.log.read_text(errors='replace')[-3000:]}"
                )
            return len(self.worker_pids()) == self.workers and probe()

        _wait_for(ready, timeout, f"the {self.name} app", self.log)

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: the master's children."""
        return children_of(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log_file.close()


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # from field 3 (state) on


def children_of(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (Linux ``/proc``)."""
    pids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(_stat_fields(int(Path(stat).parent.name))[1]) == parent:
                pids.append(int(Path(stat).parent.name))
    return sorted(pids)


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: t.Iterable[int]) -> float:
    """User + system CPU time the processes used so far (ended ones count as 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def memory_kib(pid: int) -> dict[str, int]:
    """Resident (``VmRSS``) and proportional (``Pss``) memory of ``pid``, in KiB."""
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                values["rss"] = int(line.split()[1])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                values["pss"] = int(line.split()[1])
    return values
