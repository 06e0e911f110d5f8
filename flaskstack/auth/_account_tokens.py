"""The one-time links of the account flows, and the addresses users confirmed.

A link sent by email (password reset, email confirmation, a change of
address) carries a random token; only its SHA-256 is stored, with what it is
for, the address it was sent to and when it stops working. The rules:

- **One use.** Redeeming a token deletes it, in the same transaction as what
  it does.
- **The newest link wins.** Issuing a token deletes the user's earlier ones
  for the same purpose.
- **Credentials void it.** A reset token carries a digest of the password
  hash it was issued under, so any new password voids it, however it was
  set (a flow of flaskstack's, the app's own code, the CLI); a change of
  address deletes every token sent to the old one.
- **It never outlives its purpose.** A confirmation token works only while
  the user's address is still the one it was sent to.

Which addresses a user confirmed is kept beside the user model, in a table
of flaskstack's, so a user model needs no new column: upgrading flaskstack
adds tables, and changes none of the app's.

Both models are made per user model (like the API token model): for
flaskstack's default ``User`` their tables are ``account_tokens`` and
``confirmed_emails``; for another user model they are
``<user table>_account_tokens`` and ``<user table>_confirmed_emails``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from flaskstack.database import db

from ._models import aware, now, rows_model_of, user_key

__all__ = [
    "CHANGE_EMAIL",
    "CONFIRM",
    "RESET",
    "AccountModels",
    "account_models",
    "confirm_address",
    "is_confirmed",
    "issue",
    "redeem",
    "void",
]

RESET = "reset"
"""The purpose of a password reset token."""
CONFIRM = "confirm"
"""The purpose of an email confirmation token (the address the user has)."""
CHANGE_EMAIL = "change-email"
"""The purpose of a token confirming a new address (``email`` is the new one)."""

_TOKEN_BYTES = 32


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class _AccountTokenColumns:
    """A one-time link of an account flow; only the token's SHA-256 is stored."""

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(sa.String(32))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=now, server_default=sa.func.now()
    )
    expires_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    """For a reset token, a digest of the password hash it was issued under."""

    def __repr__(self) -> str:
        return f"<AccountToken {self.id} {self.purpose} of user {self.user_id}>"  # type: ignore[attr-defined]


class _ConfirmedEmailColumns:
    """An address a user proved to own, by following the link sent to it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    confirmed_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=now, server_default=sa.func.now()
    )

    def __repr__(self) -> str:
        return f"<ConfirmedEmail {self.email!r} of user {self.user_id}>"  # type: ignore[attr-defined]


class AccountModels(t.NamedTuple):
    """The models of the account flows for one user model."""

    token: type[t.Any]
    confirmed_email: type[t.Any]


def account_models(user_model: type[t.Any]) -> AccountModels:
    """The account token and confirmed-email models for ``user_model`` (made once each).

    For the default ``User`` the tables are ``account_tokens`` and
    ``confirmed_emails``; for another model ``<user table>_account_tokens``
    and ``<user table>_confirmed_emails``.
    """
    token = rows_model_of(
        user_model, "AccountToken", ("account_tokens", "account_tokens"), _AccountTokenColumns
    )
    confirmed = rows_model_of(
        user_model,
        "ConfirmedEmail",
        ("confirmed_emails", "confirmed_emails"),
        _ConfirmedEmailColumns,
        __table_args__=(sa.UniqueConstraint("user_id", "email"),),
    )
    return AccountModels(token, confirmed)


def fingerprint(user: t.Any) -> str | None:
    """A digest of ``user``'s password hash: it changes whenever the password does.

    ``None`` for a user model that checks passwords itself (no ``password_hash``).
    """
    stored = getattr(user, "password_hash", None)
    return None if stored is None else _digest(f"password\0{stored}")


def new_token() -> str:
    """A new random token for a link (256 bits, URL-safe)."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def issue(
    models: AccountModels,
    user: t.Any,
    purpose: str,
    email: str,
    max_age: float,
    *,
    token: str | None = None,
) -> str:
    """A new token for ``user`` and ``purpose``, sent to ``email``; earlier ones are deleted.

    Added to the database session, not committed: commit with what goes with it.
    """
    model = models.token
    user_id = user_key(user)
    db.session.execute(sa.delete(model).where(model.user_id == user_id, model.purpose == purpose))
    token = new_token() if token is None else token
    db.session.add(
        model(
            user_id=user_id,
            purpose=purpose,
            token_hash=_digest(token),
            email=email,
            expires_at=now() + dt.timedelta(seconds=max_age),
            fingerprint=fingerprint(user) if purpose == RESET else None,
        )
    )
    return token


def peek(models: AccountModels, token: str, purpose: str) -> t.Any | None:
    """The live token row for ``token`` and ``purpose``, or ``None``; nothing changes."""
    if not token or len(token) > 128:
        return None
    model = models.token
    row = db.session.execute(
        sa.select(model).where(model.token_hash == _digest(token), model.purpose == purpose)
    ).scalar_one_or_none()
    if row is None:
        return None
    return row if aware(row.expires_at) > now() else None


def redeem(models: AccountModels, token: str, purpose: str) -> t.Any | None:
    """The live token row for ``token``, deleted (not committed); ``None`` if there is none.

    Only the request whose ``DELETE`` removed the row gets it: two requests
    with the same token cannot both redeem it.
    """
    row = peek(models, token, purpose)
    if row is None:
        return None
    result = db.session.execute(sa.delete(models.token).where(models.token.id == row.id))
    deleted = t.cast("sa.CursorResult[t.Any]", result).rowcount
    return row if deleted == 1 else None


def void(models: AccountModels, user: t.Any, *purposes: str) -> None:
    """Delete ``user``'s tokens for ``purposes`` (all of them without any); not committed."""
    model = models.token
    statement = sa.delete(model).where(model.user_id == user_key(user))
    if purposes:
        statement = statement.where(model.purpose.in_(purposes))
    db.session.execute(statement)


def is_confirmed(models: AccountModels, user: t.Any) -> bool:
    """Whether ``user`` confirmed the address they have now."""
    model = models.confirmed_email
    found = db.session.execute(
        sa.select(model.id).where(model.user_id == user_key(user), model.email == user.email)
    ).first()
    return found is not None


def confirm_address(models: AccountModels, user: t.Any, email: str) -> None:
    """Record that ``user`` owns ``email`` (idempotent; not committed)."""
    model = models.confirmed_email
    user_id = user_key(user)
    exists = db.session.execute(
        sa.select(model.id).where(model.user_id == user_id, model.email == email)
    ).first()
    if exists is None:
        db.session.add(model(user_id=user_id, email=email))
