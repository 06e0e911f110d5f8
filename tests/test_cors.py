"""CORS: which origins' pages may call the API, and what they can read of its answers.

What a browser would observe: the ``Access-Control-*`` headers of the
answers (the grant), on successes, errors and preflights, for allowed
origins only; ``Vary: Origin`` wherever the answer depends on the origin;
CSRF still required of cookie-authenticated writes. The browser itself is in
``tests/browser/test_cors_spa.py``.
"""

from __future__ import annotations

import typing as t

import pytest
from conftest import PRODUCTION_MAIL, resources_on_api
from flask_cors import CORS

import flaskstack
from flaskstack import rest
from flaskstack.auth import auth_required, current_user
from flaskstack.checks import run_checks
from flaskstack.errors import ConfigWarning
from flaskstack.throttle import LoginThrottled

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

SPA = "https://app.example.com"
ELSEWHERE = [
    "https://appXexample.com",  # the dot of the allowed origin is not a wildcard
    "https://app.example.com.evil.test",  # nor is it a prefix
    "https://evil.app.example.com",
    "http://app.example.com",  # another scheme is another origin
    "https://app.example.com:8443",  # and so is another port
    "https://evil.test",
    "null",
]
GRANT = "Access-Control-Allow-Origin"
PROBLEM = "application/problem+json"


class NewNote(rest.Schema):
    title = rest.String(required=True, min_length=1)


class Notes(rest.Resource):
    method_decorators: t.ClassVar[dict[str, list[t.Any]]] = {"post": [auth_required]}

    def get(self) -> dict[str, t.Any]:
        return {"notes": []}

    @rest.body(NewNote)
    def post(self, body: dict[str, t.Any]) -> tuple[dict[str, t.Any], int, dict[str, str]]:
        return {"title": body["title"], "by": current_user.email}, 201, {"Location": "/api/x/1"}


class ReadOnly(rest.Resource):
    def get(self) -> dict[str, str]:
        return {"read": "only"}


class Broken(rest.Resource):
    def get(self) -> None:
        raise RuntimeError("the database password is hunter2")


class Throttled(rest.Resource):
    def get(self) -> None:
        raise LoginThrottled(30)


RESOURCES = [
    (Notes, ("/x/notes",)),
    (ReadOnly, ("/x/read-only",)),
    (Broken, ("/x/broken",)),
    (Throttled, ("/x/throttled",)),
]


@pytest.fixture(autouse=True)
def cors_api() -> Iterator[None]:
    with resources_on_api(RESOURCES):
        yield


@pytest.fixture
def flaskstack_config(
    flaskstack_config: dict[str, t.Any], request: pytest.FixtureRequest
) -> dict[str, t.Any]:
    """This module's settings; a test parametrizes it (indirectly) with more."""
    return {
        **flaskstack_config,
        "PROPAGATE_EXCEPTIONS": False,
        "FLASKSTACK_CORS_ORIGINS": [SPA, "http://localhost:5173"],
        "FLASKSTACK_CORS_CREDENTIALS": True,
        **getattr(request, "param", {}),
    }


@pytest.fixture
def build(make_app: AppFactory, flaskstack_config: dict[str, t.Any]) -> Callable[..., Flask]:
    """``build(**settings)``: an app with this module's settings and ``settings`` on top."""

    def factory(before: Callable[[Flask], None] | None = None, **settings: t.Any) -> Flask:
        return make_app({**flaskstack_config, **settings}, before=before)

    return factory


def granted(response: TestResponse, origin: str = SPA) -> bool:
    if response.headers.get(GRANT) is None:
        return False
    assert response.headers.getlist(GRANT) == [origin]
    return True


def varies_on_origin(response: TestResponse) -> bool:
    return "origin" in {value.lower() for value in response.vary}


def preflight(
    client: FlaskClient, path: str, origin: str = SPA, method: str = "POST", headers: str = ""
) -> TestResponse:
    request_headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        request_headers["Access-Control-Request-Headers"] = headers
    return client.options(path, headers=request_headers)


# -- off until configured ----------------------------------------------------------


def test_without_origins_nothing_is_registered(make_app: AppFactory) -> None:
    app = make_app({"FLASKSTACK_PROFILE": "testing"})
    client = app.test_client()

    response = client.get("/api/x/read-only", headers={"Origin": SPA})
    answer = preflight(client, "/api/x/notes", headers="authorization")

    assert response.status_code == 200
    assert not [name for name, _value in response.headers if name.startswith("Access-Control")]
    assert not varies_on_origin(response)
    assert answer.status_code == 204
    assert not [name for name, _value in answer.headers if name.startswith("Access-Control")]
    assert app.config["FLASKSTACK_CORS_ORIGINS"] == []
    assert not [f for f in app.after_request_funcs.get(None, []) if "cors" in f.__module__]


# -- grants --------------------------------------------------------------------------


def test_an_allowed_origin_is_granted_and_can_read_the_useful_headers(client: FlaskClient) -> None:
    response = client.get("/api/x/read-only", headers={"Origin": SPA})

    assert response.status_code == 200
    assert granted(response)
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {
        "X-Request-ID",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "RateLimit-Policy",
        "Retry-After",
        "Link",
        "ETag",
        "Location",
    } <= exposed
    assert varies_on_origin(response)
    # The other allowed origin gets its own grant, never a list.
    other = client.get("/api/x/read-only", headers={"Origin": "http://localhost:5173"})
    assert granted(other, "http://localhost:5173")


@pytest.mark.parametrize("origin", ELSEWHERE)
def test_other_origins_get_no_grant(client: FlaskClient, origin: str) -> None:
    response = client.get("/api/x/read-only", headers={"Origin": origin})
    answer = preflight(client, "/api/x/notes", origin=origin, headers="authorization")

    assert response.status_code == 200
    assert not granted(response)
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert varies_on_origin(response)
    assert not [name for name, _value in answer.headers if name.startswith("Access-Control")]
    assert varies_on_origin(answer)


def test_a_request_without_origin_gets_no_grant_but_varies(client: FlaskClient) -> None:
    response = client.get("/api/x/read-only")

    assert response.headers.get(GRANT) is None
    assert varies_on_origin(response)  # a cache must not give this answer to a CORS request


@pytest.mark.parametrize(
    "path",
    [
        "/API/x/read-only",
        "/Api/x/read-only",
        "/api-other",
        "/api+other",
        "/apix/read-only",
        "/x/api",
    ],
)
def test_only_the_api_prefix_is_granted(build: Callable[..., Flask], path: str) -> None:
    def routes(app: Flask) -> None:
        app.add_url_rule(path, "page", lambda: "a page of the app's")

    app = build(before=routes)
    response = app.test_client().get(path, headers={"Origin": SPA})

    assert response.status_code == 200
    assert not granted(response)
    assert not varies_on_origin(response)


def test_the_prefix_itself_and_paths_below_it_are_granted(client: FlaskClient) -> None:
    for path in ("/api", "/api/", "/api/x/read-only", "/api/x/read-only/", "/api/x/a+b"):
        assert granted(client.get(path, headers={"Origin": SPA})), path


def test_other_paths_are_granted_when_named(build: Callable[..., Flask]) -> None:
    def routes(app: Flask) -> None:
        for path in ("/extra", "/extra/deep/page", "/extrax", "/page", "/page/below"):
            app.add_url_rule(path, path, lambda: "page")

    app = build(before=routes, FLASKSTACK_CORS_PATHS="/extra/*, /page")
    client = app.test_client()

    def grant(path: str) -> bool:
        return granted(client.get(path, headers={"Origin": SPA}))

    assert [grant(p) for p in ("/extra", "/extra/deep/page", "/page")] == [True, True, True]
    assert [grant(p) for p in ("/extrax", "/page/below", "/healthz")] == [False, False, False]


def test_the_csrf_token_is_granted_only_with_credentials(build: Callable[..., Flask]) -> None:
    with_credentials = build().test_client()
    without = build(FLASKSTACK_CORS_CREDENTIALS=False).test_client()

    response = with_credentials.get("/csrf-token", headers={"Origin": SPA})
    assert granted(response)
    assert response.get_json()["csrf_token"]
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert not granted(without.get("/csrf-token", headers={"Origin": SPA}))


def test_every_origin_without_credentials_gets_the_wildcard(build: Callable[..., Flask]) -> None:
    client = build(FLASKSTACK_CORS_ORIGINS="*", FLASKSTACK_CORS_CREDENTIALS=False).test_client()

    response = client.get("/api/x/read-only", headers={"Origin": "https://anyone.test"})

    assert response.headers.getlist(GRANT) == ["*"]
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(
    "origin",
    [
        "http://[::1]:8000",
        "http://127.0.0.1:5173",
        "capacitor://localhost",
        "https://xn--bcher-kva.ch",
    ],
)
def test_unusual_origins_are_matched_exactly(build: Callable[..., Flask], origin: str) -> None:
    client = build(FLASKSTACK_CORS_ORIGINS=[origin]).test_client()

    assert granted(client.get("/api/x/read-only", headers={"Origin": origin}), origin)
    for near in (origin + "0", origin.replace(":", ";", 1), origin[:-1]):
        assert not granted(client.get("/api/x/read-only", headers={"Origin": near}))


def test_the_request_id_header_is_exposed_under_its_configured_name(
    build: Callable[..., Flask],
) -> None:
    app = build(FLASKSTACK_REQUEST_ID_HEADER="X-Trace-ID")
    response = app.test_client().get("/api/x/read-only", headers={"Origin": SPA})

    assert "X-Trace-ID" in app.config["FLASKSTACK_CORS_EXPOSE_HEADERS"]
    assert "X-Request-ID" not in app.config["FLASKSTACK_CORS_EXPOSE_HEADERS"]
    assert "X-Trace-ID" in response.headers["Access-Control-Expose-Headers"]
    assert response.headers["X-Trace-ID"]


# -- preflights ---------------------------------------------------------------------


def test_a_preflight_of_an_allowed_origin_is_granted_without_credentials_or_csrf(
    client: FlaskClient,
) -> None:
    answer = preflight(
        client, "/api/x/notes", method="PUT", headers="authorization, x-csrftoken, content-type"
    )

    assert answer.status_code == 204
    assert granted(answer)
    allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "x-csrftoken", "content-type"}
    methods = {m.strip() for m in answer.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
    assert answer.headers["Access-Control-Max-Age"] == "600"
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Set-Cookie" not in answer.headers  # no session for a preflight
    assert varies_on_origin(answer)


def test_a_preflight_asking_for_other_headers_is_not_granted_them(client: FlaskClient) -> None:
    answer = preflight(client, "/api/x/notes", headers="x-secret-admin, if-match")

    assert answer.headers["Access-Control-Allow-Headers"] == "if-match"


def test_a_preflight_to_an_unknown_path_is_a_readable_404(client: FlaskClient) -> None:
    answer = preflight(client, "/api/x/nothing-here", method="DELETE")

    assert answer.status_code == 404
    assert answer.mimetype == PROBLEM
    assert granted(answer)


def test_a_method_the_resource_lacks_is_a_readable_405(client: FlaskClient) -> None:
    answer = preflight(client, "/api/x/read-only", method="DELETE")
    response = client.delete("/api/x/read-only", headers={"Origin": SPA})

    assert answer.status_code == 204
    assert {m.strip() for m in answer.headers["Allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}
    assert response.status_code == 405
    assert response.mimetype == PROBLEM
    assert granted(response)
    assert "GET" in response.headers["Allow"]


# -- errors carry the grant ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/api/x/notes", 401),
        ("GET", "/api/x/nothing-here", 404),
        ("GET", "/api/x/throttled", 429),
        ("GET", "/api/x/broken", 500),
    ],
)
def test_errors_carry_the_grant(client: FlaskClient, method: str, path: str, status: int) -> None:
    response = client.open(path, method=method, headers={"Origin": SPA}, json={"title": "t"})

    assert response.status_code == status
    assert response.mimetype == PROBLEM
    assert granted(response)
    assert varies_on_origin(response)
    body = response.get_json(force=True)
    assert body["request_id"] == response.headers["X-Request-ID"]
    if status == 429:
        assert response.headers["Retry-After"] == "30"
        assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
    if status == 500:
        assert "hunter2" not in response.get_data(as_text=True)


def test_an_invalid_body_is_a_readable_422(
    api_client: Callable[..., FlaskClient], make_user: Callable[..., t.Any]
) -> None:
    writer = api_client(make_user(email="writer@example.com"))

    response = writer.post("/api/x/notes", headers={"Origin": SPA}, json={"title": ""})
    created = writer.post("/api/x/notes", headers={"Origin": SPA}, json={"title": "hello"})

    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    assert granted(response)
    assert created.status_code == 201
    assert granted(created)
    assert created.headers["Location"] == "/api/x/1"


# -- CSRF is not relaxed ------------------------------------------------------------


def test_cookie_authenticated_cross_origin_writes_still_need_the_csrf_token(
    client: FlaskClient,
    make_user: Callable[..., t.Any],
    login: Callable[..., FlaskClient],
    csrf_token: Callable[[FlaskClient], str],
) -> None:
    login(client, make_user(email="writer@example.com"))

    refused = client.post("/api/x/notes", headers={"Origin": SPA}, json={"title": "forged"})
    fetched = client.get("/csrf-token", headers={"Origin": SPA})
    token = fetched.get_json()["csrf_token"]
    accepted = client.post(
        "/api/x/notes", headers={"Origin": SPA, "X-CSRFToken": token}, json={"title": "mine"}
    )

    assert refused.status_code == 400
    assert refused.mimetype == PROBLEM
    assert "CSRF" in refused.get_json()["detail"]
    assert granted(refused)
    assert granted(fetched)
    assert accepted.status_code == 201
    assert accepted.get_json() == {"title": "mine", "by": "writer@example.com"}


# -- validation and production -------------------------------------------------------


@pytest.mark.parametrize(
    ("origins", "reason"),
    [
        ("https://app.example.com/", "ends with '/'"),
        ("https://app.example.com/app", "not scheme://host[:port]"),
        ("app.example.com", "not scheme://host[:port]"),
        ("https://*.example.com", "is a pattern"),
        ("https://app.example.com:443", "default port"),
        ("https://App.Example.com", "lower case"),
        ("https://user@app.example.com", "not scheme://host[:port]"),
        ("https://app.example.com:99999", "no valid port"),
        (["*", "https://app.example.com"], "give it alone"),
        ("https://app.example.com?x=1", "not scheme://host[:port]"),
    ],
)
def test_origins_must_be_exact(build: Callable[..., Flask], origins: object, reason: str) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        build(FLASKSTACK_CORS_ORIGINS=origins)

    (problem,) = caught.value.problems
    assert problem.key == "FLASKSTACK_CORS_ORIGINS"
    assert reason in problem.value


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("FLASKSTACK_CORS_EXPOSE_HEADERS", "X-Request-ID, Bad Header"),
        ("FLASKSTACK_CORS_ALLOW_HEADERS", ["Authorization", "X-*"]),
        ("FLASKSTACK_CORS_PATHS", "relative/path"),
        ("FLASKSTACK_CORS_PATHS", "/a*b"),
        ("FLASKSTACK_CORS_MAX_AGE", -5),
    ],
)
def test_other_settings_are_validated(build: Callable[..., Flask], key: str, value: object) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        build(**{key: value})

    assert [problem.key for problem in caught.value.problems] == [key]


def test_origins_come_from_the_environment_as_a_list(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASKSTACK_CORS_ORIGINS", "https://a.example.com, http://localhost:5173")
    monkeypatch.setenv("FLASKSTACK_CORS_CREDENTIALS", "true")
    settings = {k: v for k, v in flaskstack_config.items() if not k.startswith("FLASKSTACK_CORS_")}
    app = make_app(settings)

    assert app.config["FLASKSTACK_CORS_ORIGINS"] == [
        "https://a.example.com",
        "http://localhost:5173",
    ]
    response = app.test_client().get(
        "/api/x/read-only", headers={"Origin": "http://localhost:5173"}
    )
    assert granted(response, "http://localhost:5173")
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


def production_settings(postgres_url: str) -> dict[str, t.Any]:
    return {
        **PRODUCTION_MAIL,
        "FLASKSTACK_PROFILE": "production",
        "SECRET_KEY": "k" * 48,
        "SQLALCHEMY_DATABASE_URI": postgres_url,
        "FLASKSTACK_REDIS_URL": "redis://127.0.0.1:6379/0",
    }


def test_production_refuses_every_origin_with_credentials(
    make_app: AppFactory, postgres_url: str
) -> None:
    settings = production_settings(postgres_url)
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app({**settings, "FLASKSTACK_CORS_ORIGINS": "*", "FLASKSTACK_CORS_CREDENTIALS": True})

    (problem,) = caught.value.problems
    assert problem.id == "cors.E001"
    assert problem.key == "FLASKSTACK_CORS_CREDENTIALS"
    assert "FLASKSTACK_CORS_ORIGINS" in problem.fix
    # Listed origins with credentials, and '*' without, are fine.
    make_app({**settings, "FLASKSTACK_CORS_ORIGINS": SPA, "FLASKSTACK_CORS_CREDENTIALS": True})
    make_app({**settings, "FLASKSTACK_CORS_ORIGINS": "*"})


def test_development_warns_about_every_origin_with_credentials(make_app: AppFactory) -> None:
    with pytest.warns(ConfigWarning, match="cors.E001"):
        app = make_app({"FLASKSTACK_CORS_ORIGINS": "*", "FLASKSTACK_CORS_CREDENTIALS": True})

    response = app.test_client().get("/api/x/read-only", headers={"Origin": "https://x.test"})
    # Browsers refuse '*' with credentials: the origin is echoed instead.
    assert response.headers.getlist(GRANT) == ["https://x.test"]


def test_deploy_checks_warn_about_every_origin_and_strict_referrers(
    build: Callable[..., Flask],
) -> None:
    def ids(app: Flask, deploy: bool = True) -> list[str]:
        return sorted(f.id for f in run_checks(app, deploy=deploy, tags=["cors"]))

    assert ids(build(FLASKSTACK_CORS_ORIGINS="*", FLASKSTACK_CORS_CREDENTIALS=False)) == [
        "cors.W001"
    ]
    assert ids(build()) == []  # credentials with WTF_CSRF_SSL_STRICT on work (below)
    assert ids(build(FLASKSTACK_CORS_ORIGINS=[])) == []
    assert ids(build(FLASKSTACK_CORS_ORIGINS="*", FLASKSTACK_CORS_CREDENTIALS=False), False) == []


@pytest.mark.parametrize(
    ("origin", "referrer", "expected", "detail"),
    [
        (SPA, f"{SPA}/editor", 201, None),
        (SPA, None, 201, None),  # Referrer-Policy: no-referrer
        (SPA, "https://evil.test/", 400, "The referrer does not match the host."),
        ("https://evil.test", "https://evil.test/", 400, "The referrer does not match the host."),
    ],
)
def test_over_https_an_allowed_origin_takes_the_hosts_place_in_the_referrer_check(
    app: Flask,
    make_user: Callable[..., t.Any],
    login: t.Any,
    origin: str,
    referrer: str | None,
    expected: int,
    detail: str | None,
) -> None:
    """``WTF_CSRF_SSL_STRICT`` stays on: the allowlist stands in for the app's own host."""
    assert app.config["WTF_CSRF_SSL_STRICT"] is True
    client = app.test_client()
    login(client, make_user(email="writer@example.com"))
    https = "https://localhost"
    token = client.get("/csrf-token", base_url=https, headers={"Origin": SPA}).get_json()[
        "csrf_token"
    ]
    headers = {"Origin": origin, "X-CSRFToken": token}
    if referrer is not None:
        headers["Referer"] = referrer

    response = client.post("/api/x/notes", base_url=https, headers=headers, json={"title": "t"})

    assert response.status_code == expected, response.get_data(as_text=True)
    if detail is not None:
        assert response.get_json()["detail"] == detail


@pytest.mark.parametrize(
    ("token", "detail"),
    [(None, "The CSRF token is missing."), ("forged", "The CSRF session token is missing.")],
)
def test_an_allowed_origin_still_needs_a_valid_csrf_token_over_https(
    app: Flask,
    make_user: Callable[..., t.Any],
    login: t.Any,
    token: str | None,
    detail: str,
) -> None:
    client = app.test_client()
    login(client, make_user(email="writer@example.com"))
    headers = {"Origin": SPA, "Referer": f"{SPA}/"}
    if token is not None:
        headers["X-CSRFToken"] = token

    response = client.post(
        "/api/x/notes", base_url="https://localhost", headers=headers, json={"title": "t"}
    )

    assert response.status_code == 400
    assert response.get_json()["detail"] == detail


def test_what_the_app_exempted_stays_exempt_for_an_allowed_origin_over_https(
    app: Flask, make_user: Callable[..., t.Any], login: t.Any
) -> None:
    @flaskstack.csrf.exempt
    def webhook() -> str:
        return "received"

    app.add_url_rule("/api/x/webhook", view_func=webhook, methods=["POST"])
    client = app.test_client()
    login(client, make_user(email="writer@example.com"))

    response = client.post(
        "/api/x/webhook", base_url="https://localhost", headers={"Origin": SPA, "Referer": SPA}
    )

    assert response.status_code == 200
    assert response.get_data(as_text=True) == "received"


# -- a guest: the app's own Flask-CORS ------------------------------------------------


def test_the_apps_own_flask_cors_is_kept_when_flaskstack_has_no_origins(
    build: Callable[..., Flask],
) -> None:
    app = build(
        before=lambda app: CORS(app, origins=["https://own.test"]), FLASKSTACK_CORS_ORIGINS=[]
    )
    client = app.test_client()

    assert granted(
        client.get("/api/x/read-only", headers={"Origin": "https://own.test"}), "https://own.test"
    )
    assert not granted(client.get("/api/x/read-only", headers={"Origin": SPA}))


def test_flaskstack_refuses_to_add_cors_to_an_app_that_has_its_own(
    build: Callable[..., Flask],
) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        build(before=lambda app: CORS(app, origins=["https://own.test"]))

    (problem,) = caught.value.problems
    assert problem.id == "cors.E002"
    assert problem.key == "FLASKSTACK_CORS_ORIGINS"
    assert "CORS(app)" in problem.fix


def test_a_flask_cors_added_after_init_app_fails_the_first_request(
    build: Callable[..., Flask],
) -> None:
    app = build(PROPAGATE_EXCEPTIONS=None)  # the testing profile propagates
    CORS(app, origins=["https://own.test"])

    with pytest.raises(flaskstack.ConfigError, match=r"cors\.E002"):
        app.test_client().get("/api/x/read-only")


def test_a_views_own_cross_origin_answer_is_kept(build: Callable[..., Flask]) -> None:
    def routes(app: Flask) -> None:
        @app.get("/api/own-cors")
        def own_cors() -> tuple[str, int, dict[str, str]]:
            return "", 200, {GRANT: "https://partner.test"}

    client = build(before=routes).test_client()
    response = client.get("/api/own-cors", headers={"Origin": SPA})

    assert response.headers.getlist(GRANT) == ["https://partner.test"]
