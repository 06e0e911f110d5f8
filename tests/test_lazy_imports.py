"""Start-up cost: what a worker imports only once it needs it.

A web worker that has built its app has not imported redis-py (until the
first Redis call), the database driver (until the first statement: engines
are created on first use) nor the ``flask stack`` commands and the system
checks (until such a command runs). Each scenario runs in a fresh interpreter,
since this process has imported everything long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import typing as t

import pytest
import redis
from conftest import PRODUCTION_MAIL, SHARED_REDIS_URL

import flaskstack
from flaskstack._redis_url import parse_redis_url
from flaskstack.redis import _make_client

if t.TYPE_CHECKING:
    from pathlib import Path

STRONG_SECRET = "8H1bq0oWcT7c8f6mQhZ2pXv4rS9yL3dK5nJ0aE2gU7w"

DEFERRED = (
    "redis",
    "psycopg",
    "sqlalchemy.dialects.postgresql",
    "flaskstack.cli",
    "flaskstack.checks",
)
# Read by gunicorn's master (-c python:flaskstack.gunicorn), never by the app.
NEVER = ("flaskstack.gunicorn", "gunicorn")

WORKER = textwrap.dedent(
    f"""
    import json, sys

    from flask import Flask

    import flaskstack

    def loaded():
        return sorted(name for name in {DEFERRED + NEVER!r} if name in sys.modules)

    seen = {{"after_import": loaded()}}
    app = Flask("lazyapp", instance_path=sys.argv[1])
    flaskstack.init_app(app, {{"FLASKSTACK_NAMESPACE": sys.argv[2]}}, profile="production")
    seen["after_init_app"] = loaded()
    seen["healthz"] = app.test_client().get("/healthz").status_code
    seen["after_healthz"] = loaded()
    with app.app_context():
        seen["cached"] = flaskstack.cache.set("answer", 42) and flaskstack.cache.get("answer")
    seen["after_cache"] = loaded()
    with app.app_context():
        seen["selected"] = flaskstack.db.session.scalar(flaskstack.db.text("SELECT 7"))
    seen["after_select"] = loaded()
    config = app.test_cli_runner().invoke(args=["stack", "config"])
    seen["config_exit"] = config.exit_code
    seen["config_profile"] = config.output.splitlines()[0]
    seen["after_stack_config"] = loaded()
    flaskstack.get_state(app).redis.close()
    print(json.dumps(seen))
    """
)


def test_a_worker_imports_the_driver_and_the_commands_only_when_used(
    tmp_path: Path, postgres_url: str, namespace: t.Callable[[], str]
) -> None:
    env = dict(
        os.environ,
        DATABASE_URL=postgres_url,
        REDIS_URL=SHARED_REDIS_URL,
        SECRET_KEY=STRONG_SECRET,
        **PRODUCTION_MAIL,
    )
    run = subprocess.run(
        [sys.executable, "-c", WORKER, str(tmp_path / "instance"), namespace()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["after_import"] == []
    # SQLAlchemy finds the dialect (not the driver) when the settings are validated.
    assert seen["after_init_app"] == ["sqlalchemy.dialects.postgresql"]
    assert seen["healthz"] == 200
    assert seen["after_healthz"] == ["sqlalchemy.dialects.postgresql"]  # no Redis needed
    assert seen["cached"] == 42
    assert seen["after_cache"] == ["redis", "sqlalchemy.dialects.postgresql"]
    assert seen["selected"] == 7
    assert seen["after_select"] == ["psycopg", "redis", "sqlalchemy.dialects.postgresql"]
    assert seen["config_exit"] == 0
    assert seen["config_profile"] == "profile: production"
    assert seen["after_stack_config"] == sorted(DEFERRED)


# Standalone URLs are redis-py's to judge when it builds the client; flaskstack
# adds one rule, checked without importing redis-py: a TCP URL names a host.
STANDALONE_URLS = [
    "redis://127.0.0.1:6379/2",
    "redis://h",
    "redis://user:p%40ss@h:6380/1",
    "rediss://:pw@cache.internal:6380/0",
    "redis://[::1]:6379/3",
    "redis://h/notanumber",
    "redis://h/4?db=5",
    "redis://h?socket_timeout=0.5&health_check_interval=30&client_name=web",
    "redis://h?ssl_include_verify_flags=VERIFY_X509_STRICT,VERIFY_X509_PARTIAL_CHAIN",
    "unix:///run/redis.sock",
    "unix:///run/redis.sock?db=3",
    "unix://:secret@/run/redis.sock?db=1",
    "redis://h:70x0",
    "redis://h:99999",
    "redis://h?db=x",
    "redis://h?socket_timeout=soon",
    "redis://h?max_connections=1.5",
    "redis://h?ssl_exclude_verify_flags=VERIFY_NOTHING",
    "unix:///run/redis.sock?protocol=three",
    "redis://[::1:6379",
    "redis://:70x0",
    "REDIS://h",
]


@pytest.mark.parametrize("url", STANDALONE_URLS)
def test_standalone_urls_are_judged_by_redis_py(url: str) -> None:
    try:
        redis.ConnectionPool.from_url(url)
        refused = None
    except ValueError as exc:
        refused = str(exc)
    try:
        target = parse_redis_url(url)
    except ValueError as exc:
        flaskstack_refused = str(exc)
    else:
        flaskstack_refused = None
    if flaskstack_refused is not None:
        # flaskstack's own rule, checked without redis-py: a TCP URL names a host.
        assert flaskstack_refused == "no host" or refused is not None, (url, flaskstack_refused)
        return
    assert target.kind == "standalone"
    if refused is None:
        client = _make_client(target, timeout=1)  # opens no connection
        client.close()
        return
    # redis-py reads the rest when it builds the client: its refusal, as a ConfigError.
    with pytest.raises(flaskstack.ConfigError) as caught:
        _make_client(target, timeout=1)
    (problem,) = caught.value.problems
    assert problem.key == "FLASKSTACK_REDIS_URL"
    assert refused in problem.value


CORS_WORKER = textwrap.dedent(
    """
    import json, sys

    from flask import Flask

    import flaskstack

    def build(**settings):
        app = Flask("corsapp", instance_path=sys.argv[1])
        flaskstack.init_app(app, settings, profile="testing")
        return app

    seen = {}
    response = build().test_client().get("/api/nothing", headers={"Origin": "https://a.test"})
    seen["off"] = [response.status_code, "flask_cors" in sys.modules]
    seen["off_headers"] = sorted(k for k, _ in response.headers if k.startswith("Access-"))
    build(FLASKSTACK_CORS_ORIGINS="https://a.test")
    seen["on"] = "flask_cors" in sys.modules
    print(json.dumps(seen))
    """
)


def _seen_by_worker(
    worker: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> t.Any:
    """Run ``worker`` in a fresh interpreter; what it printed last, as JSON."""
    run = subprocess.run(
        [sys.executable, "-c", worker, str(tmp_path / "instance"), *args],
        cwd=tmp_path,
        env=dict(os.environ) if env is None else env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def test_flask_cors_is_imported_only_when_origins_are_allowed(tmp_path: Path) -> None:
    seen = _seen_by_worker(CORS_WORKER, tmp_path)
    assert seen == {"off": [404, False], "off_headers": [], "on": True}


LIMITS_WORKER = textwrap.dedent(
    """
    import json, sys

    from flask import Flask

    import flaskstack
    from flaskstack.limits import limit

    def loaded():
        return sorted(m for m in ("flask_limiter", "limits") if m in sys.modules)

    def build(**settings):
        app = Flask("limitsapp", instance_path=sys.argv[1])
        flaskstack.init_app(app, settings, profile="testing")
        app.get("/api/page")(lambda: "page")
        return app

    seen = {"declared": loaded()}

    @limit("5/minute")
    def view():
        return "limited"

    seen["off"] = [build().test_client().get("/api/page").status_code, loaded()]
    build(FLASKSTACK_RATE_LIMITS=True)
    seen["on"] = loaded()
    print(json.dumps(seen))
    """
)


def test_flask_limiter_is_imported_only_when_rate_limits_are_on(tmp_path: Path) -> None:
    seen = _seen_by_worker(LIMITS_WORKER, tmp_path)
    assert seen == {"declared": [], "off": [200, []], "on": ["flask_limiter", "limits"]}


MAIL_WORKER = textwrap.dedent(
    """
    import json, sys

    from flask import Flask

    import flaskstack
    from flaskstack.mail import send_mail

    def loaded():
        return sorted(m for m in ("flask_mailman", "flaskstack._mail_backend") if m in sys.modules)

    app = Flask("mailapp", instance_path=sys.argv[1])
    flaskstack.init_app(app, profile="testing")  # MAIL_URL: memory://
    seen = {"init": loaded(), "healthz": app.test_client().get("/healthz").status_code}
    seen["after_healthz"] = loaded()
    with app.app_context():
        seen["sent"] = send_mail("a@example.com", "password_changed", user=None)
    seen["after_send"] = loaded()
    print(json.dumps(seen))
    """
)


def test_flask_mailman_is_imported_by_the_first_message_only(tmp_path: Path) -> None:
    seen = _seen_by_worker(MAIL_WORKER, tmp_path)
    assert seen == {
        "init": [],
        "healthz": 200,
        "after_healthz": [],
        "sent": True,
        "after_send": ["flask_mailman", "flaskstack._mail_backend"],
    }


DOCS_UI = ("flask_swagger_ui", "flaskstack.rest._docs_ui")

DOCS_WORKER = textwrap.dedent(
    f"""
    import json, sys

    from flask import Flask

    import flaskstack

    app = Flask("docsapp", instance_path=sys.argv[1])
    flaskstack.init_app(app, json.loads(sys.argv[2]), profile=sys.argv[3])
    client = app.test_client()
    seen = {{
        "docs": client.get("/api/docs").status_code,
        "openapi": client.get("/api/openapi.json").status_code,
        "loaded": sorted(name for name in {DOCS_UI!r} if name in sys.modules),
    }}
    print(json.dumps(seen))
    """
)


@pytest.mark.parametrize(
    ("profile", "config", "docs", "loaded"),
    [
        ("production", {}, 404, []),
        ("development", {"FLASKSTACK_API_DOCS_PATH": None}, 404, []),
        ("development", {}, 200, sorted(DOCS_UI)),
    ],
)
def test_the_api_docs_ui_is_imported_only_when_on(
    tmp_path: Path,
    postgres_url: str,
    profile: str,
    config: dict[str, t.Any],
    docs: int,
    loaded: list[str],
) -> None:
    env = dict(os.environ, DATABASE_URL=postgres_url, SECRET_KEY=STRONG_SECRET)
    if profile == "production":
        env.update(REDIS_URL=SHARED_REDIS_URL, **PRODUCTION_MAIL)
    seen = _seen_by_worker(DOCS_WORKER, tmp_path, json.dumps(config), profile, env=env)
    assert seen == {"docs": docs, "openapi": 200, "loaded": loaded}


PASSKEYS_WORKER = textwrap.dedent(
    """
    import json, sys

    from flask import Flask

    import flaskstack

    def loaded():
        return sorted(
            m for m in ("webauthn", "flaskstack.auth._passkeys", "flaskstack.auth._passkeys_api")
            if m in sys.modules
        )

    def build(**settings):
        app = Flask("passkeysapp", instance_path=sys.argv[1])
        flaskstack.init_app(app, settings, profile="testing")
        return app

    app = build()
    client = app.test_client()
    login = client.get("/auth/login", headers={"Accept": "text/html"})
    seen = {"off": [login.status_code, "passkey" in login.text, loaded()]}
    app = build(FLASKSTACK_PASSKEYS=True)
    seen["on"] = loaded()
    login = app.test_client().get("/auth/login", headers={"Accept": "text/html"})
    seen["page"] = [login.status_code, "Sign in with a passkey" in login.text, loaded()]
    print(json.dumps(seen))
    """
)


def test_passkeys_import_nothing_until_on_and_py_webauthn_not_before_a_ceremony(
    tmp_path: Path,
) -> None:
    seen = _seen_by_worker(PASSKEYS_WORKER, tmp_path)
    modules = ["flaskstack.auth._passkeys", "flaskstack.auth._passkeys_api"]
    assert seen == {"off": [200, False, []], "on": modules, "page": [200, True, modules]}


OIDC_MODULES = (
    "authlib",
    "requests",
    "flaskstack.auth._oidc",
    "flaskstack.auth._oidc_api",
    "flaskstack.auth._oidc_views",
    "flaskstack.auth._oidc_client",
)

OIDC_WORKER = textwrap.dedent(
    f"""
    import json, re, sys

    from flask import Flask

    import flaskstack

    def loaded():
        return sorted(name for name in {OIDC_MODULES!r} if name in sys.modules)

    def build(name, **settings):
        app = Flask(name, instance_path=sys.argv[1])
        flaskstack.init_app(app, settings, profile="testing")
        return app

    client = build("plainapp").test_client()
    seen = {{
        "login": client.get("/auth/login").status_code,
        "provider": client.post("/auth/login/google").status_code,
        "off": loaded(),
    }}
    # Nothing listens on port 9 of loopback: starting a sign-in finds the provider down.
    discovery = "http://127.0.0.1:9/.well-known/openid-configuration"
    providers = {{"corp": {{"discovery_url": discovery, "client_id": "the-client-id"}}}}
    providers["corp"]["label"] = "Corp"
    on = build("oidcapp", FLASKSTACK_OIDC_PROVIDERS=providers).test_client()
    seen["on"] = loaded()
    page = on.get("/auth/login").text
    seen["button"] = "Sign in with Corp" in page
    seen["page"] = loaded()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    seen["started"] = on.post("/auth/login/corp", data={{"csrf_token": token}}).status_code
    seen["sign-in"] = loaded()
    print(json.dumps(seen))
    """
)


def test_authlib_is_imported_only_when_identity_providers_are_named(tmp_path: Path) -> None:
    seen = _seen_by_worker(OIDC_WORKER, tmp_path)
    pages = ["flaskstack.auth._oidc", "flaskstack.auth._oidc_api", "flaskstack.auth._oidc_views"]
    assert seen == {
        "login": 200,
        "provider": 404,
        "off": [],
        # Named providers: their pages, not Authlib, until a sign-in with one starts.
        "on": pages,
        "button": True,
        "page": pages,
        "started": 503,
        "sign-in": sorted(["authlib", "requests", "flaskstack.auth._oidc_client", *pages]),
    }


TWO_FACTOR_WORKER = textwrap.dedent(
    """
    import json, re, sys

    from flask import Flask

    import flaskstack

    def loaded():
        names = ("pyotp", "segno", "flaskstack.auth._two_factor")
        names += ("flaskstack.auth._two_factor_views",)
        return sorted(m for m in names if m in sys.modules)

    def build(**settings):
        app = Flask("twofactorapp", instance_path=sys.argv[1])
        settings.setdefault("FLASKSTACK_PASSWORD_METHOD", "pbkdf2:sha256:1000")
        flaskstack.init_app(app, settings, profile="testing")
        with app.app_context():
            flaskstack.db.create_all()
            user = flaskstack.get_state(app).auth.user_model(email="ada@example.com")
            user.set_password("correct horse battery staple")
            flaskstack.db.session.add(user)
            flaskstack.db.session.commit()
        return app

    client = build().test_client()
    page = client.get("/auth/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    data = {"csrf_token": token, "email": "ada@example.com"}
    data["password"] = "correct horse battery staple"
    seen = {"off": [client.post("/auth/login", data=data).status_code, loaded()]}
    seen["off_page"] = client.get("/auth/two-factor").status_code
    build(FLASKSTACK_TWO_FACTOR=True, SQLALCHEMY_DATABASE_URI="sqlite://")
    seen["on"] = loaded()
    print(json.dumps(seen))
    """
)


def test_two_factor_is_imported_only_when_on(tmp_path: Path) -> None:
    seen = _seen_by_worker(TWO_FACTOR_WORKER, tmp_path)
    assert seen == {
        "off": [302, []],
        "off_page": 404,
        "on": ["flaskstack.auth._two_factor", "flaskstack.auth._two_factor_views"],
    }
