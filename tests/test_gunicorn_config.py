"""flaskstack.gunicorn, the shipped gunicorn configuration, as gunicorn reads it and runs with it.

The settings are read back with ``gunicorn --print-config`` (what gunicorn
itself will use). The run test is issue #21's "Done when": a production app
under the shipped configuration, 2 workers, its own Redis server stopped and
started again mid-run; every line of gunicorn's stdout and stderr must be
one JSON object with the fields log collectors need.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import typing as t
import uuid
import warnings
from pathlib import Path

import pytest
from flask import Flask, jsonify, session
from loopback import free_port

import flaskstack

if t.TYPE_CHECKING:
    from redis_servers import RedisServer

TESTS = Path(__file__).resolve().parent
HOST = "127.0.0.1"
DEADLINE = 30.0
"""Upper bound, in seconds, of every wait for gunicorn."""

APP_NAME = "gunicorn_logs_app"


# -- the app gunicorn serves ------------------------------------------------------------


def create_app() -> Flask:
    """A production app with a page, an API, a 500, a session write and a warning."""
    app = Flask(APP_NAME)
    flaskstack.init_app(app)

    @app.get("/")
    def home() -> str:
        app.logger.info("home page served")
        return "home"

    @app.get("/api/things")
    def things() -> t.Any:
        return jsonify(things=["a", "b"])

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("exploded on purpose")

    @app.get("/visit")
    def visit() -> t.Any:
        session["visits"] = session.get("visits", 0) + 1
        return jsonify(visits=session["visits"])

    @app.get("/warn")
    def warn() -> str:
        warnings.warn("a library's warning", UserWarning, stacklevel=1)
        return "warned"

    return app


def _connection_ids() -> dict[str, int]:
    backend = flaskstack.db.session.scalar(flaskstack.db.text("SELECT pg_backend_pid()"))
    flaskstack.db.session.remove()
    client = flaskstack.redis.get_redis().client.client_id()
    return {"pid": os.getpid(), "backend": int(backend), "redis": int(client)}


def create_preloaded_app() -> Flask:
    """An app whose factory uses the database and Redis, as gunicorn's master runs it."""
    app = Flask("gunicorn_preloaded_app")
    flaskstack.init_app(app)
    with app.app_context():
        app.config["MASTER_IDS"] = _connection_ids()

    @app.get("/ids")
    def ids() -> t.Any:
        return jsonify(master=app.config["MASTER_IDS"], worker=_connection_ids())

    return app


def plain_wsgi(environ: t.Any, start_response: t.Any) -> list[bytes]:
    """A WSGI app for ``--print-config``, which loads the app after printing."""
    start_response("204 No Content", [])
    return []


# -- running gunicorn --------------------------------------------------------------------


def _environment(extra: t.Mapping[str, str]) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent)])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _gunicorn(*args: str) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", "python:flaskstack.gunicorn", *args]


def print_config(**env: str) -> dict[str, str]:
    """The effective settings gunicorn prints with ``--print-config``, by name."""
    result = subprocess.run(
        _gunicorn("--print-config", "test_gunicorn_config:plain_wsgi"),
        env=_environment(env),
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    settings = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            settings[name.strip()] = value.strip()
    return settings


class Gunicorn:
    """gunicorn with the shipped configuration; stdout and stderr in files of their own."""

    def __init__(
        self,
        directory: Path,
        env: t.Mapping[str, str],
        *,
        app: str = "test_gunicorn_config:create_app()",
        options: t.Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.body = b""  # of the last response
        self.stdout = directory / "stdout.log"
        self.stderr = directory / "stderr.log"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                _gunicorn("--bind", f"{HOST}:{self.port}", *options, app),
                env=_environment(env),
                cwd=TESTS,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def request(
        self, path: str, *, request_id: str, cookie: str | None = None
    ) -> http.client.HTTPResponse:
        headers = {"X-Request-ID": request_id, "X-Forwarded-Proto": "https"}
        if cookie:
            headers["Cookie"] = cookie
        connection = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            self.body = response.read()
            return response
        finally:
            connection.close()

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + DEADLINE
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.output()}")
            with contextlib.suppress(OSError):
                if self.request("/healthz", request_id="probe").status == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not answer in {DEADLINE} s:\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops it; SIGKILL after the deadline."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(DEADLINE)
            raise AssertionError(f"gunicorn did not stop in {DEADLINE} s") from None

    def output(self) -> str:
        return (
            f"-- stdout:\n{self.stdout.read_text(errors='replace')}\n"
            f"-- stderr:\n{self.stderr.read_text(errors='replace')}"
        )


@pytest.fixture
def redis_of_its_own(tmp_path: Path) -> t.Iterator[RedisServer]:
    from redis_servers import RedisServer

    with RedisServer(tmp_path / "redis", name="gunicorn") as server:
        yield server


def _parse_every_line(path: Path) -> list[dict[str, t.Any]]:
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"{path.name} line {number} is not JSON: {line!r}") from None
        assert isinstance(record, dict), f"{path.name} line {number}: {line!r}"
        for field in ("time", "level", "logger", "message", "request_id"):
            assert field in record, f"{path.name} line {number} has no {field!r}: {line!r}"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", record["time"])
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), line
        records.append(record)
    return records


# -- the Done-when test ------------------------------------------------------------------


def test_every_line_of_a_run_through_a_redis_outage_is_json(
    tmp_path: Path, postgres_url: str, redis_of_its_own: RedisServer
) -> None:
    server = Gunicorn(
        tmp_path,
        _production(postgres_url, redis_of_its_own.url, FLASKSTACK_REDIS_BACKOFF="0.2"),
    )
    sent: dict[str, tuple[str, int]] = {}

    def get(path: str, expected: int, cookie: str | None = None) -> http.client.HTTPResponse:
        request_id = f"{path.strip('/').replace('/', '-') or 'home'}-{uuid.uuid4().hex[:8]}"
        response = server.request(path, request_id=request_id, cookie=cookie)
        assert response.status == expected, (path, response.status, server.output())
        assert response.headers["X-Request-ID"] == request_id
        sent[request_id] = (path, expected)
        return response

    try:
        server.wait_until_serving()
        for _ in range(3):  # each worker, likely
            get("/", 200)
            get("/api/things", 200)
        get("/nowhere", 404)
        get("/api/nowhere", 404)
        get("/boom", 500)
        get("/warn", 200)
        visit = get("/visit", 200)
        cookie = visit.headers["Set-Cookie"].split(";", 1)[0]
        get("/visit", 200, cookie)
        get("/readyz", 200)

        redis_of_its_own.stop()
        get("/", 200)  # needs no session
        get("/api/things", 200)
        get("/visit", 503, cookie)
        get("/visit", 503, cookie)
        get("/readyz", 503)

        redis_of_its_own.start()
        deadline = time.monotonic() + DEADLINE
        while server.request("/visit", request_id="recovery", cookie=cookie).status != 200:
            assert time.monotonic() < deadline, "the app did not recover from the Redis outage"
            time.sleep(0.1)
        get("/readyz", 200)
    finally:
        status = server.stop()
    assert status == 0, server.output()

    records = _parse_every_line(server.stderr) + _parse_every_line(server.stdout)
    by_logger: dict[str, list[dict[str, t.Any]]] = {}
    for record in records:
        by_logger.setdefault(record["logger"], []).append(record)

    # gunicorn's own lines: the master and the workers starting and stopping.
    started = " ".join(r["message"] for r in by_logger["gunicorn.error"])
    assert "Booting worker" in started, started
    assert "Shutting down" in started, started
    # One access line per request, with its request id, path and status.
    access = {r["request_id"]: r for r in by_logger["gunicorn.access"]}
    for request_id, (path, status) in sent.items():
        assert request_id in access, (request_id, path)
        assert access[request_id]["path"] == path
        assert access[request_id]["status"] == status
        assert isinstance(access[request_id]["duration_ms"], float)
    assert len({r["pid"] for r in by_logger["gunicorn.access"]}) == 2, "both workers served"
    # The app's lines carry the id of their request.
    home_ids = [r["request_id"] for r in by_logger[APP_NAME] if r["message"] == "home page served"]
    assert sorted(home_ids) == sorted(i for i, (path, _) in sent.items() if path == "/")
    (failure,) = [r for r in by_logger[APP_NAME] if r["level"] == "ERROR"]
    assert sent[failure["request_id"]] == ("/boom", 500)
    assert "RuntimeError: exploded on purpose" in failure["exception"]
    # flaskstack's own warnings in the outage, and a library's warning, are JSON lines too.
    outage = [r for r in records if r["logger"].startswith("flaskstack.")]
    assert any(r["logger"] == "flaskstack.redis" for r in outage), by_logger.keys()
    assert any(r["request_id"] in sent and sent[r["request_id"]][0] == "/visit" for r in outage)
    (warned,) = by_logger["py.warnings"]
    assert "a library's warning" in warned["message"]
    assert sent[warned["request_id"]] == ("/warn", 200)


def _production(postgres_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "FLASKSTACK_PROFILE": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "FLASKSTACK_NAMESPACE": f"gunicorn-{uuid.uuid4().hex[:8]}",
        "FLASKSTACK_PROXY_FIX": "1",
        "FLASKSTACK_PASSWORD_RESET": "false",
        "FLASKSTACK_EMAIL_CONFIRMATION": "off",
        "WEB_CONCURRENCY": "2",
        **extra,
    }


def test_preloaded_workers_do_not_share_the_masters_connections(
    tmp_path: Path, postgres_url: str, redis_of_its_own: RedisServer
) -> None:
    server = Gunicorn(
        tmp_path,
        _production(postgres_url, redis_of_its_own.url),
        app="test_gunicorn_config:create_preloaded_app()",
        options=["--preload"],
    )
    seen: dict[int, dict[str, int]] = {}
    try:
        server.wait_until_serving()
        for attempt in range(100):
            response = server.request("/ids", request_id=f"ids-{attempt}")
            assert response.status == 200, server.output()
            ids = json.loads(server.body)
            master = ids["master"]
            seen[ids["worker"]["pid"]] = ids["worker"]
            if len(seen) == 2:
                break
    finally:
        assert server.stop() == 0, server.output()
    assert len(seen) == 2, "both workers answered"
    backends = {ids["backend"] for ids in seen.values()}
    clients = {ids["redis"] for ids in seen.values()}
    assert len(backends) == 2, "each worker has a database connection of its own"
    assert master["backend"] not in backends, "a worker used the master's database connection"
    assert master["redis"] not in clients, "a worker used the master's Redis connection"


# -- the settings, as gunicorn reads them -------------------------------------------------


def test_the_settings_gunicorn_reads() -> None:
    settings = print_config(WEB_CONCURRENCY="3")
    assert settings["workers"] == "3"
    assert settings["worker_class"] == "sync"
    assert settings["max_requests"] == "1000"
    assert settings["max_requests_jitter"] == "100"
    assert settings["timeout"] == "30"
    assert settings["graceful_timeout"] == "25"
    assert settings["forwarded_allow_ips"] == "['127.0.0.1', '::1']"
    assert settings["worker_tmp_dir"] == "/dev/shm"
    assert settings["accesslog"] == "-"


def test_workers_default_to_one_per_usable_cpu_and_at_least_two() -> None:
    from flaskstack.gunicorn import _quota_cpus

    usable = len(os.sched_getaffinity(0))
    quota = _quota_cpus()  # a container's --cpus, where the tests run in one
    expected = max(2, usable if quota is None else min(usable, quota))
    assert print_config()["workers"] == str(expected)


def test_the_forwarded_ips_come_from_the_environment_and_are_never_everyone_by_default() -> None:
    assert print_config(FORWARDED_ALLOW_IPS="10.0.0.0/8")["forwarded_allow_ips"] == "['10.0.0.0/8']"
    assert "*" not in print_config(FORWARDED_ALLOW_IPS="")["forwarded_allow_ips"]


def test_command_line_settings_win() -> None:
    result = subprocess.run(
        _gunicorn(
            "--workers", "5", "--timeout", "61", "--print-config", "test_gunicorn_config:plain_wsgi"
        ),
        env=_environment({}),
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert re.search(r"^workers\s+= 5$", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^timeout\s+= 61$", result.stdout, re.MULTILINE)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY='0': expected the number of gunicorn"),
        ({"FLASKSTACK_LOG_FORMAT": "xml"}, "FLASKSTACK_LOG_FORMAT='xml': expected one of"),
    ],
)
def test_a_bad_environment_value_stops_gunicorn_with_what_to_fix(
    env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        _gunicorn("--print-config", "test_gunicorn_config:plain_wsgi"),
        env=_environment(env),
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_log_format_follows_the_profile_and_the_setting() -> None:
    def handlers(**env: str) -> str:
        return print_config(**env)["logconfig_dict"]

    assert "JSONFormatter" in handlers(FLASKSTACK_PROFILE="production")
    assert "TextFormatter" in handlers(FLASKSTACK_PROFILE="development")
    assert "JSONFormatter" in handlers(FLASKSTACK_LOG_FORMAT="json")
    assert handlers(FLASKSTACK_PROFILE="production", FLASKSTACK_LOG_FORMAT="none") == "{}"


def test_cpu_quota_of_a_container_caps_the_workers(tmp_path: Path) -> None:
    from flaskstack.gunicorn import _quota_cpus

    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert _quota_cpus(cpu_max) == 2
    cpu_max.write_text("max 100000\n")
    assert _quota_cpus(cpu_max) is None
    assert _quota_cpus(tmp_path / "missing") is None


def test_access_lines_carry_the_request(caplog: pytest.LogCaptureFixture) -> None:
    from flaskstack.gunicorn import AccessFormatter

    atoms = {
        "h": "10.0.0.1",
        "m": "GET",
        "U": "/things",
        "q": "page=2",
        "s": "200",
        "B": 12,
        "D": 1500,
        "a": "curl/8",
        "{x-request-id}o": "abc",
    }
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, "%(m)s", (atoms,), None
    )
    line = json.loads(AccessFormatter().format(record))
    assert line["message"] == "GET"
    assert line["request_id"] == "abc"
    assert line["status"] == 200
    assert line["duration_ms"] == 1.5
    assert (line["method"], line["path"], line["query"]) == ("GET", "/things", "page=2")
    assert "trace_id" not in line  # tracing off: no trace id header, no field

    traced = dict(atoms, **{"{x-trace-id}o": "4bf92f3577b34da6a3ce929d0e0e4736"})
    record.args = traced
    line = json.loads(AccessFormatter().format(record))
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_access_lines_read_the_trace_id_header_the_app_names() -> None:
    from flaskstack.gunicorn import _logconfig, _trace_id_atom

    atom = _trace_id_atom({"FLASKSTACK_TRACE_ID_HEADER": "Trace-Ref"})
    assert atom == "{trace-ref}o"
    config = _logconfig("json", "{x-request-id}o", atom)
    assert config["formatters"]["access"]["trace_id_atom"] == "{trace-ref}o"
