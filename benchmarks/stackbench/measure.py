"""What the harness measures besides load: counts per request, start-up time, memory."""

from __future__ import annotations

import collections
import concurrent.futures
import json
import statistics
import subprocess
import sys
import textwrap
import time
import typing as t
from pathlib import Path

from .apps import APPS_DIR
from .client import USER_AGENT, request
from .services import HarnessError, memory_kib

if t.TYPE_CHECKING:
    from .apps import AppSpec, ClientState, Endpoint
    from .services import AppServer, PostgresCluster, RedisServer

__all__ = [
    "callgrind",
    "count_per_request",
    "memory",
    "send",
    "startup_instructions",
    "startup_times",
    "statement_kind",
]

HEAVY_MODULES = (
    "alembic",
    "flask_migrate",
    "flask_restful",
    "flask_session",
    "flask_caching",
    "flask_wtf",
    "flask_login",
    "flask_sqlalchemy",
    "psycopg",
    "django",
)
"""Modules whose presence after start-up the results record."""


def send(server: AppServer, state: ClientState, endpoint: Endpoint) -> None:
    """One request to ``endpoint``; fail unless it answers the expected status."""
    headers, body = state.request_for(endpoint)
    reply = request(
        server.base_url, endpoint.method, endpoint.path, headers, body.encode() if body else None
    )
    if reply.status != endpoint.expect:
        raise HarnessError(
            f"{server.name} {endpoint.method} {endpoint.path}: expected {endpoint.expect}, "
            f"got {reply.status}: {reply.body[:300]!r}"
        )


def warm(server: AppServer, state: ClientState, endpoint: Endpoint, requests: int) -> None:
    """Send ``requests`` requests, four at a time, so that every worker is warm."""
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(send, server, state, endpoint) for _ in range(requests)]:
            future.result()


def statement_kind(sql: str) -> str:
    """``SELECT``, ``BEGIN``… or ``;`` for the empty statement of a connection ping."""
    words = sql.strip().rstrip(";").split(None, 1)
    return words[0].upper() if words else ";"


def count_per_request(
    cluster: PostgresCluster,
    redis_server: RedisServer,
    server: AppServer,
    state: ClientState,
    endpoint: Endpoint,
    requests: int,
) -> dict[str, t.Any]:
    """Redis commands and SQL statements per request, over ``requests`` sequential requests.

    Call it with statement logging on and every worker warm.
    """
    offset = cluster.log_offset()
    redis_server.reset_stats()
    for _ in range(requests):
        send(server, state, endpoint)
    time.sleep(0.3)  # let the servers finish writing what the last request did
    calls = redis_server.command_calls()
    statements = cluster.statements_since(offset)
    kinds = collections.Counter(statement_kind(sql) for sql in statements)
    return {
        "redis_per_request": round(sum(calls.values()) / requests, 3),
        "redis_commands": {name: round(n / requests, 3) for name, n in sorted(calls.items())},
        "sql_per_request": round(len(statements) / requests, 3),
        "sql_statements": {name: round(n / requests, 3) for name, n in kinds.most_common()},
        "sql_example": _one_request(statements, requests),
    }


def _one_request(statements: list[str], requests: int) -> list[str]:
    """The statements of the last request, when every request ran the same number."""
    if not statements or len(statements) % requests:
        return []
    each = len(statements) // requests
    return [sql[:160] for sql in statements[-each:]]


_STARTUP = """
import json, sys, time
started = time.perf_counter()
{create}
created = time.perf_counter()
from wsgiref.util import setup_testing_defaults
environ = {{"HTTP_USER_AGENT": {agent!r}}}
setup_testing_defaults(environ)
statuses = []
body = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
answered = time.perf_counter()
print(json.dumps({{
    "create_s": created - started,
    "first_request_s": answered - created,
    "status": statuses[0],
    "modules": len(sys.modules),
    "heavy": [name for name in {heavy!r} if name in sys.modules],
}}))
"""


def startup_times(
    apps: t.Sequence[AppSpec], env: dict[str, str], samples: int
) -> dict[str, dict[str, t.Any]]:
    """Import + app creation, and the first request to ``/``, each in a fresh process.

    The apps take turns, so that a slow moment of the machine hits them alike.
    """
    runs: dict[str, list[dict[str, t.Any]]] = {app.key: [] for app in apps}
    for sample in range(samples):
        turn = sample % len(apps)
        for app in [*apps[turn:], *apps[:turn]]:
            code = _STARTUP.format(
                create=textwrap.dedent(app.create), agent=USER_AGENT, heavy=HEAVY_MODULES
            )
            output = _run([sys.executable, "-c", code], env, f"starting {app.key}")
            data = json.loads(output.strip().splitlines()[-1])
            if not data["status"].startswith("200"):
                raise HarnessError(f"{app.key}: GET / answered {data['status']} at start-up")
            runs[app.key].append(data)
    summary = {}
    for key, samples_of_app in runs.items():
        create_ms = [round(run["create_s"] * 1000, 1) for run in samples_of_app]
        first_ms = [round(run["first_request_s"] * 1000, 1) for run in samples_of_app]
        summary[key] = {
            "create_ms": create_ms,
            "create_ms_median": round(statistics.median(create_ms), 1),
            "first_request_ms_median": round(statistics.median(first_ms), 1),
            "modules": samples_of_app[-1]["modules"],
            "heavy_modules": samples_of_app[-1]["heavy"],
        }
    return summary


def startup_instructions(
    apps: t.Sequence[AppSpec], env: dict[str, str], valgrind: str, workdir: Path
) -> dict[str, int]:
    """CPU instructions of import + app creation, by callgrind: one fresh process per app.

    The interpreter's own start is in it, alike for every app. Run it after
    :func:`startup_times`, which has written every module's bytecode, so that no app
    pays for compiling. The apps run side by side: a count does not depend on what
    else the machine does.
    """

    def count(app: AppSpec) -> int:
        return callgrind(
            valgrind,
            workdir / f"callgrind-startup-{app.key}.out",
            ["-c", textwrap.dedent(app.create)],
            env | {"PYTHONHASHSEED": "0"},
            f"counting {app.key}'s start-up",
        )

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        counts = dict(zip([app.key for app in apps], pool.map(count, apps), strict=True))
    return counts


def callgrind(
    valgrind: str,
    out: Path,
    arguments: list[str],
    env: dict[str, str],
    what: str,
    cwd: Path = APPS_DIR,
) -> int:
    """The instructions ``python *arguments`` executes, counted by callgrind into ``out``."""
    command = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
    _run([*command, *arguments], env, what, cwd)
    return _callgrind_total(out)


def _run(command: list[str], env: dict[str, str], what: str, cwd: Path = APPS_DIR) -> str:
    """Run ``command`` (in the apps' directory); its output, or :class:`HarnessError`."""
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HarnessError(f"{what} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def _callgrind_total(out: Path) -> int:
    """The instruction total of a callgrind output file."""
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise HarnessError(f"callgrind wrote no total to {out}")


def memory(server: AppServer) -> dict[str, t.Any]:
    """Resident memory of each gunicorn worker, in MiB."""
    workers = [memory_kib(pid) for pid in server.worker_pids()]
    rss = [round(w["rss"] / 1024, 1) for w in workers if "rss" in w]
    pss = [round(w["pss"] / 1024, 1) for w in workers if "pss" in w]
    return {
        "worker_rss_mib": rss,
        "worker_rss_mib_median": round(statistics.median(rss), 1) if rss else None,
        "worker_pss_mib_median": round(statistics.median(pss), 1) if pss else None,
    }
