"""Testing apps built on flaskstack: the pytest plugin and the helpers behind it.

Installing flaskstack registers the pytest plugin (entry point ``flaskstack``,
module :mod:`flaskstack.testing.plugin`). Name the app factory in the pytest
configuration and the fixtures are ready::

    # pyproject.toml
    [tool.pytest.ini_options]
    flaskstack_app = "myapp:create_app"

    # tests/test_notes.py
    def test_create_note(client, csrf_token, db_session):
        token = csrf_token(client)
        response = client.post("/notes", data={"title": "hi", "csrf_token": token})
        assert response.status_code == 201
        assert db_session.scalar(sa.select(sa.func.count(Note.id))) == 1

The factory takes the test settings as its one argument and passes them to
:func:`flaskstack.init_app` (see :mod:`flaskstack.testing.apps`). Each test
gets a new app with the ``testing`` profile; its database work runs in a
transaction that is rolled back afterwards (the schema is built once per run,
see :mod:`flaskstack.testing.database`), and its Redis keys live in a
namespace of its own that is deleted afterwards (see
:mod:`flaskstack.testing.namespaces`). Under pytest-xdist every worker gets a
database of its own.

This package is imported whenever pytest starts, so it imports nothing
itself: the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
import typing as t

if t.TYPE_CHECKING:
    from .apps import AppFactory, SetupError, build_app, dispose_app, load_app_factory
    from .clients import (
        DEFAULT_PASSWORD,
        FAST_PASSWORD_METHOD,
        ApiClientFactory,
        CsrfToken,
        Login,
        MakeUser,
        api_client,
        csrf_token,
        login,
        make_user,
    )
    from .database import (
        KEPT_CONNECTION_KEY,
        Isolation,
        TestConnection,
        TestDatabases,
        get_isolation,
        isolate,
    )
    from .namespaces import Namespaces, delete_namespace

__all__ = [
    "DEFAULT_PASSWORD",
    "FAST_PASSWORD_METHOD",
    "KEPT_CONNECTION_KEY",
    "ApiClientFactory",
    "AppFactory",
    "CsrfToken",
    "Isolation",
    "Login",
    "MakeUser",
    "Namespaces",
    "SetupError",
    "TestConnection",
    "TestDatabases",
    "api_client",
    "build_app",
    "csrf_token",
    "delete_namespace",
    "dispose_app",
    "get_isolation",
    "isolate",
    "load_app_factory",
    "login",
    "make_user",
]

_HOMES = {
    "apps": ("AppFactory", "SetupError", "build_app", "dispose_app", "load_app_factory"),
    "clients": (
        "DEFAULT_PASSWORD",
        "FAST_PASSWORD_METHOD",
        "ApiClientFactory",
        "CsrfToken",
        "Login",
        "MakeUser",
        "api_client",
        "csrf_token",
        "login",
        "make_user",
    ),
    "database": (
        "KEPT_CONNECTION_KEY",
        "Isolation",
        "TestConnection",
        "TestDatabases",
        "get_isolation",
        "isolate",
    ),
    "namespaces": ("Namespaces", "delete_namespace"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> t.Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
