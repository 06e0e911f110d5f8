"""Account mail through background jobs: with FLASKSTACK_JOBS on, a worker sends it.

The request enqueues a job instead of talking to the mail server; a real RQ
worker (in burst mode, in this process) stores the link and sends the
message over SMTP to an aiosmtpd server on loopback. When the server is
down, the job fails, is retried, and the retry sends the same link, which
still works; a retry never replaces a newer link the user asked for since.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t

import pytest
import redis
from smtp_server import SMTPServer
from test_auth import BROWSER, PASSWORD, SHARED_REDIS_URL, Site, log_in, new_site
from test_auth_accounts import NEW_PASSWORD, csrf_from, namespaces, submit

from flaskstack.testing._jobs import delete_job_keys

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from flask import Flask

LINK = re.compile(r"http://localhost(/auth/[a-z/-]+/[A-Za-z0-9_-]{20,})")
SENDER = "no-reply@example.com"

__all__ = ["namespaces"]  # the fixture, shared with the account flows' tests


@pytest.fixture
def build(
    make_app: AppFactory, postgres_url: str, namespaces: list[tuple[str, str]]
) -> Iterator[Callable[..., Site]]:
    """``build(mail_url)``: an app with jobs on, sending to ``mail_url``."""
    sites: list[Site] = []

    def make(mail_url: str, **config: t.Any) -> Site:
        site = new_site(
            make_app,
            postgres_url,
            namespaces,
            FLASKSTACK_JOBS=True,
            MAIL_URL=mail_url,
            FLASKSTACK_MAIL_FROM=SENDER,
            **config,
        )
        sites.append(site)
        return site

    yield make
    for site in sites:
        delete_job_keys(site.app.extensions["flaskstack"].redis)


def run_jobs(app: Flask) -> list[t.Any]:
    from flaskstack.testing._jobs import JobsWorker

    return JobsWorker(app).run(raise_errors=False)


def queued(app: Flask) -> list[t.Any]:
    from flaskstack.testing._jobs import EnqueuedJobs

    return EnqueuedJobs(app).all()


def ask_for_reset(site: Site, email: str) -> None:
    response = submit(site.client(), "/auth/reset-password", {"email": email})
    assert response.status_code == 302
    response.close()  # over SMTP, the job is enqueued once the response has gone out


def test_a_worker_sends_the_reset_link_and_the_link_works(build: Callable[..., Site]) -> None:
    with SMTPServer() as server:
        site = build(server.url())
        site.add_user("ada@example.com")
        ask_for_reset(site, "ada@example.com")
        assert server.messages == []  # the request only enqueued
        (job,) = queued(site.app)
        assert job.function == "flaskstack.auth._accounts.send_link"

        (ran,) = run_jobs(site.app)
        assert ran.status == "finished"
        (received,) = server.wait_for(1)
    assert received.rcpt_tos == ["ada@example.com"]
    (path,) = set(LINK.findall(received.part("text/plain")))

    browser = site.client()
    token = csrf_from(browser.get(path, headers=BROWSER))
    response = browser.post(
        path,
        data={"csrf_token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        headers=BROWSER,
    )
    assert response.status_code == 302
    # The finished job is gone from Redis at once: the link's token is not kept there.
    assert queued(site.app) == []
    with redis.Redis.from_url(SHARED_REDIS_URL) as client:
        assert not client.exists(f"rq:job:{ran.id}")


def test_an_unknown_address_enqueues_nothing(build: Callable[..., Site]) -> None:
    site = build("smtp://127.0.0.1:9")
    ask_for_reset(site, "nobody@example.com")
    assert queued(site.app) == []


def make_due(app: Flask) -> None:
    """Make the scheduled retries due now (RQ's public registry API)."""
    from rq.job import Job

    from flaskstack.jobs import _queue

    with app.app_context():
        queue = _queue(app, "default")
        registry = queue.scheduled_job_registry
        for job_id in registry.get_job_ids():
            job = Job.fetch(job_id, connection=queue.connection)
            registry.schedule(job, dt.datetime.now(dt.timezone.utc))


def test_a_mail_server_outage_is_retried_with_the_same_link(
    build: Callable[..., Site],
) -> None:
    server = SMTPServer()  # its port is chosen; nothing listens there yet
    site = build(server.url())
    site.add_user("ada@example.com")
    ask_for_reset(site, "ada@example.com")

    (failed,) = run_jobs(site.app)
    assert failed.status == "scheduled"  # retried later, not lost
    assert "was not sent" in (failed.error or "")

    with server:
        make_due(site.app)
        (ran,) = run_jobs(site.app)
        assert ran.status == "finished"
        (received,) = server.wait_for(1)
    (path,) = set(LINK.findall(received.part("text/plain")))
    assert site.client().get(path, headers=BROWSER).status_code == 200  # the link is live


def test_a_retry_does_not_replace_a_newer_link(build: Callable[..., Site]) -> None:
    server = SMTPServer()
    site = build(server.url())
    site.add_user("ada@example.com")
    ask_for_reset(site, "ada@example.com")
    (failed,) = run_jobs(site.app)  # the first link is stored; its message failed
    assert failed.status == "scheduled"

    with server:
        ask_for_reset(site, "ada@example.com")  # a newer link, asked for meanwhile
        make_due(site.app)
        ran = run_jobs(site.app)
        assert sorted(job.status for job in ran) == ["finished", "finished"]
        (received,) = server.wait_for(1)  # only the newer link is sent
    (path,) = set(LINK.findall(received.part("text/plain")))
    assert site.client().get(path, headers=BROWSER).status_code == 200


def test_notices_go_through_jobs_too(build: Callable[..., Site]) -> None:
    with SMTPServer() as server:
        site = build(server.url())
        site.add_user("ada@example.com")
        browser = site.client()
        assert log_in(browser, "ada@example.com").status_code == 302
        response = submit(
            browser,
            "/auth/account/password",
            {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        )
        assert response.status_code == 302
        response.close()
        (job,) = queued(site.app)
        assert job.function == "flaskstack.auth._accounts.send_notice"
        assert run_jobs(site.app)[0].status == "finished"
        (received,) = server.wait_for(1)
    assert "changed" in received.subject.lower()


def test_with_jobs_off_mail_goes_after_the_response_as_before(
    make_app: AppFactory, postgres_url: str, namespaces: list[tuple[str, str]]
) -> None:
    with SMTPServer() as server:
        site = new_site(
            make_app, postgres_url, namespaces, MAIL_URL=server.url(), FLASKSTACK_MAIL_FROM=SENDER
        )
        site.add_user("ada@example.com")
        client = site.client()
        token = csrf_from(client.get("/auth/reset-password", headers=BROWSER))
        response = client.post(
            "/auth/reset-password",
            data={"csrf_token": token, "email": "ada@example.com"},
            headers=BROWSER,
        )
        response.close()  # the message goes once the response is closed
        server.wait_for(1)
