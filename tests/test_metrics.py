"""Prometheus metrics in one process: each series, the endpoint's protection, the refusals.

prometheus-client's default registry belongs to the process, so every app of
this test run counts into the same series: each test reads a value before and
after what it does, and asserts the difference. The multiprocess mode under
gunicorn is tested in ``test_metrics_gunicorn.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import typing as t

import pytest
from conftest import SHARED_REDIS_URL
from flask import Flask, session
from prometheus_client.parser import text_string_to_metric_families

import flaskstack
from flaskstack import jobs
from flaskstack._signals import replica_skipped
from flaskstack.metrics import scrape_registry
from flaskstack.redis import RedisUnavailable, get_redis

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import AppFactory
    from redis_servers import RedisServer

STRONG_SECRET = "8H1bq0oWcT7c8f6mQhZ2pXv4rS9yL3dK5nJ0aE2gU7w"
TOKEN = "scrape-token-7Qm2c9XvK1"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and sorted labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(app: Flask, **headers: str) -> Samples:
    response = app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def metrics_app(make_app: AppFactory, **settings: t.Any) -> Flask:
    return make_app({"FLASKSTACK_METRICS": True, **settings})


# -- the request series ----------------------------------------------------------------


def test_requests_are_counted_by_endpoint_method_and_status(make_app: AppFactory) -> None:
    app = metrics_app(make_app)

    @app.route("/things/<int:thing>", methods=["GET", "POST"])
    def thing(thing: int) -> tuple[str, int]:
        return "a teapot", 418 if thing == 7 else 200

    before = scrape(app)
    client = app.test_client()
    for path in ("/things/1", "/things/2", "/things/7"):
        client.get(path)
    client.post("/things/3")
    client.get("/no/such/page/1")
    client.get("/no/such/page/2")
    client.open("/things/1", method="BREW")
    after = scrape(app)

    def added(**labels: str) -> float:
        name = "flaskstack_http_requests_total"
        return value(after, name, **labels) - value(before, name, **labels)

    # One series per endpoint, not per path: the two things are one series.
    assert added(endpoint="thing", method="GET", status="200") == 2
    assert added(endpoint="thing", method="GET", status="418") == 1
    assert added(endpoint="thing", method="POST", status="400") == 1  # no CSRF token
    assert added(endpoint="<unmatched>", method="GET", status="404") == 2
    # An unknown method is "other" (a client cannot make up series); no rule matched it.
    assert added(endpoint="<unmatched>", method="other", status="405") == 1
    # The scrapes count themselves nowhere.
    assert added(endpoint="flaskstack.metrics", method="GET", status="200") == 0
    histogram = "flaskstack_http_request_duration_seconds"
    assert (
        value(after, f"{histogram}_count", endpoint="thing")
        - value(before, f"{histogram}_count", endpoint="thing")
        == 4
    )
    assert (
        value(after, f"{histogram}_bucket", endpoint="thing", le="+Inf")
        - value(before, f"{histogram}_bucket", endpoint="thing", le="+Inf")
        == 4
    )
    assert value(after, f"{histogram}_sum", endpoint="thing") > value(
        before, f"{histogram}_sum", endpoint="thing"
    )


def test_an_unhandled_error_counts_as_a_500(make_app: AppFactory) -> None:
    app = metrics_app(make_app, PROPAGATE_EXCEPTIONS=False)

    @app.get("/broken")
    def broken() -> str:
        raise RuntimeError("broken on purpose")

    before = scrape(app)
    assert app.test_client().get("/broken").status_code == 500
    after = scrape(app)
    name = "flaskstack_http_requests_total"
    labels = {"endpoint": "broken", "method": "GET", "status": "500"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    assert value(after, "flaskstack_http_requests_in_flight") == value(
        before, "flaskstack_http_requests_in_flight"
    )


def test_in_flight_counts_the_requests_being_served(make_app: AppFactory) -> None:
    app = metrics_app(make_app)

    @app.get("/inside")
    def inside() -> dict[str, float]:
        from prometheus_client import generate_latest

        samples = parse(generate_latest(scrape_registry(app)).decode())
        return {"in_flight": value(samples, "flaskstack_http_requests_in_flight")}

    before = value(scrape(app), "flaskstack_http_requests_in_flight")
    seen = app.test_client().get("/inside").get_json()["in_flight"]
    assert seen == before + 1
    assert value(scrape(app), "flaskstack_http_requests_in_flight") == before


# -- database, Redis, replicas, jobs ---------------------------------------------------


def test_database_pool_checkouts_are_counted_per_bind(
    make_app: AppFactory, postgres_url: str
) -> None:
    app = metrics_app(make_app, SQLALCHEMY_DATABASE_URI=postgres_url)

    @app.get("/query")
    def query() -> dict[str, float]:
        flaskstack.db.session.execute(flaskstack.db.text("SELECT 1"))
        from prometheus_client import generate_latest

        samples = parse(generate_latest(scrape_registry(app)).decode())
        return {"checked_out": value(samples, "flaskstack_db_pool_checked_out", bind="default")}

    client = app.test_client()
    client.get("/healthz")  # the first request: the engine is instrumented
    before = scrape(app)
    seen = client.get("/query").get_json()["checked_out"]
    client.get("/query")
    after = scrape(app)
    gauge = "flaskstack_db_pool_checked_out"
    assert seen == value(before, gauge, bind="default") + 1  # the request's connection
    assert value(after, gauge, bind="default") == value(before, gauge, bind="default")
    name = "flaskstack_db_pool_checkout_duration_seconds_count"
    assert value(after, name, bind="default") - value(before, name, bind="default") == 2


@pytest.fixture
def flaskstack_config(flaskstack_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """The pytest plugin's app, with metrics on."""
    return {**flaskstack_config, "FLASKSTACK_METRICS": True}


def test_the_pytest_plugins_app_counts_in_its_test_transaction(app: Flask) -> None:
    @app.get("/rows")
    def rows() -> str:
        return str(flaskstack.db.session.scalar(flaskstack.db.text("SELECT 41 + 1")))

    client = app.test_client()
    before = scrape(app)
    response = client.get("/rows")
    assert response.status_code == 200
    assert response.text == "42"
    name = "flaskstack_http_requests_total"
    labels = {"endpoint": "rows", "method": "GET", "status": "200"}
    assert value(scrape(app), name, **labels) - value(before, name, **labels) == 1


def test_redis_errors_and_the_breaker_state(
    make_app: AppFactory, fresh_redis_server: RedisServer
) -> None:
    app = metrics_app(
        make_app, FLASKSTACK_REDIS_URL=fresh_redis_server.url, FLASKSTACK_REDIS_BACKOFF=0.05
    )
    connection = get_redis(app)
    errors = "flaskstack_redis_errors_total"
    before = scrape(app)
    assert value(before, "flaskstack_redis_breaker_open") == 0

    with pytest.raises(Exception, match=r"WRONGTYPE|wrong kind"):  # a command Redis refuses
        connection.run(lambda client: (client.set("k", "v"), client.lpush("k", "x")))
    with pytest.raises(KeyError):  # the caller's own error: not Redis's
        connection.run(lambda client: {}["missing"])
    fresh_redis_server.stop()
    with pytest.raises(RedisUnavailable):
        connection.run(lambda client: client.get("k"))
    down = scrape(app)
    assert value(down, "flaskstack_redis_breaker_open") == 1
    assert value(down, errors, error="KeyError") == 0
    assert (
        value(down, errors, error="ResponseError") - value(before, errors, error="ResponseError")
        == 1
    )
    assert (
        value(down, errors, error="ConnectionError")
        - value(before, errors, error="ConnectionError")
        == 1
    )

    fresh_redis_server.start()
    deadline = time.monotonic() + 10
    while True:  # the back-off passes, then a call succeeds and closes the breaker
        try:
            connection.run(lambda client: client.ping())
            break
        except RedisUnavailable:
            assert time.monotonic() < deadline, "Redis did not come back"
            time.sleep(0.05)
    assert value(scrape(app), "flaskstack_redis_breaker_open") == 0
    connection.close()


def test_replica_skips_are_counted_from_the_signal(make_app: AppFactory) -> None:
    app = metrics_app(make_app)
    other = make_app(name="othermetrics")  # metrics off: its signals count nowhere
    name = "flaskstack_db_replica_skipped_total"
    before = scrape(app)
    replica_skipped.send(app, replica="replica-1", reason="lagging")
    replica_skipped.send(app, replica="replica-1", reason="lagging")
    replica_skipped.send(app, replica="replica-2", reason="down")
    replica_skipped.send(other, replica="replica-2", reason="down")
    after = scrape(app)
    assert (
        value(after, name, replica="replica-1", reason="lagging")
        - value(before, name, replica="replica-1", reason="lagging")
        == 2
    )
    assert (
        value(after, name, replica="replica-2", reason="down")
        - value(before, name, replica="replica-2", reason="down")
        == 1
    )


def test_job_queue_depth_and_outcomes(make_app: AppFactory, namespace: t.Callable[[], str]) -> None:
    import jobs_sample

    from flaskstack._jobs_worker import build_worker
    from flaskstack.testing._jobs import delete_job_keys

    ns = namespace()
    app = metrics_app(
        make_app,
        name="jobsmetrics",
        FLASKSTACK_REDIS_URL=SHARED_REDIS_URL,
        FLASKSTACK_JOBS=True,
        FLASKSTACK_NAMESPACE=ns,
        JOBS_SAMPLE_GREETING="hello",
    )
    try:
        with app.app_context():
            jobs.enqueue(jobs_sample.record, f"{ns}:ran", "one")
            jobs.enqueue(jobs_sample.record, f"{ns}:ran", "two")
            jobs.enqueue(jobs_sample.explode, f"{ns}:ran")
        _count_job_runs(app, build_worker)
    finally:
        delete_job_keys(get_redis(app))


def _count_job_runs(app: Flask, build_worker: t.Callable[..., t.Any]) -> None:
    queued = scrape(app)
    assert value(queued, "flaskstack_job_queue_depth", queue="default") == 3
    assert value(queued, "flaskstack_job_runs_total", queue="default", outcome="finished") == 0

    worker = build_worker(app, simple=True)
    try:
        worker.work(burst=True, with_scheduler=False)
    finally:
        worker.connection.close()
    done = scrape(app)
    assert value(done, "flaskstack_job_queue_depth", queue="default") == 0
    assert value(done, "flaskstack_job_runs_total", queue="default", outcome="finished") == 2
    assert value(done, "flaskstack_job_runs_total", queue="default", outcome="failed") == 1


def test_without_jobs_there_are_no_job_series(make_app: AppFactory) -> None:
    samples = scrape(metrics_app(make_app))
    assert not [key for key in samples if key[0].startswith("flaskstack_job")]


def test_an_apps_own_metrics_are_in_the_same_scrape(make_app: AppFactory) -> None:
    from prometheus_client import Counter

    app = metrics_app(make_app)
    signups = Counter("testapp_signups_metrics_test", "Accounts created (a test's own).")
    signups.inc(3)
    assert value(scrape(app), "testapp_signups_metrics_test_total") == 3


# -- the endpoint's protection -----------------------------------------------------------


def test_the_endpoint_sets_no_cookie_and_is_not_cached(make_app: AppFactory) -> None:
    app = metrics_app(make_app, FLASKSTACK_REDIS_URL=SHARED_REDIS_URL)

    @app.get("/visit")
    def visit() -> str:
        session["seen"] = True
        return "ok"

    client = app.test_client()
    client.get("/visit")  # a session exists: the scrape still does not touch it
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "text/plain"
    openmetrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert openmetrics.mimetype == "application/openmetrics-text"
    assert openmetrics.text.rstrip().endswith("# EOF")


def test_clients_outside_the_allowed_networks_get_a_404(make_app: AppFactory) -> None:
    app = metrics_app(make_app, FLASKSTACK_METRICS_ALLOW="10.0.0.0/8, fd00::/8")
    client = app.test_client()

    def status(address: str, **headers: str) -> int:
        response = client.get("/metrics", environ_base={"REMOTE_ADDR": address}, headers=headers)
        assert "Set-Cookie" not in response.headers
        return response.status_code

    assert status("10.1.2.3") == 200
    assert status("fd00::5") == 200
    assert status("::ffff:10.1.2.3") == 200
    assert status("127.0.0.1") == 404  # not listed: loopback is only the default
    assert status("203.0.113.9") == 404
    assert status("11.0.0.1") == 404
    # Relayed by a proxy the app does not trust: the proxy's address says nothing.
    assert status("10.1.2.3", **{"X-Forwarded-For": "203.0.113.9"}) == 404
    assert status("10.1.2.3", Forwarded="for=203.0.113.9") == 404


def test_behind_a_trusted_proxy_the_forwarded_address_decides(make_app: AppFactory) -> None:
    app = metrics_app(make_app, FLASKSTACK_METRICS_ALLOW="10.0.0.0/8", FLASKSTACK_PROXY_FIX=1)
    client = app.test_client()

    def status(forwarded_for: str) -> int:
        return client.get(
            "/metrics",
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
            headers={"X-Forwarded-For": forwarded_for},
        ).status_code

    assert status("10.9.8.7") == 200
    assert status("203.0.113.9") == 404


def test_with_a_token_the_scrape_must_carry_it(make_app: AppFactory) -> None:
    app = metrics_app(make_app, FLASKSTACK_METRICS_TOKEN=TOKEN)
    client = app.test_client()
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert "flaskstack_http" not in missing.text
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    good = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert good.status_code == 200
    assert "flaskstack_http_requests_total" in good.text
    assert "Set-Cookie" not in good.headers
    # The token does not open the endpoint to other networks.
    outside = client.get(
        "/metrics",
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert outside.status_code == 404


def test_the_path_moves_or_turns_the_endpoint_off(make_app: AppFactory) -> None:
    moved = metrics_app(make_app, FLASKSTACK_METRICS_PATH="/internal/prometheus")
    assert moved.test_client().get("/metrics").status_code == 404
    assert moved.test_client().get("/internal/prometheus").status_code == 200

    unserved = metrics_app(make_app, name="unserved", FLASKSTACK_METRICS_PATH=None)
    unserved.test_client().get("/healthz")
    assert unserved.test_client().get("/metrics").status_code == 404
    from prometheus_client import generate_latest

    samples = parse(generate_latest(scrape_registry(unserved)).decode())
    assert (
        value(
            samples,
            "flaskstack_http_requests_total",
            endpoint="flaskstack.healthz",
            method="GET",
            status="200",
        )
        >= 1
    )


# -- refusals, checks, and nothing when off ----------------------------------------------


def test_a_route_of_the_app_at_the_path_is_refused(make_app: AppFactory) -> None:
    def own_metrics(app: Flask) -> None:
        app.add_url_rule("/metrics", "my_metrics", lambda: "mine")

    with pytest.raises(flaskstack.ConfigError, match="FLASKSTACK_METRICS_PATH"):
        make_app({"FLASKSTACK_METRICS": True}, before=own_metrics)
    kept = make_app({"FLASKSTACK_METRICS": False}, name="kept", before=own_metrics)
    assert kept.test_client().get("/metrics").text == "mine"


def test_bad_settings_are_refused(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(flaskstack.ConfigError, match="FLASKSTACK_METRICS_ALLOW"):
        metrics_app(make_app, FLASKSTACK_METRICS_ALLOW="10.0.0.0/33")
    with pytest.raises(flaskstack.ConfigError, match="FLASKSTACK_METRICS_ALLOW"):
        metrics_app(make_app, FLASKSTACK_METRICS_ALLOW="")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/metrics-dir")
    with pytest.raises(flaskstack.ConfigError, match=r"metrics\.E003"):
        metrics_app(make_app)


def production(postgres_url: str, **settings: t.Any) -> dict[str, t.Any]:
    from conftest import PRODUCTION_MAIL

    return {
        "FLASKSTACK_PROFILE": "production",
        "SECRET_KEY": STRONG_SECRET,
        "SQLALCHEMY_DATABASE_URI": postgres_url,
        "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
        "FLASKSTACK_METRICS": True,
        **PRODUCTION_MAIL,
        **settings,
    }


def test_production_refuses_an_endpoint_open_to_public_networks_without_a_token(
    make_app: AppFactory, postgres_url: str
) -> None:
    with pytest.raises(flaskstack.ConfigError, match=r"metrics\.E001") as refused:
        make_app(production(postgres_url, FLASKSTACK_METRICS_ALLOW="0.0.0.0/0,::/0"))
    assert "FLASKSTACK_METRICS_TOKEN" in str(refused.value)
    # Private networks, or a token: accepted.
    make_app(production(postgres_url, FLASKSTACK_METRICS_ALLOW="10.0.0.0/8,fc00::/7"))
    make_app(
        production(
            postgres_url, FLASKSTACK_METRICS_ALLOW="0.0.0.0/0", FLASKSTACK_METRICS_TOKEN=TOKEN
        )
    )


def test_deploy_check_reports_an_endpoint_open_to_public_networks(make_app: AppFactory) -> None:
    with pytest.warns(flaskstack.errors.ConfigWarning, match=r"metrics\.E001"):
        app = metrics_app(make_app, FLASKSTACK_METRICS_ALLOW="0.0.0.0/0")
    result = app.test_cli_runner().invoke(args=["stack", "check", "--deploy", "--tag", "config"])
    assert "metrics.E001" in result.output
    assert result.exit_code != 0

    private = metrics_app(make_app, name="private", FLASKSTACK_METRICS_ALLOW="192.168.0.0/16")
    result = private.test_cli_runner().invoke(
        args=["stack", "check", "--deploy", "--tag", "config"]
    )
    assert "metrics.E001" not in result.output


OFF = textwrap.dedent(
    """
    import json, sys

    from flask import Flask

    import flaskstack

    app = Flask("metricsoff", instance_path=sys.argv[1])
    flaskstack.init_app(app)
    client = app.test_client()
    statuses = [client.get("/healthz").status_code, client.get("/metrics").status_code]
    loaded = sorted(
        name
        for name in ("prometheus_client", "flaskstack.metrics", "flaskstack._metrics")
        if name in sys.modules
    )
    print(json.dumps({"statuses": statuses, "loaded": loaded}))
    """
)


def test_with_metrics_off_nothing_is_imported_or_served(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASKSTACK_", "PROMETHEUS"))}
    result = subprocess.run(
        [sys.executable, "-c", OFF, str(tmp_path / "instance")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen == {"statuses": [200, 404], "loaded": []}


def test_prometheus_client_and_the_metrics_modules_load_only_when_metrics_are_on() -> None:
    """Only ``flaskstack._metrics`` imports prometheus-client at import time, and the metrics
    modules are imported by the rest of the package inside functions only (``stack.py`` when
    ``FLASKSTACK_METRICS`` is on; ``flaskstack.gunicorn`` when a worker counted something)."""
    import ast

    from test_import_graph import import_graph, module_files

    lazy = {"flaskstack.metrics", "flaskstack._metrics"}
    for name, edges in import_graph().items():
        if name in lazy:
            continue
        for edge in edges:
            assert edge.target not in lazy or edge.in_function, f"{name}, line {edge.line}"
    for name, path in module_files().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            found = [m for m in modules if m.split(".")[0] == "prometheus_client"]
            assert not found or name == "flaskstack._metrics", f"{name}, line {node.lineno}"


def test_scrape_registry_of_an_app_without_metrics_names_the_setting(
    make_app: AppFactory,
) -> None:
    with pytest.raises(RuntimeError, match="FLASKSTACK_METRICS=true"):
        scrape_registry(make_app())
