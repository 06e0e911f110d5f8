"""The admin: the app's models in the browser, on Flask-Admin, for users with permissions.

Off unless :setting:`FLASKSTACK_ADMIN` is on (with the extra
``flaskstack[admin]`` installed); then it is served at
:setting:`FLASKSTACK_ADMIN_PATH` (``/admin``). A model takes one line::

    import flaskstack.admin
    from .models import Article

    flaskstack.admin.register(Article)
    flaskstack.admin.register(Comment, column_list=["article", "author", "body"])

The rules it keeps:

- **Off, and free when off.** With the setting off nothing is registered
  and Flask-Admin is never imported: :func:`register` only remembers the
  model, so an app module may call it whatever the configuration.
- **Every URL guarded.** Anonymous visitors get the sign-in page (401 for
  JSON clients) and never reach a view; signed-in users need
  :setting:`FLASKSTACK_ADMIN_PERMISSION` (``admin.access``) for any admin
  URL, static files included, then ``<model>.view`` for a model's pages and
  ``<model>.add``, ``<model>.change``, ``<model>.delete`` to create, edit
  and delete (403 otherwise, on GETs and POST targets alike); two-factor
  sign-in when the user's role requires it. Every POST carries the CSRF
  token (flaskstack's CSRF protection covers the admin like any page).
- **Never cached, never shared.** Admin pages are
  ``Cache-Control: private, no-store`` with ``Vary: Cookie`` (its scripts
  and styles ``private, no-cache``).
- **Audited.** What a request of the admin changes is written to the
  audit log in the same transaction: who, which model and primary key,
  each field's old and new value, the request id. The log is shown in the
  admin, filterable and read-only (``audit.view`` to see it).
- **The app's Content-Security-Policy applies.** Flask-Admin's pages get
  the request's nonce; the list page has no inline handlers.
"""

from __future__ import annotations

import dataclasses
import typing as t
import weakref

if t.TYPE_CHECKING:
    from flask import Flask

    from flaskstack.auth import AuthState
    from flaskstack.config import Resolution
    from flaskstack.errors import Problem

__all__ = ["ACTIONS", "ModelView", "Registration", "permissions_for", "register", "registrations"]

ACTIONS = ("view", "add", "change", "delete")
"""The per-model permissions: ``<model>.view``, ``<model>.add``, ``<model>.change``,
``<model>.delete``."""


@dataclasses.dataclass(frozen=True)
class Registration:
    """One model given to :func:`register`."""

    model: type[t.Any]
    view: type[t.Any] | None
    name: str
    label: str | None
    category: str | None
    options: dict[str, t.Any]


_REGISTRY: dict[str, Registration] = {}
_latest_app: weakref.ReferenceType[Flask] | None = None


def register(
    model: type[t.Any],
    *,
    view: type[t.Any] | None = None,
    endpoint: str | None = None,
    name: str | None = None,
    category: str | None = None,
    **options: t.Any,
) -> None:
    """Show ``model`` in the admin: list, search, filters, sort, pages, create, edit, delete.

    :param model: A model of :data:`flaskstack.db`.
    :param view: A subclass of :class:`ModelView` holding the options and
        actions of this model's pages; the default is :class:`ModelView`.
    :param endpoint: The model's name in URLs (``/admin/<endpoint>/``) and
        permissions (``<endpoint>.view``...); the class name in lower case
        by default.
    :param name: The menu label; the class name, spaced, by default.
    :param category: The menu group the model is listed under.
    :param options: Any option of Flask-Admin's SQLAlchemy ``ModelView``
        (``column_list``, ``column_searchable_list``, ``column_filters``,
        ``column_default_sort``, ``form_columns``, ``page_size``,
        ``can_export``...). Unset, text columns are searchable, plain
        columns are filters and columns named like secrets are hidden.

    Apps set up afterwards get the model; so does the app set up last
    before the call (a factory registers models after ``init_app``).
    Registering under an endpoint already taken replaces that registration
    (a module imported again, or another app's model of the same name).

    :raises TypeError: for an option Flask-Admin does not know (when the
        admin is set up, if it is not yet).
    """
    short = endpoint or model.__name__.lower()
    if not short.replace("_", "").isalnum():
        raise ValueError(
            f"register({model.__name__}, endpoint={short!r}): the endpoint is used in URLs and "
            "permission names; use letters, digits and underscores"
        )
    registration = Registration(model, view, short, name, category, dict(options))
    app = _latest_app() if _latest_app is not None else None
    if app is not None:
        from . import _setup

        _setup.add(app, registration)
    _REGISTRY[short] = registration


def permissions_for(model_or_endpoint: type[t.Any] | str) -> list[str]:
    """The four permissions of a model's admin pages: ``["article.view", "article.add", ...]``.

    For a role that manages the model: ``create_role("editor", ["admin.access",
    *permissions_for(Article)])``. Give the model's class, or the ``endpoint``
    it was registered with.
    """
    if isinstance(model_or_endpoint, str):
        short = model_or_endpoint
    else:
        found = [r.name for r in _REGISTRY.values() if r.model is model_or_endpoint]
        short = found[-1] if found else model_or_endpoint.__name__.lower()
    return [f"{short}.{action}" for action in ACTIONS]


def registrations() -> list[Registration]:
    """The models given to :func:`register` so far, in order."""
    return list(_REGISTRY.values())


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Refuse the admin without Flask-Admin, without permissions, or at a taken URL."""
    if not resolution["FLASKSTACK_ADMIN"]:
        return []
    import importlib.util

    from flaskstack._routes import clashes_with_existing
    from flaskstack.auth import _apps_own_manager, _model_for
    from flaskstack.auth._models import answers_roles
    from flaskstack.errors import ConfigError, Problem

    problems = []
    if importlib.util.find_spec("flask_admin") is None:
        problems.append(
            Problem(
                "admin.E001",
                "FLASKSTACK_ADMIN",
                "True, and Flask-Admin is not installed",
                "Flask-Admin installed, which serves the admin's pages",
                "install flaskstack's admin extra (pip install 'flaskstack[admin]'), "
                "or set FLASKSTACK_ADMIN = False",
            )
        )
    try:
        model = _model_for(_apps_own_manager(app), resolution["FLASKSTACK_USER_MODEL"])
    except ConfigError:
        model = None  # the user model's own problem is reported by auth
    else:
        if not answers_roles(model, bool(resolution["FLASKSTACK_ROLES"]), ("has_permission",)):
            problems.append(
                Problem(
                    "admin.E002",
                    "FLASKSTACK_ADMIN",
                    "True, and users' permissions are unknown (FLASKSTACK_ROLES is off and the "
                    "user model has no has_permission(name) method of its own)",
                    "permissions, to let in only users with FLASKSTACK_ADMIN_PERMISSION "
                    f"({resolution['FLASKSTACK_ADMIN_PERMISSION']!r})",
                    "set FLASKSTACK_ROLES = True, or give the user model (FLASKSTACK_USER_MODEL) "
                    "a has_permission(name) method, or set FLASKSTACK_ADMIN = False",
                )
            )
    path = resolution["FLASKSTACK_ADMIN_PATH"]
    for other in app.extensions.get("admin", ()):
        if other.url == path or other.endpoint == "flaskstack_admin":
            problems.append(
                Problem(
                    "admin.E003",
                    "FLASKSTACK_ADMIN_PATH",
                    f"{path!r}, where the app's own Flask-Admin already is",
                    "a path no other Flask-Admin of the app uses",
                    "set FLASKSTACK_ADMIN_PATH to another path (such as '/staff'), or keep "
                    "the app's own Flask-Admin and set FLASKSTACK_ADMIN = False",
                )
            )
    problems.extend(clashes_with_existing(app, "FLASKSTACK_ADMIN_PATH", path + "/", ("GET",)))
    return problems


def _check_findings(app: Flask) -> list[tuple[str, str]]:
    """``(check id, message)`` for ``flask stack check --deploy``: roles opening the admin
    that do not require two-factor sign-in. Nothing when the user model answers for its
    roles itself (they are not flaskstack's to list) or the database cannot be read (its own
    checks say why)."""
    from flaskstack._state import get_state

    role_models = get_state(app).auth.role_models
    if role_models is None:
        return []
    import sqlalchemy as sa

    from flaskstack.database import db

    role, permission = role_models.role, role_models.permission
    wanted = app.config["FLASKSTACK_ADMIN_PERMISSION"]
    query = (
        sa.select(role.name)
        .join(permission, permission.role_id == role.id)
        .where(permission.name == wanted)
        .order_by(role.name)
    )
    with app.app_context():
        try:
            opening = list(db.session.execute(query).scalars())
        except sa.exc.SQLAlchemyError:
            return []
    required = (
        set(app.config["FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES"])
        if app.config.get("FLASKSTACK_TWO_FACTOR")
        else set()
    )
    unguarded = [name for name in opening if name not in required]
    if not unguarded:
        return []
    return [
        (
            "admin.W001",
            f"The roles {', '.join(map(repr, unguarded))} grant {wanted!r}, which opens the "
            "admin, and two-factor sign-in is not required of them "
            + (
                "(FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES)."
                if app.config.get("FLASKSTACK_TWO_FACTOR")
                else "(FLASKSTACK_TWO_FACTOR is off)."
            ),
        )
    ]


def _init_app(app: Flask, auth: AuthState) -> None:
    """Serve the admin on ``app`` (only called with :setting:`FLASKSTACK_ADMIN` on)."""
    global _latest_app
    from . import _setup

    _setup.init_app(app, auth, registrations())
    _latest_app = weakref.ref(app)


def __getattr__(name: str) -> t.Any:
    # Flask-Admin is imported only when a name that needs it is asked for.
    if name == "ModelView":
        from ._views import ModelView

        return ModelView
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
