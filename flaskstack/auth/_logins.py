"""Signed-in devices: one login record per sign-in, remember-me per device, sign out everywhere.

Every sign-in through :func:`flaskstack.auth.login_user` creates a *login*:
a row of the login model made for the user model (:func:`login_model`;
table ``user_logins`` for the default ``User``, ``<user table>_logins``
otherwise), whose random public ``key`` the session keeps. The session is
the user's only while that row exists: revoking a login (signing out, "sign
out everywhere", revoking one device from another) ends the session it
belongs to at its next request, wherever the session lives.

Remember-me is per login too. The cookie is Flask-Login's (its name and
``REMEMBER_COOKIE_*`` settings keep their meaning), but it no longer holds
the user's id: it holds ``flaskstack-login:<key>.<secret>``, signed as
Flask-Login signs its cookies, and the row keeps only a SHA-256 of the
secret. Using the cookie signs in (the session gets a new id) and replaces
the secret, so a copied cookie works at most once: when the device and a
copy both present the same secret, the second to come is a replay, and the
login is revoked (a warning on the ``flaskstack.auth`` logger says so).
A cookie of a revoked or expired login is refused and cleared.

Adoption: a Flask-Login cookie from before (holding the user's id) still
signs in until it expires, and is replaced by a login of its own at that
sign-in; a session from before has no login key and keeps working until it
ends, or until :func:`revoke_logins` changes the user's ``session_token``.

The rules this module keeps:

- No extra cost per request: a signed-in request loads the user and checks
  its login in one SQL statement (``auth/_manager.py``); ``last_used_at``
  is written at most once an hour, and only when the request has not
  started a transaction of its own (the write is committed at once).
- Writes that must outlive the request commit at once: :func:`start` (a
  sign-in) and a remember-me sign-in commit the database session; the
  public revoke functions only add their changes (commit to keep them).
- The feature needs a user model with a single-column primary key (as API
  tokens do); without one it is off, Flask-Login's remember-me works as it
  always did, and ``flask stack check`` says so (``auth.I005``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import typing as t

import flask_login
import flask_login.config
import sqlalchemy as sa
from flask import after_this_request, current_app, has_request_context, request, session
from sqlalchemy.orm import Mapped, mapped_column

from flaskstack._state import current_state
from flaskstack.database import db

from . import _models
from ._models import aware

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

__all__ = [
    "COOKIE_PREFIX",
    "SESSION_KEY",
    "current_key",
    "end_current",
    "login_model",
    "logins_of",
    "note_use",
    "revoke_login",
    "revoke_logins",
    "sign_in_by_cookie",
    "start",
]

SESSION_KEY = "_flaskstack_login"
"""The session key holding the key of the session's login."""

COOKIE_PREFIX = "flaskstack-login:"
"""What starts the id in a remember-me cookie of a login (a user id never has a colon)."""

_LAST_USED_RESOLUTION = dt.timedelta(hours=1)
_REPLAY_GRACE = dt.timedelta(seconds=10)
"""A stale secret this soon after the secret changed is refused without revoking the login.

Two requests a browser sends at once with the same cookie (tabs restored
together) would otherwise look like a replay, and sign the device out.
"""
_USER_AGENT_LENGTH = 255
_logger = logging.getLogger("flaskstack.auth")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class _LoginColumns:
    """A signed-in device: its session and, with remember-me, its cookie's hashed secret."""

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(32), unique=True)
    remember_hash: Mapped[str | None] = mapped_column(sa.String(64))
    remember_expires_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_models.now, server_default=sa.func.now()
    )
    last_used_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_models.now, server_default=sa.func.now()
    )
    user_agent: Mapped[str | None] = mapped_column(sa.String(_USER_AGENT_LENGTH))
    address: Mapped[str | None] = mapped_column(sa.String(64))
    session_token_hash: Mapped[str | None] = mapped_column(sa.String(64))
    """SHA-256 of the user's ``session_token`` at sign-in: a new password ends the login."""

    @property
    def remembered(self) -> bool:
        """Whether the device holds a remember-me cookie that has not expired."""
        expires = self.remember_expires_at
        return (
            self.remember_hash is not None
            and expires is not None
            and aware(expires) > _models.now()
        )

    def __repr__(self) -> str:
        return f"<Login {self.key} of user {self.user_id}>"  # type: ignore[attr-defined]


def login_model(user_model: type[t.Any]) -> type[t.Any]:
    """The login model for ``user_model`` (made once per user model).

    For the default ``User`` its table is ``user_logins``; for another user
    model ``<user table>_logins``. The user model needs a single-column
    primary key.
    """
    return _models.rows_model_of(user_model, "Login", ("user_logins", "logins"), _LoginColumns)


def _model() -> type[t.Any] | None:
    return current_state().auth.login_model


# -- the cookie --------------------------------------------------------------------------


def _cookie_name() -> str:
    return str(current_app.config.get("REMEMBER_COOKIE_NAME", flask_login.config.COOKIE_NAME))


def _duration() -> dt.timedelta:
    duration = current_app.config.get(
        "REMEMBER_COOKIE_DURATION", flask_login.config.COOKIE_DURATION
    )
    if isinstance(duration, (int, float)):
        duration = dt.timedelta(seconds=duration)
    return t.cast("dt.timedelta", duration)


def _set_cookie(value: str, expires: dt.datetime) -> None:
    """Send the remember-me cookie with this response, as Flask-Login would send its own."""
    config = current_app.config
    name = _cookie_name()
    signed = flask_login.encode_cookie(COOKIE_PREFIX + value)

    @after_this_request
    def send(response: Response) -> Response:
        response.set_cookie(
            name,
            value=signed,
            expires=expires,
            domain=config.get("REMEMBER_COOKIE_DOMAIN"),
            path=config.get("REMEMBER_COOKIE_PATH", "/"),
            secure=config.get("REMEMBER_COOKIE_SECURE", flask_login.config.COOKIE_SECURE),
            httponly=config.get("REMEMBER_COOKIE_HTTPONLY", flask_login.config.COOKIE_HTTPONLY),
            samesite=config.get("REMEMBER_COOKIE_SAMESITE", flask_login.config.COOKIE_SAMESITE),
        )
        return response


def _clear_cookie() -> None:
    # Flask-Login's own note: its after-request hook deletes its cookie.
    session["_remember"] = "clear"


def _request_cookie() -> str | None:
    """The remember-me cookie's payload when the request carries a valid signed one."""
    raw = request.cookies.get(_cookie_name())
    return None if not raw else flask_login.decode_cookie(raw)


def _cookie_login_key() -> str | None:
    payload = _request_cookie()
    if payload is None or not payload.startswith(COOKIE_PREFIX):
        return None
    return payload[len(COOKIE_PREFIX) :].partition(".")[0] or None


# -- signing in and out ---------------------------------------------------------------------


def _active(model: type[t.Any], now: dt.datetime) -> sa.ColumnElement[bool]:
    """Logins whose session may still live, or whose remember-me cookie has not expired."""
    lifetime = current_app.permanent_session_lifetime
    return sa.or_(
        model.last_used_at > now - lifetime,
        sa.and_(model.remember_hash.is_not(None), model.remember_expires_at > now),
    )


def start(user: t.Any, remember: bool) -> None:
    """Record a sign-in of ``user`` on this device; with ``remember``, send its cookie. Commits.

    The session must already be the user's (Flask-Login's keys written).
    A login this session or this device's cookie had for the same user is
    replaced; the user's logins that ended long ago are deleted.
    """
    model = t.cast("type[t.Any]", _model())
    now = _models.now()
    user_id = _models.user_key(user)
    replaced = {key for key in (session.get(SESSION_KEY), _cookie_login_key()) if key}
    stale = sa.not_(_active(model, now))
    if replaced:
        stale = sa.or_(stale, model.key.in_(replaced))
    db.session.execute(
        sa.delete(model).where(model.user_id == user_id, stale),
        execution_options={"synchronize_session": False},
    )
    record = model(
        user_id=user_id,
        key=secrets.token_urlsafe(16),
        created_at=now,
        last_used_at=now,
        user_agent=request.user_agent.string[:_USER_AGENT_LENGTH] or None,
        address=request.remote_addr,
        session_token_hash=_token_hash(user),
    )
    secret = None
    if remember:
        secret = secrets.token_urlsafe(32)
        record.remember_hash = _hash(secret)
        record.remember_expires_at = now + _duration()
    db.session.add(record)
    db.session.commit()
    session[SESSION_KEY] = record.key
    if secret is not None:
        _set_cookie(f"{record.key}.{secret}", record.remember_expires_at)


def sign_in_by_cookie(value: str) -> t.Any | None:
    """The user whose login the remember-me cookie ``value`` (``<key>.<secret>``) proves.

    Called by the ``user_loader`` with what Flask-Login found in its cookie,
    after Flask-Login wrote it into the session as the user id. On success
    the session holds the user and the login, the secret is replaced (a new
    cookie goes out) and the change committed; otherwise the session is
    left without a user and the cookie is cleared.
    """
    model = _model()
    key, _, secret = value.partition(".")
    row = None
    if model is not None and 0 < len(key) <= 32 and 0 < len(secret) <= 100:
        users = t.cast("type[t.Any]", current_state().auth.user_model)
        statement = sa.select(users, model).join_from(model, users, model.user)
        row = db.session.execute(statement.where(model.key == key)).one_or_none()
    if row is None:
        _refuse()
        return None
    user, record = row
    now = _models.now()
    if not _same_token(record, user):
        # The password (and so the session_token) changed since: the login ended.
        db.session.delete(record)
        db.session.commit()
        _refuse()
        return None
    if record.remember_hash is None or not hmac.compare_digest(_hash(secret), record.remember_hash):
        if record.remember_hash is not None and now - aware(record.last_used_at) > _REPLAY_GRACE:
            _logger.warning(
                "A remember-me cookie of login %s was used again after it was replaced: it was "
                "copied. The login is revoked; its user signs in again on that device.",
                record.key,
            )
            db.session.delete(record)
            db.session.commit()
        _refuse()
        return None
    expires = record.remember_expires_at
    if expires is None or aware(expires) <= now or not user.is_active:
        _refuse()
        return None
    secret = secrets.token_urlsafe(32)
    record.remember_hash = _hash(secret)
    record.last_used_at = now
    record.address = request.remote_addr
    db.session.commit()
    session["_user_id"] = user.get_id()
    session[SESSION_KEY] = record.key
    _set_cookie(f"{record.key}.{secret}", aware(expires))
    return user


def _token_hash(user: t.Any) -> str | None:
    if not _has_session_token():
        return None
    return _hash(str(user.session_token))


def _same_token(record: t.Any, user: t.Any) -> bool:
    expected = record.session_token_hash
    return expected is None or hmac.compare_digest(expected, _token_hash(user) or "")


def _refuse() -> None:
    # Flask-Login wrote the cookie's value into the session before asking.
    for name in ("_user_id", "_fresh", SESSION_KEY):
        session.pop(name, None)
    _clear_cookie()


def note_use(login_id: int, last_used_at: dt.datetime) -> None:
    """Record that login ``login_id`` was just used, at most once per hour; commits.

    Called by the ``user_loader`` with what its one statement read, so a
    signed-in request costs a write only when the hour has passed; only for
    a request that had not begun a transaction of its own before that
    statement (the write is committed at once).
    """
    now = _models.now()
    if now - aware(last_used_at) <= _LAST_USED_RESOLUTION:
        return
    model = t.cast("type[t.Any]", _model())
    db.session.execute(sa.update(model).where(model.id == login_id).values(last_used_at=now))
    db.session.commit()


def adopt_cookie_sign_in(user: t.Any) -> None:
    """After a sign-in by a Flask-Login cookie from before: give the device a login of its own.

    The old cookie is replaced by one of the login's, until the same expiry
    a new remember-me cookie gets.
    """
    if _model() is None or SESSION_KEY in session:
        return
    start(user, remember=True)


def end_current(user: t.Any) -> None:
    """Revoke the login of this session and of this device's cookie (sign out). Commits.

    A session from before logins existed, on a device holding a Flask-Login
    cookie from before, cannot be told apart from the user's other sessions
    of that kind: the user's ``session_token`` is changed, which ends them
    all, so that a copy of that cookie is worthless too.
    """
    model = _model()
    if model is None or not getattr(user, "is_authenticated", False):
        return
    keys = {key for key in (session.get(SESSION_KEY), _cookie_login_key()) if key}
    if keys:
        db.session.execute(
            sa.delete(model).where(model.user_id == _models.user_key(user), model.key.in_(keys)),
            execution_options={"synchronize_session": False},
        )
    elif _request_cookie() == user.get_id() and _has_session_token():
        user.session_token = _models._new_session_token()
    else:
        return
    db.session.commit()


# -- the public functions -------------------------------------------------------------------


def _required() -> type[t.Any]:
    model = _model()
    if model is None:
        raise LookupError(
            "signed-in devices are not tracked for this app: it uses its own LoginManager, or "
            "its user model has no single-column primary key (flask stack check says which)"
        )
    return model


def current_key() -> str | None:
    """The key of the current session's login, or ``None`` (no request, no login)."""
    if not has_request_context():
        return None
    key = session.get(SESSION_KEY)
    return key if isinstance(key, str) else None


def logins_of(user: t.Any) -> list[t.Any]:
    """``user``'s active logins (signed-in devices), most recently used first.

    A login is active while its session may still live (used within
    ``PERMANENT_SESSION_LIFETIME``) or its remember-me cookie has not expired.

    :raises LookupError: when logins are off for the app.
    """
    model = _required()
    statement = (
        sa.select(model)
        .where(model.user_id == _models.user_key(user), _active(model, _models.now()))
        .order_by(model.last_used_at.desc(), model.id.desc())
    )
    logins = db.session.execute(statement).scalars()
    return [login for login in logins if _same_token(login, user)]


def revoke_login(user: t.Any, key: str) -> bool:
    """Sign ``user``'s device with login ``key`` out; whether there was one.

    Its session ends at its next request and its remember-me cookie is
    refused. Commit to keep it.

    :raises LookupError: when logins are off for the app.
    """
    model = _required()
    result = db.session.execute(
        sa.delete(model).where(model.user_id == _models.user_key(user), model.key == key),
        execution_options={"synchronize_session": False},
    )
    return bool(t.cast("sa.CursorResult[t.Any]", result).rowcount)


def revoke_logins(user: t.Any, *, keep_current: bool = False, api_tokens: bool = False) -> int:
    """Sign ``user`` out everywhere; the number of logins revoked. Commit to keep it.

    Every login of the user is revoked (sessions and remember-me cookies),
    except, with ``keep_current``, the current request's when it is the
    user's; with ``api_tokens``, every API token of the user is revoked too.
    Where the model has a ``session_token`` it is replaced, which also ends
    sessions and Flask-Login cookies from before logins existed; the current
    session, when kept, is moved to the new value.

    :raises LookupError: when logins are off for the app.
    """
    model = _required()
    user_id = _models.user_key(user)
    current = _current_key_of(user) if keep_current else None
    condition = model.user_id == user_id
    if current is not None:
        condition = sa.and_(condition, model.key != current)
    result = db.session.execute(
        sa.delete(model).where(condition), execution_options={"synchronize_session": False}
    )
    if api_tokens:
        tokens = current_state().auth.api_token_model
        if tokens is not None:
            db.session.execute(
                sa.update(tokens)
                .where(tokens.user_id == user_id, tokens.revoked_at.is_(None))
                .values(revoked_at=_models.now()),
                execution_options={"synchronize_session": False},
            )
    if _has_session_token():
        user.session_token = _models._new_session_token()
        if current is not None:
            db.session.execute(
                sa.update(model)
                .where(model.key == current)
                .values(session_token_hash=_token_hash(user)),
                execution_options={"synchronize_session": False},
            )
        if keep_current and _is_current_user(user):
            session["_user_id"] = user.get_id()
    return int(t.cast("sa.CursorResult[t.Any]", result).rowcount)


def _has_session_token() -> bool:
    features = current_state().auth.features
    return features is not None and features.session_token


def _is_current_user(user: t.Any) -> bool:
    """Whether the current request is signed in (by its session) as ``user``."""
    if not has_request_context() or "_user_id" not in session:
        return False
    current = flask_login.current_user._get_current_object()
    if not current.is_authenticated or type(current) is not type(user):
        return False
    return bool(_models.user_key(current) == _models.user_key(user))


def _current_key_of(user: t.Any) -> str | None:
    """The current session's login key when the session is ``user``'s."""
    key = current_key()
    return key if key is not None and _is_current_user(user) else None
