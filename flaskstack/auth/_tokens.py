"""API tokens: create, authenticate, list and revoke.

A token is ``fst_`` followed by 256 random bits, shown once at creation.
The database keeps its SHA-256 (a fast hash is enough for a random secret
that long) and a short prefix to recognise it in lists. Authentication
looks the hash up and compares it again in constant time; a revoked or
expired token, or one whose user is inactive, authenticates nobody.
``last_used_at`` is written at most once a minute per token, so an API
read does not turn into a write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import typing as t
import weakref

import sqlalchemy as sa

from flaskstack._credentials import request_api_token
from flaskstack._state import current_state
from flaskstack.database import _first_read, db

from ._models import aware, user_model

__all__ = ["TOKEN_PREFIX", "authenticate", "create_token", "request_token", "revoke_token"]

TOKEN_PREFIX = "fst_"
_LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _models() -> tuple[type[t.Any], type[t.Any]]:
    return user_model(), current_state().auth.token_model


def create_token(
    user: t.Any, name: str, expires_in: dt.timedelta | None = None
) -> tuple[str, t.Any]:
    """Create a token for ``user``; return the token (shown once) and its record.

    The record is added to the session; commit to keep it.
    """
    _, model = _models()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.timezone.utc)
    record = model(
        user=user,
        name=name,
        token_hash=_hash(token),
        prefix=token[: len(TOKEN_PREFIX) + 6],
        expires_at=None if expires_in is None else now + expires_in,
    )
    db.session.add(record)
    return token, record


def authenticate(token: str) -> t.Any | None:
    """The active user ``token`` belongs to, or ``None``."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    users, tokens = _models()
    digest = _hash(token)
    with _first_read():
        row = db.session.execute(_lookup_statement(users, tokens), {"digest": digest}).one_or_none()
    if row is None:
        return None
    user, token_id, token_hash, revoked_at, expires_at, last_used_at = row
    if not hmac.compare_digest(token_hash, digest):
        return None
    now = dt.datetime.now(dt.timezone.utc)
    if revoked_at is not None:
        return None
    if expires_at is not None and aware(expires_at) <= now:
        return None
    if not user.is_active:
        return None
    if last_used_at is None or now - aware(last_used_at) > _LAST_USED_RESOLUTION:
        db.session.execute(sa.update(tokens).where(tokens.id == token_id).values(last_used_at=now))
        db.session.commit()
    return user


_lookups: weakref.WeakKeyDictionary[type[t.Any], sa.Select[t.Any]] = weakref.WeakKeyDictionary()


def _lookup_statement(users: type[t.Any], tokens: type[t.Any]) -> sa.Select[t.Any]:
    # One statement: the user, and of the token only what is checked (no
    # second entity to build). Built once per model, so SQLAlchemy computes
    # its cache key once, not on every request.
    statement = _lookups.get(tokens)
    if statement is None:
        statement = _lookups[tokens] = t.cast(
            "sa.Select[t.Any]",
            sa.select(
                users,
                tokens.id,
                tokens.token_hash,
                tokens.revoked_at,
                tokens.expires_at,
                tokens.last_used_at,
            )
            .join_from(tokens, users, tokens.user)
            .where(tokens.token_hash == sa.bindparam("digest")),
        )
    return statement


def revoke_token(record: t.Any) -> None:
    """Mark ``record`` revoked (commit to keep it); it authenticates nobody from now on."""
    if record.revoked_at is None:
        record.revoked_at = dt.datetime.now(dt.timezone.utc)


request_token = request_api_token
"""The API token the request authenticates with, or ``None``.

The one rule for it lives in :mod:`flaskstack._credentials`; this name stays
importable from here.
"""
