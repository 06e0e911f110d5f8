"""The four apps, the seven endpoints, the seed data and the signed-in client state."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import re
import secrets
import subprocess
import sys
import typing as t
from pathlib import Path
from urllib.parse import urlencode

from werkzeug.security import generate_password_hash

from .client import Reply, cookie_header, request, update_cookies
from .services import HarnessError

if t.TYPE_CHECKING:
    from .services import PostgresCluster

__all__ = [
    "APPS",
    "APPS_DIR",
    "ENDPOINTS",
    "LIMITED_APP",
    "METRICS_APP",
    "STRONG_AUTH_APP",
    "THREADED_APPS",
    "AppSpec",
    "ClientState",
    "Endpoint",
    "Seed",
]

APPS_DIR = Path(__file__).resolve().parent.parent / "apps"


@dataclasses.dataclass(frozen=True)
class AppSpec:
    """One app variant.

    :ivar key: Its name in results.
    :ivar target: What gunicorn serves.
    :ivar create: Python code that imports the app and creates it as ``app``.
    :ivar threads: Threads per gunicorn worker: 1 is a sync worker, more a gthread one.
    :ivar same_code_as: For a variant that runs the same app under another worker model,
        the app whose in-process path (instructions, profiles) it shares.
    """

    key: str
    description: str
    target: str
    create: str
    threads: int = 1
    same_code_as: str | None = None


LIMITED_APP = "flaskstack-limits"
"""The flaskstack app with rate limits on; it serves only the endpoints that name it."""

STRONG_AUTH_APP = "flaskstack-auth"
"""The flaskstack app with roles, two-factor, passkeys and an identity provider configured."""

METRICS_APP = "flaskstack-metrics"
"""The flaskstack app with Prometheus metrics on; it serves only :data:`METRICS_ENDPOINTS`."""

METRICS_ENDPOINTS = ("page", "api_read")
"""What the metrics variant is measured on: a page, and a read that checks out a connection."""

THREADS = 4
"""Threads per worker of the threaded variants (gunicorn's gthread worker, same worker count)."""

THREADED_APPS = {"flaskstack-threads": "flaskstack", "django-threads": "django"}
"""flaskstack and Django under threaded workers, by the app each runs; they serve only
:data:`THREADED_ENDPOINTS`, where a worker waits on PostgreSQL or Redis."""

THREADED_ENDPOINTS = ("me", "api_read", "form_post", "api_list")

APPS: tuple[AppSpec, ...] = (
    AppSpec(
        "flaskstack",
        "flaskstack.init_app with PostgreSQL and Redis (production profile)",
        "fs_app:create_app()",
        "import fs_app\napp = fs_app.create_app()",
    ),
    AppSpec(
        LIMITED_APP,
        "the flaskstack app with FLASKSTACK_RATE_LIMITS on, serving the rate-limited read",
        "fs_app:create_app(rate_limits=True)",
        "import fs_app\napp = fs_app.create_app(rate_limits=True)",
    ),
    AppSpec(
        STRONG_AUTH_APP,
        "the flaskstack app with roles, two-factor sign-in, passkeys and an identity provider "
        "configured, which no endpoint uses",
        "fs_app:create_app(strong_auth=True)",
        "import fs_app\napp = fs_app.create_app(strong_auth=True)",
    ),
    AppSpec(
        METRICS_APP,
        "the flaskstack app with FLASKSTACK_METRICS on (multiprocess mode), on the anonymous "
        "page and the token API read",
        "fs_app:create_app(metrics=True)",
        "import fs_app\napp = fs_app.create_app(metrics=True)",
    ),
    AppSpec(
        "hand-wired",
        "Flask-SQLAlchemy, Flask-Login, Flask-WTF, Flask-RESTful, Flask-Caching (RedisCache), "
        "Flask-Session (redis), wired as their docs show",
        "hw_app:create_app()",
        "import hw_app\napp = hw_app.create_app()",
    ),
    AppSpec(
        "bare",
        "plain Flask, redis-py and SQLAlchemy Core (autocommit), no extensions",
        "bare_app:create_app()",
        "import bare_app\napp = bare_app.create_app()",
    ),
    AppSpec(
        "django",
        "Django with cache (Redis) sessions, RedisCache, persistent connections",
        "dj_app.wsgi:application",
        "from dj_app.wsgi import application as app",
    ),
    AppSpec(
        "flaskstack-threads",
        f"the flaskstack app under gthread workers, {THREADS} threads each, on the endpoints "
        "that wait on PostgreSQL or Redis",
        "fs_app:create_app()",
        "import fs_app\napp = fs_app.create_app()",
        threads=THREADS,
        same_code_as="flaskstack",
    ),
    AppSpec(
        "django-threads",
        f"the Django app under gthread workers, {THREADS} threads each, on the same endpoints",
        "dj_app.wsgi:application",
        "from dj_app.wsgi import application as app",
        threads=THREADS,
        same_code_as="django",
    ),
)

NOTE_ID = 42
USER_ID = 1
USERS = 50
NOTES = 1000


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One request the apps are measured on.

    :ivar apps: The apps that serve it; ``None``: every app.
    :ivar unlimited: For an endpoint behind a rate limit, the key of the same
        request without one: the report divides their throughputs.
    """

    key: str
    label: str
    method: str
    path: str
    auth: t.Literal["none", "cookie", "token"]
    expect: int
    apps: tuple[str, ...] | None = None
    unlimited: str | None = None

    def served_by(self, app: str) -> bool:
        """Whether ``app`` serves this endpoint."""
        if app == METRICS_APP:
            return self.key in METRICS_ENDPOINTS
        if app in THREADED_APPS:
            return self.key in THREADED_ENDPOINTS
        if self.apps is None:
            return app != LIMITED_APP
        return app in self.apps


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("page", "anonymous page", "GET", "/", "none", 200),
    Endpoint("page_cookie", "anonymous page, session cookie", "GET", "/", "cookie", 200),
    Endpoint("me", "session-authenticated read (/me)", "GET", "/me", "cookie", 200),
    Endpoint("api_read", "token API read, one row", "GET", f"/api/notes/{NOTE_ID}", "token", 200),
    Endpoint("cached", "cached view, hit", "GET", "/cached", "none", 200),
    Endpoint("form_post", "form POST with CSRF", "POST", "/feedback", "cookie", 303),
    Endpoint(
        "api_list", "API list, paginated", "GET", "/api/notes?page=3&per_page=20", "none", 200
    ),
    # api_read behind a rate limit per token (flaskstack.limits), served by the variant of
    # the flaskstack app with limits on; the report divides it by flaskstack's api_read.
    Endpoint(
        "api_limited",
        "token API read, one row, rate-limited",
        "GET",
        f"/api/limited/notes/{NOTE_ID}",
        "token",
        200,
        apps=(LIMITED_APP,),
        unlimited="api_read",
    ),
)


# Settings of the apps, which only the harness sets. Bytecode is written and
# reused, as for an installed package (pip compiles it at install time): with
# PYTHONDONTWRITEBYTECODE set, a package installed in editable mode (flaskstack
# here, the apps) would be compiled again by every process the harness starts.
_NOT_INHERITED = ("DATABASE_URL", "REDIS_URL", "MAIL_URL", "SECRET_KEY", "PYTHONDONTWRITEBYTECODE")


def app_environment(database_url: str, redis_url: str, secret_key: str) -> dict[str, str]:
    """The environment every app process runs in: only what the harness sets."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FLASK_", "FLASKSTACK_", "DJANGO_")) and name not in _NOT_INHERITED
    }
    path = [str(APPS_DIR)]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env.update(
        PYTHONPATH=os.pathsep.join(path),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=secret_key,
        DJANGO_SETTINGS_MODULE="dj_app.settings",
    )
    return env


def _run_python(args: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(
        [sys.executable, *args], env=env, cwd=APPS_DIR, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise HarnessError(f"{what} failed:\n{result.stdout}\n{result.stderr}")


@dataclasses.dataclass(frozen=True)
class Seed:
    """What the harness put in the database, which every app reads the same."""

    token: str
    users: int = USERS
    notes: int = NOTES


def seed(cluster: PostgresCluster, database: str, env: dict[str, str]) -> Seed:
    """Create every app's tables and fill them with the same rows."""
    create_schema = (
        "from flaskstack import db\n"
        "import fs_app\n"
        "app = fs_app.create_app(strong_auth=True)\n"
        "with app.app_context():\n"
        "    db.create_all()\n"
    )
    _run_python(["-c", create_schema], env, "creating the flaskstack tables")
    # Django's own apps first: the unmigrated app's token table points at auth_user.
    for extra in ([], ["--run-syncdb"]):
        _run_python(
            ["-m", "django", "migrate", *extra, "--verbosity", "0"],
            env,
            "creating the Django tables",
        )

    token = "fst_" + secrets.token_urlsafe(32)
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    password_hash = generate_password_hash(secrets.token_urlsafe(16))
    now = dt.datetime.now(dt.timezone.utc)
    with cluster.admin(database) as conn:
        conn.cursor().executemany(
            "INSERT INTO users (id, email, password_hash, active, session_token, created_at, "
            "updated_at) VALUES (%s, %s, %s, true, %s, %s, %s)",
            [
                (i, f"user{i}@example.com", password_hash, secrets.token_urlsafe(32), now, now)
                for i in range(1, USERS + 1)
            ],
        )
        conn.cursor().executemany(
            "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) "
            "VALUES (%s, %s, false, %s, '', '', %s, false, true, %s)",
            [
                (i, "!" + secrets.token_urlsafe(20), f"user{i}", f"user{i}@example.com", now)
                for i in range(1, USERS + 1)
            ],
        )
        conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at, last_used_at) "
            "VALUES (%s, 'bench', %s, %s, %s, %s)",
            (USER_ID, token_hash, token[:10], now, now),
        )
        conn.execute(
            "INSERT INTO dj_app_apitoken (user_id, name, token_hash, created_at) "
            "VALUES (%s, 'bench', %s, %s)",
            (USER_ID, token_hash, now),
        )
        conn.execute(
            "INSERT INTO notes (title, body, created_at) "
            "SELECT 'Note ' || i, repeat('A sentence of the note. ', 6), "
            "now() - i * interval '1 minute' FROM generate_series(1, %s) AS i",
            (NOTES,),
        )
        for table in ("users", "auth_user"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {USERS})")
        conn.execute("ANALYZE")
    return Seed(token=token)


_CSRF_INPUT = re.compile(r'<input[^>]*name="(csrf_token|csrfmiddlewaretoken)"[^>]*>')
_VALUE = re.compile(r'value="([^"]*)"')


@dataclasses.dataclass
class ClientState:
    """A signed-in client of one app: its cookies and its form's CSRF token."""

    cookies: dict[str, str]
    form_body: str
    token: str

    def request_for(self, endpoint: Endpoint) -> tuple[dict[str, str], str | None]:
        """Headers (besides ``User-Agent``) and body of one request to ``endpoint``."""
        headers: dict[str, str] = {}
        body = None
        if endpoint.auth == "cookie":
            headers["Cookie"] = cookie_header(self.cookies)
        elif endpoint.auth == "token":
            headers["Authorization"] = f"Bearer {self.token}"
        if endpoint.method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = self.form_body
        return headers, body


def _expect(reply: Reply, status: int, what: str) -> None:
    if reply.status != status:
        raise HarnessError(
            f"{what}: expected status {status}, got {reply.status}: {reply.body[:500]!r}"
        )


def sign_in(base_url: str, token: str) -> ClientState:
    """Sign user 1 in and fetch the feedback form's CSRF token."""
    cookies: dict[str, str] = {}
    reply = request(base_url, "GET", f"/bench/login/{USER_ID}")
    _expect(reply, 200, f"signing in at {base_url}")
    update_cookies(cookies, reply)
    if not cookies:
        raise HarnessError(f"signing in at {base_url} set no cookie")
    reply = request(base_url, "GET", "/feedback", {"Cookie": cookie_header(cookies)})
    _expect(reply, 200, f"the feedback form at {base_url}")
    update_cookies(cookies, reply)
    tag = _CSRF_INPUT.search(reply.body.decode())
    value = _VALUE.search(tag.group(0)) if tag else None
    if tag is None or value is None:
        raise HarnessError(f"no CSRF field in the feedback form at {base_url}")
    body = urlencode({tag.group(1): value.group(1), "message": "Thanks for the benchmark."})
    return ClientState(cookies=cookies, form_body=body, token=token)
