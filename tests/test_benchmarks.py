"""The stack benchmark harness, end to end, in its quick mode with tiny durations.

No timing is asserted here: the test checks that one command starts what it
needs, measures every app on every endpoint, stops everything, and writes a
complete results file, and that the per-request counts (which do not depend on
the machine's speed) are exactly what flaskstack promises.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "flaskstack",
    "flaskstack-limits",
    "flaskstack-auth",
    "flaskstack-metrics",
    "hand-wired",
    "bare",
    "django",
    "flaskstack-threads",
    "django-threads",
)
# The flaskstack app with FLASKSTACK_RATE_LIMITS on: it serves only the rate-limited read,
# so the others' flaskstack rows measure flaskstack with limits off.
LIMITED_APP = "flaskstack-limits"
# The flaskstack app with metrics on: measured on the page and the token API read only.
METRICS_APP = "flaskstack-metrics"
METRICS_ENDPOINTS = ("page", "api_read")
# flaskstack and Django under gthread workers: measured where a worker waits on a server.
THREADED_APPS = ("flaskstack-threads", "django-threads")
THREADED_ENDPOINTS = ("me", "api_read", "form_post", "api_list")
COMPARED = tuple(app for app in APPS if app not in (LIMITED_APP, METRICS_APP, *THREADED_APPS))
ENDPOINTS = ("page", "page_cookie", "me", "api_read", "cached", "form_post", "api_list")
# Behind a rate limit: only the flaskstack-limits app has one.
LIMITED = "api_limited"

# flaskstack's Redis commands per request (issue #9): a request that does not
# read the session makes none; reading it is one GETEX; a cache hit one GET.
FLASKSTACK_REDIS = {
    "page": 0,
    "page_cookie": 0,
    "me": 1,
    "api_read": 0,
    "cached": 1,
    "form_post": 1,
    "api_list": 0,
    # The counting script (EVALSHA, and the INCRBY it runs), then TTL and GET for the
    # RateLimit-* headers.
    LIMITED: 4,
}

# The bare app does exactly what its code says, so these check the counting
# itself: (Redis commands, SQL statements) per request.
BARE_COUNTS = {
    "page": (0, 0),
    "page_cookie": (0, 0),
    "me": (1, 1),
    "api_read": (0, 2),
    "cached": (1, 0),
    "form_post": (1, 1),
    "api_list": (0, 2),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, t.Any]:
    output = tmp_path_factory.mktemp("stackbench")
    finished = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--duration=0.3",
            "--startup-samples=1",
            "--count-requests=5",
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
    data["_rst"] = (output / "stack.rst").read_text()
    return data


def test_every_app_and_endpoint_is_measured(results: dict[str, t.Any]) -> None:
    assert results["mode"] == "quick"
    assert tuple(results["apps"]) == APPS
    assert tuple(results["endpoints"]) == (*ENDPOINTS, LIMITED)
    for key, endpoint in results["endpoints"].items():
        serving = [*COMPARED]
        if key in METRICS_ENDPOINTS:
            serving.append(METRICS_APP)
        if key in THREADED_ENDPOINTS:
            serving.extend(THREADED_APPS)
        expected = (LIMITED_APP,) if key == LIMITED else tuple(a for a in APPS if a in serving)
        assert tuple(endpoint["apps"]) == expected, key
        for app, data in endpoint["apps"].items():
            where = f"{app} {key}"
            assert data["errors"] == 0, where
            assert len(data["runs"]) == 1, where
            assert data["runs"][0]["requests"] > 0, where
            assert data["rps_median"] > 0, where
            assert 0 < data["p50_ms_median"] <= data["p99_ms_median"], where
            assert data["cpu_ms_per_request_median"]["total"] > 0, where
        for other in COMPARED[1:] if key != LIMITED else ():
            assert endpoint["ratios"][f"flaskstack/{other}"] > 0, key


def test_counts_are_whole_numbers_per_request(results: dict[str, t.Any]) -> None:
    """Every request of one endpoint costs the same: nothing is amortised or random."""
    for key, endpoint in results["endpoints"].items():
        for app, data in endpoint["apps"].items():
            for field in ("redis_per_request", "sql_per_request"):
                assert data[field] == int(data[field]), f"{app} {key} {field}: {data[field]}"


def test_flaskstack_redis_commands_per_request(results: dict[str, t.Any]) -> None:
    measured = {
        key: endpoint["apps"][LIMITED_APP if key == LIMITED else "flaskstack"]["redis_per_request"]
        for key, endpoint in results["endpoints"].items()
    }
    assert measured == FLASKSTACK_REDIS


def test_flaskstack_reads_the_session_once_and_never_writes_it(
    results: dict[str, t.Any],
) -> None:
    for key in ("me", "form_post"):
        commands = results["endpoints"][key]["apps"]["flaskstack"]["redis_commands"]
        assert commands == {"getex": 1.0}, key


def test_pages_without_data_run_no_sql(results: dict[str, t.Any]) -> None:
    for key in ("page", "cached"):
        for app in COMPARED:
            assert results["endpoints"][key]["apps"][app]["sql_per_request"] == 0, (key, app)
    # With a signed-in cookie, Flask-Login's own template context loads the user
    # (hand-wired: 3 statements); flaskstack's lazy current_user does not.
    assert results["endpoints"]["page_cookie"]["apps"]["flaskstack"]["sql_per_request"] == 0


def test_counting_matches_the_bare_app(results: dict[str, t.Any]) -> None:
    measured = {
        key: (data["redis_per_request"], data["sql_per_request"])
        for key, endpoint in results["endpoints"].items()
        if "bare" in endpoint["apps"]
        for data in [endpoint["apps"]["bare"]]
    }
    assert measured == BARE_COUNTS


def test_startup_memory_and_targets_are_reported(results: dict[str, t.Any]) -> None:
    for app, data in results["apps"].items():
        assert data["startup"]["create_ms_median"] > 0, app
        assert data["memory"]["worker_rss_mib_median"] > 0, app
        assert len(data["memory"]["worker_rss_mib"]) == 2, app
    assert "alembic" not in results["apps"]["flaskstack"]["startup"]["heavy_modules"]
    targets = results["targets"]
    # Throughput ÷ hand-wired and ÷ bare, Redis commands, start-up and memory, and for the
    # strong-auth variant Redis commands, SQL statements and CPU per request, for the metrics
    # variant Redis commands and SQL statements per request, and the page's throughput.
    assert len(targets) == 7 + 7 + 6 + 2 + 3 * 7 + 2 * 2 + 1
    assert all(isinstance(target["met"], bool) for target in targets)


def test_strong_auth_configured_but_unused_costs_no_command_or_statement(
    results: dict[str, t.Any],
) -> None:
    for key in ENDPOINTS:
        apps = results["endpoints"][key]["apps"]
        for field in ("redis_per_request", "sql_per_request"):
            assert apps["flaskstack-auth"][field] == apps["flaskstack"][field], (key, field)


def test_metrics_cost_no_command_or_statement(results: dict[str, t.Any]) -> None:
    for key in METRICS_ENDPOINTS:
        apps = results["endpoints"][key]["apps"]
        for field in ("redis_per_request", "sql_per_request"):
            assert apps[METRICS_APP][field] == apps["flaskstack"][field], (key, field)


def test_tables_name_every_endpoint(results: dict[str, t.Any]) -> None:
    for endpoint in results["endpoints"].values():
        assert f"| {endpoint['label']} |" in results["_markdown"]
        assert f"* - {endpoint['label']}" in results["_rst"]


def test_the_rate_limited_endpoint_is_compared_with_the_same_one_without(
    results: dict[str, t.Any],
) -> None:
    limited = results["endpoints"][LIMITED]
    assert limited["unlimited"] == "api_read"
    assert limited["ratios"]["limited/unlimited"] > 0
    assert limited["apps"][LIMITED_APP]["redis_commands"] == {
        "evalsha": 1.0,
        "get": 1.0,
        "incrby": 1.0,
        "ttl": 1.0,
    }
    # The same SQL as the read without a limit: counting by token needs no query of its own.
    assert (
        limited["apps"][LIMITED_APP]["sql_per_request"]
        == results["endpoints"]["api_read"]["apps"]["flaskstack"]["sql_per_request"]
    )
    assert "| token API read, one row, rate-limited | " in results["_markdown"]
    assert "limited ÷ unlimited" in results["_markdown"]


def test_sync_and_threaded_workers_are_compared_for_flaskstack_and_django(
    results: dict[str, t.Any],
) -> None:
    assert "flaskstack-threads: 2 gthread workers of 4 threads" in results["settings"]["gunicorn"]
    for key in THREADED_ENDPOINTS:
        ratios = results["endpoints"][key]["ratios"]
        for pair in (
            "flaskstack-threads/flaskstack",
            "django-threads/django",
            "flaskstack-threads/django-threads",
        ):
            assert ratios[pair] > 0, (key, pair)
        # The same code as the sync app: its instructions are counted once, for that app.
        for app in THREADED_APPS:
            assert "instructions_per_request" not in results["endpoints"][key]["apps"][app]
    table = results["_markdown"].split("## Worker model", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(THREADED_ENDPOINTS), table
