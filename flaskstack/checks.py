"""System checks behind ``flask stack check``.

Each check is a function registered with :func:`register` that looks at a
loaded app and returns :class:`Finding` objects. A finding has a level, a
stable id (``<area>.<E|W|I><number>``) that never changes meaning, a message
and a hint. Deploy checks (``deploy=True``) run only with ``--deploy``.
Silenced ids (``FLASKSTACK_SILENCED_CHECKS``) are still reported, as
silenced, and never fail the command.

Every id, with its meaning and fix, is listed in :data:`CATALOGUE`; the
documentation's check reference is generated from it.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import traceback
import typing as t

from . import _security, config
from ._redis_url import check_standalone_url
from ._routes import later_clashes
from ._state import get_state
from .logs import _LEFT_TO_THE_APP_KEY

if t.TYPE_CHECKING:
    from flask import Flask

    from .errors import Problem

__all__ = ["CATALOGUE", "Finding", "Level", "register", "run_checks"]


class Level(enum.IntEnum):
    """How serious a finding is; ``--fail-level`` picks the lowest that fails."""

    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    CRITICAL = 50


@dataclasses.dataclass(frozen=True)
class Finding:
    """One result of a check.

    :param level: How serious it is.
    :param id: Stable identifier such as ``database.E001``.
    :param msg: What is wrong.
    :param hint: What to do about it.
    """

    level: Level
    id: str
    msg: str
    hint: str | None = None

    def is_serious(self, fail_level: Level) -> bool:
        """Whether this finding fails a run at ``fail_level``."""
        return self.level >= fail_level


_CheckFunction = t.Callable[["Flask", bool], t.Iterable[Finding]]


@dataclasses.dataclass(frozen=True)
class _Check:
    function: _CheckFunction
    tags: frozenset[str]
    deploy: bool


_REGISTRY: list[_Check] = []

CATALOGUE: dict[str, tuple[str, str]] = {
    "stack.E001": (
        "The app could not be loaded (import error, exception in the factory).",
        "Fix the error in the traceback printed above it (run the command with the same "
        "FLASK_APP to see it again).",
    ),
    "stack.E002": (
        "The app does not use flaskstack: flaskstack.init_app(app) was not called.",
        "Call flaskstack.init_app(app) in the app factory, or point FLASK_APP at the right app.",
    ),
    "stack.E003": (
        "A check could not finish: it raised an exception (the other checks still ran).",
        "Fix the cause the message names (the traceback is printed above the findings); if "
        "the exception comes from flaskstack itself, report it with that traceback.",
    ),
    "config.E001": (
        "A setting has a value of the wrong type or form.",
        "Set the key to a value of the form the message names (flask stack config shows where "
        "the value came from).",
    ),
    "config.E002": (
        "SECRET_KEY is not set (production), or is the development key generated into the "
        "instance folder (--deploy).",
        "Set SECRET_KEY in the environment to a random value of 32 bytes or more, the same "
        "for every worker: python -c 'import secrets; print(secrets.token_urlsafe(48))'.",
    ),
    "config.E003": (
        "SECRET_KEY is too short or a well-known value.",
        "Generate a new random key of 32 bytes or more and keep it secret.",
    ),
    "config.E004": ("DEBUG is on in production.", "Unset FLASK_DEBUG / DEBUG in production."),
    "config.E005": ("TESTING is on in production.", "Unset TESTING in production."),
    "config.E006": (
        "No Redis URL in production.",
        "Set REDIS_URL: sessions, the cache and login throttling need a Redis shared by every "
        "worker.",
    ),
    "config.E007": (
        "No database URL in production (the SQLite default is for development).",
        "Set DATABASE_URL to the production database.",
    ),
    "config.E008": (
        "A session cookie setting is insecure in production (Secure, HttpOnly or SameSite off).",
        "Leave SESSION_COOKIE_SECURE, SESSION_COOKIE_HTTPONLY and SESSION_COOKIE_SAMESITE at "
        "flaskstack's production defaults, and serve the app over HTTPS.",
    ),
    "config.E009": (
        "No SECRET_KEY and the instance folder cannot hold a generated one.",
        "Set SECRET_KEY, or make the instance folder writable.",
    ),
    "config.W001": (
        "A FLASKSTACK_* key that flaskstack does not know (usually a typo).",
        "Correct the key's name (the message suggests the closest known one) or remove it.",
    ),
    "config.W002": (
        "A value in the environment (or the instance folder's config.py) is ignored because "
        "the app's code or the config argument of init_app sets the same key.",
        "Nothing, if the code's value is the one you want (a TestConfig's own database, for "
        "instance). Otherwise remove the key from app.config / the config argument so the "
        "environment fills it, or unset the variable (check .env and .flaskenv).",
    ),
    "database.E001": (
        "The database does not answer.",
        "Check DATABASE_URL (host, port, credentials, database name) and that the server runs "
        "and accepts connections from this host; the log above has the driver's message.",
    ),
    "database.E002": (
        "A PostgreSQL URL is configured but the psycopg driver is not installed.",
        "Install flaskstack[postgres] (psycopg 3).",
    ),
    "database.E003": (
        "The database URL needs a driver that is not installed.",
        "Install the driver the message names, or name an installed driver in the URL "
        "(SQLALCHEMY_DATABASE_URI / DATABASE_URL), e.g. mysql+pymysql://.",
    ),
    "database.W001": (
        "The database is SQLite (--deploy): one host only, no concurrent writers.",
        "Set DATABASE_URL to a PostgreSQL database for production, or silence database.W001 "
        "if one host and one writer are enough.",
    ),
    "database.I001": (
        "A read replica (FLASKSTACK_DATABASE_REPLICA_URLS) answers, is a standby, and how far "
        "it lags behind the primary.",
        "Nothing to do.",
    ),
    "database.W002": (
        "A read replica does not answer; until it does, its reads go to the primary.",
        "Check the replica's URL in FLASKSTACK_DATABASE_REPLICA_URLS and that the server runs "
        "and accepts connections from this host.",
    ),
    "database.W003": (
        "A read replica lags further behind the primary than FLASKSTACK_REPLICA_MAX_LAG; "
        "until it catches up, its reads go to the primary.",
        "Check the replica's replication (pg_stat_replication on the primary, a paused replay, "
        "disk or network), or raise FLASKSTACK_REPLICA_MAX_LAG.",
    ),
    "database.E004": (
        "A configured read replica is not a standby (pg_is_in_recovery() is false): a second "
        "primary, or a promoted replica, whose data may differ from the primary's.",
        "Point the URL in FLASKSTACK_DATABASE_REPLICA_URLS at a streaming standby of the "
        "primary (after a failover, at the new standby), or remove it.",
    ),
    "redis.E001": (
        "Redis does not answer.",
        "Check REDIS_URL and that the Redis server (or its Sentinels or Cluster nodes) runs and "
        "is reachable from this host; the log above has the client's message.",
    ),
    "migrations.W001": (
        "There is no migration repository.",
        "Create one with `flask db init`, then `flask db migrate` and `flask db upgrade`, or set "
        "FLASKSTACK_MIGRATIONS_DIR (a relative path is relative to the working directory).",
    ),
    "migrations.E001": (
        "The database is behind the migration repository (unapplied migrations).",
        "Run `flask db upgrade` (in a deployment: before starting the new code).",
    ),
    "migrations.E002": (
        "The database is at a revision the migration repository does not have.",
        "Deploy the code that has this revision, or downgrade the database with that code, or "
        "stamp the database with `flask db stamp` after checking its schema.",
    ),
    "migrations.W002": (
        "The models have changes that no migration contains.",
        "Run `flask db migrate -m '<what changed>'`, review the new file, commit it, then "
        "`flask db upgrade`.",
    ),
    "migrations.W003": (
        "Constraints in the database are named otherwise than the models name them: a "
        "database created without flaskstack's naming convention (users_pkey, "
        "users_email_key on PostgreSQL, unnamed on SQLite, where the models say pk_users, "
        "uq_users_email).",
        "Add a one-time migration whose upgrade() calls "
        "flaskstack.migrations.rename_constraints_to_convention() (`flask db revision -m "
        "'constraint names'`, then edit it), and run `flask db upgrade`.",
    ),
    "migrations.W004": (
        "The database has tables, created by the migrations, that no model known to the app "
        "declares.",
        "If models map these tables, the app factory does not import them: import the models "
        "in create_app (else `flask db migrate` writes a migration that drops the tables, data "
        "and all). If the tables are no longer used, write a migration that drops them.",
    ),
    "auth.E001": (
        "A second Flask-Login LoginManager was registered on the app after "
        "flaskstack.init_app(app), replacing the one in effect.",
        "Remove the LoginManager(app) or login_manager.init_app(app) line that runs after "
        "flaskstack.init_app(app); to use the app's own LoginManager, register it before.",
    ),
    "auth.E002": (
        "flaskstack's default User model clashes with a model or table of the app's.",
        "Set FLASKSTACK_USER_MODEL to the app's user model, or register the app's own "
        "flask_login.LoginManager before flaskstack.init_app(app).",
    ),
    "auth.I001": (
        "flaskstack's auth pages are off: the user model lacks what they need.",
        "Give the model an email column and check_password/set_password methods (or a "
        "password_hash column), or set FLASKSTACK_AUTH_URL_PREFIX to None to say the app has "
        "its own pages.",
    ),
    "auth.I002": (
        "API tokens are off: the user model has no single-column primary key.",
        "Give the user model a single-column primary key to use API tokens.",
    ),
    "auth.I003": (
        "Password checks and rehashing are off: the user model has neither check_password "
        "nor password_hash.",
        "Add a check_password(password) method or a password_hash column holding "
        "werkzeug.security hashes (flaskstack.auth.UserMixin has both).",
    ),
    "auth.I005": (
        "Signed-in devices are not tracked: the user model has no single-column primary key. "
        "Remember-me cookies hold the user's id, so signing out does not revoke a copy of one.",
        "Give the user model a single-column primary key to get per-device sign-in, revocable "
        "remember-me cookies and sign out everywhere.",
    ),
    "auth.E011": (
        "A view asks for roles or permissions (auth_required(roles=, permissions=)) and the "
        "app cannot say which a user holds: such requests would fail.",
        "Set FLASKSTACK_ROLES=true to use flaskstack's roles, or give the user model "
        "has_role(name) and has_permission(name) methods.",
    ),
    "auth.W010": (
        "The account flows mail links built from the request's Host header, and neither "
        "TRUSTED_HOSTS nor SERVER_NAME is set (--deploy): a request with a forged Host header "
        "could have a password reset link to another site mailed to a user.",
        "Set TRUSTED_HOSTS to the host names the site answers to (or SERVER_NAME), so Flask "
        "refuses any other Host.",
    ),
    "auth.E020": (
        "FLASKSTACK_TWO_FACTOR is on and pyotp or segno is not installed.",
        "pip install 'flaskstack[two-factor]', or set FLASKSTACK_TWO_FACTOR = False.",
    ),
    "auth.E021": (
        "FLASKSTACK_TWO_FACTOR is on without flaskstack's auth pages or with a user model that "
        "has no single-column primary key.",
        "Use flaskstack's sign-in pages and a user model with what they need, or set "
        "FLASKSTACK_TWO_FACTOR = False.",
    ),
    "auth.E022": (
        "FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES is set and users' roles are unknown.",
        "Set FLASKSTACK_ROLES = True, or give the user model has_role(name) and "
        "has_permission(name), or empty FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES.",
    ),
    "auth.W020": (
        "FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES names roles that do not exist, so nobody is "
        "required to use two-factor by them.",
        "Fix the role names in FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES, or create the roles "
        "(flask stack role create).",
    ),
    "auth.I004": (
        "The app uses its own Flask-Login LoginManager: flaskstack adds no user model, auth "
        "pages or API tokens.",
        "Nothing to do if the app has its own sign-in; to use flaskstack's, drop the app's "
        "LoginManager and set FLASKSTACK_USER_MODEL.",
    ),
    "oidc.E001": (
        "An entry of FLASKSTACK_OIDC_PROVIDERS is malformed (name, preset or discovery_url, "
        "client_id, scopes).",
        "Correct the entry as the message says; each provider needs 'preset' or "
        "'discovery_url', a 'client_id', and scopes that include 'openid'.",
    ),
    "oidc.E002": (
        "FLASKSTACK_OIDC_PROVIDERS names providers, and Authlib or requests is not installed.",
        "pip install 'flaskstack[oidc]'.",
    ),
    "oidc.E003": (
        "A provider's discovery URL is plain HTTP in production.",
        "Use the provider's https discovery URL.",
    ),
    "oidc.E004": (
        "FLASKSTACK_OIDC_PROVIDERS names providers, and flaskstack's auth pages are off.",
        "Turn the auth pages on (flaskstack's LoginManager, FLASKSTACK_AUTH_URL_PREFIX, a user "
        "model with an email, a password and a single-column primary key), or empty "
        "FLASKSTACK_OIDC_PROVIDERS.",
    ),
    "oidc.E005": (
        "An identity provider has no client secret (--deploy).",
        "Set its 'client_secret', or the environment variable "
        "FLASKSTACK_OIDC_<NAME>_CLIENT_SECRET, to the secret the provider issued.",
    ),
    "oidc.E006": (
        "The redirect URI given to identity providers is not https (--deploy): SERVER_NAME is "
        "set and PREFERRED_URL_SCHEME is not 'https'.",
        "Serve the site over https and set PREFERRED_URL_SCHEME = 'https' (behind a TLS proxy, "
        "FLASKSTACK_PROXY_FIX too), and register the https redirect URI with the provider.",
    ),
    "oidc.E007": (
        "FLASKSTACK_OIDC is False and FLASKSTACK_OIDC_PROVIDERS names providers.",
        "Unset FLASKSTACK_OIDC_PROVIDERS to keep sign-in with providers off, or set "
        "FLASKSTACK_OIDC to True (or unset it).",
    ),
    "oidc.W001": (
        "SESSION_COOKIE_SAMESITE is 'Strict' (--deploy): browsers coming back from an identity "
        "provider arrive without the session, so every sign-in with a provider is refused.",
        "Set SESSION_COOKIE_SAMESITE to 'Lax' (flaskstack's default).",
    ),
    "passkeys.E001": (
        "FLASKSTACK_PASSKEYS is on and py_webauthn is not installed.",
        "pip install 'flaskstack[passkeys]', or turn FLASKSTACK_PASSKEYS off.",
    ),
    "passkeys.E002": (
        "FLASKSTACK_PASSKEYS is on and the app cannot have passkeys: they need flaskstack's "
        "auth pages, FLASKSTACK_AUTH_API_PATH and a user model with a single-column primary "
        "key.",
        "Give the app what the message says it lacks, or turn FLASKSTACK_PASSKEYS off.",
    ),
    "passkeys.E003": (
        "FLASKSTACK_PASSKEYS is on and FLASKSTACK_PASSKEYS_RP_ID or FLASKSTACK_PASSKEYS_ORIGINS "
        "is not set (production, and --deploy): the request's host would decide which site "
        "passkeys are bound to.",
        "Set FLASKSTACK_PASSKEYS_RP_ID to the site's host name (e.g. 'example.com') and "
        "FLASKSTACK_PASSKEYS_ORIGINS to the origins its pages are served from "
        "(e.g. 'https://example.com').",
    ),
    "passkeys.E004": (
        "An origin in FLASKSTACK_PASSKEYS_ORIGINS has a host that is neither "
        "FLASKSTACK_PASSKEYS_RP_ID nor under it: browsers refuse every passkey ceremony there.",
        "Fix the origin, or set FLASKSTACK_PASSKEYS_RP_ID to a domain every origin shares.",
    ),
    "passkeys.E005": (
        "An origin in FLASKSTACK_PASSKEYS_ORIGINS is not https (--deploy): browsers allow "
        "passkeys on plain http only for localhost.",
        "Serve the site over https and list its https origins in FLASKSTACK_PASSKEYS_ORIGINS.",
    ),
    "urls.E001": (
        "One of flaskstack's endpoints has the URL of a rule of the app's: Werkzeug would send "
        "the requests to flaskstack's view, so the app's first request is refused.",
        "Move flaskstack's endpoint with the setting the message names, or set it to None to "
        "turn the endpoint off; the app's own view keeps the URL.",
    ),
    "cors.E001": (
        "FLASKSTACK_CORS_ORIGINS is '*' and FLASKSTACK_CORS_CREDENTIALS is on (refused in "
        "production): any site's pages could call the API as their signed-in visitors.",
        "List the origins of your front ends in FLASKSTACK_CORS_ORIGINS, or set "
        "FLASKSTACK_CORS_CREDENTIALS to False.",
    ),
    "cors.E002": (
        "FLASKSTACK_CORS_ORIGINS is set but the app registered Flask-CORS itself (CORS(app)).",
        "Keep one CORS set-up: remove CORS(app) from the factory and configure "
        "FLASKSTACK_CORS_*, or leave FLASKSTACK_CORS_ORIGINS empty to keep the app's own.",
    ),
    "cors.W001": (
        "FLASKSTACK_CORS_ORIGINS is '*' (--deploy): every site's pages may call the API.",
        "List the origins of your front ends in FLASKSTACK_CORS_ORIGINS, or silence cors.W001 "
        "for a public API that needs no credentials.",
    ),
    "mail.E001": (
        "A feature that sends mail (password reset, address confirmation) is on, and "
        "MAIL_URL is not set (refused in production).",
        "Set MAIL_URL to the SMTP server, e.g. "
        "MAIL_URL=smtp://user:password@smtp.example.com:587?starttls=1, and "
        "FLASKSTACK_MAIL_FROM; or turn the feature off.",
    ),
    "mail.E002": (
        "MAIL_URL is console://, memory:// or file:// (refused in production): mail is "
        "printed or kept, never delivered.",
        "Set MAIL_URL to an smtp:// or smtps:// URL of the SMTP server, or unset it to send no "
        "mail.",
    ),
    "mail.E003": (
        "MAIL_URL names an SMTP server and no sender is set (refused in production).",
        "Set FLASKSTACK_MAIL_FROM to an address the server may send from, e.g. "
        "'Example <no-reply@example.com>'.",
    ),
    "mail.E004": (
        "MAIL_URL is set but the app registered Flask-Mailman or Flask-Mail itself.",
        "Keep one mail set-up: remove Mail(app) / mail.init_app(app) from the factory and "
        "configure MAIL_URL, or unset MAIL_URL to keep the app's own.",
    ),
    "mail.E005": (
        "The SMTP server cannot be used (--deploy): no connection, no answer within "
        "FLASKSTACK_MAIL_TIMEOUT, STARTTLS or the login failed.",
        "Check MAIL_URL (host, port, user and password, smtps:// or ?starttls=1 as the server "
        "expects) and that the server accepts connections from this host; the message says "
        "which step failed. A private CA's certificate is trusted through SSL_CERT_FILE.",
    ),
    "mail.I001": (
        "MAIL_URL is not set (--deploy): the app sends no mail.",
        "Nothing to do if the app needs no mail; otherwise set MAIL_URL and FLASKSTACK_MAIL_FROM.",
    ),
    "jobs.E001": (
        "FLASKSTACK_JOBS is on and no Redis URL is set: the job queues live in Redis.",
        "Set REDIS_URL (FLASKSTACK_REDIS_URL), or turn FLASKSTACK_JOBS off.",
    ),
    "jobs.E002": (
        "FLASKSTACK_JOBS is on and the Redis URL names a Redis Cluster, which RQ does not "
        "support (a job's keys and its queue would be spread over slots).",
        "Point REDIS_URL at a standalone or Sentinel Redis, or turn FLASKSTACK_JOBS off.",
    ),
    "jobs.E003": (
        "FLASKSTACK_JOBS_DASHBOARD_PATH is set and FLASKSTACK_JOBS is off: the dashboard "
        "shows the job queues.",
        "Set FLASKSTACK_JOBS=true (with REDIS_URL), or unset FLASKSTACK_JOBS_DASHBOARD_PATH.",
    ),
    "jobs.E004": (
        "FLASKSTACK_JOBS_DASHBOARD_PATH is set and users' roles are unknown: FLASKSTACK_ROLES "
        "is off and the user model has no has_role(name) method of its own (or the app's own "
        "LoginManager names no user model); the dashboard lets in only users with "
        "FLASKSTACK_JOBS_DASHBOARD_ROLE.",
        "Set FLASKSTACK_ROLES=true, or give the user model (FLASKSTACK_USER_MODEL) a "
        "has_role(name) method, or unset FLASKSTACK_JOBS_DASHBOARD_PATH.",
    ),
    "jobs.E005": (
        "FLASKSTACK_JOBS_DASHBOARD_PATH is the site's root ('/').",
        "Give the dashboard a path of its own, such as '/admin/jobs'.",
    ),
    "jobs.W001": (
        "No worker has served the app's job queues within FLASKSTACK_JOBS_WORKER_MAX_SILENCE "
        "(--deploy): jobs are enqueued and nothing runs them.",
        "Start `flask stack worker` (the compose file's worker service, a worker Deployment) "
        "with the same settings as the web processes; `flask stack jobs` lists the workers "
        "and their heartbeats.",
    ),
    "admin.E001": (
        "FLASKSTACK_ADMIN is on and Flask-Admin, which serves the admin's pages, is not installed.",
        "Install flaskstack's admin extra (pip install 'flaskstack[admin]'), or turn "
        "FLASKSTACK_ADMIN off.",
    ),
    "admin.E002": (
        "FLASKSTACK_ADMIN is on and users' permissions are unknown: FLASKSTACK_ROLES is off and "
        "the user model has no has_permission(name) method of its own (or the app's own "
        "LoginManager names no user model); the admin lets in only users with "
        "FLASKSTACK_ADMIN_PERMISSION.",
        "Set FLASKSTACK_ROLES=true, or give the user model (FLASKSTACK_USER_MODEL) a "
        "has_permission(name) method, or turn FLASKSTACK_ADMIN off.",
    ),
    "admin.E003": (
        "FLASKSTACK_ADMIN_PATH is where the app's own Flask-Admin already is.",
        "Move flaskstack's admin with FLASKSTACK_ADMIN_PATH (such as '/staff'), or keep the "
        "app's own Flask-Admin and turn FLASKSTACK_ADMIN off.",
    ),
    "admin.W001": (
        "Roles that open the admin (FLASKSTACK_ADMIN_PERMISSION) do not require two-factor "
        "sign-in (--deploy): a stolen password is enough to change the app's data.",
        "Set FLASKSTACK_TWO_FACTOR = True and list those roles in "
        "FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES.",
    ),
    "metrics.E001": (
        "The metrics endpoint answers a network that is not private (FLASKSTACK_METRICS_ALLOW) "
        "and FLASKSTACK_METRICS_TOKEN is not set (refused in production): anyone on that "
        "network can read the app's traffic and errors.",
        "Set FLASKSTACK_METRICS_TOKEN to a random string and give it to Prometheus "
        "(authorization: {credentials: ...}), or list only the private networks Prometheus "
        "scrapes from in FLASKSTACK_METRICS_ALLOW.",
    ),
    "metrics.E002": (
        "FLASKSTACK_METRICS is on and prometheus-client is not installed.",
        "Install flaskstack[metrics], or turn FLASKSTACK_METRICS off.",
    ),
    "metrics.E003": (
        "FLASKSTACK_METRICS is on and PROMETHEUS_MULTIPROC_DIR names no writable directory.",
        "Create the directory (empty, before the server starts), or unset the variable; under "
        "gunicorn, start it with -c python:flaskstack.gunicorn, which prepares one.",
    ),
    "logging.I001": (
        "flaskstack left the app's logging as the app configured it (the root logger or "
        "app.logger already had handlers or a level of the app's).",
        "Nothing to do. To have flaskstack write the app's log lines, set "
        "FLASKSTACK_LOG_FORMAT to 'text' or 'json'; to keep your set-up and log request ids, "
        "add flaskstack.logs.RequestIdFilter() to your handlers.",
    ),
    "tracing.E001": (
        "FLASKSTACK_TRACING is on and OpenTelemetry (the otel extra) is not installed.",
        "pip install 'flaskstack[otel]', or set FLASKSTACK_TRACING = False.",
    ),
    "tracing.W001": (
        "Spans are sent over plain http to a host other than this one (--deploy): they hold "
        "the app's URLs and SQL statements, readable on the network.",
        "Send them over https (FLASKSTACK_TRACING_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT), or "
        "to a collector on the same host or pod; silence tracing.W001 if the network is private.",
    ),
    "headers.W001": (
        "FLASKSTACK_CSP is None (--deploy): pages are sent without a Content-Security-Policy, "
        "so an injected script runs.",
        "Set FLASKSTACK_CSP to a policy (flaskstack's default needs a nonce, csp_nonce(), on "
        "inline scripts), or silence headers.W001 if a proxy in front adds the header.",
    ),
    "headers.W002": (
        "The Content-Security-Policy allows inline scripts ('unsafe-inline' in script-src, or "
        "default-src without script-src, with no nonce or hash).",
        'Move inline scripts to files, or give them nonce="{{ csp_nonce() }}" and put '
        "'nonce-{nonce}' in script-src instead of 'unsafe-inline'.",
    ),
    "headers.W003": (
        "FLASKSTACK_CSP_REPORT_ONLY is on (--deploy): the policy is reported, not enforced.",
        "Once no page reports a violation, set FLASKSTACK_CSP_REPORT_ONLY to False.",
    ),
    "headers.W004": (
        "FLASKSTACK_PERMISSIONS_POLICY is None (--deploy): an injected frame or script may ask "
        "for the camera, microphone, location or payment.",
        "Set FLASKSTACK_PERMISSIONS_POLICY (flaskstack's default turns those features off), or "
        "silence headers.W004.",
    ),
    "headers.W005": (
        "FLASKSTACK_PRIVATE_CACHE_CONTROL is None or lets shared caches store pages that "
        "depend on the signed-in user (--deploy).",
        "Set FLASKSTACK_PRIVATE_CACHE_CONTROL to 'private, no-store' (the default), or "
        "silence headers.W005 if every view sets its own Cache-Control.",
    ),
}
"""Every check id flaskstack can report: what it means, and how to fix it.

The fix is the hint of every finding with that id (``_finding``), so each
id's advice is written here once.
"""

_LEVEL_OF_KIND = {"E": Level.ERROR, "W": Level.WARNING, "I": Level.INFO}


def _finding(check_id: str, msg: str, level: Level | None = None) -> Finding:
    """A finding of the catalogued ``check_id``, with the catalogue's fix as its hint.

    :param check_id: An id of :data:`CATALOGUE`.
    :param msg: What is wrong in this app (values, names, counts).
    :param level: The level; by default from the id (``E`` error, ``W`` warning, ``I`` info).
    :raises KeyError: for an id the catalogue does not list.
    """
    _meaning, fix = CATALOGUE[check_id]
    kind = check_id.rpartition(".")[2][:1]
    return Finding(level if level is not None else _LEVEL_OF_KIND[kind], check_id, msg, fix)


def register(*tags: str, deploy: bool = False) -> t.Callable[[_CheckFunction], _CheckFunction]:
    """Register a check function ``check(app, deploy) -> Iterable[Finding]``.

    :param tags: Names to select the check with (``flask stack check --tag``).
    :param deploy: Run only with ``--deploy``.
    """

    def decorator(function: _CheckFunction) -> _CheckFunction:
        _REGISTRY.append(_Check(function, frozenset(tags), deploy))
        return function

    return decorator


def _from_problem(problem: Problem, level: Level = Level.ERROR) -> Finding:
    """Turn a configuration :class:`~flaskstack.errors.Problem` into a finding."""
    return Finding(
        level,
        problem.id,
        f"{problem.key!r} is {problem.value}; expected {problem.expected}.",
        problem.fix,
    )


def run_checks(app: Flask, *, deploy: bool = False, tags: t.Collection[str] = ()) -> list[Finding]:
    """Run every registered check that applies and return all findings.

    A check that raises does not stop the others: its exception becomes a
    ``stack.E003`` finding, and its traceback goes to standard error.
    """
    findings: list[Finding] = []
    for check in _REGISTRY:
        if check.deploy and not deploy:
            continue
        if tags and not (check.tags & set(tags)):
            continue
        try:
            findings.extend(check.function(app, deploy))
        except Exception as exc:  # a failing check is one finding, not the end of the run
            traceback.print_exc(file=sys.stderr)
            findings.append(_crashed(check.function, exc))
    return findings


def _crashed(function: _CheckFunction, exc: Exception) -> Finding:
    name = getattr(function, "__qualname__", repr(function))
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, ImportError) and exc.name:
        detail += f" (the Python module {exc.name!r} is not installed)"
    return _finding("stack.E003", f"The check {name!r} raised {detail}.")


# -- the built-in checks ---------------------------------------------------


@register("config")
def _check_config(app: Flask, deploy: bool) -> list[Finding]:
    """Report the configuration's warnings and, with ``--deploy``, its production problems."""

    resolution = get_state(app).resolution
    findings = [_from_problem(p, Level.WARNING) for p in resolution.warnings]
    findings.extend(_finding("config.W002", f"{item}.") for item in resolution.overridden)
    if deploy:
        seen = {(f.id, f.msg) for f in findings}
        for problem in _security.safety_problems(resolution, deploy=True):
            found = _from_problem(problem)
            if (found.id, found.msg) not in seen:
                findings.append(found)
    return findings


@register("urls")
def _check_urls(app: Flask, deploy: bool) -> list[Finding]:
    """Report rules the app added after ``init_app`` at the URL of one of flaskstack's."""
    return [_from_problem(problem) for problem in later_clashes(app)]


@register("cors", deploy=True)
def _check_cors(app: Flask, deploy: bool) -> list[Finding]:
    """With ``--deploy``: every origin allowed; credentials that HTTPS CSRF checks refuse."""
    from ._cors import _check_findings

    return [_finding(check_id, msg) for check_id, msg in _check_findings(app)]


@register("headers", deploy=True)
def _check_headers(app: Flask, deploy: bool) -> list[Finding]:
    """With ``--deploy``: a missing or weak Content-Security-Policy, Permissions-Policy off,
    signed-in pages that shared caches may store."""
    from ._headers import _check_findings

    return [_finding(check_id, msg) for check_id, msg in _check_findings(app.config)]


@register("mail", deploy=True)
def _check_mail(app: Flask, deploy: bool) -> list[Finding]:
    """With ``--deploy``: mail is delivered, and the SMTP server accepts a connection and login."""
    from .mail import _check_findings

    return [_finding(check_id, msg) for check_id, msg in _check_findings(app)]


@register("jobs", deploy=True)
def _check_jobs(app: Flask, deploy: bool) -> list[Finding]:
    """With ``--deploy`` and jobs on: a worker has sent a heartbeat recently."""
    import datetime as dt

    from .redis import RedisUnavailable

    state = get_state(app)
    if state.jobs is None:
        return []
    from . import _jobs_ops

    limit = app.config["FLASKSTACK_JOBS_WORKER_MAX_SILENCE"]
    try:
        with app.app_context():
            view = _jobs_ops.overview(app, failed_limit=0)
    except RedisUnavailable:
        return []  # redis.E001 says so
    served = {queue for worker in view.workers for queue in worker.queues}
    unserved = [queue for queue in state.jobs.queues if queue not in served]
    newest = view.newest_heartbeat()
    now = dt.datetime.now(dt.timezone.utc)
    if newest is not None and newest.tzinfo is None:
        newest = newest.replace(tzinfo=dt.timezone.utc)
    if newest is None or (now - newest).total_seconds() > limit or unserved:
        seen = (
            "no worker is registered"
            if newest is None
            else f"the newest heartbeat is {int((now - newest).total_seconds())} s old"
        )
        missing = f"; no worker serves {', '.join(unserved)}" if unserved else ""
        return [
            _finding(
                "jobs.W001",
                f"The job queues of namespace {state.jobs.namespace!r}: {seen}{missing} "
                f"(limit {limit:g} s).",
            )
        ]
    return []


@register("admin", deploy=True)
def _check_admin_roles(app: Flask, deploy: bool) -> list[Finding]:
    """With ``--deploy`` and the admin on: every role that opens it requires two-factor."""
    if not app.config.get("FLASKSTACK_ADMIN"):
        return []
    from .admin import _check_findings

    return [_finding(check_id, msg) for check_id, msg in _check_findings(app)]


@register("tracing", deploy=True)
def _check_tracing(app: Flask, deploy: bool) -> list[Finding]:
    """With ``--deploy`` and tracing on: spans do not cross the network in plain http."""
    from .tracing import _check_findings

    return [_finding(check_id, msg) for check_id, msg in _check_findings(app.config)]


@register("logging")
def _check_logging(app: Flask, deploy: bool) -> list[Finding]:
    """Say when flaskstack left the app's own logging set-up alone."""
    if app.extensions.get(_LEFT_TO_THE_APP_KEY):
        return [_finding("logging.I001", "app.logger is configured by the app, not flaskstack.")]
    return []


@register("database")
def _check_database(app: Flask, deploy: bool) -> list[Finding]:
    """The database answers; with ``--deploy``, it is not SQLite."""
    findings = []
    url = config._mask("SQLALCHEMY_DATABASE_URI", app.config["SQLALCHEMY_DATABASE_URI"])
    from .health import _probe_database, _run_probe

    timeout = app.config["FLASKSTACK_READY_TIMEOUT"]
    error = _run_probe(app, "database", _probe_database, timeout)
    if error is not None:
        findings.append(
            _finding("database.E001", f"The database at {url} does not answer ({error}).")
        )
    if deploy and app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        findings.append(_finding("database.W001", f"The database is SQLite ({url})."))
    return findings


@register("database", "replicas")
def _check_replicas(app: Flask, deploy: bool) -> list[Finding]:
    """Each read replica answers, is a standby, and lags within the limit."""
    if get_state(app).replicas is None:
        return []
    from ._replicas import _check_findings

    return [_finding(check_id, msg) for check_id, msg in _check_findings(app)]


@register("redis")
def _check_redis(app: Flask, deploy: bool) -> list[Finding]:
    """Redis answers ``PING`` (when the app has a Redis URL)."""
    from .health import _run_probe
    from .redis import _probe

    connection = get_state(app).redis
    if connection is None:
        return []
    url = config._mask("FLASKSTACK_REDIS_URL", app.config["FLASKSTACK_REDIS_URL"])
    if connection.target.kind == "standalone":
        # redis-py reads the rest of the URL only when it builds the client.
        try:
            check_standalone_url(connection.target.url)
        except ValueError as exc:
            return [
                _finding(
                    "config.E001",
                    f"'FLASKSTACK_REDIS_URL' is {url}, which redis-py refuses: {exc}.",
                )
            ]
    error = _run_probe(app, "redis", _probe, connection.timeout)
    if error is None:
        return []
    return [_finding("redis.E001", f"Redis at {url} does not answer ({error}).")]


@register("database", "migrations")
def _check_migrations(app: Flask, deploy: bool) -> list[Finding]:
    """The database is at the repository's head and the models match the migrations."""
    from sqlalchemy.exc import DBAPIError

    from .migrations import _repository_config

    directory = app.extensions["migrate"].directory
    try:
        alembic_config = _repository_config(app)
    except FileNotFoundError:
        return [_finding("migrations.W001", f"There is no migration repository at {directory!r}.")]
    try:
        return _compare_revisions(app, alembic_config, directory)
    except DBAPIError:
        return []  # database.E001 says why the database cannot be checked


def _compare_revisions(app: Flask, alembic_config: t.Any, directory: str) -> list[Finding]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from .database import db
    from .migrations import _constraint_renames

    script = ScriptDirectory.from_config(alembic_config)
    heads = set(script.get_heads())
    with app.app_context():
        engine = db.engine
    with engine.connect() as borrowed:
        # Under flaskstack.testing, engine.connect() lends a wrapper around the
        # test's own connection; Alembic's comparison inspects the real one.
        connection = getattr(borrowed, "wrapped_connection", borrowed)
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        current = set(context.get_current_heads())
        unknown = sorted(rev for rev in current if _revision_missing(script, rev))
        if unknown:
            return [
                _finding(
                    "migrations.E002",
                    f"The database is at revision {', '.join(unknown)}, which {directory!r} "
                    "does not contain.",
                )
            ]
        findings = _unmodelled_tables(script, connection, set(db.metadata.tables))
        if current != heads:
            pending = list(script.iterate_revisions(tuple(heads), tuple(current)))[::-1]
            findings.insert(0, _pending_finding(pending))
            return findings
        changes = compare_metadata(context, db.metadata)
        renames = [
            rename
            for rename in _constraint_renames(
                connection, db.metadata.naming_convention, set(db.metadata.tables)
            )
            if rename.new in _model_constraint_names(db.metadata, rename.table)
        ]
    if renames:
        shown = "; ".join(map(str, renames))
        findings.append(
            _finding(
                "migrations.W003",
                f"{len(renames)} constraint(s) in the database are not named as the models name "
                f"them (flaskstack's naming convention): {shown}.",
            )
        )
    # A constraint W003 reports would also show here as dropped and added again.
    renamed = {rename.old for rename in renames} | {rename.new for rename in renames}
    changes = [c for c in changes if not _is_alembic_table(c) and not _is_renamed(c, renamed)]
    if changes:
        message = f"The models have {len(changes)} change(s) that no migration contains."
        dropped = _dropped_by_changes(changes)
        if dropped:
            message += (
                f" A migration generated now would drop {', '.join(dropped)} (are the models "
                "imported by the app factory?)."
            )
        findings.append(_finding("migrations.W002", message))
    return findings


@register("auth")
def _check_auth(app: Flask, deploy: bool) -> list[Finding]:
    """The Flask-Login manager is still the one set up; which auth features are off, and why."""
    from .auth import _check_findings

    return [_finding(check_id, msg) for check_id, msg in _check_findings(app)]


@register("auth", "oidc", deploy=True)
def _check_identity_providers(app: Flask, deploy: bool) -> list[Finding]:
    """With ``--deploy`` and providers: client secrets, https redirect URIs, the session cookie."""
    from ._state import get_state

    if get_state(app).auth.oidc is None:
        return []
    from .auth._oidc import check_findings

    return [_finding(check_id, msg) for check_id, msg in check_findings(app)]


@register("auth", deploy=True)
def _check_account_links(app: Flask, deploy: bool) -> list[Finding]:
    """With ``--deploy``: links in account mail cannot be pointed elsewhere by a forged Host."""
    from ._state import get_state

    if get_state(app).auth.account_models is None:
        return []
    if app.config.get("TRUSTED_HOSTS") or app.config.get("SERVER_NAME"):
        return []
    return [_finding("auth.W010", CATALOGUE["auth.W010"][0])]


@register("auth", deploy=True)
def _check_passkeys(app: Flask, deploy: bool) -> list[Finding]:
    """With ``--deploy`` and passkeys on: the relying party is set, its origins are https."""
    if not app.config.get("FLASKSTACK_PASSKEYS"):
        return []
    from .auth._passkeys import deploy_findings

    return [_finding(check_id, msg) for check_id, msg in deploy_findings(app.config)]


def _revision_missing(script: t.Any, revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is None
    except CommandError:
        return True


def _is_alembic_table(change: t.Any) -> bool:
    table = change[1] if isinstance(change, tuple) and len(change) > 1 else None
    return getattr(table, "name", None) == "alembic_version"


def _pending_finding(pending: t.Sequence[t.Any]) -> Finding:
    """``migrations.E001``, saying what each unapplied revision does to tables."""
    from .migrations import _upgrade_effects

    described = []
    drops = False
    for revision in pending:
        effects = _upgrade_effects(revision.path)
        if effects is None:
            described.append(revision.revision)
            continue
        drops = drops or bool(effects.dropped or effects.dropped_columns)
        described.append(f"{revision.revision} {effects.describe()}")
    message = (
        f"The database is not up to date: {len(pending)} migration(s) not applied "
        f"({'; '.join(described)})."
    )
    if drops:
        message += (
            " Read the migrations that drop tables or columns before applying them: "
            "their data is deleted."
        )
    return _finding("migrations.E001", message)


def _unmodelled_tables(script: t.Any, connection: t.Any, modelled: set[str]) -> list[Finding]:
    """``migrations.W004``: tables the migrations created that no model declares."""
    import sqlalchemy as sa

    from .migrations import _upgrade_effects

    created: set[str] = set()
    for revision in script.walk_revisions():
        effects = _upgrade_effects(revision.path)
        if effects is not None:
            created.update(effects.created)
    existing = set(sa.inspect(connection).get_table_names())
    missing = sorted((existing & created) - modelled - {"alembic_version"})
    if not missing:
        return []
    return [
        _finding(
            "migrations.W004",
            f"The database has {len(missing)} table(s) created by the migrations that no model "
            f"known to the app declares: {', '.join(missing)} (the app knows "
            f"{len(modelled)} model table(s)).",
        )
    ]


def _model_constraint_names(metadata: t.Any, table_name: str) -> set[str]:
    table = metadata.tables.get(table_name)
    if table is None:
        return set()
    return {str(constraint.name) for constraint in table.constraints if constraint.name}


def _is_renamed(change: t.Any, names: set[str | None]) -> bool:
    if not isinstance(change, tuple) or len(change) < 2:
        return False
    name = getattr(change[1], "name", None)
    return name is not None and str(name) in names


def _dropped_by_changes(changes: t.Iterable[t.Any]) -> list[str]:
    """``table 'x'`` / ``column 'x.y'`` for each drop in Alembic's ``compare_metadata`` output."""
    dropped = []
    for change in changes:
        if not isinstance(change, tuple):
            continue
        if change[0] == "remove_table":
            dropped.append(f"table {change[1].name!r}")
        elif change[0] == "remove_column":
            dropped.append(f"column '{change[2]}.{change[3].name}'")
    return sorted(dropped)
