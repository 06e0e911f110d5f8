"""Load generation: ``wrk`` when it is installed, a pure-Python generator otherwise.

Both keep a fixed number of connections busy for a fixed time, and report
requests per second, the 50th and 99th latency percentiles and errors
(failed connections and reads, timeouts, statuses of 400 and above).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import shutil
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

from .client import USER_AGENT
from .services import HarnessError

__all__ = ["LoadResult", "PythonLoad", "WrkLoad", "find_wrk"]

_MARK = "STACKBENCH "


@dataclasses.dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_detail: dict[str, int]

    def as_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)


def find_wrk() -> str | None:
    return shutil.which("wrk")


def _lua_string(value: str) -> str:
    level = "=" * 4
    if f"]{level}]" in value:
        raise HarnessError("a header value cannot be put in the wrk script")
    return f"[{level}[{value}]{level}]"


class WrkLoad:
    """Runs ``wrk`` with one thread and a Lua script that sets the request."""

    name = "wrk"

    def __init__(self, executable: str, connections: int, workdir: Path) -> None:
        self.executable = executable
        self.connections = connections
        self.workdir = workdir
        self.version = (
            subprocess.run(
                [executable, "--version"], capture_output=True, text=True, check=False
            ).stdout.splitlines()[0:1]
            or ["wrk"]
        )[0].split(" [")[0]

    def run(
        self,
        base_url: str,
        method: str,
        path: str,
        headers: t.Mapping[str, str],
        body: str | None,
        seconds: float,
    ) -> LoadResult:
        lines = [f"wrk.method = {_lua_string(method)}"]
        for name, value in {"User-Agent": USER_AGENT, **headers}.items():
            lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
        if body is not None:
            lines.append(f"wrk.body = {_lua_string(body)}")
        lines.append(
            "done = function(summary, latency, requests)\n"
            "  local e = summary.errors\n"
            f'  io.write(string.format("{_MARK}'
            '{\\"requests\\": %.0f, \\"duration_us\\": %.0f, \\"connect\\": %.0f, '
            '\\"read\\": %.0f, \\"write\\": %.0f, \\"status\\": %.0f, \\"timeout\\": %.0f, '
            '\\"p50_us\\": %.0f, \\"p99_us\\": %.0f}\\n", summary.requests, summary.duration, '
            "e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50), "
            "latency:percentile(99)))\n"
            "end"
        )
        with tempfile.NamedTemporaryFile(
            "w", suffix=".lua", dir=self.workdir, delete=False
        ) as script:
            script.write("\n".join(lines) + "\n")
        duration = max(1, round(seconds))
        command = [
            self.executable, "-t", "1", "-c", str(self.connections), "-d", f"{duration}s",
            "--timeout", "10s", "-s", script.name, base_url + path,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        Path(script.name).unlink()
        for line in result.stdout.splitlines():
            if line.startswith(_MARK):
                data = json.loads(line[len(_MARK) :])
                break
        else:
            raise HarnessError(f"wrk gave no result ({result.returncode}):\n{result.stderr}")
        elapsed = data["duration_us"] / 1e6
        detail = {key: int(data[key]) for key in ("connect", "read", "write", "status", "timeout")}
        return LoadResult(
            requests=int(data["requests"]),
            seconds=round(elapsed, 3),
            rps=round(data["requests"] / elapsed, 1),
            p50_ms=round(data["p50_us"] / 1000, 3),
            p99_ms=round(data["p99_us"] / 1000, 3),
            errors=sum(detail.values()),
            error_detail=detail,
        )


def _percentile(ordered: list[float], percent: float) -> float:
    if not ordered:
        return math.nan
    index = max(0, math.ceil(percent / 100 * len(ordered)) - 1)
    return ordered[index]


class PythonLoad:
    """A fixed number of asyncio connections, each sending requests back to back.

    Only for machines without ``wrk``: it spends far more CPU per request,
    which on a small machine takes it from the server under test.
    """

    name = "python"
    version = "asyncio"

    def __init__(self, connections: int) -> None:
        self.connections = connections

    def run(
        self,
        base_url: str,
        method: str,
        path: str,
        headers: t.Mapping[str, str],
        body: str | None,
        seconds: float,
    ) -> LoadResult:
        return asyncio.run(self._run(base_url, method, path, headers, body, seconds))

    async def _run(
        self,
        base_url: str,
        method: str,
        path: str,
        headers: t.Mapping[str, str],
        body: str | None,
        seconds: float,
    ) -> LoadResult:
        url = urlsplit(base_url)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        payload = (body or "").encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"User-Agent: {USER_AGENT}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            head.append(f"Content-Length: {len(payload)}")
        message = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        latencies: list[float] = []
        errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
        start = time.perf_counter()
        deadline = start + seconds

        async def one_connection() -> None:
            reader: asyncio.StreamReader | None = None
            writer: asyncio.StreamWriter | None = None
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                if writer is None:
                    try:
                        reader, writer = await asyncio.open_connection(host, port)
                    except OSError:
                        errors["connect"] += 1
                        await asyncio.sleep(0.01)
                        continue
                assert reader is not None
                try:
                    writer.write(message)
                    await writer.drain()
                    status_line = await asyncio.wait_for(reader.readline(), 10)
                    status = int(status_line.split()[1])
                    length, close = 0, False
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        name, _, value = line.decode("latin-1").partition(":")
                        if name.lower() == "content-length":
                            length = int(value)
                        elif name.lower() == "connection" and "close" in value.lower():
                            close = True
                    await reader.readexactly(length)
                except asyncio.TimeoutError:
                    errors["timeout"] += 1
                    close = True
                except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                    errors["read"] += 1
                    close = True
                else:
                    latencies.append(time.perf_counter() - began)
                    if status >= 400:
                        errors["status"] += 1
                if close:
                    writer.close()
                    reader = writer = None
            if writer is not None:
                writer.close()

        await asyncio.gather(*(one_connection() for _ in range(self.connections)))
        elapsed = time.perf_counter() - start
        latencies.sort()
        return LoadResult(
            requests=len(latencies),
            seconds=round(elapsed, 3),
            rps=round(len(latencies) / elapsed, 1),
            p50_ms=round(_percentile(latencies, 50) * 1000, 3),
            p99_ms=round(_percentile(latencies, 99) * 1000, 3),
            errors=sum(errors.values()),
            error_detail=errors,
        )
