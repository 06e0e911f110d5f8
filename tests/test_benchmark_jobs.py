"""The background jobs benchmark (``benchmarks/jobs.py``), end to end, with tiny sizes.

No timing is asserted: the test checks that one command starts its own Redis,
PostgreSQL and workers, measures everything, stops it all and writes complete
results, and that the counts which do not depend on the machine's speed are
what flaskstack promises: jobs cost a request nothing until it enqueues (the
same Redis commands and SQL statements as the app without jobs, RQ not
imported), an enqueue held for the commit adds no SQL, and every job runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("without", "off", "on")
NOT_ENQUEUEING = ("page", "read", "write")
ENQUEUEING = {"enqueue": "page", "write_enqueue": "write"}
QUICK = {"count_requests": 4, "timed_requests": 6, "latency_jobs": 4, "jobs": 30}

# (Redis commands, SQL statements) per request, the same in every variant: a page
# touches neither; a read is BEGIN, SELECT, ROLLBACK; a write BEGIN, INSERT, COMMIT.
COUNTS = {"page": (0, 0), "read": (0, 3), "write": (0, 3)}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, t.Any]:
    output = tmp_path_factory.mktemp("jobsbench")
    finished = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "jobs.py"),
            "--quick",
            *(f"--{name.replace('_', '-')}={value}" for name, value in QUICK.items()),
            f"--output={output}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-5000:]
    data: dict[str, t.Any] = json.loads((output / "jobs.json").read_text())
    data["_markdown"] = (output / "jobs.md").read_text()
    return data


def test_everything_is_measured(results: dict[str, t.Any]) -> None:
    assert results["mode"] == "quick"
    assert results["settings"]["throughput_jobs"] == QUICK["jobs"]
    assert tuple(results["counts"]) == VARIANTS
    for variant in VARIANTS:
        expected = (*NOT_ENQUEUEING, *ENQUEUEING) if variant == "on" else NOT_ENQUEUEING
        assert tuple(results["counts"][variant]) == expected, variant
    for key, cost in results["enqueue_cost"].items():
        assert cost["compared_with"] == ENQUEUEING[key]
        for side in ("with_enqueue", "without_enqueue"):
            stats = cost[side]
            assert stats["samples"] == QUICK["timed_requests"], (key, side)
            assert 0 < stats["median_ms"] <= stats["p95_ms"], (key, side)
    for measured_from in ("from_enqueue_call", "from_enqueued_at"):
        stats = results["start_latency"][measured_from]
        assert stats["samples"] == QUICK["latency_jobs"], measured_from
        assert 0 < stats["median_ms"] <= stats["p95_ms"], measured_from
    assert set(results["instructions"]) >= {"measured", "why"}


def test_counts_are_whole_numbers_per_request(results: dict[str, t.Any]) -> None:
    """Every request of one endpoint costs the same: nothing is amortised or random."""
    for variant, endpoints in results["counts"].items():
        for key, data in endpoints.items():
            for field in ("redis_per_request", "sql_per_request"):
                assert data[field] == int(data[field]), f"{variant} {key} {field}: {data[field]}"


def test_jobs_cost_nothing_until_a_request_enqueues(results: dict[str, t.Any]) -> None:
    for variant in VARIANTS:
        measured = {
            key: (data["redis_per_request"], data["sql_per_request"])
            for key, data in results["counts"][variant].items()
            if key in NOT_ENQUEUEING
        }
        assert measured == COUNTS, variant
    assert all(check["met"] for check in results["free_when_off"]), [
        check for check in results["free_when_off"] if not check["met"]
    ]


def test_web_processes_import_rq_only_to_enqueue(results: dict[str, t.Any]) -> None:
    modules = results["modules"]
    for variant in VARIANTS:
        assert modules[variant]["before enqueueing"]["rq"] is False, variant
    assert modules["on"]["after all requests"]["rq"] is True
    assert modules["on"]["after all requests"]["flaskstack._jobs_worker"] is False


def test_an_enqueue_adds_redis_commands_and_no_sql(results: dict[str, t.Any]) -> None:
    counts = results["counts"]["on"]
    for with_job, without in ENQUEUEING.items():
        assert counts[with_job]["sql_per_request"] == counts[without]["sql_per_request"]
        assert counts[with_job]["sql_statements"] == counts[without]["sql_statements"]
    # One job written and pushed: the same commands with or without a transaction.
    assert counts["enqueue"]["redis_commands"] == counts["write_enqueue"]["redis_commands"]
    commands = counts["enqueue"]["redis_commands"]
    assert commands.get("rpush") == 1.0, commands
    assert results["enqueue_cost"]["enqueue"]["added_redis_per_request"] > 0


def test_every_job_runs(results: dict[str, t.Any]) -> None:
    assert tuple(results["throughput"]) == ("1", "2")
    for workers, run in results["throughput"].items():
        assert run["jobs"] == QUICK["jobs"], workers
        assert run["finished"] == QUICK["jobs"], workers
        assert run["failed"] == 0, workers
        assert run["jobs_per_s"] > 0, workers
        assert run["first_enqueue_to_last_finish_s"] > 0, workers


def test_the_tables_say_what_was_measured(results: dict[str, t.Any]) -> None:
    text = results["_markdown"]
    for endpoint in results["endpoints"].values():
        assert f"| {endpoint['label']} (`{endpoint['method']} {endpoint['path']}`) |" in text
    for heading in (
        "## Per request: Redis commands / SQL statements",
        "## Free when off",
        "## Enqueueing in a request",
        "## From enqueue to start, idle worker",
        "## Throughput, trivial job",
    ):
        assert heading in text
    assert "**no**" not in text  # every free-when-off check met
    assert results["facts"]["versions"]["rq"] in text
