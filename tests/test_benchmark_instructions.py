"""The benchmark harness's instruction counts (``benchmarks/run.py --instructions``).

Callgrind counts the instructions a process executes, whatever else the machine
runs, so this test needs no quiet machine and runs beside the others. It checks
what a reader of the results relies on: every app and endpoint gets a count, the
count is one request's (start-up excluded), the ratios are the counts' quotient,
the table is in the report, and so is each app's start-up, counted too. One
endpoint that reads PostgreSQL, for two apps: each count runs two interpreters
under callgrind, side by side, which is slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, t.Any]:
    output = tmp_path_factory.mktemp("instructions")
    finished = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--apps=flaskstack,bare",
            "--endpoints=api_list",
            "--duration=0.2",
            "--startup-samples=1",
            "--count-requests=2",
            "--instructions=4",
            "--plugin=skip",
            f"--output={output}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-5000:]
    data: dict[str, t.Any] = json.loads((output / "stack.json").read_text())
    data["_markdown"] = (output / "stack.md").read_text()
    return data


def _counted(results: dict[str, t.Any], endpoint: str, app: str) -> int:
    value = results["endpoints"][endpoint]["apps"][app]["instructions_per_request"]
    assert isinstance(value, int)
    return value


def test_every_app_and_endpoint_is_counted_per_request(results: dict[str, t.Any]) -> None:
    assert results["settings"]["instructions_requests"] == 4
    assert list(results["endpoints"]["api_list"]["apps"]) == ["flaskstack", "bare"]
    for app in ("flaskstack", "bare"):
        counted = _counted(results, "api_list", app)
        # One request of a Python web app reading 20 rows: hundreds of thousands of
        # instructions at least, and far below the tens of millions of starting an
        # interpreter and creating the app (which would mean start-up was not subtracted).
        assert 100_000 < counted < 20_000_000, (app, counted)


def test_the_ratio_is_the_other_apps_count_over_flaskstacks(results: dict[str, t.Any]) -> None:
    ratio = results["endpoints"]["api_list"]["ratios"]["flaskstack/bare instructions"]
    expected = _counted(results, "api_list", "bare") / _counted(results, "api_list", "flaskstack")
    assert ratio == pytest.approx(expected, abs=0.005)


def test_the_report_has_the_instructions_table(results: dict[str, t.Any]) -> None:
    markdown = results["_markdown"]
    assert "## CPU instructions per request, in-process (callgrind)" in markdown
    table = markdown.split("## CPU instructions per request", 1)[1].split("\n## ", 1)[0]
    assert "| endpoint | flaskstack | bare | bare ÷ flaskstack |" in table
    flaskstack, bare = (_counted(results, "api_list", app) for app in ("flaskstack", "bare"))
    assert f"| API list, paginated | {flaskstack:,} | {bare:,} |" in table


def test_start_up_is_counted_for_each_app(results: dict[str, t.Any]) -> None:
    counts = {
        app: results["apps"][app]["startup"]["create_instructions"] for app in results["apps"]
    }
    for app, counted in counts.items():
        # An interpreter that imports Flask and SQLAlchemy and creates an app: about two
        # billion instructions; far more than one request's, far less than a loop gone wrong.
        assert 500_000_000 < counted < 10_000_000_000, (app, counted)
    startup = results["_markdown"].split("## Start-up and memory", 1)[1].split("\n## ", 1)[0]
    assert (
        f"| import + create_app (instructions) | {counts['flaskstack']:,} | {counts['bare']:,} |"
        in startup
    )
