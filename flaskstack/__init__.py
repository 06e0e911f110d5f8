"""flaskstack: a batteries-included, pre-integrated extension bundle for Flask.

One call in an app factory wires everything::

    from flask import Flask
    import flaskstack

    def create_app(config=None):
        app = Flask(__name__)
        flaskstack.init_app(app, config)
        return app

The extension objects (:data:`db`, :data:`migrate`, :data:`cache`, :data:`csrf`,
:data:`login_manager`, :data:`api`) are created at import time and hold no app: declare
models on ``flaskstack.db`` before any app exists. Everything that belongs to
one app lives in ``app.extensions["flaskstack"]``.
"""

from __future__ import annotations

import typing as _t

from ._state import StackState, get_state
from .auth._manager import login_manager
from .caching import cache
from .database import Model, db
from .errors import (
    AlreadyInitialisedError,
    ConfigError,
    ConfigWarning,
    FlaskStackError,
    FlaskStackWarning,
    MissingDependencyError,
)
from .forms import csrf
from .migrations import migrate
from .rest import api
from .stack import Stack

if _t.TYPE_CHECKING:
    from flask import Flask

__all__ = [
    "AlreadyInitialisedError",
    "ConfigError",
    "ConfigWarning",
    "FlaskStackError",
    "FlaskStackWarning",
    "MissingDependencyError",
    "Model",
    "Stack",
    "StackState",
    "__version__",
    "api",
    "cache",
    "csrf",
    "db",
    "get_state",
    "init_app",
    "login_manager",
    "migrate",
]

__version__ = "0.1.0.dev0"

_stack = Stack()


def init_app(
    app: Flask, config: _t.Mapping[str, _t.Any] | None = None, **options: _t.Any
) -> StackState:
    """Configure ``app`` and register every flaskstack component on it.

    See :meth:`Stack.init_app` for the parameters. Settings come, lowest
    precedence first, from flaskstack's defaults, the profile, ``app.config``
    as the factory left it, the instance folder's ``config.py``, the
    environment, and finally ``config`` and ``options``.

    :raises ConfigError: listing every problem with the configuration.
    :raises AlreadyInitialisedError: if ``init_app`` already ran for ``app``.
    """
    return _stack.init_app(app, config, **options)
