"""A single-page client on another origin, in Chromium, against the reference app.

Conduit runs under gunicorn in the ``production`` profile (PostgreSQL, Redis,
``Secure`` cookies) with ``FLASKSTACK_CORS_ORIGINS`` naming the origin of a
small client (``spa/``) served by a second server on loopback. In the page,
a user:

- signs up through the API and, with the token, publishes, edits and deletes
  an article;
- signs in on the app's own sign-in page, then from the client uses the
  session cookie (``credentials: "include"``) with the CSRF token from
  ``GET /csrf-token``: an article published without the token is refused
  with a readable 400, with it the article is published, edited and deleted.

The same client served from a third origin, not in the allowlist, cannot
call the API: the browser refuses the answer and the sign-up never reaches
the database. Nothing intercepts a request: every preflight is answered by
the app.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
import typing as t
import uuid
from pathlib import Path

import psycopg
import pytest
from chromium import chromium
from conftest import SHARED_REDIS_URL
from playwright.sync_api import expect
from reliability.stackrun import (
    HOST,
    REFERENCE_ROOT,
    AppServer,
    flask_command,
    free_port,
    production_environment,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from playwright.sync_api import Page

SPA_FILES = Path(__file__).resolve().parent / "spa"
TESTS = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
#: Generous: a bound for a slow, busy machine, not a speed requirement.
WAIT_MS = 30_000


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: t.Any) -> None:
        pass


@contextlib.contextmanager
def static_origin() -> Iterator[str]:
    """Serve ``spa/`` on a loopback port of its own; yield its origin."""
    handler = functools.partial(_QuietFiles, directory=str(SPA_FILES))
    server = http.server.ThreadingHTTPServer((HOST, free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def spa_origin() -> Iterator[str]:
    with static_origin() as origin:
        yield origin


@pytest.fixture
def other_origin() -> Iterator[str]:
    with static_origin() as origin:
        yield origin


@pytest.fixture
def conduit(
    spa_origin: str, postgres_url: str, namespace: Callable[[], str], tmp_path: Path
) -> Iterator[str]:
    """Conduit under gunicorn, production profile, allowing ``spa_origin`` with credentials."""
    env = production_environment(
        database_url=postgres_url,
        redis_url=SHARED_REDIS_URL,
        namespace=namespace(),
        extra={
            "PYTHONPATH": f"{TESTS}:{REFERENCE_ROOT}",
            "FLASKSTACK_PASSWORD_METHOD": "pbkdf2:sha256:1000",
            "FLASKSTACK_CORS_ORIGINS": spa_origin,
            "FLASKSTACK_CORS_CREDENTIALS": "true",
        },
    )
    flask_command("example:create_app", env, "db", "upgrade")
    with AppServer(tmp_path, "example:create_app()", env, workers=1, name="conduit") as server:
        host, port = server.address
        yield f"http://{host}:{port}"


def status(page: Page, text: str) -> None:
    """Wait until the client says ``text`` (what the user reads)."""
    expect(page.locator("#status")).to_have_text(text, timeout=WAIT_MS)


def articles(database_url: str, author: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT a.title, a.body FROM article a JOIN user_account u ON u.id = a.author_id "
            "WHERE u.username = %s ORDER BY a.title",
            (author,),
        )
        return [(row[0], row[1]) for row in rows]


def user_exists(database_url: str, username: str) -> bool:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM user_account WHERE username = %s", (username,))
        found = row.fetchone()
        return found is not None and found[0] == 1


def sign_up_in_page(page: Page, username: str) -> None:
    page.locator("#username").fill(username)
    page.locator("#email").fill(f"{username}@example.com")
    page.locator("#password").fill(PASSWORD)
    page.locator("#sign-up").click()


def write_edit_delete(page: Page, author: str, title: str, database_url: str) -> None:
    """Publish, edit and delete ``title`` from the client; check what the database holds."""
    page.locator("#title").fill(title)
    page.locator("#body").fill("First words.")
    page.locator("#publish").click()
    status(page, f"Published “{title}” by {author}.")
    # Exposed headers are readable: the request id of the last answer.
    expect(page.locator("#request-id")).to_have_text(
        re.compile(r"Request id: [0-9a-f]{32}"), timeout=WAIT_MS
    )
    assert articles(database_url, author) == [(title, "First words.")]

    page.locator("#body").fill("Second thoughts.")
    page.locator("#save").click()
    status(page, f"Saved “{title}”: Second thoughts.")
    assert articles(database_url, author) == [(title, "Second thoughts.")]

    page.locator("#delete").click()
    status(page, f"Deleted “{title}”.")
    assert articles(database_url, author) == []


def test_a_client_on_an_allowed_origin_works_with_a_token_and_with_the_session(
    conduit: str, spa_origin: str, other_origin: str, postgres_url: str
) -> None:
    token_user = f"tok{uuid.uuid4().hex[:8]}"
    session_user = f"ses{uuid.uuid4().hex[:8]}"
    stranger = f"str{uuid.uuid4().hex[:8]}"
    refusals: list[str] = []

    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                refusals.append(message.text) if "CORS policy" in message.text else None
            ),
        )
        page.goto(f"{spa_origin}/index.html?api={conduit}")

        # With a token.
        sign_up_in_page(page, token_user)
        status(page, f"Signed up as {token_user}.")
        write_edit_delete(page, token_user, "Written with a token", postgres_url)

        # With the session: sign up, sign in on the app's own page, come back.
        sign_up_in_page(page, session_user)
        status(page, f"Signed up as {session_user}.")
        page.goto(f"{conduit}/auth/login")
        page.locator("input[name=email]").fill(f"{session_user}@example.com")
        page.locator("input[name=password]").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("link", name=session_user)).to_be_visible(timeout=WAIT_MS)
        session_cookies = [c for c in context.cookies(conduit) if c["httpOnly"]]
        assert session_cookies
        assert all(c["secure"] for c in session_cookies)  # production cookies, kept on loopback

        page.goto(f"{spa_origin}/index.html?api={conduit}")
        page.locator("#use-session").click()
        status(page, f"Signed in with the session as {session_user}.")
        page.locator("#title").fill("Forged")
        page.locator("#body").fill("No token.")
        page.locator("#publish-without-csrf").click()
        status(page, "Failed: Error: 400 The CSRF token is missing.")
        assert articles(postgres_url, session_user) == []
        write_edit_delete(page, session_user, "Written with the session", postgres_url)
        assert not [text for text in refusals if "CORS policy" in text]

        # The same client on an origin the app does not allow.
        page.goto(f"{other_origin}/index.html?api={conduit}")
        sign_up_in_page(page, stranger)
        status(page, "Failed: TypeError: Failed to fetch")
        page.locator("#use-session").click()
        status(page, "Failed: TypeError: Failed to fetch")
        context.close()

    assert not user_exists(postgres_url, stranger)
    assert user_exists(postgres_url, token_user)
    assert len(refusals) == 2
    assert all(
        other_origin in text and "has been blocked by CORS policy" in text for text in refusals
    )
