"""The RealWorld API suite: the Conduit Postman collection, run by newman, passes in full.

The reference app runs as in production: gunicorn with two sync workers, the
``production`` profile, a fresh PostgreSQL database migrated with
``flask db upgrade``, and Redis (sessions, cache, login throttles) under a
namespace of this test's own. newman comes from npm, pinned by
``package.json`` and ``package-lock.json`` beside this file and installed
with ``npm ci`` when ``node_modules`` is missing.

The collection is the RealWorld project's own (``tests/realworld/spec``, or
``FLASKSTACK_REALWORLD_DIR``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis

if t.TYPE_CHECKING:
    from collections.abc import Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REALWORLD_DIR = Path(os.environ.get("FLASKSTACK_REALWORLD_DIR", HERE / "spec")).resolve()
COLLECTION = REALWORLD_DIR / "Conduit.postman_collection.json"
NEWMAN = HERE / "node_modules" / ".bin" / "newman"
REDIS_URL = os.environ.get("FLASKSTACK_TEST_REDIS", "redis://127.0.0.1:6379/0")

NPM_TIMEOUT = 300
START_TIMEOUT = 30
NEWMAN_TIMEOUT = 90
EXPECTED_REQUESTS = 32  # every request of the collection

# Variables that would change what the subprocesses load.
_DROPPED = ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "COVERAGE_PROCESS_START")


def _install_newman() -> Path:
    """newman from ``node_modules``, installed with ``npm ci`` from the lock file if missing."""
    if NEWMAN.exists():
        return NEWMAN
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            "npm is not installed: the RealWorld suite needs Node.js and npm to install newman "
            f"(then `npm ci --prefix {HERE.relative_to(ROOT)}`)",
            pytrace=False,
        )
    result = subprocess.run(
        [npm, "ci", "--prefix", str(HERE), "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
        check=False,
    )
    if result.returncode != 0 or not NEWMAN.exists():
        pytest.fail(
            f"`npm ci --prefix {HERE}` failed (exit {result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return NEWMAN


def _environment(database_url: str, namespace: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.update(
        FLASKSTACK_PROFILE="production",
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        FLASKSTACK_NAMESPACE=namespace,
        SECRET_KEY=uuid.uuid4().hex + uuid.uuid4().hex,
        PYTHONWARNINGS="error",
        # The collection reads no mail: without the account flows that mail links,
        # production needs no mail server.
        FLASKSTACK_PASSWORD_RESET="false",
        FLASKSTACK_EMAIL_CONFIRMATION="off",
    )
    return env


class Server:
    """gunicorn serving the reference app; stopped (process group and all) by :meth:`stop`."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--worker-class",
                "sync",
                "--bind",
                "127.0.0.1:0",  # the OS picks a free port; the log says which
                "--graceful-timeout",
                "5",
                "example:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = self._wait_until_ready()

    def _wait_until_ready(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        url = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail(f"gunicorn exited with {self.process.returncode}")
            if url is None:
                found = re.search(
                    rb"Listening at: (http://127\.0\.0\.1:\d+)", self.log.read_bytes()
                )
                url = found.group(1).decode() if found else None
            if url is not None and self._answers(url + "/readyz"):
                return url
            time.sleep(0.2)
        self.fail(f"gunicorn did not answer on /readyz within {START_TIMEOUT} s")

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def fail(self, message: str) -> t.NoReturn:
        self.stop()
        pytest.fail(f"{message}; its log:\n{self.log.read_text(errors='replace')}", pytrace=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._log_file.close()


@pytest.fixture
def newman() -> Path:
    """The newman executable."""
    if not COLLECTION.is_file():
        pytest.fail(
            f"the RealWorld collection is not at {COLLECTION}: set FLASKSTACK_REALWORLD_DIR to "
            "the folder holding Conduit.postman_collection.json",
            pytrace=False,
        )
    return _install_newman()


@pytest.fixture
def conduit(
    postgres_url: str, namespace: t.Callable[[], str], tmp_path: Path
) -> Iterator[tuple[Server, str]]:
    """The app under gunicorn on a fresh, migrated PostgreSQL database; and its Redis namespace."""
    name = namespace()
    env = _environment(postgres_url, name)
    migrate = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "example:create_app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    server = Server(env, tmp_path / "gunicorn.log")
    try:
        yield server, name
    finally:
        server.stop()


def test_the_conduit_collection_passes_in_full(
    newman: Path, conduit: tuple[Server, str], tmp_path: Path
) -> None:
    server, name = conduit
    user = f"rw{uuid.uuid4().hex[:12]}"
    report = tmp_path / "newman.json"
    run = subprocess.run(
        [
            str(newman),
            "run",
            str(COLLECTION),
            "--delay-request",
            "1",
            "--global-var",
            f"APIURL={server.url}/api",
            "--global-var",
            f"USERNAME={user}",
            "--global-var",
            f"EMAIL={user}@example.com",
            "--global-var",
            "PASSWORD=password",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report),
            "--color",
            "off",
            "--disable-unicode",
        ],
        capture_output=True,
        text=True,
        timeout=NEWMAN_TIMEOUT,
        check=False,
    )
    assert report.is_file(), f"newman wrote no report (exit {run.returncode}):\n{run.stderr}"
    stats = json.loads(report.read_text())["run"]["stats"]
    failures = json.loads(report.read_text())["run"]["failures"]
    summary = {kind: (stats[kind]["total"], stats[kind]["failed"]) for kind in stats}
    print(f"newman: {summary}")  # shown with -s and in the report of a failure

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr
    assert failures == []
    assert summary["requests"] == (EXPECTED_REQUESTS, 0)
    total_assertions, failed_assertions = summary["assertions"]
    assert failed_assertions == 0
    assert total_assertions >= 300

    # The app kept its cache in Redis, under the test's namespace: GET /api/tags
    # was the collection's last request.
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = {key.decode() for key in client.scan_iter(match=f"{name}:*", count=1000)}
    assert any(key.startswith(f"{name}:cache:") and "conduit/tags" in key for key in keys), keys
