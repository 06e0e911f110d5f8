"""Rate limits (flaskstack.limits) on the shared Redis and in-process.

What a client sees: 429 once over a limit, with ``Retry-After`` and the
``RateLimit-*`` headers; a problem document under the API prefix and the
app's own page elsewhere; one budget per user, token or client address (the
forwarded one only behind ``FLASKSTACK_PROXY_FIX``). Outages, Sentinel,
Cluster and command counts are in test_limits_redis_servers.py.
"""

from __future__ import annotations

import typing as t

import pytest
import redis
from conftest import SHARED_REDIS_URL, resources_on_api

import flaskstack
from flaskstack import rest
from flaskstack.errors import ConfigError
from flaskstack.limits import limit

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import AppFactory
    from flask import Flask
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

PROBLEM = "application/problem+json"
PAGE_LIMIT = "2/minute"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")

ApiClient = t.Callable[..., "FlaskClient"]

# An Authorization header of the token scheme spares a request the CSRF token; a
# token that authenticates nobody counts by the client address.
NO_CSRF = {"Authorization": "Bearer not-a-token"}


class Reports(rest.Resource):
    """No limit of its own: the API default applies to both methods."""

    def get(self) -> dict[str, str]:
        return {"reports": "all"}

    def post(self) -> tuple[dict[str, str], int]:
        return {"report": "made"}, 201


class Exports(rest.Resource):
    """A limit for POST only: GET keeps the API default."""

    method_decorators: t.ClassVar[dict[str, list[t.Any]]] = {"post": [limit("1/minute")]}

    def get(self) -> dict[str, str]:
        return {"exports": "all"}

    def post(self) -> tuple[dict[str, str], int]:
        return {"export": "started"}, 201


class Searches(rest.Resource):
    """A generous limit on every method, in the list form: it replaces the API default."""

    method_decorators: t.ClassVar[list[t.Any]] = [limit("5/minute")]

    def get(self) -> dict[str, str]:
        return {"searches": "all"}


class Profile(rest.Resource):
    """Keyed by user: a signed-in user, a token, or the address."""

    method_decorators: t.ClassVar[list[t.Any]] = [limit("2/minute", key="user")]

    def get(self) -> dict[str, str]:
        return {"profile": "yours"}


RESOURCES = [
    (Reports, ("/reports",)),
    (Exports, ("/exports",)),
    (Searches, ("/searches",)),
    (Profile, ("/profile",)),
]


@pytest.fixture
def flaskstack_config(flaskstack_config: dict[str, t.Any]) -> dict[str, t.Any]:
    return {
        **flaskstack_config,
        "FLASKSTACK_REDIS_URL": SHARED_REDIS_URL,
        "FLASKSTACK_RATE_LIMITS": True,
        "FLASKSTACK_RATE_LIMIT_API_DEFAULT": "3/minute",
    }


@pytest.fixture
def app(app: Flask) -> Flask:
    """The plugin's app with limits on, a limited page and a page without a limit."""
    add_pages(app)
    return app


@pytest.fixture(autouse=True)
def sample_api() -> Iterator[None]:
    with resources_on_api(RESOURCES):
        yield


def add_pages(app: Flask) -> None:
    @app.get("/limited")
    @limit(PAGE_LIMIT)
    def limited_page() -> str:
        return "a limited page"

    @app.route("/form", methods=["GET", "POST"])
    @limit(PAGE_LIMIT, key="address", methods=["POST"])
    def limited_form() -> str:
        return "posted"

    @app.get("/free")
    def free_page() -> str:
        return "a free page"


def rate_headers(response: TestResponse) -> dict[str, str]:
    return {name: response.headers[name] for name in RATE_HEADERS if name in response.headers}


def statuses(client: FlaskClient, path: str, times: int, **kwargs: t.Any) -> list[int]:
    return [client.get(path, **kwargs).status_code for _ in range(times)]


def limit_keys(namespace: str) -> list[str]:
    with redis.Redis.from_url(SHARED_REDIS_URL, decode_responses=True) as client:
        return sorted(client.scan_iter(match=f"{namespace}*"))


# -- over the limit ------------------------------------------------------------------


def test_a_page_over_its_limit_gets_429_with_retry_after(app: Flask) -> None:
    client = app.test_client()

    first, second, third = (client.get("/limited") for _ in range(3))

    assert first.status_code == second.status_code == 200
    assert rate_headers(first) == {
        "RateLimit-Limit": "2",
        "RateLimit-Remaining": "1",
        "RateLimit-Reset": first.headers["RateLimit-Reset"],
        "RateLimit-Policy": "2;w=60",
    }
    assert 0 < int(first.headers["RateLimit-Reset"]) <= 60
    assert second.headers["RateLimit-Remaining"] == "0"
    assert "Retry-After" not in second.headers
    assert third.status_code == 429
    assert third.mimetype == "text/html"  # a page, not a problem document
    assert "Too many requests: the limit here is 2/minute" in third.get_data(as_text=True)
    assert third.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(third.headers["Retry-After"]) <= 60
    assert client.get("/free").status_code == 200
    assert rate_headers(client.get("/free")) == {}


def test_counters_live_under_the_apps_namespace(app: Flask) -> None:
    namespace = app.config["FLASKSTACK_NAMESPACE"]
    app.test_client().get("/limited")

    keys = limit_keys(namespace)

    assert len(keys) == 1
    assert keys[0].startswith(f"{namespace}:limits:")
    assert "127.0.0.1" not in keys[0]  # identities are digests in key names


def test_methods_restricts_what_counts(app: Flask) -> None:
    client = app.test_client()

    assert statuses(client, "/form", 4) == [200] * 4
    assert [client.post("/form", headers=NO_CSRF).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert rate_headers(client.get("/form")) == {}


def test_head_requests_share_the_budget_of_get(app: Flask) -> None:
    client = app.test_client()

    assert [client.head("/limited").status_code for _ in range(2)] == [200, 200]
    assert statuses(client, "/limited", 1) == [429]
    assert statuses(client, "/api/searches", 5) == [200] * 5
    assert client.head("/api/searches").status_code == 429


def test_headers_describe_each_request_even_in_one_app_context(app: Flask) -> None:
    client = app.test_client()

    with app.app_context():
        limited = client.get("/limited")
        free = client.get("/free")

    assert limited.headers["RateLimit-Remaining"] == "1"
    assert rate_headers(free) == {}


def test_the_apps_own_429_handler_answers(app: Flask) -> None:
    @app.errorhandler(429)
    def too_many(error: Exception) -> tuple[str, int, dict[str, str]]:
        return "<h1>Slow down</h1>", 429, {"Retry-After": "600"}

    client = app.test_client()
    statuses(client, "/limited", 2)
    refused = client.get("/limited")

    assert refused.status_code == 429
    assert refused.get_data(as_text=True) == "<h1>Slow down</h1>"
    assert refused.headers["Retry-After"] == "600"  # the app's own, kept
    assert refused.headers["RateLimit-Remaining"] == "0"


# -- the API --------------------------------------------------------------------------


def test_the_api_default_limits_each_rule_and_method_with_a_problem_document(app: Flask) -> None:
    client = app.test_client()

    assert statuses(client, "/api/reports", 3) == [200, 200, 200]
    refused = client.get("/api/reports")

    assert refused.status_code == 429
    assert refused.mimetype == PROBLEM
    body = refused.get_json()
    assert body["status"] == 429
    assert body["title"] == "Too Many Requests"
    assert "3/minute" in body["detail"]
    assert "Retry-After" in body["detail"]
    assert body["request_id"] == refused.headers["X-Request-ID"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "3"
    # Another method and another rule have budgets of their own; pages have none.
    assert client.post("/api/reports", headers=NO_CSRF).status_code == 201
    assert client.get("/api/searches").status_code == 200
    assert statuses(client, "/free", 5) == [200] * 5


def test_a_declared_limit_replaces_the_api_default_for_its_methods(app: Flask) -> None:
    client = app.test_client()

    posts = [client.post("/api/exports", headers=NO_CSRF).status_code for _ in range(2)]

    assert posts == [201, 429]
    assert statuses(client, "/api/exports", 4) == [200, 200, 200, 429]  # the default
    assert statuses(client, "/api/searches", 6) == [200] * 5 + [429]  # more than the default


def test_options_requests_do_not_count(app: Flask) -> None:
    client = app.test_client()

    assert [client.options("/api/reports").status_code for _ in range(5)] == [204] * 5
    assert statuses(client, "/api/reports", 4) == [200, 200, 200, 429]


# -- whose budget ---------------------------------------------------------------------


def test_signed_in_users_have_budgets_of_their_own(
    app: Flask, make_user: Callable[..., t.Any], login: Callable[..., FlaskClient]
) -> None:
    alice = login(app.test_client(), make_user())
    bob = login(app.test_client(), make_user())
    anonymous = app.test_client()

    assert statuses(alice, "/api/profile", 3) == [200, 200, 429]
    assert statuses(bob, "/api/profile", 3) == [200, 200, 429]
    assert statuses(anonymous, "/api/profile", 3) == [200, 200, 429]


def test_each_api_token_has_a_budget_of_its_own(
    app: Flask, make_user: Callable[..., t.Any], api_client: ApiClient
) -> None:
    user = make_user()
    first, second = api_client(user), api_client(user)

    assert statuses(first, "/api/profile", 3) == [200, 200, 429]
    assert statuses(second, "/api/profile", 3) == [200, 200, 429]
    assert statuses(app.test_client(), "/api/profile", 1) == [200]


def test_made_up_tokens_count_against_the_client_address(app: Flask) -> None:
    client = app.test_client()

    got = [
        client.get("/limited", headers={"Authorization": f"Bearer made-up-{n}"}).status_code
        for n in range(3)
    ]

    assert got == [200, 200, 429]


@pytest.fixture
def behind_proxy(make_app: AppFactory, flaskstack_config: dict[str, t.Any]) -> Callable[..., Flask]:
    def factory(proxies: int) -> Flask:
        app = make_app({**flaskstack_config, "FLASKSTACK_PROXY_FIX": proxies})
        add_pages(app)
        return app

    return factory


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_behind_a_proxy_each_forwarded_address_has_its_own_budget(
    behind_proxy: Callable[..., Flask],
) -> None:
    client = behind_proxy(1).test_client()

    first = statuses(client, "/limited", 3, headers=forwarded("198.51.100.1"))
    second = statuses(client, "/limited", 3, headers=forwarded("198.51.100.2"))

    assert first == second == [200, 200, 429]


def test_without_the_proxy_setting_a_forwarded_address_is_ignored(
    behind_proxy: Callable[..., Flask],
) -> None:
    client = behind_proxy(0).test_client()

    first = statuses(client, "/limited", 2, headers=forwarded("198.51.100.1"))
    spoofed = statuses(client, "/limited", 2, headers=forwarded("198.51.100.2"))

    assert first == [200, 200]
    assert spoofed == [429, 429]  # a new header is no new budget


# -- sharing, storage, strategies -----------------------------------------------------------


def test_apps_on_one_namespace_share_their_counts(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    one, two = (make_app(flaskstack_config) for _ in range(2))
    for app in (one, two):
        add_pages(app)

    assert statuses(one.test_client(), "/limited", 1) == [200]
    assert statuses(two.test_client(), "/limited", 2) == [200, 429]


@pytest.mark.parametrize("strategy", ["moving-window", "sliding-window-counter"])
def test_flask_limiters_other_strategies_work_on_the_apps_redis(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any], strategy: str
) -> None:
    app = make_app({**flaskstack_config, "RATELIMIT_STRATEGY": strategy})
    add_pages(app)
    client = app.test_client()

    responses = [client.get("/limited") for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[0].headers["RateLimit-Remaining"] == "1"
    keys = limit_keys(app.config["FLASKSTACK_NAMESPACE"])
    assert keys
    assert all(key.startswith(app.config["FLASKSTACK_NAMESPACE"] + ":limits:") for key in keys)


def test_without_redis_limits_count_in_the_process(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    config = {k: v for k, v in flaskstack_config.items() if k != "FLASKSTACK_REDIS_URL"}
    app = make_app(config)
    add_pages(app)

    assert statuses(app.test_client(), "/limited", 3) == [200, 200, 429]


# -- configuration ---------------------------------------------------------------------------


def test_a_declared_limit_on_an_app_without_rate_limits_names_the_setting(
    make_app: AppFactory, flaskstack_config: dict[str, t.Any]
) -> None:
    config = {
        **flaskstack_config,
        "FLASKSTACK_RATE_LIMITS": False,
        "FLASKSTACK_RATE_LIMIT_API_DEFAULT": None,
    }
    app = make_app(config)
    add_pages(app)

    with pytest.raises(ConfigError) as refused:
        app.test_client().get("/free")

    message = str(refused.value)
    assert "'FLASKSTACK_RATE_LIMITS' = False" in message
    assert "set FLASKSTACK_RATE_LIMITS = True" in message
    assert "limited_page" in message
    assert "exports" in message  # a resource's method_decorators
    assert limit_keys(app.config["FLASKSTACK_NAMESPACE"]) == []


@pytest.mark.parametrize(
    ("settings", "key", "says"),
    [
        (
            {"FLASKSTACK_RATE_LIMITS": False, "FLASKSTACK_RATE_LIMIT_API_DEFAULT": "5/minute"},
            "FLASKSTACK_RATE_LIMIT_API_DEFAULT",
            "set FLASKSTACK_RATE_LIMITS = True",
        ),
        (
            {"FLASKSTACK_RATE_LIMIT_API_DEFAULT": "often"},
            "FLASKSTACK_RATE_LIMIT_API_DEFAULT",
            "'100/minute'",
        ),
        (
            {"FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR": "maybe"},
            "FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR",
            "'open' or 'closed'",
        ),
        (
            {"FLASKSTACK_RATE_LIMIT_KEY": "session"},
            "FLASKSTACK_RATE_LIMIT_KEY",
            "'user' or 'address'",
        ),
        (
            {"RATELIMIT_STORAGE_URI": "memory://"},
            "RATELIMIT_STORAGE_URI",
            "in the app's Redis",
        ),
    ],
)
def test_invalid_settings_are_refused_with_the_fix(
    make_app: AppFactory,
    flaskstack_config: dict[str, t.Any],
    settings: dict[str, t.Any],
    key: str,
    says: str,
) -> None:
    with pytest.raises(ConfigError) as raised:
        make_app({**flaskstack_config, **settings})

    message = str(raised.value)
    assert repr(key) in message
    assert says in message


def test_a_malformed_declared_limit_says_how_to_write_one(app: Flask) -> None:
    @app.get("/odd")
    @limit("whenever")
    def odd() -> str:
        return "odd"

    with pytest.raises(ValueError, match="write it like '100/minute'"):
        app.test_client().get("/odd")


def test_limit_refuses_an_unknown_key() -> None:
    with pytest.raises(ValueError, match="'user', 'address'"):
        limit("1/second", key="session")


def test_the_settings_are_shown_by_flask_stack_config(app: Flask) -> None:
    shown = app.test_cli_runner().invoke(args=["stack", "config"])

    assert shown.exit_code == 0, shown.output
    assert "FLASKSTACK_RATE_LIMIT_API_DEFAULT" in shown.output
    assert flaskstack.get_state(app).resolution["FLASKSTACK_RATE_LIMIT_ON_REDIS_ERROR"] == "open"
