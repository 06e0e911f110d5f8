"""Benchmark flaskstack against the same app wired by hand, bare Flask and Django.

One command runs everything, from the repository root, in an environment with
the ``bench`` extra installed (``pip install -e '.[bench]'``)::

    python benchmarks/run.py            # the full run: 5 interleaved rounds
    python benchmarks/run.py --quick    # a smoke test in about a minute

It starts its own Redis (``redis-server``) and its own PostgreSQL cluster
(``initdb``) on free loopback ports, creates and seeds one database, serves
each app under gunicorn (2 sync workers; flaskstack and Django also under 2
gthread workers, on the endpoints that wait on PostgreSQL or Redis), and then:

1. counts Redis commands (``INFO commandstats``) and SQL statements (the
   server's statement log) per request of each endpoint;
2. times import + app creation (and the first request) in fresh processes;
3. loads each endpoint of each app with ``wrk`` (fixed connections, fixed
   duration), the apps taking turns within every round;
4. reads each worker's resident memory;

then stops everything, removes its temporary files and writes
``benchmarks/results/stack.json``, ``stack.md`` and ``stack.rst`` (the table
in the docs). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import functools
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import typing as t
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from stackbench import measure, report  # noqa: E402
from stackbench.apps import APPS, ENDPOINTS, app_environment, seed, sign_in  # noqa: E402
from stackbench.client import USER_AGENT, request  # noqa: E402
from stackbench.load import PythonLoad, WrkLoad, find_wrk  # noqa: E402
from stackbench.services import (  # noqa: E402
    AppServer,
    HarnessError,
    PostgresCluster,
    RedisServer,
    cpu_seconds,
)

DATABASE = "stackbench"
VERSIONS = (
    "flask",
    "werkzeug",
    "flask-sqlalchemy",
    "sqlalchemy",
    "flask-login",
    "flask-wtf",
    "flask-restful",
    "flask-caching",
    "flask-session",
    "redis",
    "psycopg",
    "django",
    "gunicorn",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s runs, few samples")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per load run (default 6; quick 1)")
    parser.add_argument("--warmup", type=float, help="seconds of load before each run (1; quick 0)")
    parser.add_argument("--connections", type=int, default=8, help="open connections (8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument(
        "--startup-samples", type=int, help="fresh processes per app (default 20; quick 3)"
    )
    parser.add_argument(
        "--count-requests", type=int, help="requests counted per endpoint (default 50; quick 10)"
    )
    parser.add_argument("--apps", help=f"comma-separated subset of {[a.key for a in APPS]}")
    parser.add_argument(
        "--endpoints", help=f"comma-separated subset of {[e.key for e in ENDPOINTS]}"
    )
    parser.add_argument(
        "--load-generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="wrk, or the pure-Python fallback (auto: wrk when installed)",
    )
    parser.add_argument(
        "--install-wrk", action="store_true", help="apt-get install wrk first when it is missing"
    )
    parser.add_argument(
        "--plugin",
        choices=["run", "reference", "skip"],
        help="run benchmarks/plugin_vs_create_all.py, or only cite its last results "
        "(default: run; quick: reference)",
    )
    parser.add_argument(
        "--profile",
        metavar="APP:ENDPOINT[,...]",
        help="instead of the load runs, time and profile these endpoints in-process with "
        "pyinstrument ('flaskstack:me,hand-wired:me', 'flaskstack:*'); writes results/profiles/",
    )
    parser.add_argument(
        "--profile-requests", type=int, default=2000, help="requests per profile (2000)"
    )
    parser.add_argument(
        "--instructions",
        type=int,
        help="requests per app and endpoint whose CPU instructions valgrind's callgrind counts "
        "in-process (default 100; quick 0: not counted; needs valgrind)",
    )
    parser.add_argument("--pg-bin", help="directory of PostgreSQL's initdb and pg_ctl")
    parser.add_argument(
        "--output", type=Path, default=HERE / "results", help="where results go (results/)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "rounds": 1 if quick else 5,
        "duration": 1.0 if quick else 6.0,
        "warmup": 0.0 if quick else 1.0,
        "startup_samples": 3 if quick else 20,
        "count_requests": 10 if quick else 50,
        "instructions": 0 if quick else 100,
        "plugin": "reference" if quick else "run",
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.profiles = _profiles(args.profile) if args.profile else []
    args.app_specs = _subset(args.apps, APPS, "--apps")
    args.endpoint_specs = _subset(args.endpoints, ENDPOINTS, "--endpoints")
    return args


def _subset(value: str | None, known: t.Sequence[t.Any], option: str) -> list[t.Any]:
    if not value:
        return list(known)
    by_key = {item.key: item for item in known}
    wanted = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in by_key]
    if unknown:
        raise SystemExit(f"{option}: unknown {unknown}; choose from {list(by_key)}")
    return [by_key[name] for name in wanted]


def _profiles(value: str) -> list[tuple[t.Any, t.Any]]:
    apps = {app.key: app for app in APPS}
    endpoints = {endpoint.key: endpoint for endpoint in ENDPOINTS}
    wanted = []
    for item in value.split(","):
        app_key, _, endpoint_key = item.strip().partition(":")
        if app_key not in apps or (endpoint_key not in endpoints and endpoint_key != "*"):
            raise SystemExit(
                f"--profile: {item.strip()!r} is not APP:ENDPOINT with APP in {list(apps)} and "
                f"ENDPOINT in {list(endpoints)} or '*'"
            )
        chosen = endpoints.values() if endpoint_key == "*" else [endpoints[endpoint_key]]
        wanted += [(apps[app_key], e) for e in chosen if e.served_by(app_key)]
    return wanted


def log(message: str, started: float = time.monotonic()) -> None:
    print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)


def load_generator(args: argparse.Namespace, workdir: Path) -> WrkLoad | PythonLoad:
    wrk = find_wrk()
    if wrk is None and args.load_generator != "python" and args.install_wrk:
        log("wrk is missing: apt-get install -y wrk")
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
        wrk = find_wrk()
    if args.load_generator == "python":
        return PythonLoad(args.connections)
    if wrk is None:
        if args.load_generator == "wrk":
            raise HarnessError(
                "wrk is not installed: apt-get install wrk (Debian/Ubuntu), brew install wrk "
                "(macOS), or run with --install-wrk."
            )
        log(
            "wrk is not installed, so the pure-Python load generator is used; its numbers are "
            "lower and noisier. Install wrk (apt-get install wrk, brew install wrk) or pass "
            "--install-wrk."
        )
        return PythonLoad(args.connections)
    return WrkLoad(wrk, args.connections, workdir)


def environment_facts(env: dict[str, str]) -> dict[str, t.Any]:
    versions = {}
    for name in VERSIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    where = subprocess.run(
        [sys.executable, "-c", "import flaskstack as f; print(f.__version__, f.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "flaskstack"],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    versions["flaskstack"] = where[0] if where else "?"
    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
        "flaskstack_path": str(Path(where[1]).parent) if len(where) > 1 else "?",
        "git_commit": commit + ("+uncommitted flaskstack/ changes" if dirty else ""),
        "flaskstack_config_override": env.get("STACKBENCH_FLASKSTACK_CONFIG"),
    }


def run(args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack) -> dict[str, t.Any]:
    apps, endpoints = args.app_specs, args.endpoint_specs
    loader = load_generator(args, workdir)

    log("starting redis-server and a PostgreSQL cluster")
    redis_server = RedisServer(workdir)
    stack.callback(redis_server.stop)
    cluster = PostgresCluster(workdir, args.pg_bin)
    stack.callback(cluster.stop)
    database_url = cluster.create_database(DATABASE)
    env = app_environment(database_url, redis_server.url, secrets.token_urlsafe(48))
    facts = environment_facts(env)

    log("creating and seeding the tables")
    seeded = seed(cluster, DATABASE, env)

    servers: dict[str, AppServer] = {}
    for app in apps:
        server = AppServer(
            app.key, app.target, env, HERE / "apps", workdir, args.workers, app.threads
        )
        stack.callback(server.stop)
        servers[app.key] = server
    for server in servers.values():
        base = server.base_url
        server.wait_ready(lambda base=base: _answers(base))
    log(f"serving {', '.join(f'{k} on :{s.port}' for k, s in servers.items())}")
    states = {key: sign_in(server.base_url, seeded.token) for key, server in servers.items()}

    if args.profiles:
        return {"profiles": profile(args, env, servers, states)}

    log(f"timing start-up: {args.startup_samples} fresh processes per app")
    startup = measure.startup_times(apps, env, args.startup_samples)
    if args.instructions > 0:
        log("counting the instructions of each app's start-up")
        own_code = [app for app in apps if app.same_code_as is None]
        counted = measure.startup_instructions(own_code, env, _valgrind(), workdir)
        for key, instructions in counted.items():
            startup[key]["create_instructions"] = instructions

    log("warming every worker up")
    for endpoint in endpoints:
        for key, server in servers.items():
            if endpoint.served_by(key):
                measure.warm(server, states[key], endpoint, 16)

    log(f"counting Redis commands and SQL statements over {args.count_requests} requests each")
    counts: dict[str, dict[str, t.Any]] = {e.key: {} for e in endpoints}
    with cluster.counting():
        for endpoint in endpoints:
            for key, server in servers.items():
                if not endpoint.served_by(key):
                    continue
                if endpoint.auth == "token":
                    # flaskstack records a token's use at most once a minute: start a
                    # fresh minute, so that no request counted here writes.
                    cluster.execute(DATABASE, "UPDATE api_tokens SET last_used_at = now()")
                measure.warm(server, states[key], endpoint, 8)
                counts[endpoint.key][key] = measure.count_per_request(
                    cluster, redis_server, server, states[key], endpoint, args.count_requests
                )

    runs: dict[str, dict[str, list[dict[str, t.Any]]]] = {
        e.key: {a.key: [] for a in apps if e.served_by(a.key)} for e in endpoints
    }
    for round_number in range(args.rounds):
        for index, endpoint in enumerate(endpoints):
            turn = (round_number + index) % len(apps)
            for app in [*apps[turn:], *apps[:turn]]:
                if not endpoint.served_by(app.key):
                    continue
                server, state = servers[app.key], states[app.key]
                headers, body = state.request_for(endpoint)
                if args.warmup > 0:
                    loader.run(
                        server.base_url, endpoint.method, endpoint.path, headers, body, args.warmup
                    )
                groups = {
                    "app": server.worker_pids(),
                    "postgres": cluster.pids(),
                    "redis": [redis_server.process.pid],
                }
                before = {name: cpu_seconds(pids) for name, pids in groups.items()}
                result = loader.run(
                    server.base_url, endpoint.method, endpoint.path, headers, body, args.duration
                )
                used = {
                    name: (cpu_seconds(pids) - before[name]) * 1000 / max(result.requests, 1)
                    for name, pids in groups.items()
                }
                cpu = {name: round(ms, 3) for name, ms in used.items()}
                cpu["total"] = round(sum(used.values()), 3)
                runs[endpoint.key][app.key].append(
                    {"round": round_number + 1, "load_average": round(os.getloadavg()[0], 2)}
                    | result.as_dict()
                    | {"cpu_ms_per_request": cpu}
                )
                flag = f" ({result.errors} errors)" if result.errors else ""
                log(
                    f"round {round_number + 1}/{args.rounds} {endpoint.key:<12} {app.key:<11} "
                    f"{result.rps:8.1f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:6.2f} ms  CPU {cpu['total']:.2f} ms/request{flag}"
                )

    memory = {key: measure.memory(server) for key, server in servers.items()}
    instructions: dict[str, dict[str, int]] = {}
    if args.instructions > 0:
        instructions = count_instructions(args, env, apps, endpoints, servers, states, workdir)
    return {
        "facts": facts
        | {
            "postgresql": cluster.version,
            "redis_server": redis_server.version,
            "load_generator": f"{loader.name} ({loader.version})",
        },
        "seed": {"users": seeded.users, "notes": seeded.notes},
        "startup": startup,
        "memory": memory,
        "counts": counts,
        "runs": runs,
        "instructions": instructions,
    }


def _inprocess_spec(app: t.Any, endpoint: t.Any, state: t.Any, requests: int) -> dict[str, t.Any]:
    """What ``stackbench.inprocess`` needs to send ``endpoint``'s request to ``app``."""
    headers, body = state.request_for(endpoint)
    return {
        "name": f"{app.key} {endpoint.key}",
        "create": app.create,
        "method": endpoint.method,
        "path": endpoint.path,
        "headers": {"User-Agent": USER_AGENT, **headers},
        "body": body,
        "expect": endpoint.expect,
        "requests": requests,
        "package": "flaskstack",
    }


def _inprocess_env(env: dict[str, str]) -> dict[str, str]:
    return env | {"PYTHONPATH": os.pathsep.join([str(HERE), env["PYTHONPATH"]])}


def count_instructions(
    args: argparse.Namespace,
    env: dict[str, str],
    apps: t.Sequence[t.Any],
    endpoints: t.Sequence[t.Any],
    servers: dict[str, AppServer],
    states: dict[str, t.Any],
    workdir: Path,
) -> dict[str, dict[str, int]]:
    """CPU instructions per request of each endpoint of each app, in-process, by callgrind.

    Each count runs ``stackbench.inprocess --count`` twice under ``valgrind
    --tool=callgrind``, side by side, in fresh interpreters (``PYTHONHASHSEED=0``): with
    ``--instructions`` requests after the warm-up, and with none. The difference
    divided by the requests is one request's instructions, start-up excluded. How
    busy the machine is does not change it; what happens at most once in a while
    (a timer, a write made once per interval) can, by a few percent from one run to
    the next on the database endpoints. The database and Redis servers' work is not
    in it; the client libraries' is.
    """
    valgrind = _valgrind()
    run_env = _inprocess_env(env) | {"PYTHONHASHSEED": "0"}
    requests = args.instructions
    found: dict[str, dict[str, int]] = {e.key: {} for e in endpoints}
    for endpoint in endpoints:
        for app in apps:
            if not endpoint.served_by(app.key) or app.same_code_as is not None:
                continue  # a variant of another app's worker model runs that app's code
            measure.warm(servers[app.key], states[app.key], endpoint, 8)
            spec = json.dumps(_inprocess_spec(app, endpoint, states[app.key], requests))
            run = functools.partial(_callgrind_run, valgrind, run_env, workdir, app, endpoint, spec)
            # Side by side: a count does not depend on what else the machine does.
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                totals = list(pool.map(run, (requests, 0)))
            found[endpoint.key][app.key] = round((totals[0] - totals[1]) / requests)
            log(
                f"instructions {endpoint.key:<12} {app.key:<16} "
                f"{found[endpoint.key][app.key]:>12,} per request"
            )
    return found


def _callgrind_run(
    valgrind: str,
    env: dict[str, str],
    workdir: Path,
    app: t.Any,
    endpoint: t.Any,
    spec: str,
    sent: int,
) -> int:
    """The instructions of one ``stackbench.inprocess --count`` run sending ``sent`` requests."""
    return measure.callgrind(
        valgrind,
        workdir / f"callgrind-{app.key}-{endpoint.key}-{sent}.out",
        ["-m", "stackbench.inprocess", "--count", str(sent), spec],
        env,
        f"counting {app.key} {endpoint.key}",
        cwd=HERE.parent,
    )


def _valgrind() -> str:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise HarnessError(
            "counting instructions needs valgrind (apt-get install valgrind), or pass "
            "--instructions 0"
        )
    return valgrind


def profile(
    args: argparse.Namespace,
    env: dict[str, str],
    servers: dict[str, AppServer],
    states: dict[str, t.Any],
) -> list[dict[str, t.Any]]:
    """Time and profile each chosen endpoint in a fresh process (``stackbench.inprocess``)."""
    env = _inprocess_env(env)
    found = []
    for app, endpoint in args.profiles:
        if app.key not in states:
            raise HarnessError(f"--profile {app.key}:…, but --apps leaves {app.key} out")
        # Warm the endpoint up on the server, as the load runs do (caches, tokens).
        measure.warm(servers[app.key], states[app.key], endpoint, 8)
        spec = _inprocess_spec(app, endpoint, states[app.key], args.profile_requests)
        log(f"profiling {app.key} {endpoint.key}: {args.profile_requests} requests in-process")
        result = subprocess.run(
            [sys.executable, "-m", "stackbench.inprocess", json.dumps(spec)],
            env=env,
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise HarnessError(f"profiling {spec['name']} failed:\n{result.stderr[-3000:]}")
        data = json.loads(result.stdout.strip().splitlines()[-1])
        log(
            f"  {data['wall_us_per_request']:.0f} µs/request wall, "
            f"{data['cpu_us_per_request']:.0f} µs CPU (without the profiler)"
        )
        found.append({"app": app.key, "endpoint": endpoint.key, **data})
    return found


def _answers(base_url: str) -> bool:
    try:
        return request(base_url, "GET", "/", timeout=5).status == 200
    except OSError:
        return False


def plugin_results(mode: str) -> dict[str, t.Any] | None:
    if mode == "skip":
        return None
    if mode == "run":
        log("running benchmarks/plugin_vs_create_all.py")
        subprocess.run([sys.executable, str(HERE / "plugin_vs_create_all.py")], check=True)
    path = HERE / "results" / "plugin.json"
    if not path.exists():
        return None
    data: dict[str, t.Any] = json.loads(path.read_text())
    return data


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.timezone.utc)
    workdir = Path(tempfile.mkdtemp(prefix="stackbench-"))

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        with contextlib.ExitStack() as stack:
            measured = run(args, workdir, stack)
            log("stopping the apps, Redis and PostgreSQL")
    except HarnessError as exc:
        print(f"stackbench: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    if args.profiles:
        report.write_profiles(args.output / "profiles", measured["profiles"])
        log(f"wrote {args.output / 'profiles'}")
        return 0

    plugin = plugin_results(args.plugin)
    results = report.assemble(
        args, started, measured, plugin, sys.argv[1:] if argv is None else argv
    )
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "stack.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.output / "stack.md").write_text(report.markdown(results))
    (args.output / "stack.rst").write_text(report.rst(results))
    log(f"wrote {args.output / 'stack.json'}, stack.md and stack.rst")
    missed = [target for target in results["targets"] if target["met"] is False]
    for target in missed:
        log(f"target missed: {target['target']}: {target['measured']} (wanted {target['wanted']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
