"""The admin's views of users and roles: who may sign in, and what they may do.

Added by :mod:`flaskstack.admin._setup` when the app uses flaskstack's user
columns (:class:`~flaskstack.auth.UserMixin`) and, for roles, with
:setting:`FLASKSTACK_ROLES` on. Both are models like any other to the
guard: ``users.view``, ``users.add``, ``users.change``, ``users.delete``
and ``roles.*``. The rules kept here:

- **Passwords never pass through the admin.** A user created here has
  none; "Send a password reset link" mails them the account pages' link
  (with the auth pages on), which the user follows to choose one.
- **Signing out is everywhere at once.** Deactivating users and "Sign out
  everywhere" revoke their signed-in devices (sessions and remember-me
  cookies) and their API tokens, as ``flask stack`` and the account pages
  do; an inactive user's sessions stop working at their next request.
- **Roles are granted here, permissions named here.** A user's roles are a
  field of the user's form; a role's permissions are one name per line.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import flash
from flask_admin.actions import action  # type: ignore[import-untyped]
from wtforms import SelectMultipleField, TextAreaField

from flaskstack._state import current_state
from flaskstack.auth import _roles
from flaskstack.auth._models import user_key
from flaskstack.database import db

from ._views import ModelView

if t.TYPE_CHECKING:
    from wtforms import Form

__all__ = ["RoleView", "UserView"]


class UserView(ModelView):
    """The app's users: create, edit, deactivate, reset a password, sign out everywhere."""

    column_list = ("email", "active", "created_at")
    column_default_sort = ("created_at", True)
    column_searchable_list = ("email",)
    column_filters = ("email", "active", "created_at")
    form_columns = ("email", "active")
    column_details_exclude_list = ("password_hash", "session_token")
    action_permissions: t.ClassVar[dict[str, str]] = {
        "deactivate": "change",
        "sign_out": "change",
        "reset_password": "change",
    }

    with_roles: bool = False
    """Whether the form has the user's roles (``FLASKSTACK_ROLES``); set by the admin's setup."""

    def scaffold_form(self) -> type[Form]:
        """The model's form, with the roles the user holds (``FLASKSTACK_ROLES``)."""
        form = super().scaffold_form()
        if self.with_roles:
            form.roles = SelectMultipleField("Roles", choices=[], validate_choice=False)
        return t.cast("type[Form]", form)

    def _role_choices(self) -> list[tuple[str, str]]:
        models = t.cast("_roles.RoleModels", current_state().auth.role_models)
        names = db.session.scalars(sa.select(models.role.name).order_by(models.role.name))
        return [(name, name) for name in names]

    def create_form(self, obj: t.Any = None) -> Form:
        """The creation form, its roles listed."""
        return self._with_roles(super().create_form(obj), None)

    def edit_form(self, obj: t.Any = None) -> Form:
        """The edit form, its roles listed and those the user holds chosen."""
        return self._with_roles(super().edit_form(obj), obj)

    def _with_roles(self, form: Form, user: t.Any) -> Form:
        field = getattr(form, "roles", None)
        if field is not None:
            field.choices = self._role_choices()
            if user is not None and not field.raw_data:
                field.data = sorted(_roles.access_of(user).roles)
        return form

    def on_model_change(self, form: Form, model: t.Any, is_created: bool) -> None:
        """Normalise the email; grant and revoke the roles the form says."""
        model.set_email(model.email)
        field = getattr(form, "roles", None)
        if field is None:
            return
        if is_created:
            db.session.flush()  # the user's key, for the grants
        wanted = set(field.data or [])
        held = set() if is_created else set(_roles.access_of(model).roles)
        for name in sorted(wanted - held):
            _roles.grant_role(model, name)
        for name in sorted(held - wanted):
            _roles.revoke_role(model, name)

    def _users(self, ids: list[str]) -> list[t.Any]:
        (column,) = sa.inspect(self.model).primary_key
        return list(
            db.session.scalars(sa.select(self.model).where(column.in_(self.typed_ids(ids))))
        )

    @action(  # type: ignore[untyped-decorator]
        "deactivate",
        "Deactivate",
        "Deactivate the selected users? They are signed out everywhere and cannot sign in.",
    )
    def action_deactivate(self, ids: list[str]) -> None:
        """Deactivate users and sign them out everywhere, API tokens included."""
        users = self._users(ids)
        for user in users:
            user.active = False
            _sign_out_everywhere(user)
        db.session.commit()
        flash(f"{len(users)} user(s) deactivated and signed out everywhere.", "success")

    @action(  # type: ignore[untyped-decorator]
        "sign_out",
        "Sign out everywhere",
        "Sign the selected users out of every device and revoke their API tokens?",
    )
    def action_sign_out(self, ids: list[str]) -> None:
        """Revoke users' sessions, remember-me cookies and API tokens."""
        users = self._users(ids)
        for user in users:
            _sign_out_everywhere(user)
        db.session.commit()
        flash(
            f"{len(users)} user(s) signed out everywhere; their API tokens are revoked.", "success"
        )

    @action(  # type: ignore[untyped-decorator]
        "reset_password",
        "Send a password reset link",
        "Mail each selected user a link to choose a new password?",
    )
    def action_reset_password(self, ids: list[str]) -> None:
        """Mail users the account pages' password reset link."""
        if current_state().auth.account_models is None:
            flash(
                "Password reset links need flaskstack's account pages "
                "(FLASKSTACK_AUTH_URL_PREFIX) and API tokens on; nothing was sent.",
                "error",
            )
            return
        from flaskstack.auth import _accounts

        users = self._users(ids)
        for user in users:
            _accounts.request_password_reset(user.email)
        db.session.commit()
        flash(f"A password reset link was sent to {len(users)} user(s).", "success")


def _sign_out_everywhere(user: t.Any) -> None:
    auth = current_state().auth
    if auth.login_model is not None:
        from flaskstack.auth import _logins

        _logins.revoke_logins(user, api_tokens=auth.api_token_model is not None)
        return
    # Without tracked logins: a new session token ends every session and remember-me cookie.
    from flaskstack.auth._models import _new_session_token

    user.session_token = _new_session_token()
    if auth.api_token_model is not None:
        model = auth.api_token_model
        db.session.execute(
            sa.update(model)
            .where(model.user_id == user_key(user), model.revoked_at.is_(None))
            .values(revoked_at=sa.func.now())
        )


class RoleView(ModelView):
    """flaskstack's roles: a name, a description, the permissions they grant."""

    column_list = ("name", "description", "permission_names")
    column_labels: t.ClassVar[dict[str, str]] = {"permission_names": "Permissions"}
    column_searchable_list = ("name", "description")
    column_filters = ("name",)
    column_default_sort = "name"
    form_columns = ("name", "description", "permission_list")
    form_extra_fields: t.ClassVar[dict[str, t.Any]] = {
        "permission_list": TextAreaField(
            "Permissions", description="One permission name per line, such as article.change."
        )
    }

    def on_form_prefill(self, form: Form, id: t.Any) -> None:
        """The role's permissions, one per line."""
        role = self.get_one(id)
        form.permission_list.data = "\n".join(role.permission_names)

    def on_model_change(self, form: Form, model: t.Any, is_created: bool) -> None:
        """Check the role's name, and grant exactly the listed permissions."""
        model.name = _roles.check_name("role", (model.name or "").strip())
        listed = form.permission_list.data or ""
        _roles.set_permissions(
            model, [line.strip() for line in listed.splitlines() if line.strip()]
        )
