"""The settings table, and how a value for each setting is chosen.

:data:`SETTINGS` is the single list of every setting flaskstack reads or sets:
:func:`flaskstack.init_app` fills defaults from it, validation checks against
it, ``flask stack config`` prints it and the documentation's config reference
is generated from it. There is no second list anywhere.

For each setting, the value in effect comes from the highest of these layers
that has one (lowest first):

``default``
    flaskstack's default, which replaces the wrapped library's default.
``profile``
    the default of the active profile (``FLASKSTACK_PROFILE``).
``instance``
    the instance folder's ``config.py``, if it exists.
``environment``
    the setting's environment variables (``SECRET_KEY``, ``DATABASE_URL``,
    ``REDIS_URL``, a ``FLASKSTACK_*`` variable of the same name) and
    ``FLASK_*`` variables through :meth:`flask.Config.from_prefixed_env`.
``app``
    what the app's code put in ``app.config`` before ``init_app`` (a value
    equal to Flask's own default counts as unset).
``argument``
    the ``config`` mapping and keyword options given to ``init_app``.

The environment fills only what the app's code left unset: a ``TestConfig``
that names its own database keeps it whatever ``DATABASE_URL`` says. Keys
outside the table follow the same order. A value of the instance file or the
environment that a higher layer overrode is kept in
:attr:`Resolution.overridden`, for ``flask stack config`` and
``flask stack check`` (``config.W002``) to show.

Wrapped libraries keep their own keys (``SQLALCHEMY_*``, ``SESSION_COOKIE_*``);
flaskstack's own keys start with ``FLASKSTACK_``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing as t
from urllib.parse import urlsplit, urlunsplit

from flask import Config, Flask

from . import _parsers as p
from ._mail_url import MAIL_URL_FORMS
from ._redis_url import REDIS_URL_FORMS
from .errors import Problem

__all__ = ["PROFILES", "SETTINGS", "Entry", "Overridden", "Resolution", "Setting"]

PROFILES = ("development", "testing", "production")
"""The profiles ``FLASKSTACK_PROFILE`` accepts."""

_Source = t.Literal["default", "profile", "app", "instance", "environment", "argument", "generated"]

#: Secret keys that appear in tutorials and templates; never acceptable in production.
_WELL_KNOWN_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "dev",
        "development",
        "devkey",
        "default",
        "flask",
        "insecure",
        "key",
        "mysecret",
        "password",
        "secret",
        "secret-key",
        "secret_key",
        "secretkey",
        "supersecret",
        "test",
        "testing",
        "your-secret-key",
        "yoursecretkey",
    }
)
_MIN_SECRET_KEY_LENGTH = 32

_MISSING: t.Any = object()


# -- the table ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row of the settings table.

    :param key: The ``app.config`` key.
    :param default: The value when no layer sets one. A callable receives the
        app and computes it (``default_doc`` then describes it for people).
    :param parse: Converts a raw value to the setting's type; raises
        :exc:`ValueError` when the value is not acceptable.
    :param type: The type, as written in the documentation.
    :param expected: What an acceptable value looks like, for messages.
    :param doc: One line saying what the setting means.
    :param env: Environment variables read for this setting, most specific first.
    :param profiles: Defaults that replace ``default`` in a given profile.
    :param secret: Mask the value wherever it is shown.
    :param default_doc: How the documentation shows the default (reST); required when
        ``default`` is callable.
    :param concern: The part of flaskstack that owns the setting.
    :param library_default: For a native key whose library is not Flask, the library's
        name and its own default, when flaskstack's differs (``flask stack config`` shows
        both). Flask's defaults are read from :attr:`flask.Flask.default_config`.
    """

    key: str
    default: t.Any
    parse: t.Callable[[object], t.Any]
    type: str
    expected: str
    doc: str
    env: tuple[str, ...] = ()
    profiles: t.Mapping[str, t.Any] = dataclasses.field(default_factory=dict)
    secret: bool = False
    default_doc: str | None = None
    concern: str = "core"
    library_default: tuple[str, t.Any] | None = None

    @property
    def native(self) -> bool:
        """Whether the key belongs to Flask or a wrapped library."""
        return not self.key.startswith("FLASKSTACK_")

    def default_for(self, app: Flask, profile: str) -> tuple[t.Any, _Source]:
        """The value and source in effect when no layer above ``profile`` sets one."""
        if profile in self.profiles:
            return self.profiles[profile], "profile"
        if callable(self.default):
            return self.default(app), "default"
        return self.default, "default"

    def replaced_default(self, value: object) -> str | None:
        """Say which library default ``value`` (flaskstack's default) replaces, if any.

        :returns: e.g. ``"Flask's default: None"``, or ``None`` when the setting is
            flaskstack's own or the library's default is the same.
        """
        if self.key in Flask.default_config:
            library, theirs = "Flask", Flask.default_config[self.key]
        elif self.library_default is not None:
            library, theirs = self.library_default
        else:
            return None
        if theirs == value:
            return None
        return f"{library}'s default: {theirs!r}"


def _app_short_name(app: Flask) -> str:
    """The app's name for files and key prefixes: its top-level package, made safe."""
    name = app.import_name.split(".")[0]
    if name == "__main__":
        name = "app"
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)[:64] or "app"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "FLASKSTACK_PROFILE",
        "development",
        p.parse_choice(*PROFILES),
        type="str",
        expected="one of 'development', 'testing', 'production'",
        doc="Which profile's defaults and safety rules apply. Production refuses unsafe settings.",
        env=("FLASKSTACK_PROFILE",),
    ),
    Setting(
        "SECRET_KEY",
        None,
        p.parse_secret,
        type="str",
        expected=f"a random string of at least {_MIN_SECRET_KEY_LENGTH} characters",
        doc=(
            "Signs session cookies and CSRF tokens. Without one, development and testing "
            "generate a key once and keep it in the instance folder; production refuses to start."
        ),
        env=("SECRET_KEY",),
        secret=True,
        default_doc="generated once into ``instance/secret_key`` (development, testing)",
    ),
    Setting(
        "DEBUG",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Flask's debug mode. Refused in production.",
    ),
    Setting(
        "TESTING",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Flask's testing mode (exceptions propagate to the test client).",
        profiles={"testing": True},
    ),
    Setting(
        "SQLALCHEMY_DATABASE_URI",
        None,
        p.parse_database_url,
        type="str",
        expected="a database URL such as 'postgresql://user:password@host/dbname' or 'sqlite:///path'",
        doc=(
            "The database. ``postgres://`` and ``postgresql://`` URLs use the psycopg 3 driver. "
            "Unset: SQLite in the instance folder (development, testing); production requires one."
        ),
        env=("DATABASE_URL",),
        secret=True,
        default_doc="``sqlite:///<instance folder>/<app name>.sqlite3`` (development, testing)",
        concern="db",
    ),
    Setting(
        "SQLALCHEMY_ENGINE_OPTIONS",
        {},
        p.parse_mapping,
        type="dict",
        expected="a dict of keyword arguments for sqlalchemy.create_engine",
        doc=(
            "Engine options. flaskstack adds a connect timeout on PostgreSQL and "
            "``pool_pre_ping=True`` for drivers other than psycopg and SQLite, unless the dict "
            "sets them (on PostgreSQL a dead pooled connection is replaced without a ping)."
        ),
        concern="db",
    ),
    Setting(
        "FLASKSTACK_DATABASE_CONNECT_TIMEOUT",
        5.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc="Seconds to wait for a new PostgreSQL connection before giving up.",
        env=("FLASKSTACK_DATABASE_CONNECT_TIMEOUT",),
        concern="db",
    ),
    Setting(
        "FLASKSTACK_DATABASE_AUTOCOMMIT",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "On PostgreSQL with psycopg 3, every statement ``db.session`` sends before its first "
            "flush commits as it runs, as in Django's autocommit mode (no ``BEGIN``/``ROLLBACK`` "
            "round trips for a request that only reads); from the first flush until commit or "
            "rollback, its statements are one transaction. Off: SQLAlchemy's usual transaction "
            "from the first statement."
        ),
        env=("FLASKSTACK_DATABASE_AUTOCOMMIT",),
        concern="db",
    ),
    Setting(
        "FLASKSTACK_DATABASE_REPLICA_URLS",
        [],
        p.parse_database_urls,
        type="list[str]",
        expected=(
            "PostgreSQL streaming replica URLs, as a list or separated by commas or spaces: "
            "'postgresql://user:password@replica1/dbname, postgresql://...@replica2/dbname'"
        ),
        doc=(
            "Read replicas of the PostgreSQL primary. A request's ``SELECT`` statements go to "
            "a healthy replica until the request writes; a client that wrote reads from the "
            "primary for FLASKSTACK_REPLICA_PIN_SECONDS. Empty: every statement goes to the "
            "primary, at no cost (see the read replicas guide)."
        ),
        env=("DATABASE_REPLICA_URLS", "FLASKSTACK_DATABASE_REPLICA_URLS"),
        secret=True,
        concern="db",
    ),
    Setting(
        "FLASKSTACK_REPLICA_PIN_SECONDS",
        10.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc=(
            "After a request that wrote, how long the same client (its pinning cookie) reads "
            "from the primary, so it sees its own writes. Keep it above "
            "FLASKSTACK_REPLICA_MAX_LAG."
        ),
        env=("FLASKSTACK_REPLICA_PIN_SECONDS",),
        concern="db",
    ),
    Setting(
        "FLASKSTACK_REPLICA_MAX_LAG",
        5.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc="A replica further behind the primary than this is skipped until it catches up.",
        env=("FLASKSTACK_REPLICA_MAX_LAG",),
        concern="db",
    ),
    Setting(
        "FLASKSTACK_REPLICA_CHECK_INTERVAL",
        2.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc=(
            "How often each process checks a replica's lag (in the background, never per "
            "request), and how long a replica that failed to connect is left alone."
        ),
        env=("FLASKSTACK_REPLICA_CHECK_INTERVAL",),
        concern="db",
    ),
    Setting(
        "FLASKSTACK_REPLICA_PIN_COOKIE",
        "fs_primary",
        p.parse_str,
        type="str",
        expected="a cookie name",
        doc=(
            "The cookie that pins a client that wrote to the primary (HttpOnly, SameSite=Lax, "
            "Secure like the session cookie); it holds an expiry time and no secret."
        ),
        env=("FLASKSTACK_REPLICA_PIN_COOKIE",),
        concern="db",
    ),
    Setting(
        "FLASKSTACK_MIGRATIONS_DIR",
        "migrations",
        p.parse_str,
        type="str",
        expected="a directory path",
        doc="The Alembic migration repository, relative to the working directory.",
        env=("FLASKSTACK_MIGRATIONS_DIR",),
        concern="migrations",
    ),
    Setting(
        "FLASKSTACK_NAMESPACE",
        _app_short_name,
        p.parse_namespace,
        type="str",
        expected="1 to 64 letters, digits, '_', '.' or '-'",
        doc="Prefix of every Redis key this app writes, so apps can share one Redis.",
        env=("FLASKSTACK_NAMESPACE",),
        default_doc="the first part of the app's import name",
    ),
    Setting(
        "FLASKSTACK_REDIS_URL",
        None,
        p.parse_redis_url,
        type="str",
        expected="a Redis URL: " + "; ".join(REDIS_URL_FORMS),
        doc=(
            "The Redis server for sessions, cache and throttling. Unset: in-process cache and "
            "signed-cookie sessions (development, testing); production requires one."
        ),
        env=("REDIS_URL", "FLASKSTACK_REDIS_URL"),
        secret=True,
        concern="redis",
    ),
    Setting(
        "FLASKSTACK_REDIS_TIMEOUT",
        0.5,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc=(
            "Connect and read timeout of every Redis call: the longest a request waits "
            "for an unreachable Redis."
        ),
        env=("FLASKSTACK_REDIS_TIMEOUT",),
        concern="redis",
    ),
    Setting(
        "FLASKSTACK_REDIS_BACKOFF",
        5.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc=(
            "After a failed Redis call, how long calls fail at once instead of waiting "
            "for Redis again: an outage costs one timeout, not one per request."
        ),
        env=("FLASKSTACK_REDIS_BACKOFF",),
        concern="redis",
    ),
    Setting(
        "FLASKSTACK_SESSION_ADOPT_SIGNED_COOKIES",
        True,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "With a Redis URL, move a valid session cookie of Flask's default signed-cookie "
            "sessions (same ``SECRET_KEY``) into Redis, so adopting flaskstack signs nobody out."
        ),
        env=("FLASKSTACK_SESSION_ADOPT_SIGNED_COOKIES",),
        concern="sessions",
    ),
    Setting(
        "FLASKSTACK_SESSION_COOKIE_KEYS",
        ["csrf_token", "_flashes", "_fresh", "_id", "_permanent", "_remember"],
        p.parse_session_cookie_keys,
        type="list[str]",
        expected="a list of session keys (never '_user_id'), or a comma-separated string",
        doc=(
            "With a Redis URL, a session holding only these keys stays in a signed cookie "
            "(visitors who are not signed in cost Redis nothing); any other key, or sign-in, "
            "moves it into Redis. Name WTF_CSRF_FIELD_NAME here if you change it. Empty: every "
            "session is stored in Redis."
        ),
        env=("FLASKSTACK_SESSION_COOKIE_KEYS",),
        concern="sessions",
    ),
    Setting(
        "CACHE_TYPE",
        None,
        p.parse_cache_type,
        type="str",
        expected="a Flask-Caching backend name or the dotted path of a backend class",
        doc=(
            "The Flask-Caching backend. flaskstack's own keep keys under "
            "``<namespace>:cache:`` on the app's Redis client and survive Redis outages."
        ),
        default_doc=(
            "``'flaskstack.caching.RedisCache'`` with a Redis URL, else "
            "``'flaskstack.caching.SimpleCache'`` (in-process; development, testing)"
        ),
        concern="cache",
    ),
    Setting(
        "CACHE_DEFAULT_TIMEOUT",
        300,
        p.parse_cache_timeout,
        type="int",
        expected="a whole number of seconds, 0 for no expiry",
        doc="Seconds a cached value lives when the caller gives no timeout.",
        concern="cache",
    ),
    Setting(
        "CACHE_KEY_PREFIX",
        None,
        p.parse_cache_key_prefix,
        type="str",
        expected="a string",
        doc="Put after ``<namespace>:cache:`` in every cache key.",
        default_doc=(
            "``''``; with a backend that is not flaskstack's, ``'<namespace>:cache:'`` "
            "(so its ``clear()`` never flushes the database)"
        ),
        concern="cache",
    ),
    Setting(
        "SESSION_COOKIE_SECURE",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Send the session cookie over HTTPS only. On in production.",
        profiles={"production": True},
        concern="security",
    ),
    Setting(
        "SESSION_COOKIE_HTTPONLY",
        True,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Hide the session cookie from JavaScript.",
        concern="security",
    ),
    Setting(
        "SESSION_COOKIE_SAMESITE",
        "Lax",
        p.parse_samesite,
        type="str",
        expected="'Lax', 'Strict' or None",
        doc="The session cookie's SameSite attribute (Flask's default is none at all).",
        concern="security",
    ),
    Setting(
        "MAX_CONTENT_LENGTH",
        16 * 1024 * 1024,
        p.parse_optional_int,
        type="int",
        expected="a number of bytes greater than 0, or None for no limit",
        doc="Largest request body accepted; larger ones get 413 (Flask's default is no limit).",
        concern="security",
    ),
    Setting(
        "REMEMBER_COOKIE_SECURE",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Send Flask-Login's remember-me cookie over HTTPS only. On in production.",
        profiles={"production": True},
        concern="security",
    ),
    Setting(
        "REMEMBER_COOKIE_HTTPONLY",
        True,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Hide the remember-me cookie from JavaScript.",
        concern="security",
    ),
    Setting(
        "REMEMBER_COOKIE_SAMESITE",
        "Lax",
        p.parse_samesite,
        type="str",
        expected="'Lax', 'Strict' or None",
        doc="The remember-me cookie's SameSite attribute.",
        concern="security",
        library_default=("Flask-Login", None),
    ),
    Setting(
        "FLASKSTACK_HSTS_SECONDS",
        0,
        p.parse_non_negative_int,
        type="int",
        expected="a whole number of seconds, 0 to send no Strict-Transport-Security header",
        doc="``max-age`` of the Strict-Transport-Security header (one year in production).",
        env=("FLASKSTACK_HSTS_SECONDS",),
        profiles={"production": 31536000},
        concern="security",
    ),
    Setting(
        "FLASKSTACK_FRAME_OPTIONS",
        "DENY",
        p.parse_optional_str,
        type="str",
        expected="'DENY', 'SAMEORIGIN', or None to send no X-Frame-Options header",
        doc="The X-Frame-Options header (clickjacking protection).",
        env=("FLASKSTACK_FRAME_OPTIONS",),
        concern="security",
    ),
    Setting(
        "FLASKSTACK_REFERRER_POLICY",
        "strict-origin-when-cross-origin",
        p.parse_optional_str,
        type="str",
        expected="a Referrer-Policy value, or None to send no header",
        doc="The Referrer-Policy header.",
        env=("FLASKSTACK_REFERRER_POLICY",),
        concern="security",
    ),
    Setting(
        "FLASKSTACK_CSP",
        (
            "default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
            "style-src 'self' 'nonce-{nonce}'; img-src 'self' data: https:; "
            "object-src 'none'; base-uri 'self'"
        ),
        p.parse_optional_str,
        type="str",
        expected="a Content-Security-Policy value, or None to send no header",
        doc=(
            "The Content-Security-Policy header. Each {nonce} is replaced by the request's "
            "nonce, which templates get from csp_nonce() for inline scripts and styles."
        ),
        env=("FLASKSTACK_CSP",),
        concern="security",
    ),
    Setting(
        "FLASKSTACK_CSP_REPORT_ONLY",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "Send FLASKSTACK_CSP as Content-Security-Policy-Report-Only: browsers report "
            "violations but block nothing (to try a policy out)."
        ),
        env=("FLASKSTACK_CSP_REPORT_ONLY",),
        concern="security",
    ),
    Setting(
        "FLASKSTACK_PERMISSIONS_POLICY",
        (
            "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
            "microphone=(), payment=(), usb=()"
        ),
        p.parse_optional_str,
        type="str",
        expected="a Permissions-Policy value, or None to send no header",
        doc="The Permissions-Policy header: browser features no page of the app may use.",
        env=("FLASKSTACK_PERMISSIONS_POLICY",),
        concern="security",
    ),
    Setting(
        "FLASKSTACK_PRIVATE_CACHE_CONTROL",
        "private, no-store",
        p.parse_optional_str,
        type="str",
        expected="a Cache-Control value, or None to send none",
        doc=(
            "The Cache-Control header of responses that depend on the user (an API token, or "
            "a session holding data), unless the view set one."
        ),
        env=("FLASKSTACK_PRIVATE_CACHE_CONTROL",),
        concern="security",
    ),
    Setting(
        "FLASKSTACK_ERROR_PAGES",
        True,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "Answer browsers' 400, 403, 404, 405, 413, 429, 500 and 503 with the HTML pages "
            "of the templates flaskstack/errors/<code>.html, where the app has no handler."
        ),
        env=("FLASKSTACK_ERROR_PAGES",),
        concern="pages",
    ),
    Setting(
        "FLASKSTACK_PROXY_FIX",
        0,
        p.parse_non_negative_int,
        type="int",
        expected="the number of trusted proxies in front of the app, 0 for none",
        doc=(
            "Trust this many proxies' X-Forwarded-For/-Proto/-Host/-Port headers "
            "(Werkzeug's ProxyFix). 0 trusts none: the headers are ignored."
        ),
        env=("FLASKSTACK_PROXY_FIX",),
        concern="security",
    ),
    Setting(
        "WTF_CSRF_TIME_LIMIT",
        None,
        p.parse_optional_int,
        type="int",
        expected="a number of seconds, or None for the lifetime of the session",
        doc=(
            "How long a CSRF token stays valid. flaskstack's default is the session's "
            "lifetime (the token is bound to a session that is rotated at login and deleted "
            "at logout); Flask-WTF's one hour breaks long forms."
        ),
        concern="forms",
        library_default=("Flask-WTF", 3600),
    ),
    Setting(
        "WTF_CSRF_SSL_STRICT",
        True,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "On HTTPS, require a Referer from this host for unsafe requests. Behind a proxy "
            "set FLASKSTACK_PROXY_FIX so the app sees the original scheme and host."
        ),
        concern="forms",
    ),
    Setting(
        "FLASKSTACK_CSRF_TOKEN_PATH",
        "/csrf-token",
        p.parse_path,
        type="str",
        expected="a URL path starting with '/', or None to disable",
        doc="Where JavaScript clients GET a CSRF token to send back in the X-CSRFToken header.",
        env=("FLASKSTACK_CSRF_TOKEN_PATH",),
        concern="forms",
    ),
    Setting(
        "FLASKSTACK_USER_MODEL",
        None,
        p.parse_import_path,
        type="str",
        expected="'package.module:ClassName' of the app's db.Model user model",
        doc="The app's user model. Unset: none if the app registered its own LoginManager "
        "before init_app, else flaskstack's default ``User`` model.",
        env=("FLASKSTACK_USER_MODEL",),
        default_doc="flaskstack's default ``User`` model, unless the app has its own LoginManager",
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_LOGIN_MESSAGE",
        None,
        p.parse_optional_str,
        type="str",
        expected="a message, or None to flash nothing",
        doc="Flashed when a browser is sent to the login page. Unset: the ``login_message`` "
        "set on flaskstack.login_manager, if any (none by default).",
        env=("FLASKSTACK_LOGIN_MESSAGE",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_AUTH_URL_PREFIX",
        "/auth",
        p.parse_path,
        type="str",
        expected="a URL path starting with '/', or None to register no auth pages",
        doc="Where the login, logout and registration pages live.",
        env=("FLASKSTACK_AUTH_URL_PREFIX",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_REGISTRATION",
        True,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Offer the registration page.",
        env=("FLASKSTACK_REGISTRATION",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_PASSWORD_RESET",
        True,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Offer password reset by email (a page and a JSON endpoint); needs MAIL_URL in "
        "production.",
        env=("FLASKSTACK_PASSWORD_RESET",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_ROLES",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Roles with named permissions in flaskstack's tables beside the user model "
        "(roles, role_permissions, user_roles), for auth_required(roles=, permissions=) and "
        "flask stack role; off for an app whose user model answers has_role and "
        "has_permission itself.",
        env=("FLASKSTACK_ROLES",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_AUTH_API_PATH",
        "/auth",
        p.parse_path,
        type="str",
        expected="a URL path starting with '/', or None to serve no account endpoints",
        doc="Where the account endpoints (password reset, email confirmation and change, "
        "password change) live under FLASKSTACK_API_PREFIX; they exist with the auth pages.",
        env=("FLASKSTACK_AUTH_API_PATH",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_PASSWORD_RESET_MAX_AGE",
        3600,
        p.parse_positive_int,
        type="int",
        expected="a whole number of seconds greater than 0",
        doc="How long a password reset link works (it also stops working once used, once the "
        "password changes, and once a newer link is sent).",
        env=("FLASKSTACK_PASSWORD_RESET_MAX_AGE",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_EMAIL_CONFIRMATION",
        "optional",
        p.parse_choice("off", "optional", "required"),
        type="str",
        expected="'off', 'optional' or 'required'",
        doc="Email confirmation: ``off`` sends no link; ``optional`` sends one at registration "
        "and lets unconfirmed users sign in; ``required`` signs nobody in before they confirm.",
        env=("FLASKSTACK_EMAIL_CONFIRMATION",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_EMAIL_CONFIRMATION_MAX_AGE",
        3 * 24 * 3600,
        p.parse_positive_int,
        type="int",
        expected="a whole number of seconds greater than 0",
        doc="How long an email confirmation link (also for a changed address) works.",
        env=("FLASKSTACK_EMAIL_CONFIRMATION_MAX_AGE",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_ACCOUNT_EMAIL_LIMIT",
        3,
        p.parse_positive_int,
        type="int",
        expected="a whole number greater than 0",
        doc="Password reset and confirmation emails sent per address within "
        "FLASKSTACK_ACCOUNT_EMAIL_WINDOW.",
        env=("FLASKSTACK_ACCOUNT_EMAIL_LIMIT",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_ACCOUNT_ADDRESS_LIMIT",
        10,
        p.parse_positive_int,
        type="int",
        expected="a whole number greater than 0",
        doc="Password reset and confirmation requests per client address within "
        "FLASKSTACK_ACCOUNT_EMAIL_WINDOW.",
        env=("FLASKSTACK_ACCOUNT_ADDRESS_LIMIT",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_ACCOUNT_EMAIL_WINDOW",
        3600.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc="The window over which password reset and confirmation requests are counted.",
        env=("FLASKSTACK_ACCOUNT_EMAIL_WINDOW",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_PASSKEYS",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Passkeys (WebAuthn): signed-in users register them on a page of the auth pages "
        "and sign in with one, without a password. Needs ``pip install "
        "'flaskstack[passkeys]'``, the auth pages and FLASKSTACK_AUTH_API_PATH. Off: no page, "
        "no endpoint, no table, nothing imported.",
        env=("FLASKSTACK_PASSKEYS",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_PASSKEYS_RP_ID",
        None,
        p.parse_optional_host_name,
        type="str",
        expected="a lower-case host name such as 'example.com' (no scheme, port or path)",
        doc="The WebAuthn relying party id: the site's host name or a parent domain of it; "
        "passkeys are bound to it for good. Unset: the host of each request (development "
        "and testing only; production refuses it).",
        env=("FLASKSTACK_PASSKEYS_RP_ID",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_PASSKEYS_ORIGINS",
        [],
        p.parse_origins,
        type="list[str]",
        expected="origins such as ['https://example.com'] (scheme://host[:port], no path), "
        "or a comma-separated string",
        doc="The origins whose pages may run the passkey ceremonies; each host must be "
        "FLASKSTACK_PASSKEYS_RP_ID or end with '.' and it. Empty: the origin of each request "
        "(development and testing only; production refuses it).",
        env=("FLASKSTACK_PASSKEYS_ORIGINS",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_PASSKEYS_RP_NAME",
        None,
        p.parse_optional_str,
        type="str",
        expected="a name people recognise the site by",
        doc="The site's name that browsers show when a passkey is made. Unset: "
        "FLASKSTACK_PASSKEYS_RP_ID, or the request's host.",
        env=("FLASKSTACK_PASSKEYS_RP_NAME",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_PASSKEYS_TIMEOUT",
        300,
        p.parse_positive_int,
        type="int",
        expected="a whole number of seconds greater than 0",
        doc="How long the browser may take to register or sign in with a passkey; the "
        "challenge, kept in the session and usable once, expires after it.",
        env=("FLASKSTACK_PASSKEYS_TIMEOUT",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_OIDC",
        None,
        p.parse_optional_bool,
        type="bool",
        expected="true, false, or None (on exactly when FLASKSTACK_OIDC_PROVIDERS names one)",
        doc="Sign-in with identity providers: its table of linked identities and its pages. "
        "None: on when FLASKSTACK_OIDC_PROVIDERS names a provider. True: on even with none "
        "named, so the table (and its migration) does not depend on where the providers come "
        "from, e.g. tests without the providers' secrets. False: off.",
        env=("FLASKSTACK_OIDC",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_OIDC_PROVIDERS",
        {},
        p.parse_json_mapping,
        type="dict",
        expected="a mapping (or a JSON object) of provider name to options: 'preset' (google, "
        "microsoft, gitlab) or 'discovery_url', 'client_id', 'client_secret', optional "
        "'scopes' and 'label'",
        doc="Identity providers (OpenID Connect) users may sign in with, e.g. ``{'google': "
        "{'preset': 'google', 'client_id': '...'}}``; secrets may come from "
        "FLASKSTACK_OIDC_<NAME>_CLIENT_SECRET. Needs ``pip install 'flaskstack[oidc]'`` and the "
        "auth pages. Empty: no page, no table, nothing imported.",
        env=("FLASKSTACK_OIDC_PROVIDERS",),
        secret=True,
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_OIDC_STORE_TOKENS",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Keep the provider's tokens (access, refresh, id token) with the linked identity, "
        "encrypted under a key derived from SECRET_KEY, for the app to call the provider's "
        "APIs. Off: they are used for the sign-in and dropped.",
        env=("FLASKSTACK_OIDC_STORE_TOKENS",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_PASSWORD_MIN_LENGTH",
        12,
        p.parse_positive_int,
        type="int",
        expected="a whole number of characters greater than 0",
        doc="Shortest password accepted at registration and password change.",
        env=("FLASKSTACK_PASSWORD_MIN_LENGTH",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_PASSWORD_MAX_LENGTH",
        256,
        p.parse_positive_int,
        type="int",
        expected="a whole number of characters greater than 0",
        doc="Longest password accepted; longer ones are refused before hashing (no hashing DoS).",
        env=("FLASKSTACK_PASSWORD_MAX_LENGTH",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_PASSWORD_METHOD",
        "scrypt",
        p.parse_str,
        type="str",
        expected="a werkzeug.security hashing method such as 'scrypt' or 'pbkdf2:sha256:1000000'",
        doc="How passwords are hashed; hashes made another way are redone at the next login.",
        env=("FLASKSTACK_PASSWORD_METHOD",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_LOGIN_ACCOUNT_LIMIT",
        5,
        p.parse_positive_int,
        type="int",
        expected="a whole number greater than 0",
        doc="Failed logins allowed per account within FLASKSTACK_LOGIN_WINDOW.",
        env=("FLASKSTACK_LOGIN_ACCOUNT_LIMIT",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_LOGIN_ADDRESS_LIMIT",
        20,
        p.parse_positive_int,
        type="int",
        expected="a whole number greater than 0",
        doc="Failed logins allowed per client address within FLASKSTACK_LOGIN_WINDOW.",
        env=("FLASKSTACK_LOGIN_ADDRESS_LIMIT",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_LOGIN_WINDOW",
        900.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc="The window over which failed logins are counted.",
        env=("FLASKSTACK_LOGIN_WINDOW",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_TWO_FACTOR",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc="Offer two-factor sign-in with authenticator app codes (TOTP) and recovery codes: "
        "pages, JSON endpoints and two tables. Needs ``pip install 'flaskstack[two-factor]'`` "
        "and the auth pages.",
        env=("FLASKSTACK_TWO_FACTOR",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES",
        [],
        p.parse_str_list,
        type="list[str]",
        expected="a list of role names such as ['admin']",
        doc="Users with any of these roles must use two-factor sign-in: without it, after the "
        "password they reach only the page that sets it up.",
        env=("FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_TWO_FACTOR_ISSUER",
        None,
        p.parse_optional_str,
        type="str",
        expected="the site's name as authenticator apps should show it",
        doc="The name authenticator apps show next to the account. Unset: the app's name.",
        env=("FLASKSTACK_TWO_FACTOR_ISSUER",),
        default_doc="the app's name (``app.name``)",
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_TWO_FACTOR_PENDING_TIMEOUT",
        300,
        p.parse_positive_int,
        type="int",
        expected="a whole number of seconds greater than 0",
        doc="How long a sign-in whose password was right waits for its second factor.",
        env=("FLASKSTACK_TWO_FACTOR_PENDING_TIMEOUT",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_TWO_FACTOR_ACCOUNT_LIMIT",
        5,
        p.parse_positive_int,
        type="int",
        expected="a whole number greater than 0",
        doc="Wrong two-factor codes allowed per account within FLASKSTACK_LOGIN_WINDOW.",
        env=("FLASKSTACK_TWO_FACTOR_ACCOUNT_LIMIT",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_TWO_FACTOR_ADDRESS_LIMIT",
        20,
        p.parse_positive_int,
        type="int",
        expected="a whole number greater than 0",
        doc="Wrong two-factor codes allowed per client address within FLASKSTACK_LOGIN_WINDOW.",
        env=("FLASKSTACK_TWO_FACTOR_ADDRESS_LIMIT",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_TWO_FACTOR_RECOVERY_CODES",
        10,
        p.parse_positive_int,
        type="int",
        expected="a whole number greater than 0",
        doc="How many single-use recovery codes a user gets (shown once; stored hashed).",
        env=("FLASKSTACK_TWO_FACTOR_RECOVERY_CODES",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_API_TOKEN_SCHEMES",
        ["Bearer"],
        p.parse_str_list,
        type="list[str]",
        expected="a list of Authorization schemes such as ['Bearer', 'Token']",
        doc="Authorization header schemes that carry an API token.",
        env=("FLASKSTACK_API_TOKEN_SCHEMES",),
        concern="auth",
    ),
    Setting(
        "FLASKSTACK_API_PREFIX",
        "/api",
        p.parse_url_prefix,
        type="str",
        expected="a URL path starting with '/' and not ending with '/', such as '/api'",
        doc=(
            "Where flaskstack.api serves its resources. Every error under it is "
            "application/problem+json."
        ),
        env=("FLASKSTACK_API_PREFIX",),
        concern="api",
    ),
    Setting(
        "FLASKSTACK_API_PROBLEMS",
        True,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "Answer errors under the API prefix with application/problem+json where the app "
            "has no handler of its own. False: flaskstack registers no error handler for the API."
        ),
        env=("FLASKSTACK_API_PROBLEMS",),
        concern="api",
    ),
    Setting(
        "FLASKSTACK_API_PER_PAGE",
        20,
        p.parse_positive_int,
        type="int",
        expected="a whole number greater than 0",
        doc="Items per page of a paginated API list when the request gives no per_page.",
        env=("FLASKSTACK_API_PER_PAGE",),
        concern="api",
    ),
    Setting(
        "FLASKSTACK_API_MAX_PER_PAGE",
        100,
        p.parse_positive_int,
        type="int",
        expected="a whole number greater than 0",
        doc="The most items a paginated API list returns; a larger per_page is capped to it.",
        env=("FLASKSTACK_API_MAX_PER_PAGE",),
        concern="api",
    ),
    Setting(
        "FLASKSTACK_API_UNKNOWN_FIELDS",
        "ignore",
        p.parse_choice("ignore", "reject"),
        type="str",
        expected="'ignore' or 'reject'",
        doc=(
            "What a request body field no rest.Schema declares gets: 'ignore' drops it, 'reject' "
            "answers 422 naming it. A schema's own unknown = ... wins."
        ),
        env=("FLASKSTACK_API_UNKNOWN_FIELDS",),
        concern="api",
    ),
    Setting(
        "FLASKSTACK_API_TITLE",
        None,
        p.parse_optional_str,
        type="str",
        expected="a string",
        doc="The title of the OpenAPI document. Unset: the app's name.",
        env=("FLASKSTACK_API_TITLE",),
        concern="api",
    ),
    Setting(
        "FLASKSTACK_API_VERSION",
        "1.0.0",
        p.parse_str,
        type="str",
        expected="a string such as '1.0.0'",
        doc="The version of the API, as the OpenAPI document states it.",
        env=("FLASKSTACK_API_VERSION",),
        concern="api",
    ),
    Setting(
        "FLASKSTACK_API_OPENAPI_PATH",
        "/openapi.json",
        p.parse_path,
        type="str",
        expected="a URL path starting with '/', or None to disable",
        doc="Where, under the API prefix, the OpenAPI 3.1 document is served.",
        env=("FLASKSTACK_API_OPENAPI_PATH",),
        concern="api",
    ),
    Setting(
        "FLASKSTACK_API_DOCS_PATH",
        "/docs",
        p.parse_path,
        type="str",
        expected="a URL path starting with '/' and not ending with '/', or None to disable",
        doc=(
            "Where, under the API prefix, the interactive API docs (Swagger UI, served by the "
            "app) show the OpenAPI document. Off in production unless set."
        ),
        env=("FLASKSTACK_API_DOCS_PATH",),
        profiles={"production": None},
        concern="api",
    ),
    Setting(
        "FLASKSTACK_CORS_ORIGINS",
        [],
        p.parse_cors_origins,
        type="list[str]",
        expected=(
            "a list of origins such as ['https://app.example.com', 'http://localhost:5173'] "
            "(scheme://host[:port], no path), or ['*'], or a comma-separated string"
        ),
        doc=(
            "Origins whose pages may call the API from JavaScript (CORS, with Flask-CORS). "
            "Empty: no CORS at all, and Flask-CORS is never imported. ``'*'`` allows every "
            "origin (refused with credentials in production)."
        ),
        env=("FLASKSTACK_CORS_ORIGINS",),
        concern="cors",
    ),
    Setting(
        "FLASKSTACK_CORS_CREDENTIALS",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "Let the allowed origins send cookies (the session) with their requests "
            "(``Access-Control-Allow-Credentials``); their unsafe requests then still need "
            "a CSRF token. Also opens FLASKSTACK_CSRF_TOKEN_PATH to them."
        ),
        env=("FLASKSTACK_CORS_CREDENTIALS",),
        concern="cors",
    ),
    Setting(
        "FLASKSTACK_CORS_EXPOSE_HEADERS",
        [
            "X-Request-ID",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "RateLimit-Policy",
            "Retry-After",
            "Link",
            "ETag",
            "Location",
        ],
        p.parse_header_names,
        type="list[str]",
        expected="a list of header names, or a comma-separated string",
        doc=(
            "Response headers the allowed origins' scripts may read "
            "(``Access-Control-Expose-Headers``)."
        ),
        env=("FLASKSTACK_CORS_EXPOSE_HEADERS",),
        default_doc=(
            "the request id header (FLASKSTACK_REQUEST_ID_HEADER), ``RateLimit-Limit``, "
            "``RateLimit-Remaining``, ``RateLimit-Reset``, ``RateLimit-Policy``, "
            "``Retry-After``, ``Link``, ``ETag``, ``Location``"
        ),
        concern="cors",
    ),
    Setting(
        "FLASKSTACK_CORS_ALLOW_HEADERS",
        [
            "Authorization",
            "Content-Type",
            "X-CSRFToken",
            "X-CSRF-Token",
            "If-Match",
            "If-None-Match",
        ],
        p.parse_header_names,
        type="list[str]",
        expected="a list of header names, or a comma-separated string",
        doc=(
            "Request headers the allowed origins may send (``Access-Control-Allow-Headers`` of "
            "a preflight)."
        ),
        env=("FLASKSTACK_CORS_ALLOW_HEADERS",),
        concern="cors",
    ),
    Setting(
        "FLASKSTACK_CORS_MAX_AGE",
        600,
        p.parse_optional_int,
        type="int",
        expected="a number of seconds greater than 0, or None to send no Access-Control-Max-Age",
        doc=(
            "How long a browser may reuse a preflight's answer (Chromium caps it at 7200; "
            "without the header it keeps one for 5 seconds)."
        ),
        env=("FLASKSTACK_CORS_MAX_AGE",),
        concern="cors",
    ),
    Setting(
        "FLASKSTACK_CORS_PATHS",
        [],
        p.parse_path_patterns,
        type="list[str]",
        expected="a list of paths such as ['/exact', '/prefix/*'], or a comma-separated string",
        doc=(
            "Paths outside FLASKSTACK_API_PREFIX that answer the allowed origins too; "
            "``/prefix/*`` is the prefix and everything under it. The API prefix is always "
            "included."
        ),
        env=("FLASKSTACK_CORS_PATHS",),
        concern="cors",
    ),
    Setting(
        "MAIL_URL",
        None,
        p.parse_mail_url,
        type="str",
        expected="a mail URL: " + "; ".join(MAIL_URL_FORMS),
        doc=(
            "Where mail goes (Flask-Mailman). flaskstack fills Flask-Mailman's ``MAIL_*`` keys "
            "from it with ``setdefault``: a ``MAIL_SERVER``, ``MAIL_PORT`` ... the app sets "
            "itself wins, and ``flask stack check`` reports the part of the URL it overrides "
            "(``config.W002``). Unset: no mail; production refuses ``console://``, "
            "``memory://`` and ``file://``."
        ),
        env=("MAIL_URL",),
        profiles={"development": "console://", "testing": "memory://"},
        secret=True,
        concern="mail",
    ),
    Setting(
        "FLASKSTACK_MAIL_FROM",
        None,
        p.parse_mail_address,
        type="str",
        expected="an address such as 'app@example.com' or 'Example <app@example.com>'",
        doc=(
            "The sender of the mail flaskstack sends (Flask-Mailman's ``MAIL_DEFAULT_SENDER``). "
            "Required in production when MAIL_URL names an SMTP server."
        ),
        env=("FLASKSTACK_MAIL_FROM",),
        concern="mail",
    ),
    Setting(
        "FLASKSTACK_MAIL_TIMEOUT",
        10.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc=(
            "The longest one message may take to send over SMTP, connecting, TLS and every "
            "command included; a request that sends mail never waits longer (the host name "
            "lookup is not covered: name an IP address or use a local resolver to bound it)."
        ),
        env=("FLASKSTACK_MAIL_TIMEOUT",),
        concern="mail",
    ),
    Setting(
        "FLASKSTACK_JOBS",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "Run background jobs (:mod:`flaskstack.jobs`, on RQ) on the app's Redis, under its "
            "namespace. Needs REDIS_URL naming a standalone or Sentinel Redis (RQ does not run "
            "on Redis Cluster). Off: enqueueing raises, and nothing of RQ is imported."
        ),
        env=("FLASKSTACK_JOBS",),
        concern="jobs",
    ),
    Setting(
        "FLASKSTACK_JOBS_QUEUES",
        ["default"],
        p.parse_job_queues,
        type="list[str]",
        expected="queue names (letters, digits, '_', '.' or '-'), highest priority first",
        doc=(
            "The queues ``flask stack worker`` serves when none is named, highest priority "
            "first; the first is where a job goes when it names no queue."
        ),
        env=("FLASKSTACK_JOBS_QUEUES",),
        concern="jobs",
    ),
    Setting(
        "FLASKSTACK_JOBS_TIMEOUT",
        180.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc="How long a job may run before the worker stops it (a job may set its own).",
        env=("FLASKSTACK_JOBS_TIMEOUT",),
        concern="jobs",
    ),
    Setting(
        "FLASKSTACK_JOBS_RESULT_TTL",
        500,
        p.parse_non_negative_int,
        type="int",
        expected="a whole number of seconds, 0 or more",
        doc="How long a finished job and its result are kept (failed jobs are kept a year).",
        env=("FLASKSTACK_JOBS_RESULT_TTL",),
        concern="jobs",
    ),
    Setting(
        "FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT",
        20.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc=(
            "On SIGTERM a worker finishes the job in flight for at most this long; then it "
            "stops the job and puts it back at the front of its queue for another worker. "
            "Keep it below the platform's grace period (Kubernetes: 30 s)."
        ),
        env=("FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT",),
        concern="jobs",
    ),
    Setting(
        "FLASKSTACK_JOBS_WORKER_MAX_SILENCE",
        300.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc=(
            "``flask stack check --deploy`` reports the job queues as unserved when no worker "
            "has sent a heartbeat for this long."
        ),
        env=("FLASKSTACK_JOBS_WORKER_MAX_SILENCE",),
        concern="jobs",
    ),
    Setting(
        "FLASKSTACK_JOBS_DASHBOARD_PATH",
        None,
        p.parse_path,
        type="str",
        expected="a URL path starting with '/' such as '/admin/jobs', or None for no dashboard",
        doc=(
            "Where the jobs dashboard lives (queues, workers, periodic and failed jobs; requeue "
            "and delete), for signed-in users with FLASKSTACK_JOBS_DASHBOARD_ROLE. Needs "
            "FLASKSTACK_JOBS and roles (FLASKSTACK_ROLES, or a user model with its own "
            "has_role(name) method). None: no dashboard."
        ),
        env=("FLASKSTACK_JOBS_DASHBOARD_PATH",),
        concern="jobs",
    ),
    Setting(
        "FLASKSTACK_JOBS_DASHBOARD_ROLE",
        "admin",
        p.parse_str,
        type="str",
        expected="a role name",
        doc=(
            "The role a signed-in user needs for the jobs dashboard (in flaskstack's roles, "
            "or as the user model's own has_role(name) answers)."
        ),
        env=("FLASKSTACK_JOBS_DASHBOARD_ROLE",),
        concern="jobs",
    ),
    Setting(
        "FLASKSTACK_ADMIN",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "Serve the admin (Flask-Admin, the extra flaskstack[admin]) at FLASKSTACK_ADMIN_PATH: "
            "the models given to flaskstack.admin.register(), users, roles and the audit log, "
            "for signed-in users with FLASKSTACK_ADMIN_PERMISSION. Needs roles "
            "(FLASKSTACK_ROLES, or a user model with has_permission(name))."
        ),
        env=("FLASKSTACK_ADMIN",),
        concern="admin",
    ),
    Setting(
        "FLASKSTACK_ADMIN_PATH",
        "/admin",
        p.parse_url_prefix,
        type="str",
        expected="a URL path starting with '/', not '/' alone and without a trailing '/'",
        doc="Where the admin lives; each model's pages are below it (/admin/article/).",
        env=("FLASKSTACK_ADMIN_PATH",),
        concern="admin",
    ),
    Setting(
        "FLASKSTACK_ADMIN_PERMISSION",
        "admin.access",
        p.parse_str,
        type="str",
        expected="a permission name",
        doc=(
            "The permission a signed-in user needs for any page of the admin. Each model's "
            "pages also need <model>.view, and creating, editing and deleting need "
            "<model>.add, <model>.change and <model>.delete."
        ),
        env=("FLASKSTACK_ADMIN_PERMISSION",),
        concern="admin",
    ),
    Setting(
        "FLASKSTACK_REQUEST_ID_HEADER",
        "X-Request-ID",
        p.parse_str,
        type="str",
        expected="an HTTP header name",
        doc=(
            "The header carrying the request id: taken from the request when a proxy set a "
            "well-formed one, generated otherwise, and returned on every response."
        ),
        env=("FLASKSTACK_REQUEST_ID_HEADER",),
        concern="logging",
    ),
    Setting(
        "FLASKSTACK_LOG_FORMAT",
        "text",
        p.parse_choice("text", "json", "none"),
        type="str",
        expected="one of 'text', 'json', 'none'",
        doc=(
            "How the process's log lines (the app's, flaskstack's, the libraries' and, in "
            "JSON, Python's warnings) are written to stderr: readable text, one JSON object "
            "per line, or 'none' to leave Flask's logging as it is. Each line carries the "
            "request id. Left unset in an app that configured logging of its own (handlers on "
            "the root logger or app.logger), flaskstack leaves logging alone."
        ),
        env=("FLASKSTACK_LOG_FORMAT",),
        profiles={"production": "json"},
        concern="logging",
    ),
    Setting(
        "FLASKSTACK_LOG_LEVEL",
        "INFO",
        p.parse_log_level,
        type="str",
        expected="one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'",
        doc="The level of the app's logger (flask's app.logger).",
        env=("FLASKSTACK_LOG_LEVEL",),
        concern="logging",
    ),
    Setting(
        "FLASKSTACK_HEALTH_PATH",
        "/healthz",
        p.parse_path,
        type="str",
        expected="a URL path starting with '/', or None to disable",
        doc="Liveness endpoint: answers 200 while the process serves requests.",
        env=("FLASKSTACK_HEALTH_PATH",),
        concern="health",
    ),
    Setting(
        "FLASKSTACK_READY_PATH",
        "/readyz",
        p.parse_path,
        type="str",
        expected="a URL path starting with '/', or None to disable",
        doc="Readiness endpoint: 200 when the database answers, 503 naming what failed.",
        env=("FLASKSTACK_READY_PATH",),
        concern="health",
    ),
    Setting(
        "FLASKSTACK_READY_TIMEOUT",
        2.0,
        p.parse_positive_float,
        type="float",
        expected="a number of seconds greater than 0",
        doc="How long the readiness endpoint waits for its dependencies, checked at once.",
        env=("FLASKSTACK_READY_TIMEOUT",),
        concern="health",
    ),
    Setting(
        "FLASKSTACK_METRICS",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "Count requests, database pool use, Redis errors and jobs for Prometheus "
            "(:mod:`flaskstack.metrics`, on prometheus-client) and serve them at "
            "FLASKSTACK_METRICS_PATH. Off: nothing is counted and prometheus-client is not "
            "imported."
        ),
        env=("FLASKSTACK_METRICS",),
        concern="metrics",
    ),
    Setting(
        "FLASKSTACK_METRICS_PATH",
        "/metrics",
        p.parse_path,
        type="str",
        expected="a URL path starting with '/', or None to serve no endpoint",
        doc=(
            "Where Prometheus scrapes the metrics (with FLASKSTACK_METRICS on), for clients "
            "in FLASKSTACK_METRICS_ALLOW that send FLASKSTACK_METRICS_TOKEN, if set; others "
            "get 404. None: the series are counted but not served."
        ),
        env=("FLASKSTACK_METRICS_PATH",),
        concern="metrics",
    ),
    Setting(
        "FLASKSTACK_METRICS_TOKEN",
        None,
        p.parse_optional_str,
        type="str",
        expected="a random string, sent by Prometheus as 'Authorization: Bearer <token>'",
        doc=(
            "A bearer token the metrics endpoint requires (Prometheus's "
            "``authorization: {credentials: ...}``); without it, 401. Required in production "
            "when FLASKSTACK_METRICS_ALLOW names a network that is not private."
        ),
        env=("FLASKSTACK_METRICS_TOKEN",),
        secret=True,
        concern="metrics",
    ),
    Setting(
        "FLASKSTACK_METRICS_ALLOW",
        ["127.0.0.0/8", "::1/128"],
        p.parse_networks,
        type="list[str]",
        expected="IP networks such as '10.0.0.0/8', as a list or a comma-separated string",
        doc=(
            "The client addresses the metrics endpoint answers (others get 404): loopback by "
            "default. A request relayed by a proxy the app does not trust "
            "(FLASKSTACK_PROXY_FIX) is refused, whatever the proxy's address."
        ),
        env=("FLASKSTACK_METRICS_ALLOW",),
        concern="metrics",
    ),
    Setting(
        "FLASKSTACK_RATE_LIMITS",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "Turn rate limits on: flaskstack.limits.limit() declarations and "
            "FLASKSTACK_RATE_LIMIT_API_DEFAULT apply, counted in the app's Redis. Off: "
            "Flask-Limiter is not even imported."
        ),
        env=("FLASKSTACK_RATE_LIMITS",),
        concern="limits",
    ),
    Setting(
        "FLASKSTACK_RATE_LIMIT_API_DEFAULT",
        None,
        p.parse_optional_str,
        type="str",
        expected="a rate limit such as '100/minute' or '10/second;1000/hour'",
        doc=(
            "The limit of every URL rule under FLASKSTACK_API_PREFIX, per rule, method and "
            "client, unless a limit() is declared for it. Unset: none."
        ),
        env=("FLASKSTACK_RATE_LIMIT_API_DEFAULT",),
        concern="limits",
    ),
    Setting(
        "FLASKSTACK_RATE_LIMIT_KEY",
        "user",
        p.parse_choice("user", "address"),
        type="str",
        expected="'user' or 'address'",
        doc=(
            "Whose requests a limit counts together: 'user' (the API token of a token request, "
            "else the signed-in user, else the client address) or 'address'."
        ),
        env=("FLASKSTACK_RATE_LIMIT_KEY",),
        concern="limits",
    ),
    Setting(
        "FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR",
        "open",
        p.parse_choice("open", "closed"),
        type="str",
        expected="'open' or 'closed'",
        doc=(
            "When Redis cannot be reached: 'open' serves requests without checking their limits "
            "(and logs it), 'closed' refuses them with 503 and Retry-After."
        ),
        env=("FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR",),
        concern="limits",
    ),
    Setting(
        "FLASKSTACK_TRACING",
        False,
        p.parse_bool,
        type="bool",
        expected="true or false",
        doc=(
            "OpenTelemetry traces: each request's span with its SQL, Redis and outgoing HTTP "
            "spans as children, exported over OTLP/HTTP; the trace id in the response and the "
            "JSON log lines. Needs ``pip install 'flaskstack[otel]'``. Off: OpenTelemetry is "
            "not even imported."
        ),
        env=("FLASKSTACK_TRACING",),
        concern="tracing",
    ),
    Setting(
        "FLASKSTACK_TRACING_ENDPOINT",
        None,
        p.parse_optional_str,
        type="str",
        expected="the full URL of an OTLP/HTTP traces endpoint, such as "
        "'http://collector:4318/v1/traces'",
        doc=(
            "Where the spans are sent. Unset: OpenTelemetry's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "
            "else OTEL_EXPORTER_OTLP_ENDPOINT plus /v1/traces, else "
            "http://localhost:4318/v1/traces."
        ),
        env=("FLASKSTACK_TRACING_ENDPOINT",),
        concern="tracing",
    ),
    Setting(
        "FLASKSTACK_TRACING_SERVICE_NAME",
        None,
        p.parse_optional_str,
        type="str",
        expected="a service name such as 'shop-web'",
        doc=(
            "The service.name of the spans. Unset: OpenTelemetry's OTEL_SERVICE_NAME (or "
            "service.name in OTEL_RESOURCE_ATTRIBUTES), else the app's top-level package name."
        ),
        env=("FLASKSTACK_TRACING_SERVICE_NAME",),
        concern="tracing",
    ),
    Setting(
        "FLASKSTACK_TRACE_ID_HEADER",
        "X-Trace-Id",
        p.parse_optional_str,
        type="str",
        expected="an HTTP header name, or None for no header",
        doc=(
            "The response header carrying the request's trace id (32 hexadecimal digits) when "
            "tracing is on and the trace is recorded. None: no header."
        ),
        env=("FLASKSTACK_TRACE_ID_HEADER",),
        concern="tracing",
    ),
    Setting(
        "FLASKSTACK_SILENCED_CHECKS",
        [],
        p.parse_str_list,
        type="list[str]",
        expected="a list of check ids such as ['database.W001'], or a comma-separated string",
        doc="Check ids that ``flask stack check`` reports as silenced instead of failing on.",
        env=("FLASKSTACK_SILENCED_CHECKS",),
        concern="checks",
    ),
)
"""Every setting flaskstack reads or sets, in the order ``flask stack config`` prints them."""

_BY_KEY = {setting.key: setting for setting in SETTINGS}

_TOOLING_VARIABLES = frozenset(
    {
        "FLASKSTACK_FIGURES",
        "FLASKSTACK_HYPOTHESIS_EXAMPLES",
        "FLASKSTACK_REALWORLD_DIR",
        "FLASKSTACK_REALWORLD_OPENAPI",
        "FLASKSTACK_REFERENCE_ROOT",
        "FLASKSTACK_SCHEMA_EXAMPLES",
        "FLASKSTACK_SOAK_SECONDS",
        "FLASKSTACK_TEST_POSTGRES",
        "FLASKSTACK_TEST_REDIS",
    }
)
"""``FLASKSTACK_*`` environment variables that are not settings but are read by
flaskstack's own test suite and tooling; they get no "unknown setting" warning."""

_ENVIRONMENT_NAMES = frozenset(name for setting in SETTINGS for name in setting.env)
_OIDC_CLIENT_VARIABLE = re.compile(r"FLASKSTACK_OIDC_[A-Z0-9_]+_CLIENT_(?:ID|SECRET)")
"""A provider's client id or secret (FLASKSTACK_OIDC_PROVIDERS reads them), not a setting."""


# -- masking --------------------------------------------------------------


def _mask(key: str, value: object) -> str:
    """Return ``value`` as it may be shown for ``key``: secrets masked.

    URLs keep everything but their password, so the host stays visible.
    """
    setting = _BY_KEY.get(key)
    if value is None or setting is None or not setting.secret:
        return repr(value)
    if isinstance(value, str) and "://" in value:
        return repr(_mask_url(value))
    if isinstance(value, list) and all(isinstance(v, str) and "://" in v for v in value):
        return repr([_mask_url(v) for v in value])
    if isinstance(value, (str, bytes)):
        return f"<secret, {len(value)} characters>"
    return "<secret>"


def _mask_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<secret URL>"
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


# -- resolution -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Entry:
    """The effective value of one setting and the layer it came from."""

    key: str
    value: t.Any
    source: _Source
    origin: str
    """Where exactly the value came from (e.g. ``environment variable DATABASE_URL``)."""
    replaces: str | None = None
    """For a flaskstack default of a native key, the library default it replaces
    (e.g. ``Flask's default: None``); ``None`` otherwise."""

    @property
    def shown(self) -> str:
        """The value as it may be displayed (secrets masked)."""
        return _mask(self.key, self.value)

    @property
    def described_source(self) -> str:
        """The source as ``flask stack config`` prints it.

        e.g. ``environment (environment variable DATABASE_URL)`` or
        ``default (flaskstack; Flask's default: None)``.
        """
        if self.replaces is not None:
            return f"{self.source} (flaskstack; {self.replaces})"
        if self.origin == self.source:
            return self.source
        return f"{self.source} ({self.origin})"


@dataclasses.dataclass(frozen=True)
class Overridden:
    """A value from the instance file or the environment that a higher layer overrode.

    :ivar key: The ``app.config`` key.
    :ivar origin: Where the ignored value is (e.g. ``environment variable DATABASE_URL``).
    :ivar shown: The ignored value as it may be displayed (secrets masked), or ``None``
        for a key outside the table, whose value is never shown.
    :ivar winner: Where the value in effect comes from (e.g. ``app.config before init_app``).
    """

    key: str
    origin: str
    shown: str | None
    winner: str

    def __str__(self) -> str:
        value = "" if self.shown is None else f" = {self.shown}"
        return f"{self.origin}{value} is ignored: {self.key} comes from {self.winner}"


@dataclasses.dataclass
class Resolution:
    """The outcome of resolving every setting for one app.

    :ivar profile: The active profile.
    :ivar entries: One :class:`Entry` per row of :data:`SETTINGS`, in table order.
    :ivar extra: Keys outside the table from the instance file, the environment's
        ``FLASK_*`` variables and the ``config`` argument, where no higher layer set
        them; copied to ``app.config``.
    :ivar problems: Errors that stop ``init_app``.
    :ivar warnings: Findings that are errors only in production.
    :ivar overridden: Values of the instance file and the environment that a higher
        layer overrode (``flask stack check`` reports them as ``config.W002``).
    """

    profile: str
    entries: dict[str, Entry]
    extra: dict[str, t.Any]
    problems: list[Problem] = dataclasses.field(default_factory=list)
    warnings: list[Problem] = dataclasses.field(default_factory=list)
    overridden: list[Overridden] = dataclasses.field(default_factory=list)

    def __getitem__(self, key: str) -> t.Any:
        return self.entries[key].value

    def apply(self, app: Flask) -> None:
        """Write every effective value into ``app.config``."""
        for key, value in self.extra.items():
            app.config[key] = value
        for entry in self.entries.values():
            app.config[entry.key] = entry.value


class _Layer(t.NamedTuple):
    source: _Source
    values: t.Mapping[str, t.Any]
    origins: t.Mapping[str, str]


def _app_layer(app: Flask) -> _Layer:
    # What a fresh config of this app holds is Flask's default (DEBUG included,
    # which Flask derives from FLASK_DEBUG), not something the app chose.
    pristine = app.make_config(app.config.root_path == app.instance_path)
    values: dict[str, t.Any] = {}
    for key, value in app.config.items():
        if key in pristine and pristine[key] == value:
            continue
        values[key] = value
    return _Layer("app", values, dict.fromkeys(values, "app.config before init_app"))


def _instance_layer(app: Flask) -> _Layer:
    path = os.path.join(app.instance_path, "config.py")
    loaded = Config(app.instance_path)
    if os.path.isfile(path):
        loaded.from_pyfile(path)
    return _Layer("instance", dict(loaded), dict.fromkeys(loaded, path))


def _environment_layer() -> _Layer:
    environ = os.environ
    values: dict[str, t.Any] = {}
    origins: dict[str, str] = {}
    prefixed = Config("")
    prefixed.from_prefixed_env("FLASK")
    for key, value in prefixed.items():
        values[key] = value
        origins[key] = f"environment variable FLASK_{key}"
    # Named variables are more specific than FLASK_*, so they win.
    for setting in SETTINGS:
        for name in setting.env:
            if name in environ:
                values[setting.key] = environ[name]
                origins[setting.key] = f"environment variable {name}"
                break
    return _Layer("environment", values, origins)


def _argument_layer(config: t.Mapping[str, t.Any] | None, options: t.Mapping[str, t.Any]) -> _Layer:
    values = dict(config or {})
    origins = dict.fromkeys(values, "the config argument of init_app")
    for name, value in options.items():
        key = f"FLASKSTACK_{name.upper()}"
        values[key] = value
        origins[key] = f"the {name}= option of init_app"
    return _Layer("argument", values, origins)


def _layers(
    app: Flask,
    config: t.Mapping[str, t.Any] | None,
    options: t.Mapping[str, t.Any],
) -> list[_Layer]:
    """The layers above the defaults, lowest first.

    The app's code sits above the environment: a value the code chose (a
    ``TestConfig``'s database) is never replaced by one a shell or a ``.env``
    file happens to hold; the environment fills what the code left unset.
    """
    return [
        _instance_layer(app),
        _environment_layer(),
        _app_layer(app),
        _argument_layer(config, options),
    ]


def _fix_for(origin: str, key: str) -> str:
    return f"correct {key} in {origin}"


def _resolve(
    app: Flask,
    config: t.Mapping[str, t.Any] | None = None,
    options: t.Mapping[str, t.Any] | None = None,
) -> Resolution:
    """Work out the effective value of every setting for ``app``.

    Nothing is written to ``app.config``; call :meth:`Resolution.apply` for
    that. Problems are collected in the result, never raised one by one; see
    :func:`flaskstack._security.validate` for the step that raises.
    """
    layers = _layers(app, config, options or {})
    problems: list[Problem] = []

    raw_profile, profile_layer = _pick(layers, "FLASKSTACK_PROFILE")
    profile = "development"
    profile_setting = _BY_KEY["FLASKSTACK_PROFILE"]
    if profile_layer is not None:
        try:
            profile = profile_setting.parse(raw_profile)
        except (ValueError, TypeError):
            origin = profile_layer.origins["FLASKSTACK_PROFILE"]
            problems.append(_invalid(profile_setting, raw_profile, origin))

    entries: dict[str, Entry] = {}
    for setting in SETTINGS:
        raw, layer = _pick(layers, setting.key)
        if layer is None:
            entries[setting.key] = _default_entry(setting, app, profile)
            continue
        try:
            value = setting.parse(raw)
        except (ValueError, TypeError) as exc:
            if setting.key != "FLASKSTACK_PROFILE":
                problems.append(_invalid(setting, raw, layer.origins[setting.key], str(exc)))
            entries[setting.key] = _default_entry(setting, app, profile)
            continue
        if setting.key == "FLASKSTACK_PROFILE":
            value = profile
        entries[setting.key] = Entry(setting.key, value, layer.source, layer.origins[setting.key])

    extra: dict[str, t.Any] = {}
    keys = {key for layer in layers for key in layer.values if key not in _BY_KEY}
    for key in sorted(keys):
        value, layer = _pick(layers, key)
        # What the app's code set is in app.config already.
        if layer is not None and layer.source != "app":
            extra[key] = value

    resolution = Resolution(profile, entries, extra, problems)
    resolution.overridden.extend(_overridden(layers))
    _check_unknown_keys(layers, resolution)
    return resolution


def _default_entry(setting: Setting, app: Flask, profile: str) -> Entry:
    value, source = setting.default_for(app, profile)
    return Entry(setting.key, value, source, source, setting.replaced_default(value))


def _pick(layers: list[_Layer], key: str) -> tuple[t.Any, _Layer | None]:
    for layer in reversed(layers):
        if key in layer.values:
            return layer.values[key], layer
    return _MISSING, None


def _overridden(layers: list[_Layer]) -> list[Overridden]:
    """The instance file's and the environment's values that a higher layer replaced."""
    found: list[Overridden] = []
    for index, layer in enumerate(layers):
        if layer.source not in ("instance", "environment"):
            continue
        above = layers[index + 1 :]
        for key, value in layer.values.items():
            winner = next((w for w in reversed(above) if key in w.values), None)
            if winner is None or _same(key, value, winner.values[key]):
                continue
            setting = _BY_KEY.get(key)
            found.append(
                Overridden(
                    key=key,
                    origin=layer.origins[key],
                    shown=None if setting is None else _mask(key, value),
                    winner=winner.origins[key],
                )
            )
    return found


def _same(key: str, lower: object, higher: object) -> bool:
    """Whether two layers' values for ``key`` mean the same (``"2"`` and ``2.0`` do)."""
    if lower == higher:
        return True
    setting = _BY_KEY.get(key)
    if setting is None:
        return False
    try:
        return bool(setting.parse(lower) == setting.parse(higher))
    except (ValueError, TypeError):
        return False


def _invalid(setting: Setting, raw: object, origin: str, reason: str = "") -> Problem:
    shown = _mask(setting.key, raw)
    return Problem(
        id="config.E001",
        key=setting.key,
        value=f"{shown} ({reason})" if reason else shown,
        expected=setting.expected,
        fix=_fix_for(origin, setting.key),
    )


def _unknown_environment_variables() -> list[str]:
    """``FLASKSTACK_*`` environment variables that no setting reads (usually typos)."""
    return sorted(
        name
        for name in os.environ
        if name.startswith("FLASKSTACK_")
        and name not in _BY_KEY
        and name not in _ENVIRONMENT_NAMES
        and name not in _TOOLING_VARIABLES
        and not _OIDC_CLIENT_VARIABLE.fullmatch(name)
    )


def _unknown_key_warning(key: str, origin: str, known: t.Iterable[str]) -> Problem:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "remove it"
    return Problem(
        id="config.W001",
        key=key,
        value="(unknown setting)",
        expected="a setting flaskstack knows (see `flask stack config`)",
        fix=f"{hint} It comes from {origin}.",
    )


def _check_unknown_keys(layers: list[_Layer], resolution: Resolution) -> None:
    for layer in layers:
        for key in layer.values:
            if key.startswith("FLASKSTACK_") and key not in _BY_KEY:
                resolution.warnings.append(_unknown_key_warning(key, layer.origins[key], _BY_KEY))
    variables = sorted(
        _BY_KEY.keys() | {n for n in _ENVIRONMENT_NAMES if n.startswith("FLASKSTACK_")}
    )
    for name in _unknown_environment_variables():
        resolution.warnings.append(
            _unknown_key_warning(name, f"environment variable {name}", variables)
        )
