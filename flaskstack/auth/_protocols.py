"""What each auth feature needs from a user model, and which features a model gets.

Any Flask-Login user model works with the app's own views and ``user_loader``.
flaskstack's features ask for a little more, each a small protocol; a model
that lacks one simply has that feature off, and ``flask stack check`` says
what to add (``auth.I001`` to ``auth.I003``). flaskstack's
:class:`~flaskstack.auth.UserMixin` provides all of them.

The protocols are read from the class, never by calling the model: a model
is checked at :func:`flaskstack.init_app`, before any user exists.
"""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa

from ._passwords import hash_password, hash_password_unchecked, needs_rehash, verify_password

__all__ = [
    "EmailUser",
    "Features",
    "PasswordChecker",
    "PasswordHashHolder",
    "PasswordSetter",
    "check_password_hash",
    "check_user_password",
    "features_of",
    "set_user_password",
]


@t.runtime_checkable
class PasswordChecker(t.Protocol):
    """Checks its own password: ``check_password(password) -> bool``.

    Rehashing an outdated hash is then the model's business (flaskstack's
    :class:`~flaskstack.auth.UserMixin` does it).
    """

    def check_password(self, password: str) -> bool:
        """Whether ``password`` is the user's."""


@t.runtime_checkable
class PasswordHashHolder(t.Protocol):
    """Keeps a ``werkzeug.security`` hash in ``password_hash``.

    flaskstack checks passwords against it and replaces an outdated hash
    (``FLASKSTACK_PASSWORD_METHOD``) at the next successful sign-in.
    """

    password_hash: str | None


@t.runtime_checkable
class PasswordSetter(t.Protocol):
    """Sets its own password: ``set_password(password)``, hashing it."""

    def set_password(self, password: str) -> None:
        """Hash and store ``password``."""


@t.runtime_checkable
class EmailUser(t.Protocol):
    """Has an ``email`` column, stored lower-cased: the sign-in pages look users up by it."""

    email: str


@dataclasses.dataclass(frozen=True)
class Features:
    """Which auth features a user model supports, and what the others lack.

    :ivar passwords: Password check and rehash: the model is a
        :class:`PasswordChecker` or a :class:`PasswordHashHolder`.
    :ivar pages: The sign-in and registration pages: passwords, a way to set
        one (:class:`PasswordSetter` or :class:`PasswordHashHolder`), and the
        model is an :class:`EmailUser`.
    :ivar tokens: API tokens: the model has a single-column primary key
        (the token table refers to it).
    :ivar session_token: The model has flaskstack's ``session_token`` column:
        sessions and remember-me cookies hold it instead of the primary key,
        so they end when the password changes.
    :ivar missing: For each feature that is off, what the model would need.
    """

    passwords: bool
    pages: bool
    tokens: bool
    session_token: bool
    missing: t.Mapping[str, str]


def _has_method(model: type[t.Any], name: str) -> bool:
    return callable(getattr(model, name, None))


def _has_attribute(model: type[t.Any], name: str) -> bool:
    return getattr(model, name, None) is not None


def features_of(model: type[t.Any]) -> Features:
    """Read the protocols ``model`` (a mapped class) implements."""
    missing: dict[str, str] = {}
    passwords = _has_method(model, "check_password") or _has_attribute(model, "password_hash")
    if not passwords:
        missing["passwords"] = "a check_password(password) method or a password_hash column"
    has_email = _has_attribute(model, "email")
    sets = _has_method(model, "set_password") or _has_attribute(model, "password_hash")
    pages = passwords and sets and has_email
    if not pages:
        needs = [] if has_email else ["an email column"]
        if not passwords:
            needs.append("a check_password(password) method or a password_hash column")
        if not sets:
            needs.append("a set_password(password) method or a password_hash column")
        missing["pages"] = " and ".join(needs)
    primary_key = sa.inspect(model).primary_key
    tokens = len(primary_key) == 1
    if not tokens:
        missing["tokens"] = (
            f"a single-column primary key (it has {len(primary_key)} columns: "
            f"{', '.join(column.name for column in primary_key)})"
        )
    return Features(
        passwords=passwords,
        pages=pages,
        tokens=tokens,
        session_token=_has_attribute(model, "session_token"),
        missing=missing,
    )


def check_user_password(user: t.Any, password: str) -> bool:
    """Whether ``password`` is ``user``'s, by whichever protocol the model follows.

    With ``password_hash`` only, an outdated hash is replaced (commit to keep it).
    """
    if _has_method(type(user), "check_password"):
        return bool(user.check_password(password))
    return check_password_hash(user, password)


def check_password_hash(user: t.Any, password: str) -> bool:
    """Whether ``password`` matches ``user.password_hash``; an outdated hash is redone.

    Commit to keep the new hash.
    """
    stored: str | None = user.password_hash
    if not verify_password(stored, password):
        return False
    if stored is not None and needs_rehash(stored):
        user.password_hash = hash_password_unchecked(password)
    return True


def set_user_password(user: t.Any, password: str) -> None:
    """Give ``user`` the password ``password``: ``set_password``, else ``password_hash``.

    :raises flaskstack.auth.PasswordPolicyError: when the password is too
        short or too long (with ``password_hash``; ``set_password`` applies
        the model's own policy).
    """
    if _has_method(type(user), "set_password"):
        user.set_password(password)
    else:
        user.password_hash = hash_password(password)
