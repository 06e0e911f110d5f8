"""Everything the suites know about the reference app (Conduit), in one place.

The fault, load and security tests drive the reference app through these
names only, so a new reference app means changing this module, not the
tests. flaskstack's own endpoints (``/healthz``, ``/readyz``, ``/csrf-token``,
``/auth/...``) and the probe endpoints (:mod:`reliability.probe_app`) are
used directly.

- :data:`APP`: what gunicorn serves (Conduit plus the probe endpoints).
- :data:`DB_READ`: an API read of the database that needs no session.
- :data:`APP_CACHED`: an API read Conduit serves from the cache.
- :class:`Writer`: acknowledged writes (articles, through the API with a
  token); :func:`stored` finds which of them are in the database.
"""

from __future__ import annotations

import typing as t
import uuid

import psycopg

if t.TYPE_CHECKING:
    from .browser import Browser, Reply

__all__ = [
    "API_WRITES",
    "APP",
    "APP_CACHED",
    "CACHED",
    "DB_READ",
    "FLASK_APP",
    "PASSWORD",
    "SESSION",
    "TOKEN_TABLE",
    "USER_TABLE",
    "Writer",
    "login",
    "logout",
    "register",
    "row_count",
    "stored",
    "write_key",
]

#: The gunicorn target.
APP = "reliability.probe_app:create_app()"
#: The same app for ``flask --app``.
FLASK_APP = "reliability.probe_app:create_app"
#: An API read of the database without the session.
DB_READ = "/api/articles?limit=5"
#: An API read the app serves from its cache (computed when Redis is away).
APP_CACHED = "/api/tags"
#: A page cached for everyone, whose body says when it was computed (probe).
CACHED = "/_probe/cached"
#: A page that reads the session (probe).
SESSION = "/_probe/session"
#: A password every test user gets.
PASSWORD = "correct horse battery staple"
#: The app's unsafe API endpoints, for generated input: (method, path, needs a token).
API_WRITES: tuple[tuple[str, str, bool], ...] = (
    ("POST", "/api/users", False),
    ("POST", "/api/users/login", False),
    ("PUT", "/api/user", True),
    ("POST", "/api/articles", True),
    ("POST", "/api/articles/no-such-article/comments", True),
)
#: The app's user table (its ``FLASKSTACK_USER_MODEL``) and that user model's API tokens.
USER_TABLE = "user_account"
TOKEN_TABLE = "user_account_api_tokens"
#: The tables a write adds rows to.
_TABLES = (USER_TABLE, "article", "comment", "tag")


def write_key() -> str:
    """A new unique identity for one write (it is also a valid email)."""
    return f"w-{uuid.uuid4().hex[:16]}@example.test"


def register(browser: Browser, email: str, password: str = PASSWORD, **options: t.Any) -> Reply:
    """Register ``email`` through the HTML form (signs the browser in)."""
    token = browser.csrf_token()
    return browser.post(
        "/auth/register",
        form={"email": email, "password": password, "confirm": password, "csrf_token": token},
        **options,
    )


def login(
    browser: Browser,
    email: str,
    password: str = PASSWORD,
    path: str = "/auth/login",
    **options: t.Any,
) -> Reply:
    """Sign in through the HTML form."""
    token = browser.csrf_token()
    return browser.post(
        path, form={"email": email, "password": password, "csrf_token": token}, **options
    )


def logout(browser: Browser, **options: t.Any) -> Reply:
    """Sign out (POST with the session's CSRF token)."""
    token = browser.csrf_token()
    return browser.post("/auth/logout", form={"csrf_token": token}, **options)


class Writer:
    """An API user (signed up through ``POST /api/users``) who writes articles.

    :meth:`write` makes one write identified by a key (the article's title)
    and says whether the app acknowledged it (201).
    """

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        name = f"u{uuid.uuid4().hex[:12]}"
        reply = browser.post(
            "/api/users",
            json={
                "user": {"username": name, "email": f"{name}@example.test", "password": PASSWORD}
            },
            label="signup",
        )
        if reply.status != 201:
            raise AssertionError(f"POST /api/users answered {reply.status}: {reply.text[:300]}")
        self.token: str = reply.json()["user"]["token"]
        self.username = name

    @property
    def auth(self) -> dict[str, str]:
        """The ``Authorization`` header of this user."""
        return {"Authorization": f"Token {self.token}", "Accept": "application/json"}

    def write(self, key: str, tags: t.Sequence[str] = ()) -> Reply:
        """Write the article titled ``key``."""
        article = {"title": key, "description": "d", "body": "b", "tagList": list(tags)}
        return self.browser.post(
            "/api/articles", json={"article": article}, headers=self.auth, label="write"
        )

    def acknowledged(self, key: str) -> bool:
        """Write ``key``; whether the app acknowledged it."""
        return self.write(key).status == 201


def stored(database_url: str, keys: t.Iterable[str]) -> set[str]:
    """The ``keys`` whose write is in the database."""
    wanted = list(keys)
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        rows = conn.execute("SELECT title FROM article WHERE title = ANY(%s)", (wanted,))
        return {row[0] for row in rows}


def row_count(database_url: str) -> int:
    """How many rows the tables writes go to hold (to see that a rejection wrote nothing)."""
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        total = 0
        for table in _TABLES:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            total += int(row[0]) if row else 0
        return total
