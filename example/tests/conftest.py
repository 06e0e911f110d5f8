"""The reference app's own tests, on flaskstack's pytest plugin.

Run them from the repository root::

    pytest example/tests                       # SQLite, in-process cache and cookie sessions
    DATABASE_URL=postgresql://postgres@127.0.0.1/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        pytest example/tests                   # PostgreSQL and Redis

The plugin builds the app with the ``testing`` profile for every test, runs
each test in a transaction rolled back afterwards (on a database of its own,
created on the server ``DATABASE_URL`` names) and gives it a Redis namespace
that is deleted afterwards. They run in a process of their own
(``tests/test_example.py`` starts them): the app's models and API resources
are declared on flaskstack's shared objects, which flaskstack's own tests
must not see.
"""

from __future__ import annotations

import typing as t

import pytest

if t.TYPE_CHECKING:
    from flaskstack.testing import AppFactory

pytest_plugins = ["flaskstack.testing.plugin"]


@pytest.fixture(scope="session")
def flaskstack_app_factory() -> AppFactory:
    """The app factory the plugin's fixtures build apps with."""
    from example import create_app

    return create_app
