"""Security headers, trusted proxies and cookie flags, as a browser sees them."""

from __future__ import annotations

import re
import secrets
import typing as t
from http.cookies import SimpleCookie

import pytest
import redis
import sqlalchemy as sa
from conftest import PRODUCTION_MAIL
from flask import Flask, redirect, render_template_string, request, session, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from flaskstack import db, get_state

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import AppFactory
    from flask.testing import FlaskClient
    from werkzeug.wrappers import Response

SHARED_REDIS = "redis://127.0.0.1:6379/0"

DEFAULT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}

SPOOFED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "example.org",
    "X-Forwarded-Prefix": "/shop",
}


def add_views(app: Flask) -> Flask:
    @app.get("/page")
    def page() -> str:
        return "<!doctype html><title>page</title><p>hello</p>"

    @app.get("/data")
    def data() -> dict[str, int]:
        return {"answer": 42}

    @app.get("/moved")
    def moved() -> Response:
        return redirect("/page")

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("a bug in a view")

    @app.get("/own-lowercase")
    def own_lowercase() -> tuple[str, dict[str, str]]:
        return "framed on purpose", {"x-frame-options": "SAMEORIGIN", "referrer-policy": "origin"}

    @app.get("/own")
    def own() -> tuple[str, dict[str, str]]:
        return "framed on purpose", {
            "X-Frame-Options": "SAMEORIGIN",
            "Referrer-Policy": "no-referrer",
            "Strict-Transport-Security": "max-age=60",
        }

    @app.get("/whoami")
    def whoami() -> dict[str, t.Any]:
        return {
            "remote_addr": request.remote_addr,
            "secure": request.is_secure,
            "url": url_for("whoami", _external=True),
        }

    # GET, so the test needs no CSRF token: the point here is the cookie.
    @app.get("/remember")
    def remember() -> str:
        session["x"] = 1
        return "remembered"

    return app


@pytest.fixture
def namespace(namespace: t.Callable[[], str]) -> str:
    """A namespace of its own on the shared Redis (conftest's), emptied afterwards."""
    return namespace()


def production_config(tmp_path: Path, namespace: str) -> dict[str, t.Any]:
    """What production insists on: a real secret, Redis and an explicit database."""
    return {
        **PRODUCTION_MAIL,
        "FLASKSTACK_PROFILE": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "FLASKSTACK_REDIS_URL": SHARED_REDIS,
        "FLASKSTACK_NAMESPACE": namespace,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
    }


# -- headers on every response -------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/page", 200),
        ("GET", "/data", 200),
        ("GET", "/moved", 302),
        ("GET", "/missing", 404),
        ("POST", "/data", 405),
        ("GET", "/boom", 500),
        ("GET", "/healthz", 200),
        ("HEAD", "/healthz", 200),
    ],
)
def test_every_response_carries_the_headers(
    make_app: AppFactory, method: str, path: str, status: int
) -> None:
    app = add_views(make_app())
    response = app.test_client().open(path, method=method)
    assert response.status_code == status
    for name, value in DEFAULT_HEADERS.items():
        assert response.headers.get_all(name) == [value]
    assert "Strict-Transport-Security" not in response.headers


def test_content_types_are_as_the_views_made_them(make_app: AppFactory) -> None:
    client = add_views(make_app()).test_client()
    assert client.get("/page").mimetype == "text/html"
    assert client.get("/data").mimetype == "application/json"
    assert client.get("/healthz").json == {"status": "ok"}


def test_headers_a_view_sets_are_kept(make_app: AppFactory) -> None:
    app = add_views(make_app(hsts_seconds=600))
    response = app.test_client().get("/own", base_url="https://localhost")
    assert response.headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers.get_all("Referrer-Policy") == ["no-referrer"]
    assert response.headers.get_all("Strict-Transport-Security") == ["max-age=60"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_headers_a_view_sets_are_kept_whatever_their_case(make_app: AppFactory) -> None:
    response = add_views(make_app()).test_client().get("/own-lowercase")
    assert response.headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers.get_all("Referrer-Policy") == ["origin"]
    assert response.headers.get_all("X-Content-Type-Options") == ["nosniff"]


def test_the_request_id_comes_back_in_the_configured_header(make_app: AppFactory) -> None:
    app = add_views(make_app({"FLASKSTACK_REQUEST_ID_HEADER": "X-Correlation-ID"}))
    client = app.test_client()
    given = client.get("/page", headers={"X-Correlation-ID": "trace-42"})
    assert given.headers.get_all("X-Correlation-ID") == ["trace-42"]
    assert "X-Request-ID" not in given.headers
    made = client.get("/page", headers={"X-Request-ID": "not-this-one"})
    assert len(made.headers["X-Correlation-ID"]) == 32
    assert made.headers["X-Correlation-ID"] != given.headers["X-Correlation-ID"]
    assert "X-Request-ID" not in made.headers


def test_headers_an_app_hook_sets_are_kept(make_app: AppFactory) -> None:
    app = add_views(make_app())

    @app.after_request
    def allow_framing(response: Response) -> Response:
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        return response

    response = app.test_client().get("/page")
    assert response.headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]


def test_settings_choose_the_values(make_app: AppFactory) -> None:
    app = add_views(make_app(frame_options="SAMEORIGIN", referrer_policy="no-referrer"))
    response = app.test_client().get("/page")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_none_sends_no_header(make_app: AppFactory) -> None:
    app = add_views(make_app({"FLASKSTACK_FRAME_OPTIONS": None}, referrer_policy=None))
    response = app.test_client().get("/page")
    assert "X-Frame-Options" not in response.headers
    assert "Referrer-Policy" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_settings_come_from_the_environment(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASKSTACK_FRAME_OPTIONS", "SAMEORIGIN")
    monkeypatch.setenv("FLASKSTACK_HSTS_SECONDS", "120")
    app = add_views(make_app())
    response = app.test_client().get("/page", base_url="https://localhost")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["Strict-Transport-Security"] == "max-age=120; includeSubDomains"


# -- HSTS ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "base_url", "expected"),
    [
        ({}, "https://localhost", None),
        ({"hsts_seconds": 600}, "http://localhost", None),
        ({"hsts_seconds": 600}, "https://localhost", "max-age=600; includeSubDomains"),
        ({"profile": "testing", "hsts_seconds": 0}, "https://localhost", None),
    ],
)
def test_hsts_only_when_configured_and_over_https(
    make_app: AppFactory, options: dict[str, t.Any], base_url: str, expected: str | None
) -> None:
    app = add_views(make_app(**options))
    response = app.test_client().get("/page", base_url=base_url)
    assert response.headers.get("Strict-Transport-Security") == expected


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://localhost", None),
        ("https://localhost", "max-age=31536000; includeSubDomains"),
    ],
)
def test_production_sends_hsts_for_a_year_over_https(
    make_app: AppFactory, tmp_path: Path, namespace: str, base_url: str, expected: str | None
) -> None:
    app = add_views(make_app(production_config(tmp_path, namespace)))
    response = app.test_client().get("/page", base_url=base_url)
    assert response.status_code == 200
    assert response.headers.get("Strict-Transport-Security") == expected
    assert response.headers["X-Frame-Options"] == "DENY"


# -- trusted proxies -------------------------------------------------------------


def test_trusted_proxy_headers_are_believed(make_app: AppFactory) -> None:
    app = add_views(make_app(proxy_fix=1, hsts_seconds=600))
    response = app.test_client().get("/whoami", headers=SPOOFED)
    assert response.json == {
        "remote_addr": "203.0.113.7",
        "secure": True,
        "url": "https://example.org/shop/whoami",
    }
    assert response.headers["Strict-Transport-Security"] == "max-age=600; includeSubDomains"


def test_without_proxy_fix_forwarded_headers_are_ignored(make_app: AppFactory) -> None:
    app = add_views(make_app(hsts_seconds=600))
    assert not isinstance(app.wsgi_app, ProxyFix)
    response = app.test_client().get("/whoami", headers=SPOOFED)
    assert response.json == {
        "remote_addr": "127.0.0.1",
        "secure": False,
        "url": "http://localhost/whoami",
    }
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize(("proxies", "client"), [(1, "203.0.113.7"), (2, "198.51.100.1")])
def test_only_the_trusted_number_of_hops_counts(
    make_app: AppFactory, proxies: int, client: str
) -> None:
    # A client can put anything at the front of X-Forwarded-For; each trusted
    # proxy appends the address it saw, so only the last N entries are real.
    app = add_views(make_app(proxy_fix=proxies))
    forwarded = {"X-Forwarded-For": "10.6.6.6, 198.51.100.1, 203.0.113.7"}
    response = app.test_client().get("/whoami", headers=forwarded)
    assert response.json is not None
    assert response.json["remote_addr"] == client


def test_proxy_fix_wraps_the_app_once(make_app: AppFactory) -> None:
    app = add_views(make_app(proxy_fix=1))
    assert isinstance(app.wsgi_app, ProxyFix)
    assert not isinstance(app.wsgi_app.app, ProxyFix)


def test_a_proxy_fix_the_app_installed_is_kept(make_app: AppFactory) -> None:
    installed: list[ProxyFix] = []

    def install(app: Flask) -> None:
        fix = ProxyFix(app.wsgi_app, x_for=1, x_proto=0)
        app.wsgi_app = fix  # type: ignore[method-assign]
        installed.append(fix)

    app = add_views(make_app(proxy_fix=2, before=install))
    assert app.wsgi_app is installed[0]
    forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7", "X-Forwarded-Proto": "https"}
    response = app.test_client().get("/whoami", headers=forwarded)
    assert response.json is not None
    assert response.json["remote_addr"] == "203.0.113.7"
    assert response.json["secure"] is False


# -- cookie flags ---------------------------------------------------------------


def session_cookie(response: Response, name: str = "session") -> dict[str, t.Any]:
    """The attributes of the session cookie the response sets."""
    for header in response.headers.get_all("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            morsel = cookie[name]
            return {key: morsel[key] for key in ("httponly", "samesite", "secure", "path")}
    raise AssertionError(f"no {name!r} cookie in {response.headers.get_all('Set-Cookie')}")


@pytest.mark.parametrize("profile", ["development", "testing"])
def test_session_cookie_is_httponly_and_lax_outside_production(
    make_app: AppFactory, profile: str
) -> None:
    app = add_views(make_app(profile=profile))
    response = app.test_client().get("/remember")
    assert response.status_code == 200
    assert session_cookie(response) == {
        "httponly": True,
        "samesite": "Lax",
        "secure": "",
        "path": "/",
    }


def test_session_cookie_is_secure_in_production(
    make_app: AppFactory, tmp_path: Path, namespace: str
) -> None:
    app = add_views(make_app(production_config(tmp_path, namespace)))
    response = app.test_client().get("/remember", base_url="https://localhost")
    assert response.status_code == 200
    assert session_cookie(response) == {
        "httponly": True,
        "samesite": "Lax",
        "secure": True,
        "path": "/",
    }
    with redis.Redis.from_url(SHARED_REDIS) as client:
        assert len(list(client.scan_iter(match=f"{namespace}:session:*"))) == 1


# -- Content-Security-Policy ---------------------------------------------------

NONCE = re.compile(r"'nonce-([A-Za-z0-9_-]+)'")
INLINE_PAGE = (
    '<!doctype html><title>inline</title><script nonce="{{ csp_nonce() }}">1</script>'
    '<style nonce="{{ csp_nonce() }}">p {}</style>'
)


def add_inline_page(app: Flask) -> Flask:
    @app.get("/inline")
    def inline() -> str:
        return render_template_string(INLINE_PAGE)

    return app


def test_the_default_policy_carries_the_pages_nonce(make_app: AppFactory) -> None:
    client = add_inline_page(add_views(make_app())).test_client()
    nonces = []
    for _ in range(2):
        response = client.get("/inline")
        policy = response.headers["Content-Security-Policy"]
        in_header = set(NONCE.findall(policy))
        in_page = set(re.findall(r'nonce="([^"]+)"', response.text))
        assert len(in_header) == 1
        assert in_header == in_page  # script and style share the request's one nonce
        assert "script-src 'self' 'nonce-" in policy
        assert "object-src 'none'" in policy
        assert "'unsafe-inline'" not in policy
        nonces.append(in_header.pop())
    assert nonces[0] != nonces[1]
    assert len(nonces[0]) >= 22  # 16 random bytes


@pytest.mark.parametrize("path", ["/page", "/data", "/missing", "/moved", "/boom"])
def test_every_response_carries_the_policy(make_app: AppFactory, path: str) -> None:
    response = add_views(make_app()).test_client().get(path)
    assert len(NONCE.findall(response.headers["Content-Security-Policy"])) == 2


def test_a_policy_of_the_settings(make_app: AppFactory) -> None:
    app = add_inline_page(add_views(make_app(csp="default-src 'self'; img-src *")))
    response = app.test_client().get("/page")
    assert response.headers["Content-Security-Policy"] == "default-src 'self'; img-src *"
    # Templates written for a nonce still render.
    assert app.test_client().get("/inline").status_code == 200


def test_report_only(make_app: AppFactory) -> None:
    app = add_views(make_app(csp="default-src 'self'", csp_report_only=True))
    response = app.test_client().get("/page")
    assert response.headers["Content-Security-Policy-Report-Only"] == "default-src 'self'"
    assert "Content-Security-Policy" not in response.headers


@pytest.mark.parametrize(
    "header", ["Content-Security-Policy", "content-security-policy-report-only"]
)
def test_a_policy_the_view_sets_is_kept(make_app: AppFactory, header: str) -> None:
    app = add_views(make_app())

    @app.get("/own-policy")
    def own_policy() -> tuple[str, dict[str, str]]:
        return "mine", {header: "default-src 'none'"}

    response = app.test_client().get("/own-policy")
    policies = response.headers.getlist("Content-Security-Policy") + response.headers.getlist(
        "Content-Security-Policy-Report-Only"
    )
    assert policies == ["default-src 'none'"]


# -- Permissions-Policy --------------------------------------------------------


def test_permissions_policy(make_app: AppFactory) -> None:
    response = add_views(make_app()).test_client().get("/page")
    features = dict(
        item.strip().split("=", 1) for item in response.headers["Permissions-Policy"].split(",")
    )
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert features[feature] == "()"

    app = add_views(make_app(permissions_policy="camera=(self)"))

    @app.get("/own-permissions")
    def own_permissions() -> tuple[str, dict[str, str]]:
        return "mine", {"Permissions-Policy": "geolocation=(self)"}

    assert app.test_client().get("/page").headers["Permissions-Policy"] == "camera=(self)"
    response = app.test_client().get("/own-permissions")
    assert response.headers.getlist("Permissions-Policy") == ["geolocation=(self)"]


def test_none_sends_none_of_the_new_headers(make_app: AppFactory) -> None:
    app = add_views(make_app(csp=None, permissions_policy=None, private_cache_control=None))
    response = app.test_client().get("/remember")  # writes the session
    assert response.text == "remembered"
    for name in (
        "Content-Security-Policy",
        "Content-Security-Policy-Report-Only",
        "Permissions-Policy",
        "Cache-Control",
    ):
        assert name not in response.headers


# -- Cache-Control of pages for one user -----------------------------------------


def add_user_pages(app: Flask) -> Flask:
    @app.get("/me")
    def me() -> str:
        return render_template_string(
            "{% if current_user.is_authenticated %}{{ current_user.email }}{% else %}nobody"
            "{% endif %}"
        )

    @app.get("/me-cached-by-the-view")
    def me_cached() -> tuple[str, dict[str, str]]:
        return me(), {"Cache-Control": "private, max-age=60"}

    app.config["TEST_EMAIL"] = f"alice-{secrets.token_hex(6)}@example.com"
    with app.app_context():
        # The auth tables only: other modules' models (another bind) are not this app's.
        tables = [model.__table__ for model in get_state(app).auth.models]
        db.metadata.create_all(bind=db.engine, tables=tables)
        user = get_state(app).auth.user_model(email=app.config["TEST_EMAIL"])
        user.set_password("correct horse battery")
        db.session.add(user)
        db.session.commit()
    return app


def signed_in(app: Flask) -> FlaskClient:
    from flaskstack.testing._clients import login

    client = app.test_client()
    with app.app_context():
        model = get_state(app).auth.user_model
        email = app.config["TEST_EMAIL"]
        user = db.session.execute(sa.select(model).filter_by(email=email)).scalar_one()
        login(client, user)
    return client


@pytest.mark.parametrize("sessions", ["cookie", "redis"])
def test_signed_in_pages_are_private(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any], sessions: str
) -> None:
    config = dict(flaskstack_config)
    if sessions == "redis":
        config["FLASKSTACK_REDIS_URL"] = SHARED_REDIS
    app = add_user_pages(add_views(make_app(config)))
    client = signed_in(app)
    response = client.get("/me")
    assert response.text == app.config["TEST_EMAIL"]
    assert response.headers["Cache-Control"] == "private, no-store"
    # A page that does not read the session is still anybody's.
    assert "Cache-Control" not in client.get("/page").headers
    # What the view set is kept.
    own = client.get("/me-cached-by-the-view")
    assert own.headers.getlist("Cache-Control") == ["private, max-age=60"]

    anonymous = app.test_client().get("/me")
    assert anonymous.text == "nobody"
    assert "Cache-Control" not in anonymous.headers


def test_a_page_with_a_csrf_token_is_private(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    response = make_app(flaskstack_config).test_client().get("/auth/login")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"


def test_token_requests_are_private(make_app: AppFactory) -> None:
    client = add_views(make_app()).test_client()
    response = client.get("/data", headers={"Authorization": "Bearer whatever-token"})
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "Cache-Control" not in client.get("/data").headers


def test_the_private_value_of_the_settings(make_app: AppFactory) -> None:
    client = add_views(make_app(private_cache_control="private, max-age=0")).test_client()
    response = client.get("/data", headers={"Authorization": "Bearer whatever-token"})
    assert response.headers["Cache-Control"] == "private, max-age=0"


# -- flask stack check --deploy ------------------------------------------------


def header_findings(app: Flask) -> set[str]:
    from flaskstack.checks import run_checks

    return {f.id for f in run_checks(app, deploy=True, tags=["headers"])}


def test_the_defaults_pass_the_deploy_checks(make_app: AppFactory) -> None:
    assert header_findings(make_app()) == set()
    assert (
        header_findings(make_app(csp="script-src 'self' 'unsafe-inline' 'nonce-{nonce}'")) == set()
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"csp": None}, {"headers.W001"}),
        ({"csp": "default-src 'self' 'unsafe-inline'"}, {"headers.W002"}),
        ({"csp": "default-src 'self'; script-src 'unsafe-inline' https:"}, {"headers.W002"}),
        ({"csp": "img-src 'self'"}, {"headers.W002"}),
        ({"csp_report_only": True}, {"headers.W003"}),
        ({"permissions_policy": None}, {"headers.W004"}),
        ({"private_cache_control": None}, {"headers.W005"}),
        ({"private_cache_control": "max-age=60"}, {"headers.W005"}),
    ],
)
def test_deploy_checks_warn_about_weak_headers(
    make_app: AppFactory, settings: dict[str, t.Any], expected: set[str]
) -> None:
    app = make_app(**settings)
    assert header_findings(app) == expected
    from flaskstack.checks import run_checks

    assert not expected & {f.id for f in run_checks(app, deploy=False)}
