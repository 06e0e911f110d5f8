"""The order in which flaskstack wires an app; nothing else knows it.

:meth:`Stack.init_app` runs in two phases. First every setting is resolved
and every component checks what it needs, with nothing written to the app, so
an invalid configuration raises one :class:`~flaskstack.ConfigError` and
leaves the app untouched. Then the settings are written to ``app.config`` and
the components are registered in order. The per-app state object is stored
in ``app.extensions["flaskstack"]`` only once all of that succeeded.
"""

from __future__ import annotations

import typing as t

from . import (
    _cors,
    _error_pages,
    _headers,
    _ids,
    _processes,
    _security,
    _templates,
    caching,
    database,
    forms,
    health,
    jobs,
    logs,
    mail,
    migrations,
    rest,
    sessions,
    tracing,
)
from . import auth as auth_component
from . import limits as limits_component
from . import redis as redis_component
from ._commands import STACK_COMMANDS_HELP, LazyGroup
from ._hooks import on_first_request
from ._routes import later_clashes
from ._state import EXTENSION_KEY, StackState
from .config import SETTINGS, _resolve
from .errors import AlreadyInitialisedError, ConfigError

if t.TYPE_CHECKING:
    from flask import Flask


__all__ = ["Stack"]

# Extensions flaskstack registers itself; an app that registered one by hand
# would end up with two conflicting set-ups.
_OWNED_EXTENSIONS = {
    "sqlalchemy": "db.init_app(app)",
    "migrate": "migrate.init_app(app, db)",
    "cache": "cache.init_app(app)",
    "csrf": "csrf.init_app(app)",
}


class Stack:
    """Registers flaskstack's components on Flask apps.

    The module-level :func:`flaskstack.init_app` uses one shared instance;
    create your own only to keep a reference, as with any Flask extension::

        stack = Stack()

        def create_app():
            app = Flask(__name__)
            stack.init_app(app)
            return app

    The instance holds no per-app state, so one instance serves any number of
    apps in the same process.
    """

    def __init__(
        self,
        app: Flask | None = None,
        config: t.Mapping[str, t.Any] | None = None,
        **options: t.Any,
    ) -> None:
        if app is not None:
            self.init_app(app, config, **options)

    def init_app(
        self,
        app: Flask,
        config: t.Mapping[str, t.Any] | None = None,
        **options: t.Any,
    ) -> StackState:
        """Configure ``app`` and register every component on it.

        Each setting's value comes from, lowest first: flaskstack's default,
        the profile's default, the instance folder's ``config.py``, the
        environment (``DATABASE_URL``, ``FLASKSTACK_*``, ``FLASK_*``), what
        the app's code put in ``app.config`` before this call, and
        ``config``. The environment fills only what the code left unset;
        ``flask stack config`` shows where each value came from and what
        was ignored.

        :param app: The Flask app, typically inside its factory.
        :param config: Settings that override every other source: the
            factory's caller (a test, a script) has the last word.
        :param options: Shortcuts for ``FLASKSTACK_*`` settings, given by
            their lower-case name without the prefix (``profile="testing"``
            is ``FLASKSTACK_PROFILE="testing"``); they count as part of
            ``config``.
        :raises ConfigError: listing every problem with the configuration;
            the app is left unchanged.
        :raises AlreadyInitialisedError: if the app was already set up.
        """
        self._refuse_second_setup(app)
        _check_options(options)

        resolution = _resolve(app, config, options)
        resolution.problems.extend(database._prepare(app, resolution))
        if resolution["FLASKSTACK_DATABASE_REPLICA_URLS"]:
            from . import _replicas  # only with replicas: without, reads cost nothing extra

            resolution.problems.extend(_replicas._prepare(app, resolution))
        resolution.problems.extend(caching._prepare(app, resolution))
        resolution.problems.extend(auth_component._prepare(app, resolution))
        resolution.problems.extend(health._prepare(app, resolution))
        resolution.problems.extend(forms._prepare(app, resolution))
        resolution.problems.extend(rest._prepare(app, resolution))
        resolution.problems.extend(limits_component._prepare(app, resolution))
        resolution.problems.extend(_cors._prepare(app, resolution))
        resolution.problems.extend(mail._prepare(app, resolution))
        resolution.problems.extend(jobs._prepare(app, resolution))
        resolution.problems.extend(tracing._prepare(app, resolution))
        if resolution["FLASKSTACK_JOBS_DASHBOARD_PATH"] is not None:
            from . import _jobs_dashboard  # only when it is on: it costs nothing otherwise

            resolution.problems.extend(_jobs_dashboard._prepare(app, resolution))
        if resolution["FLASKSTACK_ADMIN"]:
            from . import admin  # only when it is on: Flask-Admin is never imported otherwise

            resolution.problems.extend(admin._prepare(app, resolution))
        if resolution["FLASKSTACK_METRICS"]:
            from . import metrics  # only when it is on: prometheus-client is not even imported

            resolution.problems.extend(metrics._prepare(app, resolution))
        _security.validate(app, resolution)

        resolution.apply(app)
        logs._init_app(app, resolution)
        tracing._init_app(app)  # before the engines are made and the request hooks added
        database._init_app(app)
        _ids._init_app(app)  # before any rule of flaskstack's: they use its int converter
        migrations._init_app(app, database.db)
        health._init_app(app)
        _templates.init_app(app)
        _headers.init_app(app)
        _error_pages.init_app(app)
        _add_stack_commands(app)

        state = StackState(
            profile=resolution.profile,
            resolution=resolution,
            redis=redis_component._init_app(app),
            jobs=jobs._init_app(app),
        )
        sessions._init_app(app, state.redis)
        forms._init_app(app)
        caching._init_app(app, state.redis)
        state.auth = auth_component._init_app(app)
        rest._init_app(app, state)
        limits_component._init_app(app, state)
        _cors._init_app(app, state)
        mail._init_app(app)
        if app.config["FLASKSTACK_JOBS_DASHBOARD_PATH"] is not None:
            _jobs_dashboard.init_app(app)
        if app.config["FLASKSTACK_ADMIN"]:  # _prepare refused it without a user model
            admin._init_app(app, state.auth)
        if app.config["FLASKSTACK_METRICS"]:
            metrics._init_app(app)
        state.readiness_probes["database"] = health._probe_database
        if app.config["FLASKSTACK_DATABASE_REPLICA_URLS"]:
            _replicas.init_app(app, state)
        if state.redis is not None:
            state.readiness_probes["redis"] = redis_component._probe
        on_first_request(app, _refuse_later_clashes)
        app.extensions[EXTENSION_KEY] = state
        _processes.register(app)  # its connections are renewed in a forked worker
        return state

    @staticmethod
    def _refuse_second_setup(app: Flask) -> None:
        if EXTENSION_KEY in app.extensions:
            raise AlreadyInitialisedError(
                f"flaskstack.init_app() was already called for app {app.name!r}. Call it once, "
                "in the app factory; create a new app for a different configuration."
            )
        for key, call in _OWNED_EXTENSIONS.items():
            if key in app.extensions:
                raise AlreadyInitialisedError(
                    f"app {app.name!r} already has the {key!r} extension registered. "
                    f"flaskstack.init_app() registers it itself: remove {call} from the factory."
                )


def _refuse_later_clashes(app: Flask) -> None:
    """Refuse rules the app added after ``init_app`` where flaskstack's already were.

    Werkzeug would route such a URL to flaskstack's view and the app's would
    never run; the app's first request fails with the setting that moves
    flaskstack's endpoint instead (``flask stack check`` reports it too).
    """
    problems = later_clashes(app)
    if problems:
        raise ConfigError(problems)


def _add_stack_commands(app: Flask) -> None:
    """Make ``flask stack`` available through ``app.cli`` too (``app.test_cli_runner()``).

    The ``flask`` command finds the group as a plugin; this copy imports
    :mod:`flaskstack.cli` (and the checks) only when it is invoked, never in
    a worker that just serves requests.
    """
    app.cli.add_command(LazyGroup("stack", "flaskstack.cli:stack", help=STACK_COMMANDS_HELP))


def _check_options(options: t.Mapping[str, t.Any]) -> None:
    accepted = {s.key.removeprefix("FLASKSTACK_").lower() for s in SETTINGS if not s.native}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TypeError(
            f"init_app() got unknown option(s) {', '.join(map(repr, unknown))}. Options are "
            "FLASKSTACK_* settings in lower case without the prefix: "
            f"{', '.join(sorted(accepted))}."
        )
