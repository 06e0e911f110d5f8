"""The deployment files (Dockerfile, docker-compose.yml, .env.example), tested without Docker.

No Docker engine runs where the tests run, so:

- docker-compose.yml is validated against the Compose Specification's JSON
  schema, and the properties the deployment promises (health checks, named
  volumes, a migration the web service waits for, the production profile,
  settings only from the environment, no secret or mail URL in a committed
  file, a Mailpit service for trying the stack that nothing waits for, a
  worker for the background jobs with web's settings and a grace period
  longer than its shutdown timeout, a multi-stage image running as a user
  that is not root) are asserted on the parsed files;
- the commands the compose services run are read from those files (the
  migrate service's ``flask db upgrade``, the worker's ``flask stack
  worker``, then the image's gunicorn ``CMD`` for the web service) and run
  here with the environment compose gives them, against the local
  PostgreSQL and Redis and an SMTP server on loopback instead of the ``db``,
  ``redis`` and ``mail`` services; the app is then driven over HTTP as a
  browser would, and its mail goes out through a job the worker runs.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import typing as t
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from conftest import SHARED_REDIS_URL
from deploy_support import deployment as checks
from deploy_support.deployment import Deployment
from deploy_support.files import check_compose_file
from deploy_support.http import Browser, Response, form_fields
from deploy_support.jobs import wait_for_a_worker, wait_for_job_log_line
from deploy_support.server import Server, free_port, local_command, run, with_bind
from smtp_server import SMTPServer

if t.TYPE_CHECKING:
    from conftest import PostgresDatabases

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
ROUNDS = 8
"""Rounds of requests that each use both gunicorn workers."""


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment.read(ROOT)


# -- the files --------------------------------------------------------------------------


def test_the_compose_file_follows_the_compose_specification() -> None:
    result = check_compose_file(ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_wrong_condition(tmp_path: Path) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "service_completed_successfully" in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("service_completed_successfully", "service_done"))
    result = check_compose_file(broken)
    assert result.returncode == 1
    assert "service_done" in result.stdout


def test_postgres_and_redis_have_health_checks_and_named_volumes(deployment: Deployment) -> None:
    checks.check_data_services(deployment)


def test_the_web_service_waits_for_a_successful_migration(deployment: Deployment) -> None:
    checks.check_migration_gate(deployment)


def test_the_web_service_is_healthy_on_readyz_and_can_be_scaled(deployment: Deployment) -> None:
    checks.check_web_service(deployment)


def test_web_runs_gunicorn_with_flaskstacks_configuration(deployment: Deployment) -> None:
    import flaskstack.gunicorn

    command = deployment.web_command()
    assert command[:3] == ["gunicorn", "-c", "python:flaskstack.gunicorn"], command
    assert "WEB_CONCURRENCY" not in deployment.final_stage.env(), "the image takes the CPUs"
    # Docker kills the workers only after they had their graceful timeout.
    grace = checks.compose_duration(deployment.service("web")["stop_grace_period"])
    assert grace > flaskstack.gunicorn.graceful_timeout


def test_a_worker_runs_the_jobs_with_the_web_services_settings(deployment: Deployment) -> None:
    checks.check_worker_service(deployment)
    assert deployment.worker_command() == ["flask", "stack", "worker"]
    variables = deployment.variables(SECRET_KEY="k" * 48, POSTGRES_PASSWORD="pw")
    for service in ("web", "worker"):
        assert deployment.environment(service, variables)["FLASKSTACK_JOBS"] == "true"
    grace = checks.compose_duration(deployment.service("worker")["stop_grace_period"])
    assert grace == 30


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("stop_grace_period: 30s", "stop_grace_period: 20s", "stop_grace_period"),
        ("stop_grace_period: 30s", "stop_grace_period: 1s", "stop_grace_period"),
        (
            '    command: ["flask", "stack", "worker"]\n',
            '    command: ["flask", "stack", "worker"]\n    environment:\n'
            "      FLASKSTACK_PROFILE: production\n",
            "the same environment",
        ),
        (
            '["flask", "stack", "worker"]',
            '["flask", "stack", "worker", "--burst"]',
            "the worker service runs",
        ),
        (
            "      migrate:\n        condition: service_completed_successfully\n"
            "      db:\n        condition: service_healthy\n      redis:\n"
            "        condition: service_healthy\n    # Longer",
            "      redis:\n        condition: service_healthy\n    # Longer",
            "wait for what web waits for",
        ),
    ],
)
def test_a_worker_that_would_lose_jobs_is_refused(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    deployment = _with_compose(tmp_path, old, new)
    with pytest.raises(AssertionError, match=message):
        checks.check_worker_service(deployment)


def test_a_shutdown_timeout_longer_than_the_grace_period_is_refused(tmp_path: Path) -> None:
    deployment = _with_compose(
        tmp_path,
        "WEB_CONCURRENCY: ${WEB_CONCURRENCY:-2}",
        "WEB_CONCURRENCY: ${WEB_CONCURRENCY:-2}\n    FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT: 45",
    )
    with pytest.raises(AssertionError, match=r"FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT \(45 s\)"):
        checks.check_worker_service(deployment)


def test_a_suggested_shutdown_timeout_longer_than_the_grace_period_is_refused(
    tmp_path: Path,
) -> None:
    # Uncommenting what .env.example suggests must keep the worker safe.
    _with_compose(tmp_path, "stop_grace_period: 30s", "stop_grace_period: 30s")
    example = tmp_path / ".env.example"
    text = example.read_text(encoding="utf-8")
    assert "\n# FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT=20\n" in text
    example.write_text(text.replace("SHUTDOWN_TIMEOUT=20", "SHUTDOWN_TIMEOUT=40"))
    with pytest.raises(AssertionError, match=r"FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT \(40 s\)"):
        checks.check_worker_service(Deployment.read(tmp_path))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("1m30s", 90), ("2m", 120), ("1h", 3600), ("500ms", 0.5), ("1m500ms", 60.5)],
)
def test_compose_durations_are_read_as_compose_reads_them(value: str, seconds: float) -> None:
    assert checks.compose_duration(value) == seconds


def test_settings_come_from_the_environment_and_no_secret_is_committed(
    deployment: Deployment,
) -> None:
    checks.check_configuration(deployment)


def test_env_example_documents_every_variable(deployment: Deployment) -> None:
    checks.check_env_example(deployment)


def test_mail_goes_to_mailpit_until_env_names_a_provider(deployment: Deployment) -> None:
    checks.check_mail_service(deployment)


def test_the_image_is_multi_stage_and_runs_as_a_user(deployment: Deployment) -> None:
    checks.check_dockerfile(deployment)
    assert deployment.final_stage.env()["FLASK_APP"] == "example:create_app"
    copied = [c.words() for c in deployment.final_stage.all("COPY") if not c.flags()]
    assert copied == [["example/", "example/"], ["migrations/", "migrations/"]]


def test_the_build_context_leaves_out_local_files(deployment: Deployment) -> None:
    checks.check_dockerignore(deployment)


def test_a_dockerfile_without_user_is_refused(tmp_path: Path) -> None:
    """The property checks themselves catch what they are for."""
    for name in ("docker-compose.yml", ".env.example", ".dockerignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    (tmp_path / "Dockerfile").write_text(re.sub(r"^USER .*$", "", text, flags=re.MULTILINE))
    with pytest.raises(AssertionError, match="runs as root"):
        checks.check_dockerfile(Deployment.read(tmp_path))


def _with_compose(tmp_path: Path, old: str, new: str) -> Deployment:
    """The repository's deployment files with ``old`` replaced by ``new`` in the compose file."""
    for name in ("Dockerfile", ".env.example", ".dockerignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert old in text
    (tmp_path / "docker-compose.yml").write_text(text.replace(old, new), encoding="utf-8")
    return Deployment.read(tmp_path)


@pytest.mark.parametrize(
    "value",
    [
        "smtp://app:hunter2@smtp.example.com:587?starttls=1",
        "smtp://app:${SMTP_PASSWORD}@smtp.example.com:587",
        "${MAIL_URL:-smtp://mail:1025}",
        "${MAIL_URL:?set it}?timeout=5",
    ],
)
def test_a_mail_url_written_in_the_compose_file_is_refused(tmp_path: Path, value: str) -> None:
    deployment = _with_compose(
        tmp_path,
        "MAIL_URL: ${MAIL_URL:?set MAIL_URL in .env (see .env.example)}",
        f"MAIL_URL: {value}",
    )
    with pytest.raises(AssertionError, match="MAIL_URL"):
        checks.check_configuration(deployment)


def test_a_web_service_waiting_for_mailpit_is_refused(tmp_path: Path) -> None:
    deployment = _with_compose(
        tmp_path,
        "      redis:\n        condition: service_healthy\n    ports:",
        "      redis:\n        condition: service_healthy\n      mail:\n"
        "        condition: service_started\n    ports:",
    )
    with pytest.raises(AssertionError, match="web must not wait for mail"):
        checks.check_mail_service(deployment)


# -- the services' commands, run here ------------------------------------------------------


def _session_keys(client: redis.Redis, namespace: str) -> dict[str, dict[str, t.Any]]:
    keys = client.keys(f"{namespace}:session:*")
    return {key.decode(): json.loads(t.cast("bytes", client.get(key))) for key in keys}


def _access_lines(server: Server, request_id: str) -> list[dict[str, t.Any]]:
    """gunicorn's JSON access lines (flaskstack.gunicorn's format) for ``request_id``."""
    lines = []
    for line in server.output().splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("logger") == "gunicorn.access" and record.get("request_id") == request_id:
            lines.append(record)
    return lines


def _worker(server: Server, response: Response) -> int:
    """The pid of the gunicorn worker that served ``response``, from the access log."""
    server.wait_until(
        lambda: bool(_access_lines(server, response.request_id)),
        timeout=10,
        what=f"an access log line for request {response.request_id}",
    )
    return int(_access_lines(server, response.request_id)[0]["pid"])


def _csrf_token(browser: Browser) -> str:
    response = browser.get("/csrf-token")
    assert response.status == 200, response.body
    return t.cast("str", json.loads(response.body)["csrf_token"])


@pytest.fixture
def smtp_server() -> t.Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def test_the_compose_services_run_here(
    deployment: Deployment,
    postgres: PostgresDatabases,
    namespace: t.Callable[[], str],
    smtp_server: SMTPServer,
    tmp_path: Path,
) -> None:
    # What compose gives the app containers, with .env filled in from .env.example;
    # the db, redis and mail services are this machine's servers.
    variables = deployment.variables(
        SECRET_KEY=secrets.token_urlsafe(48), POSTGRES_PASSWORD=secrets.token_hex(16)
    )
    redis_namespace = namespace()
    local = {
        "DATABASE_URL": postgres.create("deploy"),
        "REDIS_URL": SHARED_REDIS_URL,
        "FLASKSTACK_NAMESPACE": redis_namespace,
        "MAIL_URL": smtp_server.url(),
    }
    environments = {}
    for service in ("migrate", "web", "worker"):
        environment = deployment.environment(service, variables)
        assert environment["FLASKSTACK_PROFILE"] == "production"
        environments[service] = {**environment, **local}
    workers = int(environments["web"]["WEB_CONCURRENCY"])
    assert workers == 2
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    migrate = local_command(deployment.migrate_command(), sys.executable)
    migrated = run(migrate, env={**base, **environments["migrate"]}, cwd=ROOT)
    assert migrated.returncode == 0, migrated.stdout
    assert "Running upgrade" in migrated.stdout

    jobs_worker = Server(
        local_command(deployment.worker_command(), sys.executable),
        env={**base, **environments["worker"]},
        cwd=ROOT,
        log=tmp_path / "worker.log",
    )
    with jobs_worker:
        wait_for_a_worker(jobs_worker, SHARED_REDIS_URL, redis_namespace)
        # The release check the docs ask for, with the same environment: it also
        # connects to the SMTP server, and sees the worker's heartbeat (jobs.W001).
        checked = run(
            [sys.executable, "-m", "flask", "stack", "check", "--deploy"],
            env={**base, **environments["migrate"]},
            cwd=ROOT,
        )
        assert checked.returncode == 0, checked.stdout
        assert "no issues" in checked.stdout

        port = free_port()
        web = with_bind(
            local_command(deployment.web_command(), sys.executable), f"127.0.0.1:{port}"
        )
        server = Server(
            web, env={**base, **environments["web"]}, cwd=ROOT, log=tmp_path / "web.log"
        )
        with server:
            server.wait_for_http(f"http://127.0.0.1:{port}/readyz")
            probe = [
                word.replace(f"127.0.0.1:{deployment.bind_port()}", f"127.0.0.1:{port}")
                for word in deployment.web_healthcheck()
            ]
            healthy = run(local_command(probe, sys.executable), env=base, cwd=tmp_path, timeout=30)
            assert healthy.returncode == 0, healthy.stdout

            registered = _drive_the_app(
                server, Browser("127.0.0.1", port), redis_namespace, workers
            )
            # Registering mailed a confirmation link, from .env.example's sender,
            # through a job the worker ran.
            (mail,) = smtp_server.wait_for(1)
            assert mail.message["From"] == variables["FLASKSTACK_MAIL_FROM"]
            assert mail.rcpt_tos[0].startswith("deploy-")
            ran = wait_for_job_log_line(jobs_worker, registered.request_id)
            assert ran["job"]["status"] == "finished", ran
            status = server.stop()
        assert status == 0, server.output()
        assert "Shutting down: Master" in server.output()
        stopped = jobs_worker.stop()
    # SIGTERM with no job in flight: the worker stops at once, cleanly.
    assert stopped == 0, jobs_worker.output()


def _drive_the_app(
    server: Server, browser: Browser, redis_namespace: str, workers: int
) -> Response:
    """Register, sign in, use the session on every worker, sign out; return the registration."""
    store = redis.Redis.from_url(SHARED_REDIS_URL)
    try:
        registered = _register_and_sign_in(browser, store, redis_namespace)
        _use_the_session_on_every_worker(server, browser, store, redis_namespace, workers)
        _sign_out(browser, store, redis_namespace)
    finally:
        store.close()
    return registered


def _register_and_sign_in(browser: Browser, store: redis.Redis, redis_namespace: str) -> Response:
    email = f"deploy-{uuid.uuid4().hex[:8]}@example.com"
    page = browser.get("/auth/register")
    assert page.status == 200
    assert page.headers["X-Request-ID"] == page.request_id
    (cookie,) = page.set_cookies()
    # Production cookies: HTTPS only, hidden from scripts, same-site.
    assert cookie["secure"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    form = {
        "email": email,
        "password": PASSWORD,
        "confirm": PASSWORD,
        "csrf_token": form_fields(page.body)["csrf_token"],
    }
    registered = browser.post("/auth/register", form)
    assert registered.status == 302, registered.body
    sessions = _session_keys(store, redis_namespace)
    assert len(sessions) == 1
    assert "_user_id" in next(iter(sessions.values()))

    signed_out = browser.post("/auth/logout", {"csrf_token": _csrf_token(browser)})
    assert signed_out.status == 302
    assert _session_keys(store, redis_namespace) == {}

    page = browser.get("/auth/login")
    before = dict(browser.cookies)
    form = {
        "email": email,
        "password": PASSWORD,
        "csrf_token": form_fields(page.body)["csrf_token"],
    }
    signed_in = browser.post("/auth/login", form)
    assert signed_in.status == 302, signed_in.body
    assert browser.cookies != before  # a new session id at login
    # Where a browser goes next: the page shows (and so takes out of the session)
    # the message flashed at sign-in.
    landed = _follow(browser, signed_in)
    assert landed.status == 200, landed.body
    sessions = _session_keys(store, redis_namespace)
    assert len(sessions) == 1
    assert "_user_id" in next(iter(sessions.values()))
    return registered


def _follow(browser: Browser, response: Response, hops: int = 5) -> Response:
    """The page a browser ends on after following ``response``'s redirects."""
    for _ in range(hops):
        if response.status not in (301, 302, 303, 307, 308):
            return response
        target = urlsplit(response.headers["Location"])
        response = browser.get(target.path + (f"?{target.query}" if target.query else ""))
    raise AssertionError(f"more than {hops} redirects")


def _use_the_session_on_every_worker(
    server: Server, browser: Browser, store: redis.Redis, redis_namespace: str, workers: int
) -> None:
    """Each round holds one worker with a stalled POST while another serves a GET.

    The POST carries a CSRF token minted in an earlier round, possibly by the
    other worker; it is accepted only if its worker finds the session in
    Redis. Neither response sets a cookie: no worker had to start a session.
    """
    session = dict(browser.cookies)
    (stored,) = _session_keys(store, redis_namespace).values()
    token = _csrf_token(browser)
    seen: set[int] = set()
    mismatch = {"email": "someone@example.com", "password": PASSWORD, "confirm": PASSWORD + "!"}
    for _ in range(ROUNDS):
        held = browser.stall("POST", "/auth/register", form={**mismatch, "csrf_token": token})
        fetched = browser.get("/csrf-token")
        posted = held.finish()
        assert fetched.status == 200, fetched.body
        assert posted.status == 200, posted.body  # CSRF accepted, the form re-shown
        assert "The passwords differ." in posted.body
        assert fetched.set_cookies() == []
        assert posted.set_cookies() == []
        pair = {_worker(server, posted), _worker(server, fetched)}
        assert len(pair) == 2, "both requests were served by the same worker"
        seen |= pair
        token = json.loads(fetched.body)["csrf_token"]
    assert len(seen) == workers
    assert browser.cookies == session
    assert list(_session_keys(store, redis_namespace).values()) == [stored]


def _sign_out(browser: Browser, store: redis.Redis, redis_namespace: str) -> None:
    old = dict(browser.cookies)
    signed_out = browser.post("/auth/logout", {"csrf_token": _csrf_token(browser)})
    assert signed_out.status == 302
    assert [(m.key, m["max-age"]) for m in signed_out.set_cookies()] == [("session", "0")]
    assert _session_keys(store, redis_namespace) == {}
    # The old cookie is dead on every worker: it only gets a new, empty session.
    browser.cookies = dict(old)
    assert browser.get("/csrf-token").set_cookies()[0].value != old["session"]
