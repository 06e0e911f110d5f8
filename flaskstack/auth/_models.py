"""User and API token models.

:class:`UserMixin` gives any ``db.Model`` what flaskstack's auth needs: a
unique, lower-cased email, a password hash, an active flag, timestamps and a
``session_token`` — the id Flask-Login keeps in sessions and remember-me
cookies. It changes with the password, so setting a new password logs out
every other session and kills every remember-me cookie.

:class:`User` is the default model, used unless the app names its own
(``FLASKSTACK_USER_MODEL`` or ``init_app(app, user_model=...)``). The API
token model is made for the user model in use (:func:`token_model`); only
a SHA-256 of each token is stored.
"""

from __future__ import annotations

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
from flaskstack.database import db
from flaskstack.errors import ConfigError, Problem

from ._passwords import hash_password, hash_password_unchecked, needs_rehash, verify_password

__all__ = [
    "UserMixin",
    "default_user_model",
    "normalise_email",
    "resolve_user_model",
    "token_model",
]


def _new_session_token() -> str:
    return secrets.token_urlsafe(32)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


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
        sa.DateTime(timezone=True), default=_now, server_default=sa.func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_now, onupdate=_now, server_default=sa.func.now()
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
        if not verify_password(self.password_hash, password):
            return False
        if self.password_hash is not None and needs_rehash(self.password_hash):
            self.password_hash = hash_password_unchecked(password)
        return True


def user_model() -> type[t.Any]:
    """The user model of the current app: the one auth uses everywhere.

    ``FLASKSTACK_USER_MODEL`` as resolved by :func:`flaskstack.init_app`
    (flaskstack's :class:`User` by default). Needs an app context.
    """
    model: type[t.Any] = current_state().auth.user_model
    return model


def user_by_email(email: str) -> t.Any | None:
    """The user of the current app with ``email`` (normalised here), or ``None``."""
    model = user_model()
    statement = sa.select(model).where(model.email == normalise_email(email))
    return db.session.execute(statement).scalar_one_or_none()


_default_user: type[t.Any] | None = None


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
        sa.DateTime(timezone=True), default=_now, server_default=sa.func.now()
    )
    last_used_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.prefix}… of user {self.user_id}>"  # type: ignore[attr-defined]


_TOKEN_MODELS: dict[type[t.Any], type[t.Any]] = {}


def token_model(user_model: type[t.Any]) -> type[t.Any]:
    """The API token model for ``user_model`` (made once per user model).

    For the default :class:`User` its table is ``api_tokens``; for another
    user model it is ``<user table>_api_tokens``.
    """
    if user_model in _TOKEN_MODELS:
        return _TOKEN_MODELS[user_model]
    user_table = sa.inspect(user_model).local_table
    (primary_key,) = user_table.primary_key.columns
    table_name = "api_tokens" if user_model is _default_user else f"{user_table.name}_api_tokens"

    name = f"{user_model.__name__}ApiToken"
    attributes = {
        # In the user model's module: the registry keys classes by module and
        # name, and two apps' models may share a name.
        "__module__": user_model.__module__,
        "__qualname__": name,
        "__doc__": _ApiTokenColumns.__doc__,
        "__tablename__": table_name,
        "user_id": mapped_column(
            sa.ForeignKey(primary_key, ondelete="CASCADE"), index=True, nullable=False
        ),
        "user": relationship(user_model),
    }
    # Named before the class is declared: the declarative registry keys classes
    # by module and name, so renaming afterwards makes a second model clash.
    ApiToken = types.new_class(
        name, (_ApiTokenColumns, db.Model), exec_body=lambda ns: ns.update(attributes)
    )
    _TOKEN_MODELS[user_model] = ApiToken
    return ApiToken


def resolve_user_model(value: object) -> type[t.Any]:
    """The user model named by ``FLASKSTACK_USER_MODEL`` (a class, a path, or ``None``).

    :raises ConfigError: when it cannot be imported or is not a suitable model.
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
    if not (
        isinstance(model, type) and issubclass(model, UserMixin) and hasattr(model, "__table__")
    ):
        raise ConfigError(
            [
                Problem(
                    "config.E001",
                    "FLASKSTACK_USER_MODEL",
                    repr(value),
                    "a db.Model class that inherits flaskstack.auth.UserMixin",
                    "add UserMixin to the model's bases",
                )
            ]
        )
    return model
