"""Running a container's commands as local processes, and stopping them in bounded time.

A command written for the image (``["gunicorn", ...]``, ``["flask", ...]``)
runs here with a given interpreter as ``python -m gunicorn ...``: the same
program with the same arguments, found in the environment under test rather
than on the image's ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

from loopback import free_port

__all__ = [
    "Server",
    "free_port",
    "local_command",
    "run",
    "with_bind",
]

# Programs of the images that are Python modules of the same name here.
_MODULES = {"flask": "flask", "gunicorn": "gunicorn"}
_PYTHONS = {"python", "python3"}


def local_command(command: t.Sequence[str], python: str | os.PathLike[str]) -> list[str]:
    """``command`` as ``python -m <program> ...`` (or ``python ...``) with ``python``."""
    program, *arguments = command
    if program in _PYTHONS:
        return [str(python), *arguments]
    if program not in _MODULES:
        raise AssertionError(f"no local equivalent for {program!r} in {list(command)}")
    return [str(python), "-m", _MODULES[program], *arguments]


def with_bind(command: t.Sequence[str], address: str) -> list[str]:
    """``command`` with the value of its ``--bind``/``-b`` option replaced by ``address``."""
    result = list(command)
    for index, word in enumerate(result):
        if word in ("--bind", "-b"):
            result[index + 1] = address
            return result
        if word.startswith("--bind="):
            result[index] = f"--bind={address}"
            return result
    raise AssertionError(f"{list(command)} has no --bind option")


def run(
    command: t.Sequence[str], *, env: t.Mapping[str, str], cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to completion (stdout and stderr together in ``stdout``)."""
    return subprocess.run(
        list(command),
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


class Server:
    """A long-running command in its own process group, its output in ``log``.

    Use as a context manager: leaving it stops the process group with
    SIGTERM (what ``docker stop`` sends), then SIGKILL if it is still there
    after ``stop_timeout`` seconds.
    """

    def __init__(
        self,
        command: t.Sequence[str],
        *,
        env: t.Mapping[str, str],
        cwd: Path,
        log: Path,
        stop_timeout: float = 15.0,
    ) -> None:
        self.command = list(command)
        self.env = dict(env)
        self.cwd = cwd
        self.log = log
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        """Stop the process group; return the exit status (``None`` if it had to be killed)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                return process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=self.stop_timeout)
                return None
        return process.returncode

    def wait_until(self, ready: t.Callable[[], bool], *, timeout: float, what: str) -> None:
        """Poll ``ready()`` until it is true; fail if the process exits or time runs out."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.command[:3]} exited with status {self.process.returncode} "
                    f"before {what}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s:\n{self.output()}")
            time.sleep(0.1)

    def wait_for_http(self, url: str, *, status: int = 200, timeout: float = 60) -> None:
        """Wait until ``url`` answers with ``status``."""

        def answers() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return bool(response.status == status)
            except urllib.error.HTTPError as exc:
                return exc.code == status
            except OSError:
                return False

        self.wait_until(answers, timeout=timeout, what=f"{status} from {url}")

    def log_lines_matching(self, pattern: str) -> list[re.Match[str]]:
        return [m for m in re.finditer(pattern, self.output(), re.MULTILINE) if m]
