"""User and API token models.

:class:`UserMixin` gives any ``db.Model`` everything flaskstack's auth can
use: a unique, lower-cased email, a password hash, an active flag,
timestamps and a ``session_token`` — the id Flask-Login keeps in sessions
and remember-me cookies. It changes with the password, so setting a new
password logs out every other session and kills every remember-me cookie.
A model without it works too, with the features its protocols allow
(:mod:`flaskstack.auth._protocols`).

:class:`User` is the default model of a new project: declared only when the
app names it, or names no model and registers no ``LoginManager`` of its
own. It never replaces what the app has: a class ``User`` or a table
``users`` of the app's, declared before or after it, is a
:class:`~flaskstack.ConfigError` naming ``FLASKSTACK_USER_MODEL``, not an
SQLAlchemy error. The API token model is made for the user model in use
(:func:`token_model`); only a SHA-256 of each token is stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import secrets
import types
import typing as t

import flask_login
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flaskstack._credentials import normalise_email
from flaskstack._state import current_state
from flaskstack.database import _model_hooks, db
from flaskstack.errors import ConfigError, Problem

from ._passwords import hash_password
from ._protocols import check_password_hash

__all__ = [
    "DEFAULT_TABLES",
    "UserMixin",
    "answers_roles",
    "default_user_clashes",
    "default_user_model",
    "normalise_email",
    "resolve_user_model",
    "token_model",
]

DEFAULT_CLASS = "User"
"""The class name of flaskstack's default user model."""

DEFAULT_TABLES = ("users", "api_tokens", "user_logins")
"""The tables of flaskstack's default user model, of its API tokens and of its logins."""


def _new_session_token() -> str:
    return secrets.token_urlsafe(32)


def now() -> dt.datetime:
    """The current time in UTC, as the auth tables store it."""
    return dt.datetime.now(dt.timezone.utc)


def aware(moment: dt.datetime) -> dt.datetime:
    """``moment`` as stored, in UTC: SQLite hands back naive datetimes."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


class UserMixin(flask_login.UserMixin):  # type: ignore[misc]
    """Columns and behaviour for a user model; combine it with ``db.Model``::

        class Member(UserMixin, db.Model):
            id: Mapped[int] = mapped_column(primary_key=True)
            display_name: Mapped[str] = mapped_column(sa.String(80))

    Set emails through :meth:`set_email` (or pass them already normalised)
    and passwords through :meth:`set_password`.
    """

    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())
    session_token: Mapped[str] = mapped_column(
        sa.String(64), unique=True, default=_new_session_token
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=now, server_default=sa.func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=now, onupdate=now, server_default=sa.func.now()
    )

    def get_id(self) -> str:
        """The id kept in sessions: :attr:`session_token`, not the primary key."""
        token: str | None = self.session_token  # None until the first flush
        if token is None:
            token = self.session_token = _new_session_token()
        return token

    @property
    def is_active(self) -> bool:
        """Inactive users cannot log in, and their sessions stop working."""
        return bool(self.active)

    def set_email(self, email: str) -> None:
        """Store ``email`` normalised (emails are unique regardless of case)."""
        self.email = normalise_email(email)

    def set_password(self, password: str) -> None:
        """Hash ``password`` and end every other session of this user.

        :raises flaskstack.auth._passwords.PasswordPolicyError: when the
            password is too short or too long.
        """
        self.password_hash = hash_password(password)
        self.session_token = _new_session_token()

    def check_password(self, password: str) -> bool:
        """Whether ``password`` is right; an outdated hash is redone (commit to keep it)."""
        return check_password_hash(self, password)

    def has_role(self, name: str) -> bool:
        """Whether this user holds the role ``name`` (``FLASKSTACK_ROLES``).

        :raises LookupError: when flaskstack's roles are off for the app.
        """
        return name in current_state().auth.access(self).roles

    def has_permission(self, name: str) -> bool:
        """Whether one of this user's roles grants ``name`` (``FLASKSTACK_ROLES``).

        :raises LookupError: when flaskstack's roles are off for the app.
        """
        return name in current_state().auth.access(self).permissions


def answers_roles(
    user_model: type[t.Any] | None, roles_on: bool, methods: t.Iterable[str] = ("has_role",)
) -> bool:
    """Whether users of ``user_model`` can answer ``methods`` (``has_role``, ``has_permission``).

    With flaskstack's roles on (``roles_on``), :class:`~flaskstack.auth.UserMixin`
    answers; otherwise only methods of the model's own do.
    """
    if user_model is None:
        return False
    for name in methods:
        method = getattr(user_model, name, None)
        if not callable(method) or (method is getattr(UserMixin, name) and not roles_on):
            return False
    return True


def user_model() -> type[t.Any]:
    """The user model of the current app: the one auth uses everywhere.

    ``FLASKSTACK_USER_MODEL`` as resolved by :func:`flaskstack.init_app`
    (flaskstack's :class:`User` in a new project). Needs an app context.

    :raises LookupError: when the app brought its own ``LoginManager`` and
        named no model: flaskstack does not know its users.
    """
    model: type[t.Any] | None = current_state().auth.user_model
    if model is None:
        raise LookupError(
            "flaskstack does not know this app's user model: the app uses its own Flask-Login "
            "LoginManager. Set FLASKSTACK_USER_MODEL to 'package.module:ClassName' of the model "
            "to use flaskstack's user features (flask stack create-user, the test helpers)."
        )
    return model


def user_by_email(email: str) -> t.Any | None:
    """The user of the current app with ``email`` (normalised here), or ``None``."""
    model = user_model()
    statement = sa.select(model).where(model.email == normalise_email(email))
    return db.session.execute(statement).scalar_one_or_none()


_default_user: type[t.Any] | None = None


def _clash_problem(found: str) -> Problem:
    return Problem(
        "auth.E002",
        "FLASKSTACK_USER_MODEL",
        f"unset, and the app has {found}",
        "the app's own user model named here, or no model of the app's called "
        f"{DEFAULT_CLASS!r} or using the tables {' or '.join(map(repr, DEFAULT_TABLES))}",
        "set FLASKSTACK_USER_MODEL to 'package.module:ClassName' of the app's user model, or "
        "register the app's own flask_login.LoginManager on the app before "
        "flaskstack.init_app(app); flaskstack's default User model is for new projects",
    )


def default_user_clashes() -> list[Problem]:
    """What keeps flaskstack's default ``User`` from being declared next to the app's models.

    Empty once it is declared (the classes and tables are then its own).
    """
    if _default_user is not None:
        return []
    problems = []
    for mapper in db.Model.registry.mappers:  # type: ignore[attr-defined]  # made at run time
        if mapper.class_.__name__ == DEFAULT_CLASS:
            model = mapper.class_
            problems.append(_clash_problem(f"a model {model.__module__}.{model.__qualname__}"))
    for table in DEFAULT_TABLES:
        if table in db.metadata.tables:
            problems.append(_clash_problem(f"a table {table!r}"))
    return problems


def _refuse_clash_with_default(model: type) -> None:
    # A model declared after flaskstack's default one: SQLAlchemy would say
    # "Table 'users' is already defined" or, later, "Multiple classes found
    # for path 'User'", neither of which names the way out.
    if _default_user is None or model.__module__ == __name__:  # its own token model
        return
    table = model.__dict__.get("__tablename__")
    if model.__name__ == DEFAULT_CLASS:
        found = f"a model {model.__module__}.{model.__qualname__}"
    elif table in DEFAULT_TABLES:
        found = f"a model {model.__module__}.{model.__qualname__} using the table {table!r}"
    else:
        return
    raise ConfigError(
        [
            dataclasses.replace(
                _clash_problem(found),
                value=f"unset, so flaskstack declared its default User model; the app declares "
                f"{found} after it",
            )
        ]
    )


_model_hooks.append(_refuse_clash_with_default)


def default_user_model() -> type[t.Any]:
    """flaskstack's default user model, ``User`` (table ``users``), declared on first use.

    It is declared only when something asks for it (an app without
    ``FLASKSTACK_USER_MODEL``, or ``from flaskstack.auth import User``), so
    an app with a model of its own gets no unused ``users`` table in its
    migrations, and may call its own model ``User``.
    """
    global _default_user
    if _default_user is None:

        class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
            """flaskstack's default user model (table ``users``)."""

            __tablename__ = "users"
            __qualname__ = "User"

            id: Mapped[int] = mapped_column(primary_key=True)

            def __repr__(self) -> str:
                return f"<User {self.id} {self.email!r}>"

        _default_user = User
    return _default_user


def __getattr__(name: str) -> t.Any:
    if name == "User":
        return default_user_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _ApiTokenColumns:
    """An API token: only its SHA-256 is stored; the token is shown once."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=now, server_default=sa.func.now()
    )
    last_used_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.prefix}… of user {self.user_id}>"  # type: ignore[attr-defined]


def user_rows_model(
    user_model: type[t.Any],
    name: str,
    table: str,
    columns: type,
    **attributes: t.Any,
) -> type[t.Any]:
    """Declare ``name``, a model of rows that belong to users of ``user_model``.

    Its columns come from ``columns``, plus ``user_id`` (a foreign key to the
    user model's single-column primary key, indexed, rows deleted with their
    user), a ``user`` relationship and ``attributes``. The class lives in
    the user model's module: the declarative registry keys classes by module
    and name, and two apps' models may share a name; it is named before it is
    declared, since renaming afterwards would make a second model clash.
    """
    (primary_key,) = sa.inspect(user_model).local_table.primary_key.columns
    namespace = {
        "__module__": user_model.__module__,
        "__qualname__": name,
        "__doc__": columns.__doc__,
        "__tablename__": table,
        "user_id": mapped_column(
            sa.ForeignKey(primary_key, ondelete="CASCADE"), index=True, nullable=False
        ),
        "user": relationship(user_model),
        **attributes,
    }
    return types.new_class(name, (columns, db.Model), exec_body=lambda ns: ns.update(namespace))


_ROWS_MODELS: dict[tuple[type[t.Any], str], type[t.Any]] = {}


def rows_model_of(
    user_model: type[t.Any],
    name: str,
    table: tuple[str, str],
    columns: type,
    **attributes: t.Any,
) -> type[t.Any]:
    """The model ``<user model name><name>`` of rows beside ``user_model``, declared once.

    ``table`` is ``(default, suffix)``: the table is ``default`` for
    flaskstack's default :class:`User` and ``<user table>_<suffix>`` for
    another user model. ``columns`` and ``attributes`` are as for
    :func:`user_rows_model`.
    """
    key = (user_model, name)
    if key not in _ROWS_MODELS:
        default, suffix = table
        if user_model is not _default_user:
            default = f"{sa.inspect(user_model).local_table.name}_{suffix}"
        _ROWS_MODELS[key] = user_rows_model(
            user_model, f"{user_model.__name__}{name}", default, columns, **attributes
        )
    return _ROWS_MODELS[key]


def user_key(user: t.Any) -> t.Any:
    """The value of ``user``'s single-column primary key (what ``user_id`` columns hold)."""
    (column,) = sa.inspect(type(user)).primary_key
    return getattr(user, column.key)


def token_model(user_model: type[t.Any]) -> type[t.Any]:
    """The API token model for ``user_model`` (made once per user model).

    For the default :class:`User` its table is ``api_tokens``; for another
    user model it is ``<user table>_api_tokens``.
    """
    return rows_model_of(user_model, "ApiToken", ("api_tokens", "api_tokens"), _ApiTokenColumns)


def resolve_user_model(value: object) -> type[t.Any]:
    """The user model named by ``FLASKSTACK_USER_MODEL`` (a class, a path, or ``None``).

    Any mapped ``db.Model`` class that Flask-Login can use (``get_id()``,
    ``is_active``, ``is_authenticated``: ``flask_login.UserMixin`` gives
    them) is accepted; ``None`` is flaskstack's default model.

    :raises ConfigError: when it cannot be imported or is not such a model.
    """
    if value is None:
        return default_user_model()
    model: object = value
    if isinstance(value, str):
        module_name, _, attribute = value.partition(":")
        try:
            model = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                [
                    Problem(
                        "config.E001",
                        "FLASKSTACK_USER_MODEL",
                        repr(value),
                        "'package.module:ClassName' of an importable model",
                        f"fix the path ({type(exc).__name__}: {exc})",
                    )
                ]
            ) from exc
    if not (isinstance(model, type) and sa.inspect(model, raiseerr=False) is not None):
        raise ConfigError(
            [
                Problem(
                    "config.E001",
                    "FLASKSTACK_USER_MODEL",
                    repr(value),
                    "a db.Model class (the app's user model)",
                    "name the app's user model class, declared on flaskstack.db.Model",
                )
            ]
        )
    lacking = [
        name for name in ("get_id", "is_active", "is_authenticated") if not hasattr(model, name)
    ]
    if lacking:
        raise ConfigError(
            [
                Problem(
                    "config.E001",
                    "FLASKSTACK_USER_MODEL",
                    repr(value),
                    "a user model Flask-Login can use (get_id, is_active, is_authenticated)",
                    f"add flask_login.UserMixin (or flaskstack.auth.UserMixin) to the bases of "
                    f"{model.__name__}; it lacks {', '.join(lacking)}",
                )
            ]
        )
    return model
