"""The per-app state and its accessor: a leaf every concern may import.

Everything flaskstack keeps for one app lives in one :class:`StackState` at
``app.extensions[EXTENSION_KEY]``. This module imports nothing from the rest
of the package at run time, so any component can import it at the top of its
file; only :mod:`flaskstack.stack` creates the state, once every component
is registered.
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import current_app

if t.TYPE_CHECKING:
    from flask import Flask

    from ._replicas import ReplicaSet
    from .auth import AuthState
    from .config import Resolution
    from .health import _Probe
    from .jobs import JobsState
    from .redis import RedisConnection

__all__ = ["EXTENSION_KEY", "StackState", "current_state", "get_state"]

EXTENSION_KEY = "flaskstack"
"""The key of the per-app state in ``app.extensions``."""


@dataclasses.dataclass
class StackState:
    """Everything flaskstack knows about one app, at ``app.extensions["flaskstack"]``.

    :ivar profile: The active profile.
    :ivar resolution: Every setting's effective value and where it came from.
    :ivar redis: The app's Redis connection, or ``None`` without a Redis URL.
    :ivar auth: The user and API token models in use.
    :ivar jobs: The background jobs settings, or ``None`` with jobs off.
    :ivar replicas: The read replicas, or ``None`` without
        ``FLASKSTACK_DATABASE_REPLICA_URLS``.
    :ivar readiness_probes: What ``/readyz`` checks, by name.
    :ivar api_prefixes: URL prefixes under which every error is
        ``application/problem+json``: ``FLASKSTACK_API_PREFIX`` and those of
        APIs on blueprints.
    """

    profile: str
    resolution: Resolution
    redis: RedisConnection | None = None
    auth: AuthState = dataclasses.field(default=None)  # type: ignore[assignment]  # set by init_app
    jobs: JobsState | None = None
    replicas: ReplicaSet | None = None
    readiness_probes: dict[str, _Probe] = dataclasses.field(default_factory=dict)
    api_prefixes: list[str] = dataclasses.field(default_factory=list)


def get_state(app: Flask) -> StackState:
    """Return the flaskstack state of ``app``.

    :raises LookupError: if :func:`flaskstack.init_app` was not called for it.
    """
    try:
        state: StackState = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise LookupError(
            f"flaskstack is not set up on app {app.name!r}: call flaskstack.init_app(app) "
            "in the app factory"
        ) from None
    return state


def current_state() -> StackState:
    """The flaskstack state of the current app (in an app or request context).

    :raises LookupError: if :func:`flaskstack.init_app` was not called for it.
    """
    return get_state(current_app)
