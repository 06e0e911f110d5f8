"""Metrics under the real gunicorn, with the shipped configuration and 2 workers.

Each scrape, whichever worker answers it, serves the sum of every worker's
counts (prometheus-client's multiprocess mode, set up by
``flaskstack.gunicorn``); a worker killed mid-request keeps its counts in the
sums and leaves no request in flight behind it.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import os
import signal
import threading
import time
import typing as t
from pathlib import Path

from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from test_gunicorn_config import DEADLINE, HOST, Gunicorn

import flaskstack
from flaskstack.metrics import multiprocess_dir

IN_CODE = "METRICS_TEST_IN_CODE"
GATE = "METRICS_TEST_GATE"
"""The environment variable naming the directory where ``/slow`` waits for its release."""


def create_app() -> Flask:
    """An app with metrics on (from the environment) that says which worker answered."""
    app = Flask("metrics_gunicorn_app", instance_path=os.environ["METRICS_TEST_INSTANCE"])
    # METRICS_TEST_IN_CODE: metrics turned on by the app's code, not gunicorn's environment.
    flaskstack.init_app(app, {"FLASKSTACK_METRICS": True} if IN_CODE in os.environ else None)

    @app.get("/pid")
    def pid() -> str:
        return str(os.getpid())

    @app.get("/directory")
    def directory() -> str:
        return multiprocess_dir() or ""

    @app.get("/slow")
    def slow() -> str:
        gate = Path(os.environ[GATE])
        (gate / "entered").write_text(str(os.getpid()))
        deadline = time.monotonic() + DEADLINE
        while not (gate / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return "released"

    return app


def get(server: Gunicorn, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection(HOST, server.port, timeout=DEADLINE)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def scrape(server: Gunicorn) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = get(server, "/metrics")
    assert status == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def pid_requests(samples: t.Mapping[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    labels = (("endpoint", "pid"), ("method", "GET"), ("status", "200"))
    return samples.get(("flaskstack_http_requests_total", labels), 0.0)


def in_flight(samples: t.Mapping[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    return samples[("flaskstack_http_requests_in_flight", ())]


def test_two_workers_serve_one_sum_and_a_killed_worker_leaves_nothing_in_flight(
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {
        "FLASKSTACK_METRICS": "true",
        "METRICS_TEST_INSTANCE": str(tmp_path / "instance"),
        GATE: str(gate),
    }
    server = Gunicorn(
        tmp_path,
        env,
        app="test_metrics_gunicorn:create_app()",
        options=("--workers", "2", "--max-requests", "0"),
    )
    directory = ""
    try:
        server.wait_until_serving()
        _, directory = get(server, "/directory")
        assert directory
        assert Path(directory).is_dir()  # made by the shipped configuration

        # Requests until both workers served some (the kernel picks who accepts).
        served: collections.Counter[str] = collections.Counter()
        while len(served) < 2 or min(served.values()) < 5:
            status, pid = get(server, "/pid")
            assert status == 200
            served[pid] += 1
            assert sum(served.values()) < 2000, f"one worker took every request: {served}"
        assert len(served) == 2

        # Every scrape, whichever worker answers it, counts both workers' requests.
        for _ in range(10):
            samples = scrape(server)
            assert pid_requests(samples) == sum(served.values())
            assert in_flight(samples) == 0

        # A request held in one worker is in flight; that worker is killed.
        holder = threading.Thread(target=lambda: _ignore_errors(get, server, "/slow"))
        holder.start()
        deadline = time.monotonic() + DEADLINE
        while not (gate / "entered").exists():
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.02)
        victim = int((gate / "entered").read_text())
        assert str(victim) in served
        assert in_flight(scrape(server)) == 1
        os.kill(victim, signal.SIGKILL)
        holder.join(DEADLINE)

        # The master replaces it and drops its live gauges: nothing stays in flight,
        # and the killed worker's requests still count.
        deadline = time.monotonic() + DEADLINE
        while True:
            samples = scrape(server)
            if in_flight(samples) == 0:
                break
            assert time.monotonic() < deadline, f"stale in-flight request\n{server.output()}"
            time.sleep(0.1)
        assert pid_requests(samples) == sum(served.values())
        status, pid = get(server, "/pid")
        assert status == 200
        assert pid_requests(scrape(server)) == sum(served.values()) + 1
    finally:
        (gate / "release").write_text("")
        exit_code = server.stop()
    assert exit_code == 0, server.output()
    assert not Path(directory).exists()  # the directory it made is gone with gunicorn


def _ignore_errors(function: t.Callable[..., object], *args: object) -> None:
    with contextlib.suppress(OSError, http.client.HTTPException):
        function(*args)  # the worker serving it is killed


def test_without_the_directory_a_scrape_under_gunicorn_says_it_holds_one_worker(
    tmp_path: Path,
) -> None:
    env = {IN_CODE: "1", "METRICS_TEST_INSTANCE": str(tmp_path / "instance"), GATE: "-"}
    server = Gunicorn(
        tmp_path, env, app="test_metrics_gunicorn:create_app()", options=("--workers", "2")
    )
    try:
        server.wait_until_serving()
        assert get(server, "/directory") == (200, "")  # FLASKSTACK_METRICS not in gunicorn's env
        scrape(server)
    finally:
        exit_code = server.stop()
    assert exit_code == 0, server.output()
    assert "without PROMETHEUS_MULTIPROC_DIR: each worker serves only its own counts" in (
        server.stderr.read_text()
    ), server.output()
