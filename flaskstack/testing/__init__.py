"""Testing apps built on flaskstack: the pytest plugin and the types of its fixtures.

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
:func:`flaskstack.init_app`. Each test gets a new app with the ``testing``
profile; its database work runs in a transaction that is rolled back
afterwards (the schema is built once per run), and its Redis keys live in a
namespace of its own that is deleted afterwards. Under pytest-xdist every
worker gets a database of its own. The names below are the types of the
fixtures, for annotations, and what a test that builds its own app needs.

This package is imported whenever pytest starts, so it imports nothing
itself: the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
import typing as t

if t.TYPE_CHECKING:
    from ._apps import AppFactory, dispose_app
    from ._clients import (
        DEFAULT_PASSWORD,
        FAST_PASSWORD_METHOD,
        ApiClientFactory,
        CsrfToken,
        Login,
        MakeRole,
        MakeUser,
    )
    from ._jobs import EnqueuedJob, EnqueuedJobs, JobsWorker, RanJob

__all__ = [
    "DEFAULT_PASSWORD",
    "FAST_PASSWORD_METHOD",
    "ApiClientFactory",
    "AppFactory",
    "CsrfToken",
    "EnqueuedJob",
    "EnqueuedJobs",
    "JobsWorker",
    "Login",
    "MakeRole",
    "MakeUser",
    "RanJob",
    "dispose_app",
]

# Where each name lives; a name is imported from there on first use.
_HOMES = {
    "_apps": ("AppFactory", "dispose_app"),
    "_clients": (
        "DEFAULT_PASSWORD",
        "FAST_PASSWORD_METHOD",
        "ApiClientFactory",
        "CsrfToken",
        "Login",
        "MakeRole",
        "MakeUser",
    ),
    "_jobs": ("EnqueuedJob", "EnqueuedJobs", "JobsWorker", "RanJob"),
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
