"""Canaries for ``flaskstack/auth/_flask_login_adapter.py``: what it relies on in Flask-Login.

The adapter reaches past Flask-Login's public API in two places (its module
docstring says why). Each test here checks one thing the adapter relies on,
on a real app with real Redis, and fails with a message naming what changed
upstream and where to adapt.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import typing as t

import flask_login
import pytest
from flask import session
from flask_login import current_user

from flaskstack.auth._flask_login_adapter import set_request_user
from flaskstack.sessions import _is_untouched, _request_session

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import AppFactory
    from flask import Flask

SHARED_REDIS = "redis://127.0.0.1:6379/0"
VERSION = importlib.metadata.version("flask-login")
ADAPTER = "flaskstack/auth/_flask_login_adapter.py"


def changed(what: str) -> str:
    return (
        f"Flask-Login {VERSION} changed {what}, which {ADAPTER} relies on. Read the adapter's "
        "docstring, look for a public hook in this release that does the job, and adapt it."
    )


class Person(flask_login.UserMixin):  # type: ignore[misc]  # Flask-Login is untyped
    def __init__(self, name: str) -> None:
        self.id = name


@pytest.fixture
def app(make_app: AppFactory, namespace: Callable[[], str]) -> Flask:
    app = make_app(
        {"FLASKSTACK_REDIS_URL": SHARED_REDIS, "FLASKSTACK_NAMESPACE": namespace()},
        profile="testing",
    )

    @app.get("/plain")
    def plain() -> str:
        return "plain"

    @app.get("/remember/<name>")
    def remember(name: str) -> str:
        flask_login.login_user(Person(name), remember=True)
        return "remembered"

    return app


@pytest.mark.parametrize(
    ("method", "parameters"),
    [
        ("_update_request_context_with_user", ["self", "user"]),
        ("_update_remember_cookie", ["self", "response"]),
    ],
)
def test_the_private_methods_the_adapter_uses_still_exist(
    method: str, parameters: list[str]
) -> None:
    found = getattr(flask_login.LoginManager, method, None)
    assert callable(found), changed(f"LoginManager.{method} (it is gone)")
    assert list(inspect.signature(found).parameters) == parameters, changed(
        f"the signature of LoginManager.{method} (now {inspect.signature(found)})"
    )


def test_the_user_set_by_the_adapter_is_current_user_and_the_session_stays_unread(
    app: Flask,
) -> None:
    cookies = {"Cookie": "session=whatever; remember_token=1|forged"}
    with app.test_request_context(headers=cookies):
        alice = Person("alice")
        set_request_user(alice)
        assert current_user._get_current_object() is alice, changed(
            "how current_user finds the user _update_request_context_with_user stored"
        )
        assert _is_untouched(_request_session()), changed(
            "current_user: it read the session although the request's user was already set"
        )
    with app.test_request_context(headers=cookies):
        set_request_user(None)
        assert current_user.is_authenticated is False, changed(
            "_update_request_context_with_user(None): it no longer means the anonymous user"
        )
        assert _is_untouched(_request_session()), changed(
            "current_user: it read the session although the request's user was already set"
        )


def test_flask_login_runs_the_remember_me_hook_the_adapter_overrides(app: Flask) -> None:
    client = app.test_client()
    signed_in = client.get("/remember/alice")
    assert client.get_cookie("remember_token") is not None, changed(
        "the remember-me response hook: LoginManager.init_app no longer registers "
        "_update_remember_cookie, or it no longer sets the cookie through it"
    )
    assert "Cookie" in signed_in.vary
    plain = client.get("/plain")
    assert plain.status_code == 200
    assert "Cookie" not in plain.vary, changed(
        "the remember-me response hook: a hook other than _update_remember_cookie looked "
        "at the session of a request that never used it"
    )
    assert plain.headers.getlist("Set-Cookie") == []


def test_flask_login_session_keys_the_remember_me_guard_reads(app: Flask) -> None:
    # The guard lets Flask-Login's hook run only when the session holds its note
    # "_remember" (or, with REMEMBER_COOKIE_REFRESH_EACH_REQUEST, its "_user_id").
    with app.test_request_context():
        flask_login.login_user(Person("alice"), remember=True)
        assert session.get("_remember") == "set", changed(
            'the session key login_user(remember=True) leaves for its response hook ("_remember")'
        )
        assert session.get("_user_id") == "alice", changed(
            'the session key login_user keeps the user id under ("_user_id")'
        )
