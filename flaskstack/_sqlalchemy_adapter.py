"""Creating an app's engines on first use: the one thing Flask-SQLAlchemy 3.1 has no hook for.

Missing hook: ``flask_sqlalchemy.SQLAlchemy.init_app`` creates every engine of
the app at once, through ``SQLAlchemy._make_engine`` (documented as private,
"its signature may change at any time"), and nothing public lets an engine be
made later. Creating an engine imports the driver: for PostgreSQL, psycopg,
which added 40 ms (14%) to the reference app's import + ``create_app`` (290
ms) and 8 MiB (13%) to its resident memory, paid by every ``flask`` command
and every worker before it serves a request, database or not (measured
December 2026; the dialect itself is imported by ``init_app`` either way,
to validate the URL).

What this module relies on, in Flask-SQLAlchemy 3.1:

1. ``init_app`` takes the mapping it finds in ``self._app_engines[app]``
   (``setdefault``), calls ``self._make_engine(bind_key, options, app)`` once
   per bind and stores what that returns in the mapping;
2. ``db.engines`` (and with it ``db.engine``, the session's binds,
   ``create_all``) reads that very mapping.

:class:`SQLAlchemy` puts a :class:`LazyEngines` there before calling
Flask-SQLAlchemy's ``init_app`` and returns a placeholder from
``_make_engine``; the mapping makes each engine with Flask-SQLAlchemy's own
``_make_engine`` the first time it is looked up. If a release stops calling
``_make_engine``, its engines are used as they come (start-up is slower,
behaviour the same); if it replaces the mapping with a dict of its own, that
dict is taken over; if it keeps engines anywhere else, ``init_app`` fails
with a message naming this module. ``tests/test_database_adapter.py`` fails,
naming what changed, in each case.
"""

from __future__ import annotations

import importlib.metadata
import threading
import typing as t
import weakref

import flask_sqlalchemy
import sqlalchemy as sa

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = ["EngineHook", "LazyEngines", "SQLAlchemy"]

EngineHook = t.Callable[[str | None, sa.Engine], None]
"""Called with ``(bind_key, engine)`` once for each engine of an app, as soon as it exists."""


class _Pending:
    """What Flask-SQLAlchemy asked for, until something looks the engine up."""

    def __init__(self, create: t.Callable[[], sa.Engine]) -> None:
        self.create = create


class LazyEngines(dict):  # type: ignore[type-arg]
    """An app's bind key → engine mapping whose engines are created on first use.

    Behaves as the plain dict Flask-SQLAlchemy keeps: looking up a key creates
    its engine, anything that walks the mapping creates them all, and
    assigning a key replaces its engine (flaskstack's test isolation puts a
    connection there).
    """

    def __init__(self, on_engine: EngineHook | None) -> None:
        super().__init__()
        self._pending: dict[str | None, _Pending] = {}
        self._lock = threading.Lock()
        self._on_engine = on_engine
        self._configured: set[str | None] = set()

    @property
    def pending(self) -> frozenset[str | None]:
        """The bind keys whose engines are not created yet."""
        return frozenset(self._pending)

    def _create(self, key: str | None) -> None:
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                return  # another thread made it
            engine = pending.create()
            self._configure(key, engine)
            dict.__setitem__(self, key, engine)
            del self._pending[key]

    def _configure(self, key: str | None, engine: sa.Engine) -> None:
        if self._on_engine is not None:
            self._on_engine(key, engine)
        self._configured.add(key)

    def configure_ready_made(self) -> None:
        """Run the hook on engines Flask-SQLAlchemy made itself (not through the placeholder)."""
        for key, engine in list(dict.items(self)):
            if key not in self._configured:
                self._configure(key, engine)

    def create_all(self) -> None:
        """Create every engine not created yet."""
        for key in list(self._pending):
            self._create(key)

    def __missing__(self, key: str | None) -> t.Any:
        if key not in self._pending:
            raise KeyError(key)
        self._create(key)
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self._pending or dict.__contains__(self, key)

    def get(self, key: str | None, default: t.Any = None) -> t.Any:
        if key in self._pending:
            self._create(key)
        return dict.get(self, key, default)

    def __iter__(self) -> t.Iterator[str | None]:
        self.create_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        return dict.__len__(self) + len(self._pending)

    def keys(self) -> t.Any:
        self.create_all()
        return dict.keys(self)

    def values(self) -> t.Any:
        self.create_all()
        return dict.values(self)

    def items(self) -> t.Any:
        self.create_all()
        return dict.items(self)

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.create_all()
        dict.update(self, *args, **kwargs)

    def __setitem__(self, key: str | None, value: t.Any) -> None:
        if isinstance(value, _Pending):  # from Flask-SQLAlchemy's init_app
            self._pending[key] = value
            return
        self._pending.pop(key, None)
        dict.__setitem__(self, key, value)

    def copy(self) -> dict[str | None, t.Any]:
        self.create_all()
        return dict(dict.items(self))

    def __repr__(self) -> str:
        return (
            f"<engines {sorted(map(str, dict.keys(self)))}, not created yet: {len(self._pending)}>"
        )


class SQLAlchemy(flask_sqlalchemy.SQLAlchemy):
    """Flask-SQLAlchemy's extension, creating each app's engines on first use."""

    def init_app(self, app: Flask, on_engine: EngineHook | None = None) -> None:
        """Register ``app``; ``on_engine(bind_key, engine)`` runs as each engine is created."""
        registry = getattr(self, "_app_engines", None)
        if not isinstance(registry, t.MutableMapping):
            raise RuntimeError(_upstream_changed("there is no SQLAlchemy._app_engines mapping"))
        engines = LazyEngines(on_engine)
        if "sqlalchemy" not in app.extensions:  # else Flask-SQLAlchemy refuses, as it should
            # init_app fills in the mapping it finds for the app (setdefault), so
            # anything it does with the engines (recording queries) goes through it.
            registry[app] = engines
        try:
            super().init_app(app)
        except BaseException:
            if registry.get(app) is engines:
                del registry[app]
            raise
        stored = registry.get(app)
        if stored is not engines:
            if not isinstance(stored, dict):
                raise RuntimeError(_upstream_changed("SQLAlchemy._app_engines[app] is not a dict"))
            for key, value in stored.items():  # it made a dict of its own: take it over
                engines[key] = value
            registry[app] = engines
        engines.configure_ready_made()

    def _make_engine(self, bind_key: str | None, options: dict[str, t.Any], app: Flask) -> t.Any:
        make = super()._make_engine
        app_ref = weakref.ref(app)  # the mapping lives as long as the app: no cycle through it
        options = dict(options)

        def create() -> sa.Engine:
            owner = app_ref()
            if owner is None:
                raise RuntimeError("the app this engine belongs to no longer exists")
            return make(bind_key, options, owner)

        return _Pending(create)


def _upstream_changed(what: str) -> str:
    return (
        f"Flask-SQLAlchemy {importlib.metadata.version('flask-sqlalchemy')} no longer keeps an "
        "app's engines where flaskstack's adapter (flaskstack/_sqlalchemy_adapter.py) expects "
        f"them ({what}). Install a flaskstack release that supports this Flask-SQLAlchemy, or "
        "Flask-SQLAlchemy 3.1."
    )
