"""Security headers, trusted proxies and cookie flags, as a browser sees them."""

from __future__ import annotations

import secrets
import typing as t
from http.cookies import SimpleCookie

import pytest
import redis
from flask import Flask, redirect, request, session, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import AppFactory
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
