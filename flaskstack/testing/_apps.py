"""Finding the app factory and building test apps with it.

This module owns the contract between :mod:`flaskstack.testing` and an app
factory. The factory is named ``"package.module:function"`` (the function
defaults to ``create_app``) and must return a Flask app on which
:func:`flaskstack.init_app` was called. Its contract:

.. code-block:: python

    def create_app(config: Mapping[str, Any] | None = None) -> Flask:
        app = Flask(__name__)
        flaskstack.init_app(app, config)   # the caller's settings win
        ...
        return app

The test settings (testing profile, the test database, the test's Redis
namespace…) are passed as that ``config``, whose precedence is the highest,
so nothing the factory or the environment sets can point a test at another
database. A factory that takes no argument gets the same settings through
the environment variables flaskstack reads (``FLASKSTACK_PROFILE``,
``DATABASE_URL``…) while it runs. The rule this module keeps: **an app that
did not take the test settings is refused** (:class:`SetupError`), because
its tests would run against whatever database it was configured for.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
import typing as t

from flaskstack.errors import FlaskStackError

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from flask import Flask

__all__ = ["AppFactory", "SetupError", "build_app", "dispose_app", "load_app_factory"]

AppFactory = t.Callable[..., "Flask"]
"""An app factory: called with the test settings as its one argument, or with none."""

# The settings whose value in the built app proves it took the test settings.
_GUARDED = ("FLASKSTACK_PROFILE", "SQLALCHEMY_DATABASE_URI", "FLASKSTACK_NAMESPACE")


class SetupError(FlaskStackError, RuntimeError):
    """The test plugin cannot give a test what it asked for, as configured."""


def load_app_factory(spec: str, search_path: str | None = None) -> AppFactory:
    """Import the factory named by ``spec`` (``"package.module:function"``).

    :param search_path: A directory to put on ``sys.path`` if the module
        cannot be imported without it (pytest's rootdir, as ``flask --app``
        does with the current directory).
    :raises SetupError: when it cannot be imported or is not callable.
    """
    module_name, _, attribute = spec.strip().partition(":")
    attribute = attribute.strip() or "create_app"
    if not module_name or not attribute.isidentifier():
        raise SetupError(
            f"flaskstack_app = {spec!r} is not 'package.module:function' "
            "(for example 'myapp:create_app')"
        )
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            if search_path is None or search_path in sys.path:
                raise
            sys.path.insert(0, search_path)
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SetupError(
            f"flaskstack_app = {spec!r}: cannot import {module_name!r} ({exc})"
        ) from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise SetupError(
            f"flaskstack_app = {spec!r}: module {module_name!r} has no function {attribute!r}"
        )
    return t.cast("AppFactory", factory)


def _config_parameter(factory: AppFactory) -> str | None:
    """How the factory takes its settings: ``"positional"``, ``"config"`` or ``None``."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: assume the contract
        return "positional"
    for parameter in parameters:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            return "positional"
        if parameter.kind is parameter.VAR_POSITIONAL:
            return "positional"
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.name == "config":
            return "config"
    return None


@contextlib.contextmanager
def _environment(config: Mapping[str, t.Any]) -> Iterator[None]:
    """Put ``config`` in the environment variables flaskstack reads, for the block."""
    from flaskstack.config import SETTINGS

    names = {setting.key: setting.env[0] for setting in SETTINGS if setting.env}
    unmapped = sorted(key for key in config if key not in names)
    if unmapped:
        raise SetupError(
            f"the app factory takes no argument, and {', '.join(unmapped)} cannot be passed "
            "through the environment: make the factory accept a config mapping and pass it "
            "to flaskstack.init_app(app, config)"
        )
    saved = {names[key]: os.environ.get(names[key]) for key in config}
    try:
        for key, value in config.items():
            os.environ[names[key]] = value if isinstance(value, str) else str(value)
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _as_set(config: Mapping[str, t.Any], key: str) -> t.Any:
    """``config[key]`` as flaskstack stores it in ``app.config``."""
    from flaskstack.database import _normalise_database_url

    value = config[key]
    if key == "SQLALCHEMY_DATABASE_URI" and isinstance(value, str):
        return _normalise_database_url(value)
    return value


def build_app(factory: AppFactory, config: Mapping[str, t.Any]) -> Flask:
    """Call ``factory`` with the test settings ``config`` and check that it took them.

    :raises SetupError: when the factory did not set up flaskstack, or the
        app does not have the profile, database and namespace of ``config``.
    """
    from flask import Flask

    name = getattr(factory, "__qualname__", repr(factory))
    how = _config_parameter(factory)
    if how == "positional":
        app = factory(dict(config))
    elif how == "config":
        app = factory(config=dict(config))
    else:
        with _environment(config):
            app = factory()
    if not isinstance(app, Flask):
        raise SetupError(f"the app factory {name} returned {app!r}, not a Flask app")
    if "flaskstack" not in app.extensions:
        raise SetupError(
            f"the app factory {name} did not call flaskstack.init_app(app, config) "
            f"on app {app.name!r}"
        )
    ignored = [
        key for key in _GUARDED if key in config and app.config.get(key) != _as_set(config, key)
    ]
    if ignored:
        dispose_app(app)
        raise SetupError(
            f"the app factory {name} ignored the test settings {', '.join(ignored)}: it must "
            "pass its config argument on to flaskstack.init_app(app, config). Otherwise the "
            "tests would run on the app's own database."
        )
    return app


def dispose_app(app: Flask, keep: t.Callable[[t.Any], bool] = lambda engine: False) -> None:
    """Close the database pools and the Redis client of ``app``.

    :param keep: Engines for which it returns true are left alone (the
        engines the plugin's ``flaskstack_databases`` fixture keeps for the run).
    """
    from flaskstack.database import db

    if "sqlalchemy" in app.extensions:
        with app.app_context():
            engines = list(db.engines.values())
        for engine in engines:
            if not keep(engine):
                engine.dispose()
    state = app.extensions.get("flaskstack")
    if state is not None and state.replicas is not None:
        state.replicas.dispose(close=True)
    if state is not None and state.redis is not None:
        state.redis.close()
