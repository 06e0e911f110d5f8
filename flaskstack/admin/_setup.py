"""Setting the admin up on one app, and the guard in front of every admin URL.

Imported only when :setting:`FLASKSTACK_ADMIN` is on (:mod:`flaskstack.stack`
imports it then); nothing here runs for an app without the admin.

The guard runs before every view of every admin blueprint (Flask-Admin's
index with its static files, each model's views, the admin's own script),
after the app-wide hooks (so a POST without a CSRF token is refused with
400 before it):

1. anonymous: the app's sign-in answer (a redirect to the sign-in page, 401
   for JSON clients); no view runs;
2. signed in without :setting:`FLASKSTACK_ADMIN_PERMISSION`: 403;
3. signed in, with two-factor sign-in on for the app, holding a role of
   ``FLASKSTACK_TWO_FACTOR_REQUIRED_ROLES`` without having set two-factor
   up: 403 pointing to the two-factor page;
4. otherwise the database session records what the request changes in the
   audit log (:mod:`flaskstack.admin._audit`), and the view's own check
   (:meth:`~flaskstack.admin.ModelView.is_accessible`) asks for the model's
   permission.

Every admin response is sent ``Cache-Control: private, no-store`` with
``Vary: Cookie``, whatever the view set: admin pages show data only some
users may see. Static files (Flask-Admin's scripts and styles) are
``private, no-cache``: the browser keeps them and asks again at each use,
and no shared cache stores them.
"""

from __future__ import annotations

import typing as t

from flask import Blueprint, abort, current_app, request, url_for
from flask_admin import Admin  # type: ignore[import-untyped]
from flask_admin.theme import Bootstrap4Theme  # type: ignore[import-untyped]
from flask_login import current_user

from flaskstack._headers import csp_nonce
from flaskstack._state import get_state
from flaskstack.auth._login import sign_in_first
from flaskstack.auth._roles import has_permission
from flaskstack.database import db
from flaskstack.logs import request_id

from . import _audit, _views

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

    from flaskstack.auth import AuthState

    from . import Registration

__all__ = ["FlaskstackAdmin", "add", "admin_of", "init_app", "permissions_of"]

SETTING = "FLASKSTACK_ADMIN"
PATH_SETTING = "FLASKSTACK_ADMIN_PATH"
PERMISSION_SETTING = "FLASKSTACK_ADMIN_PERMISSION"
INDEX_ENDPOINT = "flaskstack_admin"
ASSETS = "flaskstack_admin_assets"
AUDIT_PREFIX = "audit"


class FlaskstackAdmin(Admin):  # type: ignore[misc]
    """Flask-Admin's :class:`~flask_admin.Admin` for one app, with what flaskstack adds.

    :ivar audit_model: The model of the audit log's entries.
    :ivar guarded: The names of the blueprints the guard protects.
    :ivar model_views: The admin's model views, each with its ``permission_prefix``.
    """

    audit_model: type[t.Any]
    guarded: set[str]
    model_views: list[t.Any]


def admin_of(app: Flask) -> FlaskstackAdmin:
    """The app's admin.

    :raises LookupError: when :setting:`FLASKSTACK_ADMIN` is off for ``app``.
    """
    for admin in app.extensions.get("admin", ()):
        if isinstance(admin, FlaskstackAdmin):
            return admin
    raise LookupError(f"the admin is off for app {app.name!r}: set FLASKSTACK_ADMIN = True")


def permissions_of(app: Flask) -> list[str]:
    """Every permission the app's admin asks for: entry, then each view's four."""
    from . import ACTIONS

    admin = admin_of(app)
    names = [app.config[PERMISSION_SETTING]]
    for view in admin.model_views:
        names.extend(f"{view.permission_prefix}.{action}" for action in ACTIONS)
    return names


def init_app(
    app: Flask, auth: AuthState, registrations: t.Iterable[Registration]
) -> FlaskstackAdmin:
    """Serve the admin at :setting:`FLASKSTACK_ADMIN_PATH`, with ``registrations``.

    ``auth`` is the app's (auth is set up first): the audit log's table is
    declared beside its user model; its users and roles get views of their
    own.
    """
    user_model = t.cast("type[t.Any]", auth.user_model)  # _prepare refused it without one
    path = app.config[PATH_SETTING]
    assets = Blueprint(
        ASSETS,
        __name__,
        static_folder="static",
        url_prefix=f"{path}/_flaskstack",
    )
    app.register_blueprint(assets)
    admin = FlaskstackAdmin(
        app,
        name="Admin",
        url=path,
        endpoint=INDEX_ENDPOINT,
        index_view=_views.IndexView(endpoint=INDEX_ENDPOINT, url=path),
        theme=Bootstrap4Theme(base_template="flaskstack/admin/base.html"),
        csp_nonce_generator=csp_nonce,
    )
    admin.guarded = set()
    admin.model_views = []
    admin.audit_model = _audit.audit_model(user_model)
    _guard(app, admin, ASSETS)
    _guard(app, admin, INDEX_ENDPOINT)
    audit = type("AuditLogView", (_views.AuditLogView,), {"permission_prefix": AUDIT_PREFIX})(
        admin.audit_model,
        db,
        name="Audit log",
        endpoint=f"admin_{AUDIT_PREFIX}",
        url=f"{path}/{AUDIT_PREFIX}",
        category="Access",
    )
    _add_view(app, admin, audit)
    _add_access_views(app, admin, auth, path)
    for registration in registrations:
        add(app, registration)
    return admin


def _add_access_views(app: Flask, admin: FlaskstackAdmin, auth: AuthState, path: str) -> None:
    """Users (a model with flaskstack's user columns) and roles (``FLASKSTACK_ROLES``)."""
    from flaskstack.auth import UserMixin

    from . import _access

    views = []
    if isinstance(auth.user_model, type) and issubclass(auth.user_model, UserMixin):
        body = {"permission_prefix": "users", "with_roles": auth.role_models is not None}
        view_class = type("UserAdmin", (_access.UserView,), body)
        views.append(
            view_class(
                auth.user_model,
                db,
                name="Users",
                endpoint="admin_users",
                url=f"{path}/users",
                category="Access",
            )
        )
    if auth.role_models is not None:
        view_class = type("RoleAdmin", (_access.RoleView,), {"permission_prefix": "roles"})
        views.append(
            view_class(
                auth.role_models.role,
                db,
                name="Roles",
                endpoint="admin_roles",
                url=f"{path}/roles",
                category="Access",
            )
        )
    for view in views:
        _add_view(app, admin, view)


RESERVED = ("users", "roles", AUDIT_PREFIX)
"""Endpoints of the admin's own views, which :func:`flaskstack.admin.register` cannot take."""


def add(app: Flask, registration: Registration) -> None:
    """Add the view of ``registration`` to the app's admin."""
    admin = admin_of(app)
    path = app.config[PATH_SETTING]
    name = registration.name
    namespace = {
        **_views.default_options(registration.model, registration.options),
        **registration.options,
        "permission_prefix": name,
    }
    if name in RESERVED:
        raise ValueError(
            f"flaskstack.admin.register({registration.model.__name__}): the endpoint {name!r} "
            f"is the admin's own ({', '.join(RESERVED)}); pass another with endpoint=..."
        )
    base = registration.view or _views.ModelView
    unknown = sorted(key for key in registration.options if not hasattr(base, key))
    if unknown:
        raise TypeError(
            f"flaskstack.admin.register({registration.model.__name__}) got unknown option(s) "
            f"{', '.join(map(repr, unknown))}: options are the attributes of Flask-Admin's "
            "SQLAlchemy ModelView (column_list, column_searchable_list, column_filters, "
            "form_columns, can_export...)"
        )
    view_class = type(f"{registration.model.__name__}Admin", (base,), namespace)
    view = view_class(
        registration.model,
        db,
        name=registration.label,
        endpoint=f"admin_{name}",
        url=f"{path}/{name}",
        category=registration.category,
    )
    _add_view(app, admin, view)


def _add_view(app: Flask, admin: FlaskstackAdmin, view: _views.ModelView) -> None:
    admin.add_view(view)
    admin.model_views.append(view)
    _guard(app, admin, view.blueprint.name)


def _guard(app: Flask, admin: FlaskstackAdmin, blueprint: str) -> None:
    admin.guarded.add(blueprint)
    app.before_request_funcs.setdefault(blueprint, []).append(_admit)
    app.after_request_funcs.setdefault(blueprint, []).append(_not_stored)


def _admit() -> Response | None:
    """Refuse anyone who may not use the admin; watch what the others change."""
    refused = sign_in_first()
    if refused is not None:
        return refused
    user = current_user._get_current_object()
    permission = current_app.config[PERMISSION_SETTING]
    if not has_permission(user, permission):
        abort(
            403,
            description=(
                f"You are signed in, but the admin needs the permission {permission!r}, which "
                "your account lacks. Ask an administrator if you need access."
            ),
        )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if get_state(app).auth.two_factor is not None:
        from flaskstack.auth import _two_factor

        if _two_factor.must_enrol(user):
            abort(
                403,
                description=(
                    "Your role requires two-factor sign-in, which your account has not set "
                    "up yet: set it up at "
                    f"{url_for('flaskstack_two_factor.setup')} and open the admin again."
                ),
            )
    _audit.watch(db.session(), admin_of(app).audit_model, user, request_id())
    return None


def _not_stored(response: Response) -> Response:
    # Static files (Flask-Admin's scripts and styles, the same for everyone) may stay in
    # the browser's own cache, revalidated at each use; pages never.
    static = (request.endpoint or "").endswith(".static")
    response.headers["Cache-Control"] = "private, no-cache" if static else "private, no-store"
    response.vary.add("Cookie")
    return response
