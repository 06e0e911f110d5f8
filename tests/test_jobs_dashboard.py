"""The jobs dashboard (``FLASKSTACK_JOBS_DASHBOARD_PATH``), seen from a browser.

Each test builds an app with jobs on, in a namespace of its own on the shared
Redis, on a fresh PostgreSQL database, with a user model of the app's own
(:class:`JobsOperator`: flaskstack's ``UserMixin`` plus a ``roles`` column
and ``has_role``). People sign in through the real sign-in form; jobs are
functions of ``tests/jobs_dashboard_sample.py`` enqueued the way an app does
and run by RQ's burst worker in this process. RQ's keys are not under the
namespace (``rq:queue:<ns>:default``, ``rq:job:<id>``, ...): the ``site``
fixture deletes those of the namespaces it made.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
import typing as t

import jobs_dashboard_sample as sample
import pytest
import redis
import sqlalchemy as sa
from conftest import SHARED_REDIS_URL
from flask_login import LoginManager
from rq.job import Job
from sqlalchemy.orm import Mapped, mapped_column

import flaskstack
from flaskstack import db, jobs
from flaskstack._jobs_worker import build_worker
from flaskstack.auth import UserMixin, create_token

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient
    from redis_servers import RedisServer
    from werkzeug.test import TestResponse

PATH = "/admin/jobs"
PASSWORD = "correct horse battery staple"
FAST_HASH = "pbkdf2:sha256:1000"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CSRF_FIELD = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


class JobsOperator(UserMixin, db.Model):  # type: ignore[misc,name-defined]
    """An app's own user model with roles: what the dashboard's protocol asks for."""

    __tablename__ = "jobs_dashboard_operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    roles: Mapped[str] = mapped_column(sa.String(200), default="")

    def has_role(self, name: str) -> bool:
        return name in (self.roles or "").split()


class RolelessUser(UserMixin, db.Model):  # type: ignore[misc,name-defined]
    """An app's own user model without ``has_role``."""

    __tablename__ = "jobs_dashboard_roleless"

    id: Mapped[int] = mapped_column(primary_key=True)


# -- the site ----------------------------------------------------------------------------


@dataclasses.dataclass
class Site:
    """An app with the dashboard on, its namespace and a client of the shared Redis."""

    app: Flask
    ns: str
    redis: t.Any  # a redis.Redis client of the shared server, answering bytes

    def add_user(self, email: str, roles: str = "") -> None:
        with self.app.app_context():
            user = JobsOperator(email=email, roles=roles)
            user.set_password(PASSWORD)
            db.session.add(user)
            db.session.commit()

    def browser(self, email: str | None = None) -> FlaskClient:
        """A test client, signed in through the sign-in form when ``email`` is given."""
        client = self.app.test_client()
        if email is not None:
            data = {"csrf_token": csrf_of(client, "/auth/login"), "email": email}
            response = client.post("/auth/login", data={**data, "password": PASSWORD})
            assert response.status_code == 302, response.text
        return client

    def enqueue(self, func: t.Callable[..., t.Any], *args: t.Any) -> str:
        with self.app.app_context():
            return jobs.enqueue(func, *args).id

    def work(self) -> None:
        """Run every queued job in a burst worker in this process."""
        worker = build_worker(self.app, simple=True)
        try:
            worker.work(burst=True)
        finally:
            worker.connection.close()

    def job(self, job_id: str) -> Job:
        return Job.fetch(job_id, connection=self.redis)

    def exists(self, job_id: str) -> bool:
        return bool(Job.exists(job_id, connection=self.redis))

    def failed(self) -> list[str]:
        return [m.decode() for m in self.redis.zrange(f"rq:failed:{self.ns}:default", 0, -1)]

    def queued(self) -> list[str]:
        return [m.decode() for m in self.redis.lrange(f"rq:queue:{self.ns}:default", 0, -1)]


def csrf_of(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form on the page at ``path``."""
    page = client.get(path, headers=BROWSER)
    found = CSRF_FIELD.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def token_of(client: FlaskClient) -> str:
    """The session's CSRF token, from the app's token endpoint (the same as any form's)."""
    response = client.get("/csrf-token")
    assert response.status_code == 200, response.text
    token: str = response.get_json()["csrf_token"]
    return token


def _hash_field(client: t.Any, key: bytes, name: str) -> bytes:
    """A field of a hash, or ``b""``: tests running alongside keep RQ keys of other types."""
    try:
        value: bytes | None = client.hget(key, name)
    except redis.ResponseError:
        return b""
    return value or b""


def _delete_rq_keys(client: t.Any, namespaces: t.Sequence[str]) -> None:
    """Delete RQ's keys of the queues in ``namespaces``: queues, registries, jobs, workers."""
    origins = tuple(f"{ns}:".encode() for ns in namespaces)
    doomed: list[bytes] = []
    for key in client.scan_iter(match="rq:*", count=1000):
        if any(b":" + origin in key for origin in origins):
            doomed.append(key)  # rq:queue:<ns>:q, rq:failed:<ns>:q, rq:workers:<ns>:q, ...
        elif key.startswith(b"rq:job:") and key.count(b":") == 2:
            if _hash_field(client, key, "origin").startswith(origins):
                job_id = key.removeprefix(b"rq:job:")
                doomed += [key, b"rq:results:" + job_id, b"rq:executions:" + job_id]
                doomed += list(client.scan_iter(match=b"rq:execution:" + job_id + b":*"))
        elif (
            key.startswith(b"rq:worker:")
            and key.count(b":") == 2
            and any(origin in _hash_field(client, key, "queues") for origin in origins)
        ):
            doomed.append(key)
            client.srem("rq:workers", key)
    if doomed:
        client.delete(*doomed)
    queues = [q for q in client.smembers("rq:queues") if any(o in q for o in origins)]
    if queues:
        client.srem("rq:queues", *queues)


def settings(postgres_url: str, ns: str, redis_url: str = SHARED_REDIS_URL) -> dict[str, t.Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": postgres_url,
        "FLASKSTACK_REDIS_URL": redis_url,
        "FLASKSTACK_NAMESPACE": ns,
        "FLASKSTACK_PASSWORD_METHOD": FAST_HASH,
        "FLASKSTACK_JOBS": True,
        "FLASKSTACK_USER_MODEL": JobsOperator,
        "FLASKSTACK_JOBS_DASHBOARD_PATH": PATH,
    }


def create_tables(app: Flask) -> None:
    with app.app_context():
        tables = [model.__table__ for model in flaskstack.get_state(app).auth.models]
        db.metadata.create_all(bind=db.engine, tables=tables)


@pytest.fixture
def build(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> Iterator[Callable[..., Site]]:
    """``build(**settings)``: a site with the dashboard on, and alice (admin) and bob."""
    made: list[str] = []
    with redis.Redis.from_url(SHARED_REDIS_URL) as client:

        def factory(**config: t.Any) -> Site:
            ns = namespace()
            made.append(ns)
            app = make_app({**settings(postgres_url, ns), **config}, profile="testing")
            create_tables(app)
            return Site(app, ns, client)

        yield factory
        _delete_rq_keys(client, made)


@pytest.fixture
def site(build: Callable[..., Site]) -> Site:
    site = build()
    site.add_user("alice@example.com", roles="admin")
    site.add_user("bob@example.com", roles="editor")
    return site


def h1s(page: TestResponse) -> list[str]:
    return re.findall(r"<h1>(.*?)</h1>", page.text, flags=re.S)


# -- off by default ----------------------------------------------------------------------

OFF_WORKER = textwrap.dedent(
    """
    import json, sys

    from flask import Flask

    import flaskstack

    app = Flask("offapp", instance_path=sys.argv[1])
    settings = {"FLASKSTACK_REDIS_URL": sys.argv[2], "FLASKSTACK_NAMESPACE": sys.argv[3]}
    flaskstack.init_app(app, settings, jobs=True, profile="testing")
    client = app.test_client()
    seen = {
        "status": client.get("/admin/jobs").status_code,
        "blueprint": "flaskstack_jobs" in app.blueprints,
        "imported": "flaskstack._jobs_dashboard" in sys.modules,
        "path": app.config["FLASKSTACK_JOBS_DASHBOARD_PATH"],
    }
    print(json.dumps(seen))
    """
)


def test_the_dashboard_is_off_by_default_and_its_code_is_not_imported(
    tmp_path: Path, namespace: Callable[[], str]
) -> None:
    instance = str(tmp_path / "instance")
    run = subprocess.run(
        [sys.executable, "-c", OFF_WORKER, instance, SHARED_REDIS_URL, namespace()],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen == {"status": 404, "blueprint": False, "imported": False, "path": None}


# -- refused at init_app -----------------------------------------------------------------


def refusal(make_app: AppFactory, config: dict[str, t.Any], **options: t.Any) -> str:
    with pytest.raises(flaskstack.ConfigError) as refused:
        make_app(config, profile="testing", **options)
    return str(refused.value)


def test_the_dashboard_needs_jobs_on(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> None:
    config = {**settings(postgres_url, namespace()), "FLASKSTACK_JOBS": False}
    message = refusal(make_app, config)
    assert "[jobs.E003] 'FLASKSTACK_JOBS_DASHBOARD_PATH' = '/admin/jobs'" in message
    assert "set FLASKSTACK_JOBS=true" in message


def test_the_dashboard_needs_a_user_model_with_has_role(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> None:
    config = {**settings(postgres_url, namespace()), "FLASKSTACK_USER_MODEL": RolelessUser}
    message = refusal(make_app, config)
    assert "[jobs.E004] 'FLASKSTACK_JOBS_DASHBOARD_PATH'" in message
    assert "test_jobs_dashboard.RolelessUser cannot say which roles a user holds" in message
    assert "set FLASKSTACK_ROLES = True" in message
    assert "'admin'" in message  # the role it would ask for

    # flaskstack's default user model has no roles (yet): the same refusal.
    default = {**settings(postgres_url, namespace()), "FLASKSTACK_USER_MODEL": None}
    assert "User cannot say which roles a user holds" in refusal(make_app, default)


def test_flaskstacks_roles_let_the_role_in(build: Callable[..., Site]) -> None:
    # flaskstack's default user model, with flaskstack's roles: no method to write.
    site = build(FLASKSTACK_USER_MODEL=None, FLASKSTACK_ROLES=True)
    runner = site.app.test_cli_runner()
    with site.app.app_context():
        model = flaskstack.get_state(site.app).auth.user_model
        for email in ("alice@example.com", "bob@example.com"):
            user = model(email=email)
            user.set_password(PASSWORD)
            db.session.add(user)
        db.session.commit()
    for args in (["role", "create", "admin"], ["role", "grant", "admin", "alice@example.com"]):
        result = runner.invoke(args=["stack", *args])
        assert result.exit_code == 0, result.output

    assert site.browser("alice@example.com").get(PATH).status_code == 200
    refused = site.browser("bob@example.com").get(PATH)
    assert refused.status_code == 403
    assert "&#39;admin&#39; role" in refused.text


def test_an_app_with_its_own_login_manager_must_name_its_user_model(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> None:
    def own_manager(app: Flask) -> None:
        LoginManager(app).user_loader(lambda user_id: None)

    config = {**settings(postgres_url, namespace()), "FLASKSTACK_USER_MODEL": None}
    message = refusal(make_app, config, before=own_manager)
    assert "[jobs.E004]" in message
    assert "set FLASKSTACK_USER_MODEL to the app's user model" in message


def test_the_dashboard_refuses_the_root_and_a_url_the_app_has(
    make_app: AppFactory, postgres_url: str, namespace: Callable[[], str]
) -> None:
    config = {**settings(postgres_url, namespace()), "FLASKSTACK_JOBS_DASHBOARD_PATH": "/"}
    assert "[jobs.E005]" in refusal(make_app, config)

    def own_page(app: Flask) -> None:
        app.add_url_rule(PATH, "jobs_page", lambda: "the app's own page")

    message = refusal(make_app, settings(postgres_url, namespace()), before=own_page)
    assert "[urls.E001] 'FLASKSTACK_JOBS_DASHBOARD_PATH'" in message
    assert "'jobs_page'" in message


# -- who gets in -------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(site: Site) -> None:
    job_id = site.enqueue(sample.succeed, "x")
    browser = site.browser()
    for path in (PATH, f"{PATH}/{job_id}"):
        response = browser.get(path, headers=BROWSER)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/auth/login?next=")
    token = csrf_of(browser, "/auth/login")
    response = browser.post(f"{PATH}/{job_id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login")
    assert site.exists(job_id)
    assert browser.get(PATH, headers={"Accept": "application/json"}).status_code == 401


def test_a_user_without_the_role_gets_403(site: Site) -> None:
    job_id = site.enqueue(sample.succeed, "x")
    bob = site.browser("bob@example.com")
    for path in (PATH, f"{PATH}/{job_id}"):
        response = bob.get(path, headers=BROWSER)
        assert response.status_code == 403
        assert "text/html" in response.headers["Content-Type"]
        assert "for users with the &#39;admin&#39; role" in response.text
        assert response.headers["Cache-Control"] == "private, no-store"
    response = bob.post(f"{PATH}/{job_id}/delete", data={"csrf_token": token_of(bob)})
    assert response.status_code == 403
    assert site.exists(job_id)


def test_the_role_is_a_setting(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_JOBS_DASHBOARD_ROLE="editor")
    site.add_user("alice@example.com", roles="admin")
    site.add_user("bob@example.com", roles="editor")
    assert site.browser("bob@example.com").get(PATH, headers=BROWSER).status_code == 200
    assert site.browser("alice@example.com").get(PATH, headers=BROWSER).status_code == 403


# -- the pages ---------------------------------------------------------------------------


def test_the_overview_lists_queues_and_failed_jobs(site: Site) -> None:
    failed_id = site.enqueue(sample.fail, "the printer is on fire")
    site.work()
    site.enqueue(sample.succeed, "later")
    alice = site.browser("alice@example.com")

    page = alice.get(PATH, headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "private, no-store"
    assert h1s(page) == ["Background jobs"]
    assert "<title>Background jobs</title>" in page.text
    queue_row = re.search(r'<th scope="row">default</th>(.*?)</tr>', page.text, flags=re.S)
    assert queue_row is not None, page.text
    counts = re.findall(r"<td>(\d+)</td>", queue_row.group(1))
    assert counts == ["1", "0", "0", "1", "0"]  # queued, running, scheduled, failed, finished
    assert f'href="{PATH}/{failed_id}"' in page.text
    assert "RuntimeError: the printer is on fire" in page.text
    assert f'aria-label="Requeue job {failed_id}"' in page.text
    assert "<caption>" in page.text
    assert "<script" not in page.text
    assert "style=" not in page.text
    assert "<style" not in page.text

    job_page = alice.get(f"{PATH}/{failed_id}", headers=BROWSER)
    assert job_page.status_code == 200
    assert h1s(job_page) == [f"Job {failed_id}"]
    assert "<dd>failed</dd>" in job_page.text
    assert "Traceback (most recent call last)" in job_page.text
    assert "jobs_dashboard_sample.fail(&#39;the printer is on fire&#39;)" in job_page.text


def test_a_queued_jobs_page(site: Site) -> None:
    queued_id = site.enqueue(sample.succeed, "later")
    page = site.browser("alice@example.com").get(f"{PATH}/{queued_id}", headers=BROWSER)
    assert page.status_code == 200
    assert h1s(page) == [f"Job {queued_id}"]
    assert "<dd>queued</dd>" in page.text
    assert "jobs_dashboard_sample.succeed(&#39;later&#39;)" in page.text
    assert "Traceback" not in page.text
    assert "Requeue this job" not in page.text
    assert "Delete this job" in page.text


def test_an_unknown_job_is_a_404_page(site: Site) -> None:
    alice = site.browser("alice@example.com")
    response = alice.get(f"{PATH}/no-such-job", headers=BROWSER)
    assert response.status_code == 404
    assert "There is no job &#39;no-such-job&#39; in this app&#39;s queues" in response.text
    token = token_of(alice)
    for action in ("requeue", "delete"):
        posted = alice.post(f"{PATH}/no-such-job/{action}", data={"csrf_token": token})
        assert posted.status_code == 404


# -- actions -----------------------------------------------------------------------------


def test_requeue_needs_the_csrf_token_and_puts_the_job_back(site: Site) -> None:
    failed_id = site.enqueue(sample.fail, "boom")
    site.work()
    alice = site.browser("alice@example.com")

    refused = alice.post(f"{PATH}/{failed_id}/requeue", headers=BROWSER)
    assert refused.status_code == 400
    assert site.failed() == [failed_id]
    assert site.queued() == []

    token = token_of(alice)
    response = alice.post(
        f"{PATH}/{failed_id}/requeue", data={"csrf_token": token, "back": "overview"}
    )
    assert (response.status_code, response.headers["Location"]) == (302, PATH)
    assert site.failed() == []
    assert site.queued() == [failed_id]
    page = alice.get(PATH, headers=BROWSER)
    assert f'<p class="flash success" role="status">Job {failed_id} is back in its queue.</p>' in (
        page.text
    )

    # From the job's page, back to it; a job that is not failed is not requeued.
    again = alice.post(f"{PATH}/{failed_id}/requeue", data={"csrf_token": token})
    assert (again.status_code, again.headers["Location"]) == (302, f"{PATH}/{failed_id}")
    page = alice.get(f"{PATH}/{failed_id}", headers=BROWSER)
    assert f"Job {failed_id} is queued, not failed: only failed jobs are requeued." in page.text
    assert 'role="alert"' in page.text
    assert site.queued() == [failed_id]


def test_requeue_every_failed_job(site: Site) -> None:
    first = site.enqueue(sample.fail, "one")
    second = site.enqueue(sample.fail, "two")
    site.work()
    alice = site.browser("alice@example.com")
    assert alice.post(f"{PATH}/requeue-failed", headers=BROWSER).status_code == 400
    assert sorted(site.failed()) == sorted([first, second])

    token = token_of(alice)
    response = alice.post(f"{PATH}/requeue-failed", data={"csrf_token": token})
    assert (response.status_code, response.headers["Location"]) == (302, PATH)
    assert site.failed() == []
    assert sorted(site.queued()) == sorted([first, second])
    page = alice.get(PATH, headers=BROWSER)
    assert "2 failed jobs are back in their queues." in page.text
    assert "No failed jobs." in page.text


def test_delete_needs_the_csrf_token_and_deletes_the_job(site: Site) -> None:
    failed_id = site.enqueue(sample.fail, "boom")
    site.work()
    queued_id = site.enqueue(sample.succeed, "later")
    alice = site.browser("alice@example.com")

    for job_id in (failed_id, queued_id):
        assert alice.post(f"{PATH}/{job_id}/delete", headers=BROWSER).status_code == 400
        assert site.exists(job_id)

    token = token_of(alice)
    for job_id in (failed_id, queued_id):
        response = alice.post(f"{PATH}/{job_id}/delete", data={"csrf_token": token})
        assert (response.status_code, response.headers["Location"]) == (302, PATH)
        assert not site.exists(job_id)
    assert site.failed() == []
    assert site.queued() == []
    page = alice.get(PATH, headers=BROWSER)
    assert f"Job {queued_id} is deleted." in page.text
    assert alice.get(f"{PATH}/{failed_id}", headers=BROWSER).status_code == 404


def test_another_apps_jobs_are_refused(site: Site, build: Callable[..., Site]) -> None:
    other = build()
    theirs = other.enqueue(sample.fail, "not yours")
    other.work()
    alice = site.browser("alice@example.com")
    assert alice.get(f"{PATH}/{theirs}", headers=BROWSER).status_code == 404
    token = token_of(alice)
    for action in ("requeue", "delete"):
        response = alice.post(f"{PATH}/{theirs}/{action}", data={"csrf_token": token})
        assert response.status_code == 404
    assert other.failed() == [theirs]
    response = alice.post(f"{PATH}/requeue-failed", data={"csrf_token": token})
    assert response.status_code == 302
    assert other.failed() == [theirs]
    assert theirs not in alice.get(PATH, headers=BROWSER).text


# -- Redis down --------------------------------------------------------------------------


def test_redis_down_is_a_503_page(
    make_app: AppFactory,
    postgres_url: str,
    namespace: Callable[[], str],
    fresh_redis_server: RedisServer,
) -> None:
    app = make_app(
        settings(postgres_url, namespace(), fresh_redis_server.url),
        profile="testing",
        redis_timeout=1.0,
    )
    create_tables(app)
    with app.app_context():
        alice = JobsOperator(email="alice@example.com", roles="admin")
        alice.set_password(PASSWORD)
        db.session.add(alice)
        db.session.flush()
        token, _record = create_token(alice, "dashboard")
        db.session.commit()
        job_id = jobs.enqueue(sample.succeed, "x").id
    browser = app.test_client()
    data = {"csrf_token": csrf_of(browser, "/auth/login"), "email": "alice@example.com"}
    assert browser.post("/auth/login", data={**data, "password": PASSWORD}).status_code == 302
    api = app.test_client()
    bearer = {**BROWSER, "Authorization": f"Bearer {token}"}
    assert api.get(PATH, headers=bearer).status_code == 200

    fresh_redis_server.stop()
    # A browser's session lives in the same Redis: the outage page, as on every signed-in page.
    for path in (PATH, f"{PATH}/{job_id}"):
        response = browser.get(path, headers=BROWSER)
        assert response.status_code == 503
        assert response.headers["Content-Type"].startswith("text/html")
        assert "<h1>Service Unavailable</h1>" in response.text
        assert "Traceback" not in response.text
        assert response.headers["Retry-After"].isdigit()
    # A token reads no session: the dashboard finds Redis down itself (a token
    # client gets flaskstack's problem document rather than the page).
    for method, path in (("GET", PATH), ("GET", f"{PATH}/{job_id}"), ("POST", f"{PATH}/x/delete")):
        response = api.open(path, method=method, headers=bearer)
        assert response.status_code == 503
        assert response.headers["Content-Type"] == "application/problem+json"
        assert "The background job queue cannot be reached right now" in response.text
        assert response.headers["Retry-After"].isdigit()


# -- found in flaskstack._jobs_ops (reported; fails until fixed there) -------------------


def test_job_details_says_the_status_plainly(site: Site) -> None:
    # str() of RQ's JobStatus member is "JobStatus.QUEUED": `flask stack jobs
    # show` prints it so, and requeue's refusal says "is JobStatus.QUEUED".
    queued_id = site.enqueue(sample.succeed, "later")
    shown = site.app.test_cli_runner().invoke(args=["stack", "jobs", "show", queued_id])
    assert "status: queued" in shown.output, shown.output
