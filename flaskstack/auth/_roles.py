"""Roles with named permissions, and who has them.

With ``FLASKSTACK_ROLES = True`` (flaskstack's login manager, or a user model
named by ``FLASKSTACK_USER_MODEL``, with a single-column primary key), three
tables sit beside the user model: roles, the permissions each role grants,
and which users hold which roles. For flaskstack's default ``User`` they are
``roles``, ``role_permissions`` and ``user_roles``; for another user model
``<user table>_roles``, ``<user table>_role_permissions`` and
``<user table>_user_roles``. The app's own tables are never touched.

A user's roles and permissions are read in **one** statement, the first
time a request asks, and kept for the rest of that request: any number of
:func:`has_role` / :func:`has_permission` checks cost one query. Granting,
revoking or editing a role through the functions here forgets what the
request had read.

An app with its own model of roles gives its user model ``has_role(name)``
and ``has_permission(name)`` methods (:class:`RoleHolder`) and leaves
``FLASKSTACK_ROLES`` off; everything that checks roles (``auth_required``,
the jobs dashboard, two-factor requirements) asks those methods.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing as t

import sqlalchemy as sa
from flask import g, has_app_context
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flaskstack._state import current_state
from flaskstack.database import db
from flaskstack.errors import Problem

from . import _models as _user_models
from ._models import now, user_key, user_rows_model

__all__ = [
    "Access",
    "RoleHolder",
    "RoleModels",
    "access_of",
    "check_name",
    "create_role",
    "delete_role",
    "grant_role",
    "has_permission",
    "has_role",
    "revoke_role",
    "role_models",
    "role_named",
    "role_problems",
    "set_permissions",
]

NAME_LENGTH = 80
"""The longest role or permission name."""


@t.runtime_checkable
class RoleHolder(t.Protocol):
    """A user model that answers for its roles and permissions itself.

    flaskstack's :class:`~flaskstack.auth.UserMixin` answers from flaskstack's
    role tables (``FLASKSTACK_ROLES``); an app with roles of its own
    implements both methods on its user model.
    """

    def has_role(self, name: str) -> bool:
        """Whether the user holds the role ``name``."""

    def has_permission(self, name: str) -> bool:
        """Whether one of the user's roles grants the permission ``name``."""


@dataclasses.dataclass(frozen=True)
class Access:
    """What one user holds: the names of their roles and of their permissions."""

    roles: frozenset[str]
    permissions: frozenset[str]


class RoleModels(t.NamedTuple):
    """The models of roles for one user model."""

    role: type[t.Any]
    """A role: a unique ``name``, a ``description`` and its ``permissions``."""
    permission: type[t.Any]
    """One permission a role grants (``role_id``, ``name``)."""
    grant: type[t.Any]
    """One role held by one user (``user_id``, ``role_id``, ``granted_at``)."""


class _RoleColumns:
    """A role: a name users are given, granting named permissions."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(sa.String(255), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=now, server_default=sa.func.now()
    )

    @property
    def permission_names(self) -> list[str]:
        """The names of the permissions this role grants, sorted."""
        return sorted(permission.name for permission in self.permissions)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<Role {self.name!r}>"


class _PermissionColumns:
    """A permission granted by a role."""

    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH), primary_key=True)

    def __repr__(self) -> str:
        return f"<RolePermission {self.name!r} of role {getattr(self, 'role_id', None)}>"


class _GrantColumns:
    """A role held by a user."""

    id: Mapped[int] = mapped_column(primary_key=True)
    granted_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=now, server_default=sa.func.now()
    )

    def __repr__(self) -> str:
        role, user = getattr(self, "role_id", None), getattr(self, "user_id", None)
        return f"<UserRole role {role} of user {user}>"


_ROLE_MODELS: dict[type[t.Any], RoleModels] = {}

_TABLES = ("roles", "role_permissions", "user_roles")


def _prefix(user_model: type[t.Any]) -> str:
    if user_model is _user_models._default_user:
        return ""
    return f"{sa.inspect(user_model).local_table.name}_"


def role_problems(user_model: type[t.Any] | None) -> list[Problem]:
    """What keeps flaskstack's roles (``FLASKSTACK_ROLES``) from ``user_model``."""
    if user_model is None:
        return [
            Problem(
                "auth.E010",
                "FLASKSTACK_ROLES",
                "True, and the app's own LoginManager names no user model",
                "a user model to give roles to",
                "set FLASKSTACK_USER_MODEL to 'package.module:ClassName' of the app's user "
                "model, or turn FLASKSTACK_ROLES off and give the user model has_role(name) "
                "and has_permission(name) methods",
            )
        ]
    name = f"{user_model.__module__}.{user_model.__qualname__}"
    primary_key = sa.inspect(user_model).primary_key
    if len(primary_key) != 1:
        return [
            Problem(
                "auth.E010",
                "FLASKSTACK_ROLES",
                f"True, and the user model {name} has a primary key of {len(primary_key)} columns",
                "a user model with a single-column primary key (user_roles refers to it)",
                "turn FLASKSTACK_ROLES off and give the user model has_role(name) and "
                "has_permission(name) methods answering from the app's own roles",
            )
        ]
    if user_model in _ROLE_MODELS:
        return []
    problems = []
    tables = [_prefix(user_model) + table for table in _TABLES]
    for full in tables:
        if full in db.metadata.tables:
            problems.append(
                Problem(
                    "auth.E010",
                    "FLASKSTACK_ROLES",
                    f"True, and the app has a table {full!r}",
                    f"flaskstack's role tables ({', '.join(tables)}) free in the app's database",
                    "turn FLASKSTACK_ROLES off and give the user model has_role(name) and "
                    "has_permission(name) methods answering from the app's own roles",
                )
            )
    return problems


def _declare(name: str, module: str, columns: type, namespace: dict[str, t.Any]) -> type[t.Any]:
    body = {"__module__": module, "__qualname__": name, "__doc__": columns.__doc__, **namespace}
    return types.new_class(name, (columns, db.Model), exec_body=lambda ns: ns.update(body))


def role_models(user_model: type[t.Any]) -> RoleModels:
    """The role models for ``user_model`` (declared once per user model)."""
    if user_model in _ROLE_MODELS:
        return _ROLE_MODELS[user_model]
    prefix = _prefix(user_model)
    base = user_model.__name__
    roles_table = f"{prefix}roles"
    role = _declare(
        f"{base}Role",
        user_model.__module__,
        _RoleColumns,
        {
            "__tablename__": roles_table,
            "permissions": relationship(
                f"{base}RolePermission",
                cascade="all, delete-orphan",
                passive_deletes=True,
                lazy="selectin",
            ),
        },
    )
    permission = _declare(
        f"{base}RolePermission",
        user_model.__module__,
        _PermissionColumns,
        {
            "__tablename__": f"{prefix}role_permissions",
            "role_id": mapped_column(
                sa.ForeignKey(f"{roles_table}.id", ondelete="CASCADE"), primary_key=True
            ),
        },
    )
    grant = user_rows_model(
        user_model,
        f"{base}UserRole",
        f"{prefix}user_roles",
        _GrantColumns,
        role_id=mapped_column(
            sa.ForeignKey(f"{roles_table}.id", ondelete="CASCADE"), index=True, nullable=False
        ),
        role=relationship(role),
        __table_args__=(sa.UniqueConstraint("user_id", "role_id"),),
    )
    models = RoleModels(role, permission, grant)
    _ROLE_MODELS[user_model] = models
    return models


def _models() -> RoleModels:
    models: RoleModels | None = current_state().auth.role_models
    if models is None:
        raise LookupError(
            "flaskstack's roles are off for this app: set FLASKSTACK_ROLES = True (with "
            "flaskstack's user model, or FLASKSTACK_USER_MODEL naming a model with a "
            "single-column primary key), or give the user model has_role(name) and "
            "has_permission(name) methods of its own"
        )
    return models


_CACHE = "flaskstack_access"


def _cache() -> dict[tuple[type[t.Any], t.Any], Access] | None:
    if not has_app_context():
        return None
    cache: dict[tuple[type[t.Any], t.Any], Access] = g.setdefault(_CACHE, {})
    return cache


def access_of(user: t.Any) -> Access:
    """``user``'s roles and permissions from flaskstack's role tables.

    One statement the first time in a request (or app context); the same
    answer afterwards, until a function here changes a role.

    :raises LookupError: when flaskstack's roles are off for the app.
    """
    models = _models()
    key = user_key(user)
    if key is None:  # not yet flushed: holds nothing
        return Access(frozenset(), frozenset())
    cache = _cache()
    cache_key = (type(user), key)
    if cache is not None and cache_key in cache:
        return cache[cache_key]
    role, permission, grant = models
    rows = db.session.execute(
        sa.select(role.name, permission.name)
        .select_from(grant)
        .join(role, grant.role_id == role.id)
        .outerjoin(permission, permission.role_id == role.id)
        .where(grant.user_id == key)
    ).all()
    access = Access(
        frozenset(row[0] for row in rows),
        frozenset(row[1] for row in rows if row[1] is not None),
    )
    if cache is not None:
        cache[cache_key] = access
    return access


def _forget() -> None:
    if has_app_context():
        g.pop(_CACHE, None)


def _method(user: t.Any, name: str) -> t.Callable[[str], t.Any]:
    method = getattr(user, name, None)
    if not callable(method):
        raise TypeError(
            f"checking roles needs a {name}(name) method on the user model "
            f"{type(user).__name__}: add flaskstack.auth.UserMixin to its bases and set "
            f"FLASKSTACK_ROLES = True, or write has_role(name) and has_permission(name) "
            "methods answering from the app's own roles"
        )
    return t.cast("t.Callable[[str], t.Any]", method)


def has_role(user: t.Any, name: str) -> bool:
    """Whether ``user`` holds the role ``name`` (asks the user model's ``has_role``)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(_method(user, "has_role")(name))


def has_permission(user: t.Any, name: str) -> bool:
    """Whether ``user``'s roles grant ``name`` (asks the user model's ``has_permission``)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(_method(user, "has_permission")(name))


def role_named(name: str) -> t.Any:
    """The role called ``name``.

    :raises LookupError: when there is none.
    """
    role = _models().role
    found = db.session.execute(sa.select(role).where(role.name == name)).scalar_one_or_none()
    if found is None:
        raise LookupError(f"there is no role {name!r}: create it first (flask stack role create)")
    return found


def check_name(kind: str, name: str) -> str:
    """``name`` stripped, if it is a good name for a role or permission (``kind``).

    :raises ValueError: when it is empty, too long or has spaces.
    """
    cleaned = name.strip()
    if not cleaned or len(cleaned) > NAME_LENGTH or any(c.isspace() for c in cleaned):
        raise ValueError(
            f"{kind} name {name!r}: use 1 to {NAME_LENGTH} characters without spaces "
            "(for example 'editor' or 'articles.delete')"
        )
    return cleaned


def create_role(name: str, permissions: t.Iterable[str] = (), description: str = "") -> t.Any:
    """Add the role ``name`` granting ``permissions`` to the database session.

    The caller commits.

    :raises ValueError: when a name is empty, too long or has spaces, or the
        role exists already.
    """
    models = _models()
    name = check_name("role", name)
    exists = db.session.execute(sa.select(models.role.id).where(models.role.name == name))
    if exists.first() is not None:
        raise ValueError(f"the role {name!r} exists already")
    role = models.role(name=name, description=description)
    db.session.add(role)
    set_permissions(role, permissions)
    return role


def set_permissions(role: t.Any, permissions: t.Iterable[str]) -> None:
    """Make ``role`` (a role or its name) grant exactly ``permissions``. The caller commits.

    :raises LookupError: when there is no role of that name.
    :raises ValueError: when a permission name is empty, too long or has spaces.
    """
    models = _models()
    if isinstance(role, str):
        role = role_named(role)
    wanted = {check_name("permission", name) for name in permissions}
    for permission in list(role.permissions):
        if permission.name not in wanted:
            role.permissions.remove(permission)
    held = {permission.name for permission in role.permissions}
    for name in sorted(wanted - held):
        role.permissions.append(models.permission(name=name))
    _forget()


def delete_role(name: str) -> None:
    """Delete the role ``name``: no user holds it afterwards. The caller commits.

    :raises LookupError: when there is no role of that name.
    """
    models = _models()
    role = role_named(name)
    db.session.execute(sa.delete(models.grant).where(models.grant.role_id == role.id))
    db.session.delete(role)
    _forget()


def grant_role(user: t.Any, name: str) -> bool:
    """Give ``user`` the role ``name``; ``False`` if they held it already. The caller commits.

    :raises LookupError: when there is no role of that name.
    """
    models = _models()
    role = role_named(name)
    key = user_key(user)
    held = db.session.execute(
        sa.select(models.grant.id).where(
            models.grant.user_id == key, models.grant.role_id == role.id
        )
    ).first()
    _forget()
    if held is not None:
        return False
    db.session.add(models.grant(user_id=key, role_id=role.id))
    return True


def revoke_role(user: t.Any, name: str) -> bool:
    """Take the role ``name`` from ``user``; ``False`` if they did not hold it.

    The caller commits.

    :raises LookupError: when there is no role of that name.
    """
    models = _models()
    role = role_named(name)
    result = db.session.execute(
        sa.delete(models.grant).where(
            models.grant.user_id == user_key(user), models.grant.role_id == role.id
        )
    )
    _forget()
    return bool(getattr(result, "rowcount", 0))
