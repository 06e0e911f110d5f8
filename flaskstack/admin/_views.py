"""The admin's views, on Flask-Admin's SQLAlchemy :class:`~flask_admin.contrib.sqla.ModelView`.

Imported only when :setting:`FLASKSTACK_ADMIN` is on. The rules kept here:

- **One permission per kind of change.** Each model's pages need
  ``<model>.view``; creating needs ``<model>.add``, editing (and every bulk
  action but delete) ``<model>.change``, deleting (one row or many)
  ``<model>.delete``. ``<model>`` is the view's name: the model's class
  name in lower case unless ``register(..., endpoint=...)`` says otherwise.
  A page or POST target the user may not use answers 403 before Flask-Admin
  reads the form; buttons for what they may not do are not shown.
  :setting:`FLASKSTACK_ADMIN_PERMISSION` is checked before any of this, for
  every admin URL, by :mod:`flaskstack.admin._setup`.
- **The app's Content-Security-Policy applies unchanged.** Scripts and
  styles come from files with the request's nonce; the list page is
  rendered from ``flaskstack/admin/list.html``, which replaces Flask-Admin's
  inline ``onclick`` handlers and ``javascript:`` links with attributes the
  admin's script (``static/admin.js``) handles; inline forms' "Add" button
  is rendered by ``flaskstack/admin/inline_field_list.html`` without its
  ``onclick``, and the modal forms by ``flaskstack/admin/modals/`` without
  the inline script that arrives with another response's nonce.
"""

from __future__ import annotations

import logging
import typing as t
import uuid

import sqlalchemy as sa
from flask import abort, current_app, flash, request
from flask_admin import AdminIndexView, expose  # type: ignore[import-untyped]
from flask_admin.actions import action  # type: ignore[import-untyped]
from flask_admin.babel import lazy_gettext  # type: ignore[import-untyped]
from flask_admin.contrib.sqla import ModelView as _SQLAlchemyModelView  # type: ignore[import-untyped]
from flask_admin.contrib.sqla.fields import InlineModelFormList  # type: ignore[import-untyped]
from flask_admin.contrib.sqla.form import InlineModelConverter  # type: ignore[import-untyped]
from flask_admin.form.widgets import RenderTemplateWidget  # type: ignore[import-untyped]
from flask_admin.model.template import BaseListRowAction, DeleteRowAction  # type: ignore[import-untyped]
from flask_login import current_user
from markupsafe import Markup

from flaskstack.auth._login import sign_in_first
from flaskstack.auth._roles import has_permission
from flaskstack.logs import request_id

from ._audit import HIDDEN

if t.TYPE_CHECKING:
    from jinja2.runtime import Context
    from werkzeug.wrappers import Response

__all__ = ["AuditLogView", "IndexView", "ModelView", "default_options"]

# What each of Flask-Admin's model endpoints does, as the permission it needs.
_NEEDS = {
    "index_view": "view",
    "details_view": "view",
    "export": "view",
    "ajax_lookup": "view",
    "create_view": "add",
    "edit_view": "change",
    "ajax_update": "change",
    "delete_view": "delete",
}
_log = logging.getLogger("flaskstack.admin")
_SECRET_WORDS = ("password", "secret", "token", "hash")
_SEARCHABLE = (sa.String, sa.Text)
_FILTERABLE = (sa.String, sa.Integer, sa.Boolean, sa.DateTime, sa.Date, sa.Numeric, sa.Enum)


class _DeleteRow(BaseListRowAction):  # type: ignore[misc]
    """Flask-Admin's delete button, without its inline ``onclick`` (``row_actions.html``)."""

    def render(self, context: Context, row_id: str, row: t.Any) -> t.Any:
        return self._resolve_symbol(context, "flaskstack_rows.delete_row")(self, row_id, row)


class _InlineFormList(InlineModelFormList):  # type: ignore[misc]
    """Flask-Admin's inline form list, its "Add" button without an inline ``onclick``."""

    widget = RenderTemplateWidget("flaskstack/admin/inline_field_list.html")


class _InlineConverter(InlineModelConverter):  # type: ignore[misc]
    """Flask-Admin's inline form converter, with the list above (its documented hook)."""

    inline_field_list_type = _InlineFormList


class ModelView(_SQLAlchemyModelView):  # type: ignore[misc]
    """flaskstack's admin view of one model; subclass it to customise one.

    Every option of Flask-Admin's :class:`~flask_admin.contrib.sqla.ModelView`
    works (``column_list``, ``column_searchable_list``, ``column_filters``,
    ``form_columns``, ``can_export``, actions with :func:`flask_admin.actions.action`,
    ...), as class attributes or as keyword arguments of
    :func:`flaskstack.admin.register`. What flaskstack adds:

    - each user sees and does only what their permissions allow
      (``<model>.view``, ``.add``, ``.change``, ``.delete``);
    - :attr:`action_permissions` says which permission a bulk action of
      the view's own needs (``"change"`` unless it says otherwise);
    - pages work under the app's Content-Security-Policy.
    """

    list_template = "flaskstack/admin/list.html"
    create_modal_template = "flaskstack/admin/modals/create.html"
    edit_modal_template = "flaskstack/admin/modals/edit.html"
    details_modal_template = "flaskstack/admin/modals/details.html"
    inline_model_form_converter = _InlineConverter
    can_view_details = True
    page_size = 25
    action_permissions: t.ClassVar[dict[str, str]] = {}
    """The permission (``"view"``, ``"add"``, ``"change"`` or ``"delete"``) each bulk
    action needs, by its name; ``"delete"`` for Flask-Admin's delete action, ``"change"``
    for those not listed."""
    permission_prefix: str = ""
    """The ``<model>`` of ``<model>.view`` and the others; set by ``register()``."""

    # -- who may do what ----------------------------------------------------------------

    def permission(self, action: str) -> str:
        """The name of the permission for ``action`` (``"view"``, ``"add"``...) on this model."""
        return f"{self.permission_prefix}.{action}"

    def may(self, action: str) -> bool:
        """Whether the signed-in user holds the permission for ``action`` on this model."""
        if not current_user.is_authenticated:
            return False
        return has_permission(current_user._get_current_object(), self.permission(action))

    def needed_here(self) -> str:
        """What the current request asks of this view: ``"view"``, ``"add"``..."""
        if self.blueprint is None or request.blueprint != self.blueprint.name:
            return "view"  # the menu, rendered for another page, asks whether to list it
        assert request.endpoint is not None
        name = request.endpoint.rsplit(".", 1)[-1]
        if name == "action_view":
            action = request.form.get("action", "")
            if action == "delete":
                return "delete"
            return self.action_permissions.get(action, "change")
        return _NEEDS.get(name, "change")

    def is_accessible(self) -> bool:
        """The user may see the model, and do what the request asks."""
        needed = self.needed_here()
        return self.may("view") and self.may(needed)

    def inaccessible_callback(self, name: str, **kwargs: t.Any) -> Response:
        """Anonymous: the sign-in answer; signed in: 403 naming the missing permission."""
        refused = sign_in_first()
        if refused is not None:
            return refused
        needed = self.needed_here()
        missing = [self.permission(a) for a in dict.fromkeys(("view", needed)) if not self.may(a)]
        listed = " and ".join(repr(name) for name in missing)
        abort(
            403,
            description=(
                f"You are signed in, but this page of the admin needs the permission {listed}, "
                "which your account lacks. Ask an administrator if you need it."
            ),
        )

    @property
    def can_create(self) -> bool:
        return self.may("add")

    @property
    def can_edit(self) -> bool:
        return self.may("change")

    @property
    def can_delete(self) -> bool:
        return self.may("delete")

    def is_action_allowed(self, name: str) -> bool:
        """Flask-Admin's rule, and the permission :attr:`action_permissions` names."""
        if not super().is_action_allowed(name):
            return False
        wanted = "delete" if name == "delete" else self.action_permissions.get(name, "change")
        return self.may(wanted)

    def handle_view_exception(self, exc: Exception) -> bool:
        """A database error as one line the admin can act on, the details in the log.

        Flask-Admin shows the error's whole text, with the SQL statement and its
        parameters (which may hold another field's secret); here the page says
        what the database refused, and the log line, with the request id the
        page names, has the rest. Flask-Admin's ``FLASK_ADMIN_RAISE_ON_*``
        settings still raise instead.
        """
        if not isinstance(exc, sa.exc.DBAPIError) or _raises(exc):
            return bool(super().handle_view_exception(exc))
        _log.error("The database refused a change made in the admin.", exc_info=exc)
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "no reason"
        flash(
            f"The database refused the change, so nothing was saved: {reason}. "
            f"The log has the details under request id {request_id()}.",
            "error",
        )
        return True

    @action(  # type: ignore[untyped-decorator]
        "delete",
        lazy_gettext("Delete"),
        lazy_gettext("Are you sure you want to delete selected records?"),
    )
    def action_delete(self, ids: list[str]) -> None:
        """Flask-Admin's bulk delete, given the ids as the primary key's type.

        Flask-Admin passes the form's strings, which PostgreSQL with psycopg 3
        refuses for an integer key (``integer = character varying``,
        pallets-eco/flask-admin#2951); ``tests/test_admin.py`` fails when the
        conversion is no longer needed or no longer enough.
        """
        super().action_delete(self.typed_ids(ids))

    def typed_ids(self, ids: list[str]) -> list[t.Any]:
        """``ids`` from a form, converted to the single-column primary key's Python type."""
        columns = list(sa.inspect(self.model).primary_key)
        if len(columns) != 1:
            return ids
        try:
            python_type = columns[0].type.python_type
        except NotImplementedError:
            return ids
        convert: t.Callable[[str], t.Any] | None = {int: int, uuid.UUID: uuid.UUID}.get(python_type)
        if convert is None:
            return ids
        typed = []
        for value in ids:
            try:
                typed.append(convert(value))
            except ValueError:
                continue  # no row has it
        return typed

    def get_list_row_actions(self) -> list[BaseListRowAction]:
        """Flask-Admin's row buttons, the delete one without an inline script."""
        return [
            _DeleteRow() if isinstance(action, DeleteRowAction) else action
            for action in super().get_list_row_actions()
        ]


def _raises(exc: Exception) -> bool:
    """Whether Flask-Admin's settings ask for ``exc`` to be raised rather than shown."""
    config = current_app.config
    raise_all = config.get("FLASK_ADMIN_RAISE_ON_VIEW_EXCEPTION")
    if isinstance(exc, sa.exc.IntegrityError):
        return bool(config.get("FLASK_ADMIN_RAISE_ON_INTEGRITY_ERROR", raise_all))
    return bool(raise_all)


def default_options(model: type[t.Any], options: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Sensible defaults from ``model``'s columns, for options ``options`` leaves unset.

    Text columns are searchable; text, number, boolean, date and enum
    columns are filters; columns named like secrets (``password_hash``)
    are neither listed nor in forms.
    """
    columns = list(sa.inspect(model).columns)
    secret = [c.key for c in columns if any(w in c.key.lower() for w in _SECRET_WORDS)]
    found: dict[str, t.Any] = {}
    if "column_searchable_list" not in options:
        searchable = [
            c.key
            for c in columns
            if isinstance(c.type, _SEARCHABLE) and c.key not in secret and not c.primary_key
        ]
        if searchable:
            found["column_searchable_list"] = searchable
    if "column_filters" not in options:
        filters = [
            c.key for c in columns if isinstance(c.type, _FILTERABLE) and c.key not in secret
        ]
        if filters:
            found["column_filters"] = filters
    if secret:
        found.setdefault("column_exclude_list", secret)
        found.setdefault("column_details_exclude_list", secret)
        found.setdefault("form_excluded_columns", secret)
        found.setdefault("column_export_exclude_list", secret)
    return {k: v for k, v in found.items() if k not in options}


class IndexView(AdminIndexView):  # type: ignore[misc]
    """The admin's home page: the models the user may see."""

    @expose()  # type: ignore[untyped-decorator]
    def index(self) -> str:
        """The admin's home page."""
        return t.cast("str", self.render("flaskstack/admin/index.html"))


def _changes(view: t.Any, context: Context, model: t.Any, name: str) -> Markup:
    """The ``changes`` column: one line per field, ``old → new``."""
    lines = []
    for field, change in sorted((model.changes or {}).items()):
        parts = []
        if "old" in change:
            parts.append(_shown(change["old"]))
        if "new" in change:
            parts.append(_shown(change["new"]))
        lines.append(Markup("<li><code>{}</code>: {}</li>").format(field, " → ".join(parts)))
    return Markup("<ul class='list-unstyled mb-0'>{}</ul>").format(Markup("").join(lines))


def _shown(value: t.Any) -> str:
    return HIDDEN if value == HIDDEN else repr(value)


class AuditLogView(ModelView):
    """The audit log, read-only: nobody creates, edits or deletes its entries here."""

    column_list = ("at", "user_email", "action", "model", "primary_key", "changes", "request_id")
    column_default_sort = ("at", True)
    column_searchable_list = ("model", "primary_key", "user_email", "request_id")
    column_filters = ("at", "user_email", "action", "model", "primary_key", "request_id")
    column_labels: t.ClassVar[dict[str, str]] = {"user_email": "User", "table_name": "Table"}
    column_formatters: t.ClassVar[dict[str, t.Any]] = {"changes": _changes}
    column_details_list = (
        "at",
        "user_email",
        "user_id",
        "action",
        "model",
        "table_name",
        "primary_key",
        "changes",
        "request_id",
    )
    column_formatters_detail: t.ClassVar[dict[str, t.Any]] = {"changes": _changes}
    action_disallowed_list: t.ClassVar[list[str]] = ["delete"]
    can_create = False
    can_edit = False
    can_delete = False
