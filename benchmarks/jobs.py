"""What flaskstack's background jobs cost a request, and how fast workers run them.

One command measures, side by side, in an environment with the ``bench`` extra::

    python benchmarks/jobs.py            # the full run, about 2 minutes on 2 cores
    python benchmarks/jobs.py --quick    # tiny sizes, for tests/test_benchmark_jobs.py

It starts its own ``redis-server`` and PostgreSQL cluster (``initdb``) on free
loopback ports, as ``benchmarks/run.py`` does, and then:

1. **Per request.** Redis commands (``INFO commandstats`` deltas) and SQL
   statements (the server's statement log) of each endpoint of the app below,
   in three fresh web processes: the app without jobs (``FLASKSTACK_JOBS``
   unset), with ``FLASKSTACK_JOBS=false``, and with ``FLASKSTACK_JOBS=true``;
   and which of RQ's modules each web process imported after serving them.
2. **Enqueue latency.** Each request of an endpoint that enqueues one job,
   and of the same endpoint without the enqueue, timed in turns through the
   Flask test client (in-process, no HTTP, sequential): median and p95.
3. **Start latency.** An idle worker (``flask stack worker``), one job at a
   time: from the call to ``enqueue`` (and from RQ's ``enqueued_at``) to the
   ``time.time()`` the job records when it starts.
4. **Throughput.** A fixed number of trivial jobs run by one and by two
   ``flask stack worker`` processes, timed from the first enqueue to the
   last finish (RQ's ``ended_at`` of each job).

Results go to ``benchmarks/results/jobs.json`` and ``jobs.md`` (``--output``
writes elsewhere). The app and its jobs are in this module: web processes and
workers import it as ``jobs`` (``FLASK_APP=jobs:create_app``), as a worker
imports a real app's jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from importlib import metadata
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Mapped, mapped_column

import flaskstack
from flaskstack import csrf, db
from flaskstack import jobs as fs_jobs

if t.TYPE_CHECKING:
    from stackbench.services import PostgresCluster, RedisServer

HERE = Path(__file__).resolve().parent
DATABASE = "jobsbench"
VARIANTS = {
    "without": "the app without jobs (FLASKSTACK_JOBS unset)",
    "off": "FLASKSTACK_JOBS=false",
    "on": "FLASKSTACK_JOBS=true",
}
# key: (method, path, label, enqueues a job)
ENDPOINTS: dict[str, tuple[str, str, str, bool]] = {
    "page": ("POST", "/page", "page (no data)", False),
    "read": ("GET", "/items/1", "read one row", False),
    "write": ("POST", "/items", "insert one row, commit", False),
    "enqueue": ("POST", "/enqueue", "page + enqueue one job", True),
    "write_enqueue": ("POST", "/items/enqueue", "insert, enqueue one job, commit", True),
}
# Each enqueueing endpoint and the same endpoint without the enqueue.
PAIRS = {"enqueue": "page", "write_enqueue": "write"}
# rq is what enqueueing needs; flaskstack._jobs_worker is the worker, which a web
# process never needs (importing rq imports rq.worker itself, so that one tells nothing).
RQ_MODULES = ("rq", "flaskstack._jobs_worker")
STOP_GRACE = 5.0
VERSIONS = ("flask", "flaskstack", "rq", "redis", "sqlalchemy", "flask-sqlalchemy", "psycopg")


# -- the app ---------------------------------------------------------------------------


class Item(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "jobsbench_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(100))


@fs_jobs.job
def noop() -> None:
    """The trivial job of the throughput runs."""


@fs_jobs.job
def started() -> float:
    """The job of the start-latency runs: when it started, by the machine's clock."""
    return time.time()


def page() -> str:
    return "ok"


def read_item(item_id: int) -> dict[str, t.Any]:
    item = db.get_or_404(Item, item_id)
    return {"id": item.id, "value": item.value}


def write_item() -> tuple[str, int]:
    db.session.add(Item(value="written"))
    db.session.commit()
    return "created", 201


def enqueue_page() -> str:
    return noop.enqueue().id


def write_item_enqueue() -> tuple[str, int]:
    item = Item(value="written")
    db.session.add(item)
    new_job = noop.enqueue()  # held until the commit
    db.session.commit()
    return new_job.id, 201


def create_app() -> Flask:
    """The benchmark app: settings from the environment, production profile.

    ``FLASKSTACK_JOBS`` (unset, ``false`` or ``true``) comes from the
    environment too; the enqueueing endpoints exist only with jobs on.
    """
    app = Flask("jobsbench")
    flaskstack.init_app(
        app,
        {"FLASKSTACK_PASSWORD_RESET": False, "FLASKSTACK_EMAIL_CONFIRMATION": "off"},
        profile="production",
    )
    views = {"page": page, "read": read_item, "write": write_item}
    if app.config["FLASKSTACK_JOBS"]:
        views |= {"enqueue": enqueue_page, "write_enqueue": write_item_enqueue}
    for key, view in views.items():
        method, path, _label, _enqueues = ENDPOINTS[key]
        rule = re.sub(r"/1$", "/<int:item_id>", path)
        app.add_url_rule(rule, key, csrf.exempt(view), methods=[method])
    return app


# -- what runs in the web processes (``python -c "import jobs; jobs.child(...)"``) ------


_STATEMENT = re.compile(r"LOG:  (?:statement|execute [^:]*): (.*)$")


def child(spec_json: str) -> None:
    """Run one step in this fresh process and print its result as JSON."""
    spec = json.loads(spec_json)
    app = create_app()
    step: t.Callable[[Flask, dict[str, t.Any]], t.Any] = {
        "setup": _setup,
        "count": _count,
        "time": _time,
        "latency": _latency,
        "throughput": _throughput,
    }[spec["step"]]
    result = step(app, spec)
    print(json.dumps(result))


def _setup(app: Flask, spec: dict[str, t.Any]) -> None:
    with app.app_context():
        Item.__table__.create(db.engine)
        db.session.add(Item(value="first"))  # id 1
        db.session.commit()


def _call(client: t.Any, key: str) -> None:
    method, path, _label, _enqueues = ENDPOINTS[key]
    response = client.open(path, method=method)
    status = response.status_code
    response.close()
    if status not in (200, 201):
        raise RuntimeError(f"{method} {path} answered {status}: {response.get_data()[:300]!r}")


def _command_calls(admin: t.Any) -> dict[str, int]:
    calls = {}
    for name, values in admin.info("commandstats").items():
        command = name.removeprefix("cmdstat_")
        if command.split("|")[0] not in ("info", "config"):
            calls[command] = int(values["calls"])
    return calls


def _statement_kind(sql: str) -> str:
    words = sql.strip().rstrip(";").split(None, 1)
    return words[0].upper() if words else ";"


def _count(app: Flask, spec: dict[str, t.Any]) -> dict[str, t.Any]:
    """Redis commands and SQL statements per request of each endpoint, and modules loaded."""
    import redis

    admin = redis.Redis.from_url(spec["redis_url"])
    log = Path(spec["postgres_log"])
    client = app.test_client()
    requests = spec["requests"]
    counts: dict[str, t.Any] = {}
    modules: dict[str, dict[str, bool]] = {}
    keys = [key for key in ENDPOINTS if spec["enqueue"] or not ENDPOINTS[key][3]]
    for key in keys:
        if ENDPOINTS[key][3] and "before enqueueing" not in modules:
            modules["before enqueueing"] = {name: name in sys.modules for name in RQ_MODULES}
        for _ in range(spec["warm"]):
            _call(client, key)
        time.sleep(0.05)
        before = _command_calls(admin)
        offset = log.stat().st_size
        for _ in range(requests):
            _call(client, key)
        time.sleep(0.15)  # let PostgreSQL finish writing its log
        after = _command_calls(admin)
        with log.open("rb") as file:
            file.seek(offset)
            text = file.read().decode("utf-8", "replace")
        statements = [m.group(1) for line in text.splitlines() if (m := _STATEMENT.search(line))]
        calls = {c: n - before.get(c, 0) for c, n in after.items() if n != before.get(c, 0)}
        kinds: dict[str, int] = {}
        for sql in statements:
            kinds[_statement_kind(sql)] = kinds.get(_statement_kind(sql), 0) + 1
        counts[key] = {
            "redis_per_request": round(sum(calls.values()) / requests, 3),
            "redis_commands": {c: round(n / requests, 3) for c, n in sorted(calls.items())},
            "sql_per_request": round(len(statements) / requests, 3),
            "sql_statements": {k: round(n / requests, 3) for k, n in kinds.items()},
        }
    modules["after all requests" if spec["enqueue"] else "before enqueueing"] = {
        name: name in sys.modules for name in RQ_MODULES
    }
    return {"counts": counts, "modules": modules}


def _time(app: Flask, spec: dict[str, t.Any]) -> dict[str, list[float]]:
    """Milliseconds per request of each endpoint of ``PAIRS``, the two of a pair in turns."""
    client = app.test_client()
    timings: dict[str, list[float]] = {key: [] for pair in PAIRS.items() for key in pair}
    for key in timings:
        for _ in range(spec["warm"]):
            _call(client, key)
    for round_number in range(spec["requests"]):
        for with_job, without in PAIRS.items():
            order = (with_job, without) if round_number % 2 else (without, with_job)
            for key in order:
                start = time.perf_counter()
                _call(client, key)
                timings[key].append(round((time.perf_counter() - start) * 1000, 4))
    return timings


def _latency(app: Flask, spec: dict[str, t.Any]) -> list[dict[str, float]]:
    """Enqueue one job at a time on an idle worker; when did each start?"""
    samples = []
    with app.app_context():
        for number in range(spec["warm"] + spec["jobs"]):
            time.sleep(spec["gap"])  # the worker is idle, waiting in a blocking pop
            called = time.time()
            new_job = started.enqueue()
            result = new_job.latest_result(timeout=60)
            if result is None or result.return_value is None:
                raise RuntimeError(f"job {new_job.id} did not finish within 60 s")
            assert new_job.enqueued_at is not None
            began = float(result.return_value)
            if number >= spec["warm"]:
                samples.append(
                    {
                        "from_call_ms": round((began - called) * 1000, 3),
                        "from_enqueued_at_ms": round(
                            (began - new_job.enqueued_at.timestamp()) * 1000, 3
                        ),
                    }
                )
    return samples


def _throughput(app: Flask, spec: dict[str, t.Any]) -> dict[str, t.Any]:
    """Enqueue ``jobs`` trivial jobs while the workers run; when did the last one end?"""
    from flaskstack.redis import get_redis

    jobs = spec["jobs"]
    namespace = app.config["FLASKSTACK_NAMESPACE"]
    finished_key = f"rq:finished:{namespace}:default"
    failed_key = f"rq:failed:{namespace}:default"
    with app.app_context():
        client = get_redis(app).client
        first = time.time()
        ids = [noop.enqueue().id for _ in range(jobs)]
        enqueued = time.time()
        deadline = time.monotonic() + spec["deadline"]
        while time.monotonic() < deadline:
            done = int(client.zcard(finished_key)) + int(client.zcard(failed_key))
            if done >= jobs:
                break
            time.sleep(0.02)
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(f"rq:job:{job_id}", ["started_at", "ended_at", "status"])
        stamps = pipe.execute()
    ended = [_timestamp(e) for _s, e, status in stamps if e and status == b"finished"]
    starts = [_timestamp(s) for s, _e, _status in stamps if s]
    failed = sum(1 for _s, _e, status in stamps if status == b"failed")
    last = max(ended) if ended else enqueued
    return {
        "jobs": jobs,
        "finished": len(ended),
        "failed": failed,
        "enqueue_s": round(enqueued - first, 3),
        "first_enqueue_to_last_finish_s": round(last - first, 3),
        "first_start_to_last_finish_s": round(last - min(starts), 3) if starts else None,
    }


def _timestamp(value: bytes) -> float:
    return (
        dt.datetime.strptime(value.decode(), "%Y-%m-%dT%H:%M:%S.%fZ")
        .replace(tzinfo=dt.timezone.utc)
        .timestamp()
    )


# -- the harness ----------------------------------------------------------------------


def log(message: str, started: float = time.monotonic()) -> None:
    print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)


class Harness:
    """The services of one run, and the processes it starts against them."""

    def __init__(self, workdir: Path, redis_server: RedisServer, cluster: PostgresCluster) -> None:
        self.workdir = workdir
        self.redis = redis_server
        self.cluster = cluster
        self.database_url = cluster.create_database(DATABASE).replace(
            "postgresql://", "postgresql+psycopg://"
        )
        self.secret_key = secrets.token_urlsafe(48)
        self.workers: list[subprocess.Popen[bytes]] = []

    def env(self, variant: str, namespace: str = "jobsbench") -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("FLASK_", "FLASKSTACK_")) and name not in ("REDIS_URL",)
        }
        env.update(
            PYTHONPATH=os.pathsep.join([str(HERE), *filter(None, [env.get("PYTHONPATH")])]),
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url,
            SECRET_KEY=self.secret_key,
            FLASKSTACK_NAMESPACE=namespace,
            FLASK_APP="jobs:create_app",
        )
        if variant != "without":
            env["FLASKSTACK_JOBS"] = "true" if variant == "on" else "false"
        return env

    def child(self, variant: str, spec: dict[str, t.Any], namespace: str = "jobsbench") -> t.Any:
        """Run ``spec`` in a fresh web process of ``variant``; its JSON result."""
        from stackbench.services import HarnessError

        result = subprocess.run(
            [sys.executable, "-c", "import sys, jobs; jobs.child(sys.argv[1])", json.dumps(spec)],
            env=self.env(variant, namespace),
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise HarnessError(f"{spec['step']} ({variant}) failed:\n{result.stderr[-4000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    @contextlib.contextmanager
    def running_workers(self, count: int, namespace: str) -> t.Iterator[dict[str, t.Any]]:
        """``count`` ``flask stack worker`` processes serving ``namespace``'s default queue.

        Yields a dict that, once the block ends, says how long the workers took
        to stop after SIGTERM; one still running after ``STOP_GRACE`` seconds
        is killed (and counted) so that the run goes on.
        """
        from stackbench.services import HarnessError

        processes = []
        logs = []
        for number in range(count):
            path = self.workdir / f"worker-{namespace}-{number}.log"
            logs.append(path)
            with path.open("wb") as output:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "flask", "stack", "worker",
                         "--name", f"{namespace}-{number}"],
                        env=self.env("on", namespace),
                        cwd=HERE,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )  # fmt: skip
        stopped: dict[str, t.Any] = {"stop_s": [], "killed": 0}
        try:
            deadline = time.monotonic() + 60
            key = f"rq:workers:{namespace}:default"
            while int(self.redis.client.scard(key)) < count:
                for process, path in zip(processes, logs, strict=True):
                    if process.poll() is not None:
                        raise HarnessError(
                            f"a worker exited with {process.returncode} at start; its log:\n"
                            + path.read_text(errors="replace")[-3000:]
                        )
                if time.monotonic() > deadline:
                    raise HarnessError(f"{count} worker(s) did not register within 60 s")
                time.sleep(0.05)
            yield stopped
        finally:
            stopping = time.monotonic()
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(max(0.1, stopping + STOP_GRACE - time.monotonic()))
                except subprocess.TimeoutExpired:
                    stopped["killed"] += 1
                    process.kill()
                    process.wait()
                stopped["stop_s"].append(round(time.monotonic() - stopping, 2))
            if stopped["killed"]:
                log(
                    f"  {stopped['killed']} worker(s) still running {STOP_GRACE} s after "
                    "SIGTERM: killed"
                )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (for the test)")
    parser.add_argument(
        "--count-requests", type=int, help="requests counted per endpoint (default 50; quick 5)"
    )
    parser.add_argument(
        "--timed-requests", type=int, help="timed requests per endpoint (default 1000; quick 30)"
    )
    parser.add_argument(
        "--latency-jobs", type=int, help="jobs timed from enqueue to start (default 200; quick 10)"
    )
    parser.add_argument("--jobs", type=int, help="jobs per throughput run (default 2000; quick 60)")
    parser.add_argument("--pg-bin", help="directory of PostgreSQL's initdb and pg_ctl")
    parser.add_argument(
        "--output", type=Path, default=HERE / "results", help="where results go (results/)"
    )
    args = parser.parse_args(argv)
    defaults = {
        "count_requests": (50, 5),
        "timed_requests": (1000, 30),
        "latency_jobs": (200, 10),
        "jobs": (2000, 60),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def summary(values: list[float]) -> dict[str, t.Any]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "samples": len(values),
        "median_ms": round(statistics.median(values), 3),
        "p95_ms": round(p95, 3),
    }


def measure(
    args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack
) -> dict[str, t.Any]:
    from stackbench.services import PostgresCluster, RedisServer

    log("starting redis-server and a PostgreSQL cluster")
    redis_server = RedisServer(workdir)
    stack.callback(redis_server.stop)
    cluster = PostgresCluster(workdir, args.pg_bin)
    stack.callback(cluster.stop)
    harness = Harness(workdir, redis_server, cluster)
    harness.child("without", {"step": "setup"})

    log(f"counting Redis commands and SQL statements over {args.count_requests} requests each")
    counted: dict[str, t.Any] = {}
    with cluster.counting():
        for variant in VARIANTS:
            counted[variant] = harness.child(
                variant,
                {
                    "step": "count",
                    "redis_url": redis_server.url,
                    "postgres_log": str(cluster.log),
                    "requests": args.count_requests,
                    "warm": 5,
                    "enqueue": variant == "on",
                },
            )

    log(f"timing {args.timed_requests} requests per endpoint, with and without an enqueue")
    timings = harness.child(
        "on", {"step": "time", "requests": args.timed_requests, "warm": 20}, "jobsbench-time"
    )

    log(f"start latency: {args.latency_jobs} jobs, one at a time, on an idle worker")
    with harness.running_workers(1, "jobsbench-latency") as latency_stop:
        latency = harness.child(
            "on",
            {"step": "latency", "jobs": args.latency_jobs, "warm": 3, "gap": 0.05},
            "jobsbench-latency",
        )

    throughput = {}
    for workers in (1, 2):
        log(f"throughput: {args.jobs} jobs, {workers} worker(s)")
        namespace = f"jobsbench-w{workers}"
        with harness.running_workers(workers, namespace) as stop:
            run = harness.child(
                "on", {"step": "throughput", "jobs": args.jobs, "deadline": 300}, namespace
            )
        run["worker_stop"] = stop
        seconds = run["first_enqueue_to_last_finish_s"]
        run["jobs_per_s"] = round(run["finished"] / seconds, 1) if seconds else None
        throughput[str(workers)] = run
        log(f"  {run['jobs_per_s']} jobs/s ({run['finished']} finished, {run['failed']} failed)")

    return {
        "facts": facts(redis_server, cluster),
        "counted": counted,
        "timings": timings,
        "latency": latency,
        "latency_worker_stop": latency_stop,
        "throughput": throughput,
    }


def facts(redis_server: RedisServer, cluster: PostgresCluster) -> dict[str, t.Any]:
    versions = {}
    for name in VERSIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)

    def git(*command: str) -> str:
        found = subprocess.run(
            ["git", *command], cwd=HERE.parent, capture_output=True, text=True, check=False
        )
        return found.stdout.strip()

    dirty = git("status", "--porcelain", "--", "flaskstack")
    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "postgresql": cluster.version,
        "redis_server": redis_server.version,
        "versions": versions,
        "git_commit": git("rev-parse", "--short", "HEAD")
        + ("+uncommitted flaskstack/ changes" if dirty else ""),
    }


def assemble(
    args: argparse.Namespace, started: dt.datetime, measured: dict[str, t.Any], argv: list[str]
) -> dict[str, t.Any]:
    counts = {variant: measured["counted"][variant]["counts"] for variant in VARIANTS}
    modules = {variant: measured["counted"][variant]["modules"] for variant in VARIANTS}
    checks = []
    for variant in ("off", "on"):
        for key, (_m, _p, label, enqueues) in ENDPOINTS.items():
            if enqueues:
                continue
            for field, what in (
                ("redis_per_request", "Redis commands"),
                ("sql_per_request", "SQL statements"),
            ):
                measured_value = counts[variant][key][field]
                wanted = counts["without"][key][field]
                checks.append(
                    {
                        "check": f"{VARIANTS[variant]}: {what} per request, {label}",
                        "measured": measured_value,
                        "wanted": wanted,
                        "met": measured_value == wanted,
                    }
                )
    for variant in VARIANTS:
        loaded = modules[variant]["before enqueueing"]["rq"]
        checks.append(
            {
                "check": f"{VARIANTS[variant]}: rq in sys.modules of the web process after "
                "serving requests that do not enqueue",
                "measured": loaded,
                "wanted": False,
                "met": loaded is False,
            }
        )
    for with_job, without in PAIRS.items():
        sql_with, sql_without = (counts["on"][k]["sql_per_request"] for k in (with_job, without))
        checks.append(
            {
                "check": f"jobs on: SQL statements per request, {ENDPOINTS[with_job][2]} "
                f"= {ENDPOINTS[without][2]}",
                "measured": sql_with,
                "wanted": sql_without,
                "met": sql_with == sql_without,
            }
        )
    worker_loaded = modules["on"]["after all requests"]["flaskstack._jobs_worker"]
    checks.append(
        {
            "check": "jobs on: flaskstack._jobs_worker in sys.modules of the web process after "
            "enqueueing",
            "measured": worker_loaded,
            "wanted": False,
            "met": worker_loaded is False,
        }
    )

    timings = measured["timings"]
    enqueue_cost = {}
    for with_job, without in PAIRS.items():
        a, b = summary(timings[with_job]), summary(timings[without])
        enqueue_cost[with_job] = {
            "compared_with": without,
            "with_enqueue": a,
            "without_enqueue": b,
            "added_median_ms": round(a["median_ms"] - b["median_ms"], 3),
            "added_p95_ms": round(a["p95_ms"] - b["p95_ms"], 3),
            "added_redis_per_request": round(
                counts["on"][with_job]["redis_per_request"]
                - counts["on"][without]["redis_per_request"],
                3,
            ),
        }
    latency = measured["latency"]
    return {
        "benchmark": "jobs",
        "mode": "quick" if args.quick else "full",
        "command": " ".join(["python benchmarks/jobs.py", *argv]),
        "generated": started.isoformat(timespec="seconds"),
        "facts": measured["facts"],
        "settings": {
            "count_requests": args.count_requests,
            "timed_requests": args.timed_requests,
            "latency_jobs": args.latency_jobs,
            "throughput_jobs": args.jobs,
            "timing_client": "Flask test client, in-process, sequential (no HTTP server)",
            "workers": "flask stack worker (RQ's forking worker: one work horse per job)",
        },
        "variants": VARIANTS,
        "endpoints": {
            key: {"method": m, "path": p, "label": label, "enqueues": e}
            for key, (m, p, label, e) in ENDPOINTS.items()
        },
        "counts": counts,
        "modules": modules,
        "free_when_off": checks,
        "enqueue_cost": enqueue_cost,
        "start_latency": {
            "from_enqueue_call": summary([s["from_call_ms"] for s in latency]),
            "from_enqueued_at": summary([s["from_enqueued_at_ms"] for s in latency]),
            "worker_stop": measured["latency_worker_stop"],
        },
        "throughput": measured["throughput"],
        "instructions": {
            "measured": False,
            "why": "benchmarks/instructions.py counts fixed in-process cases without Redis; "
            "under callgrind, starting Python with flaskstack and RQ alone takes about 45 s "
            "(about 2.9 billion instructions), twice per case, which does not fit this run",
        },
        "raw": {"timings_ms": timings, "start_latency": latency},
    }


def markdown(results: dict[str, t.Any]) -> str:
    facts = results["facts"]
    versions = ", ".join(f"{name} {v}" for name, v in facts["versions"].items())
    settings = results["settings"]
    counts = results["counts"]
    lines = [
        "# Background jobs: the cost to a request, and workers' speed",
        "",
        f"Generated by `{results['command']}` ({results['mode']} mode) on "
        f"{results['generated']}, flaskstack at {facts['git_commit']}: Python "
        f"{facts['python']}, {facts['machine']}, PostgreSQL {facts['postgresql']}, Redis "
        f"{facts['redis_server']}, load average at the end {facts['load_average']}. "
        f"Versions: {versions}.",
        "",
        "The harness runs its own Redis and PostgreSQL on loopback. The app "
        "(`benchmarks/jobs.py`) runs in the production profile; each column below is a fresh "
        "web process. Redis commands (`INFO commandstats`) and SQL statements (the server's "
        "statement log, `BEGIN` and `ROLLBACK`/`COMMIT` included) are per request, over "
        f"{settings['count_requests']} requests after warm-up; no worker runs meanwhile.",
        "",
        "## Per request: Redis commands / SQL statements",
        "",
        "| request | " + " | ".join(results["variants"].values()) + " |",
        "|---|" + "---:|" * len(results["variants"]),
    ]
    for key, endpoint in results["endpoints"].items():
        cells = []
        for variant in results["variants"]:
            found = counts[variant].get(key)
            cells.append(
                f"{_num(found['redis_per_request'])} / {_num(found['sql_per_request'])}"
                if found
                else "—"
            )
        lines.append(f"| {endpoint['label']} (`{endpoint['method']} {endpoint['path']}`) | "
                     + " | ".join(cells) + " |")  # fmt: skip
    for label, checkpoint, module in (
        ("`rq` imported by the web process, before any enqueue", "before enqueueing", "rq"),
        ("`rq` imported by the web process, after all requests", "after all requests", "rq"),
        ("`flaskstack._jobs_worker` (the worker) imported, after all requests",
         "after all requests", "flaskstack._jobs_worker"),
    ):  # fmt: skip
        cells = []
        for variant in results["variants"]:
            found = results["modules"][variant].get(checkpoint)
            cells.append("—" if found is None else ("yes" if found[module] else "no"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    enqueue_commands = counts["on"]["enqueue"]["redis_commands"]
    pipelines = enqueue_commands.get("exec", 0)
    lines += [
        "",
        "The Redis commands of one enqueue: "
        + ", ".join(f"`{c.upper()}` {_num(n)}" for c, n in enqueue_commands.items())
        + (
            f"; RQ sends them as {_num(pipelines)} `MULTI` … `EXEC` pipelines, one round trip each."
            if pipelines and pipelines == enqueue_commands.get("multi")
            else "."
        )
        + " Importing `rq` (needed to enqueue) also imports `rq.worker`: RQ's package "
        "imports it.",
        "",
        "## Free when off",
        "",
        "| check | measured | wanted | met |",
        "|---|---:|---:|---|",
    ]
    for check in results["free_when_off"]:
        lines.append(
            f"| {check['check']} | {_show(check['measured'])} | {_show(check['wanted'])} | "
            f"{'yes' if check['met'] else '**no**'} |"
        )
    lines += [
        "",
        "## Enqueueing in a request",
        "",
        f"{settings['timed_requests']} requests of each endpoint, through the "
        f"{settings['timing_client']}, jobs on, no worker running; the endpoint with the "
        "enqueue and the same one without take turns. Milliseconds.",
        "",
        "| request | median | p95 | Redis commands |",
        "|---|---:|---:|---:|",
    ]
    for key, cost in results["enqueue_cost"].items():
        for endpoint, stats in ((cost["compared_with"], cost["without_enqueue"]),
                                (key, cost["with_enqueue"])):  # fmt: skip
            lines.append(
                f"| {results['endpoints'][endpoint]['label']} | {stats['median_ms']:.3f} | "
                f"{stats['p95_ms']:.3f} | {_num(counts['on'][endpoint]['redis_per_request'])} |"
            )
        lines.append(
            f"| *added by the enqueue* | *+{cost['added_median_ms']:.3f}* | "
            f"*+{cost['added_p95_ms']:.3f}* | *+{_num(cost['added_redis_per_request'])}* |"
        )
    start = results["start_latency"]
    lines += [
        "",
        "## From enqueue to start, idle worker",
        "",
        f"One `flask stack worker`, idle (waiting in a blocking pop); "
        f"{start['from_enqueue_call']['samples']} jobs, one at a time, 50 ms apart. The job "
        "returns `time.time()` when it starts (after the worker forked its work horse and "
        "entered the app context). Milliseconds.",
        "",
        "| measured from | median | p95 |",
        "|---|---:|---:|",
        f"| the call to `enqueue()` | {start['from_enqueue_call']['median_ms']:.2f} | "
        f"{start['from_enqueue_call']['p95_ms']:.2f} |",
        f"| RQ's `job.enqueued_at` | {start['from_enqueued_at']['median_ms']:.2f} | "
        f"{start['from_enqueued_at']['p95_ms']:.2f} |",
        "",
        "## Throughput, trivial job",
        "",
        f"{settings['throughput_jobs']} jobs enqueued one by one (outside a request) while "
        f"the workers run: {settings['workers']}. Timed from the first enqueue to the last "
        "job's `ended_at`.",
        "",
        "| workers | finished | failed | enqueueing alone (s) | first enqueue → last finish (s) "
        "| jobs/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for workers, run in results["throughput"].items():
        lines.append(
            f"| {workers} | {run['finished']} | {run['failed']} | {run['enqueue_s']:.2f} | "
            f"{run['first_enqueue_to_last_finish_s']:.2f} | {run['jobs_per_s']} |"
        )
    stops = [
        *start["worker_stop"]["stop_s"],
        *(s for run in results["throughput"].values() for s in run["worker_stop"]["stop_s"]),
    ]
    killed = start["worker_stop"]["killed"] + sum(
        run["worker_stop"]["killed"] for run in results["throughput"].values()
    )
    lines += [
        "",
        f"Stopping the workers (SIGTERM, idle): {len(stops)} stops took "
        + ", ".join(f"{s:.1f}" for s in stops)
        + f" s; {killed} worker(s) were still running {STOP_GRACE:g} s after SIGTERM and "
        "were killed.",
    ]
    lines += [
        "",
        "## Instructions",
        "",
        f"Not counted: {results['instructions']['why']}.",
        "",
    ]
    return "\n".join(lines)


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _show(value: t.Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _num(value)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    from stackbench.services import HarnessError

    args = parse_args(argv)
    started = dt.datetime.now(dt.timezone.utc)
    workdir = Path(tempfile.mkdtemp(prefix="jobsbench-"))

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        with contextlib.ExitStack() as stack:
            measured = measure(args, workdir, stack)
            log("stopping Redis and PostgreSQL")
    except HarnessError as exc:
        print(f"jobsbench: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = assemble(args, started, measured, sys.argv[1:] if argv is None else argv)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "jobs.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.output / "jobs.md").write_text(markdown(results))
    log(f"wrote {args.output / 'jobs.json'} and jobs.md")
    for check in results["free_when_off"]:
        if not check["met"]:
            log(f"not free: {check['check']}: {check['measured']} (wanted {check['wanted']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
