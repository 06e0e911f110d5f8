"""Run the stack the way production does, on loopback, owned by the tests.

This module owns the processes the reliability and security suites start and
the one rule they keep: **nothing outlives the test, and nothing waits
forever.** Every process runs in its own process group, gets SIGKILL from the
kernel if the thread that started it dies (``PR_SET_PDEATHSIG``), is stopped
with SIGTERM and then SIGKILL after a bound, and is killed by an ``atexit``
hook if teardown missed it. Every wait has a deadline (:data:`WAIT_TIMEOUT`);
a process that does not come up fails the test with the tail of its log.

- :class:`PostgresCluster`: a PostgreSQL cluster of its own (``initdb`` +
  ``postgres`` from ``/usr/lib/postgresql/<version>/bin``, run as the
  ``postgres`` user, which PostgreSQL requires) in a temporary directory, on
  a free port, so a test may restart or stop it without touching the shared
  server.
- :class:`AppServer`: gunicorn (sync workers) serving an app factory in the
  ``production`` profile behind a pretend TLS-terminating proxy
  (``FLASKSTACK_PROXY_FIX=1``; clients send ``X-Forwarded-Proto: https``).
- :func:`flask_command`: ``flask --app ... <command>`` with the same
  environment (migrations, ``flask stack token create``).

The HTTP side (clients, load) is in :mod:`reliability.http`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import pwd
import secrets
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
from loopback import free_port
from psycopg import sql

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "HOST",
    "REFERENCE_ROOT",
    "REPOSITORY",
    "WAIT_TIMEOUT",
    "AppServer",
    "PostgresCluster",
    "StackProcessError",
    "flask_command",
    "free_port",
    "production_environment",
    "wait_for",
]

HOST = "127.0.0.1"
#: Upper bound, in seconds, of every wait for a process to start or stop.
WAIT_TIMEOUT = 30.0
#: The repository root.
REPOSITORY = Path(__file__).resolve().parents[2]
#: Where the reference app (``example/``, ``migrations/``) is taken from: the working
#: directory of every app process. ``$FLASKSTACK_REFERENCE_ROOT`` points elsewhere (a
#: checkout of another revision); the default is this repository.
REFERENCE_ROOT = Path(os.environ.get("FLASKSTACK_REFERENCE_ROOT") or REPOSITORY).resolve()

_POSTGRES_USER = "postgres"
_POSTGRES_ROOT = Path("/usr/lib/postgresql")


class StackProcessError(RuntimeError):
    """A process of the test stack could not be started or stopped in time."""


# -- processes -------------------------------------------------------------------


def _load_prctl() -> Callable[..., int] | None:
    if sys.platform != "linux":
        return None
    return t.cast("Callable[..., int]", ctypes.CDLL(None, use_errno=True).prctl)


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1
_LIVE: set[subprocess.Popen[bytes]] = set()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _spawn(
    command: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group, output appended to ``log``."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            group=None if user is None else pwd.getpwnam(user).pw_gid,
            extra_groups=None if user is None else [],
            preexec_fn=_die_with_parent if _PRCTL is not None else None,
        )
    _LIVE.add(process)
    return process


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)


def _end(process: subprocess.Popen[bytes] | None, signum: int, timeout: float) -> None:
    """Send ``signum`` to the group of ``process``; SIGKILL it if it outlives ``timeout``."""
    if process is None:
        return
    _signal_group(process, signum)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(WAIT_TIMEOUT)
    # Children left in the group (a worker, a backend) go too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    _LIVE.discard(process)


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_LIVE):
        _signal_group(process, signal.SIGKILL)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT) -> None:
    """Poll ``condition`` until it holds; :exc:`StackProcessError` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise StackProcessError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def _can_connect(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


# -- PostgreSQL --------------------------------------------------------------------


def _postgres_bin() -> Path:
    versions = sorted(
        (p for p in _POSTGRES_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise StackProcessError(
            f"no PostgreSQL server binaries under {_POSTGRES_ROOT}/<version>/bin; "
            "install them (e.g. 'apt-get install postgresql')"
        )
    return versions[-1]


class PostgresCluster:
    """A PostgreSQL cluster owned by the tests, in a directory of its own.

    The server process is ``postgres`` itself (not ``pg_ctl``, which would
    daemonise it), run as the ``postgres`` user in the foreground, so this
    object can stop, restart or kill it like any child. Durability is left on
    (``fsync`` included): tests check that committed writes survive a restart.

    Use it as a context manager; on exit the server stops and the directory
    is removed.
    """

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.directory = Path(tempfile.mkdtemp(prefix="flaskstack-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        entry = pwd.getpwnam(_POSTGRES_USER)
        if os.geteuid() == entry.pw_uid:
            self._user: str | None = None
        elif os.geteuid() == 0:
            self._user = _POSTGRES_USER
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        else:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise StackProcessError(
                "PostgreSQL refuses to run as root and these tests start it as the "
                f"{_POSTGRES_USER!r} user: run them as root or as {_POSTGRES_USER!r}"
            )

    def __enter__(self) -> PostgresCluster:
        try:
            self.initdb()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, database: str = "postgres") -> str:
        """``postgresql://postgres@127.0.0.1:PORT/<database>``."""
        return f"postgresql://{_POSTGRES_USER}@{HOST}:{self.port}/{database}"

    def initdb(self) -> None:
        """Create the cluster (trust authentication on loopback only)."""
        command = [
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            _POSTGRES_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",  # the cluster is thrown away; its own writes stay durable
        ]
        self.run_tool(command, "initdb")

    def run_tool(self, command: list[str], name: str) -> None:
        """Run a PostgreSQL program as the cluster's owner, its output in the cluster's log."""
        with self.log_path.open("ab") as log:
            result = subprocess.run(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=WAIT_TIMEOUT * 2,
                user=self._user,
                group=None if self._user is None else pwd.getpwnam(self._user).pw_gid,
                extra_groups=None if self._user is None else [],
                check=False,
            )
        if result.returncode != 0:
            raise StackProcessError(
                f"{name} failed with status {result.returncode}:\n{_tail(self.log_path)}"
            )

    @property
    def running(self) -> bool:
        """Whether the postmaster process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server on :attr:`port` and wait until it accepts queries."""
        if self.running:
            raise StackProcessError("the test PostgreSQL cluster is already running")
        self._process = _spawn(
            [
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-k",
                str(self.directory),
                "-c",
                "max_connections=60",
                "-c",
                "shared_buffers=32MB",
            ],
            log=self.log_path,
            user=self._user,
        )
        try:
            wait_for(self._accepts_queries, f"PostgreSQL on port {self.port}")
        except StackProcessError as exc:
            self.kill()
            raise StackProcessError(f"{exc}\nLog tail:\n{_tail(self.log_path)}") from None

    def _accepts_queries(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise StackProcessError(
                f"postgres exited with status {self._process.returncode}:\n{_tail(self.log_path)}"
            )
        try:
            with psycopg.connect(self.url(), connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions are ended, committed data is kept)."""
        _end(self._process, signal.SIGINT, WAIT_TIMEOUT)
        self._process = None

    def restart(self) -> None:
        """Stop the server and start it again on the same port."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the server and its backends, as a crash would."""
        _end(self._process, signal.SIGKILL, WAIT_TIMEOUT)
        self._process = None

    def close(self) -> None:
        """Stop the server and remove the cluster's directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its URL."""
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log."""
        return _tail(self.log_path, lines)


# -- the app under gunicorn ---------------------------------------------------------


#: Variables the app processes never inherit: flaskstack's settings (each test sets
#: its own) and coverage's subprocess hooks (the servers run unmeasured, at full speed).
_NOT_INHERITED = (
    "FLASK",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "MAIL_URL",
    "COV_CORE_",
    "COVERAGE_",
)

#: The account flows that mail links; production refuses them without ``MAIL_URL``.
_MAIL_FLOWS_OFF = {"FLASKSTACK_PASSWORD_RESET": "false", "FLASKSTACK_EMAIL_CONFIRMATION": "off"}


def production_environment(
    *,
    database_url: str,
    redis_url: str,
    namespace: str,
    secret_key: str | None = None,
    mail_url: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of an app process in the ``production`` profile.

    Production refuses plain-HTTP cookies, so the app is told it sits behind
    one trusted TLS-terminating proxy (``FLASKSTACK_PROXY_FIX=1``): clients
    send ``X-Forwarded-Proto: https``, as that proxy would, and cookies keep
    their ``Secure`` flag. Nothing of the caller's ``FLASK*`` or ``MAIL_URL``
    environment leaks in.

    Mail: without ``mail_url`` the account flows that mail links (password
    reset, address confirmation) are off, as in an app that sends no mail;
    their endpoints answer 404. Production refuses them without a mail
    server, and the suites that use this environment (reliability, security,
    browser, benchmarks) load, break or attack the stack and read no
    message: with the flows on, every sign-up would also send a confirmation
    message after its response, an SMTP exchange per user in the workers
    that a load run or a crash test would time and log, through a server
    kept up for nothing. A test of those flows, or one that needs their
    endpoints live, passes ``mail_url`` (``SMTPServer().url()`` of
    ``tests/smtp_server.py``): the flows then keep their defaults and mail
    comes from ``stack@example.com``. ``extra`` is applied last and
    overrides any of this (``FLASKSTACK_MAIL_FROM``, one flow on).
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith(_NOT_INHERITED)}
    env.update(
        {
            "FLASKSTACK_PROFILE": "production",
            "SECRET_KEY": secret_key or secrets.token_urlsafe(48),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "FLASKSTACK_NAMESPACE": namespace,
            "FLASKSTACK_PROXY_FIX": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if mail_url is None:
        env.update(_MAIL_FLOWS_OFF)
    else:
        env.update({"MAIL_URL": mail_url, "FLASKSTACK_MAIL_FROM": "stack@example.com"})
    env.update(extra or {})
    return env


def flask_command(
    app: str,
    env: Mapping[str, str],
    *args: str,
    input: str | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``flask --app <app> <args>`` in the repository with ``env``; raise on failure."""
    command = [sys.executable, "-m", "flask", "--app", app, *args]
    try:
        result = subprocess.run(
            command,
            cwd=REFERENCE_ROOT,
            env=dict(env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackProcessError(f"{' '.join(args)} did not finish in {timeout:.0f} s") from exc
    if result.returncode != 0:
        raise StackProcessError(
            f"`flask {' '.join(args)}` failed with status {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result


def _no_control_socket() -> tuple[str, ...]:
    # gunicorn 25.1+ opens a control socket at one fixed path per user; servers
    # started side by side would share it, and a test server needs none.
    from gunicorn.config import KNOWN_SETTINGS

    names = {setting.name for setting in KNOWN_SETTINGS}
    return ("--no-control-socket",) if "control_socket_disable" in names else ()


_NO_CONTROL_SOCKET = _no_control_socket()


class AppServer:
    """gunicorn serving ``app`` (an app factory call) with sync workers.

    :param directory: where the logs go.
    :param app: the WSGI app for gunicorn, e.g. ``"example:create_app()"``.
    :param env: the process environment (see :func:`production_environment`).
    :param workers: the number of sync workers.
    :param worker_timeout: gunicorn's ``--timeout``: a worker silent this long is killed.
    """

    def __init__(
        self,
        directory: Path,
        app: str,
        env: Mapping[str, str],
        *,
        workers: int = 2,
        worker_timeout: int = 30,
        name: str = "app",
    ) -> None:
        self.directory = directory
        self.app = app
        self.env = dict(env)
        self.workers = workers
        self.worker_timeout = worker_timeout
        self.name = name
        self.port = free_port()
        self.log_path = directory / f"gunicorn-{name}.log"
        self.access_log_path = directory / f"access-{name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def __repr__(self) -> str:
        return f"<AppServer {self.name} {HOST}:{self.port}>"

    def __enter__(self) -> AppServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` of the server."""
        return HOST, self.port

    @property
    def master_pid(self) -> int:
        """The gunicorn master's pid."""
        if self._process is None:
            raise StackProcessError(f"{self!r} is not running")
        return self._process.pid

    def start(self) -> None:
        """Start gunicorn and wait until ``/healthz`` answers 200 on a worker."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "sync",
            "--timeout",
            str(self.worker_timeout),
            "--graceful-timeout",
            "5",
            "--access-logfile",
            str(self.access_log_path),
            "--access-logformat",
            '%(s)s %(m)s "%(U)s" %(L)s',
            *_NO_CONTROL_SOCKET,
            self.app,
        ]
        self._process = _spawn(command, log=self.log_path, env=self.env, cwd=REFERENCE_ROOT)
        try:
            wait_for(self._healthy, f"gunicorn {self.name} on port {self.port}", timeout=60)
        except StackProcessError as exc:
            self.stop()
            raise StackProcessError(f"{exc}\nLog tail:\n{self.log_tail()}") from None

    def _healthy(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise StackProcessError(
                f"gunicorn {self.name} exited with status {self._process.returncode}"
            )
        if not _can_connect(self.port):
            return False
        import http.client

        connection = http.client.HTTPConnection(HOST, self.port, timeout=5)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL after a bound."""
        _end(self._process, signal.SIGTERM, 15.0)
        self._process = None

    def worker_pids(self) -> list[int]:
        """The pids of the live workers (children of the master)."""
        master = self.master_pid
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...; comm may hold spaces, so split after ")".
            fields = stat.rpartition(")")[2].split()
            if len(fields) > 1 and int(fields[1]) == master and fields[0] != "Z":
                pids.append(int(entry.name))
        return sorted(pids)

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines gunicorn and the app wrote since the last start."""
        return _tail(self.log_path, lines)

    def log_text(self) -> str:
        """Everything gunicorn and the app wrote since the last start."""
        try:
            return self.log_path.read_bytes()[self._log_start :].decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def access_log(self) -> list[tuple[int, str, str, float]]:
        """``(status, method, path, seconds)`` of every request gunicorn logged, server-side."""
        entries = []
        try:
            text = self.access_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        for line in text.splitlines():
            status, method, rest = ([*line.split(" ", 2), "", ""])[:3]
            path, _, seconds = rest.rpartition(" ")
            if status.isdigit():
                entries.append((int(status), method, path.strip('"'), float(seconds)))
        return entries

    def tracebacks(self) -> list[str]:
        """The last line of every traceback the app logged since the last start.

        Reads both log formats: plain text (``Traceback ...`` lines) and the
        production profile's one JSON object per line (an ``exception`` field).
        """
        found = []
        lines = self.log_text().splitlines()
        for index, line in enumerate(lines):
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                exception = record.get("exception") if isinstance(record, dict) else None
                if exception:
                    found.append(str(exception).strip().splitlines()[-1])
            elif line.startswith("Traceback (most recent call last)"):
                rest = lines[index + 1 :]
                end = next((ln for ln in rest if ln and not ln.startswith((" ", "\t"))), "?")
                found.append(end)
        return found
