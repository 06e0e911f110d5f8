"""The reference app as the browser tests meet it: Conduit under gunicorn, mailing to loopback.

``conduit`` serves the reference app in the ``production`` profile with its
API docs page on, sending mail over SMTP to ``smtp``, an aiosmtpd server of
the test's own (``tests/smtp_server.py``) whose messages the test reads.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from conftest import SHARED_REDIS_URL
from reliability.stackrun import (
    REFERENCE_ROOT,
    AppServer,
    flask_command,
    production_environment,
)
from smtp_server import SMTPServer

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

TESTS = Path(__file__).resolve().parent.parent


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture
def conduit(
    smtp: SMTPServer, postgres_url: str, namespace: Callable[[], str], tmp_path: Path
) -> Iterator[str]:
    """Conduit under gunicorn in production, with its API docs page on, mailing to ``smtp``."""
    env = production_environment(
        database_url=postgres_url,
        redis_url=SHARED_REDIS_URL,
        namespace=namespace(),
        mail_url=smtp.url(),
        extra={
            "PYTHONPATH": f"{TESTS}:{REFERENCE_ROOT}",
            "FLASKSTACK_PASSWORD_METHOD": "pbkdf2:sha256:1000",
            "FLASKSTACK_API_DOCS_PATH": "/docs",
        },
    )
    flask_command("example:create_app", env, "db", "upgrade")
    with AppServer(tmp_path, "example:create_app()", env, workers=1, name="conduit") as server:
        host, port = server.address
        yield f"http://{host}:{port}"
