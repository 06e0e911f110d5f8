"""The admin's audit log: who changed what, and when, written with the change.

The rules it keeps:

- **In the same transaction.** Rows are written from the session's
  ``after_flush`` event, on the flush's own connection: a change that is
  rolled back leaves no entry, and an entry is never missing for a change
  that was committed. At that point the objects have their primary keys
  and their attribute history is still there.
- **Only what the admin did.** The admin's request hook marks the database
  session of an admin request (:func:`watch`); flushes of any other request,
  command or job record nothing, and cost one dictionary lookup.
- **Old and new values.** Each changed column with its value before and
  after; a created row has only new values, a deleted one only old ones.
  Values are stored as JSON (dates in ISO 8601, other types as text);
  columns whose name says they hold a secret (``password``, ``secret``,
  ``token``, ``hash``) are recorded as changed, with their values hidden.
- **Never editable.** The admin shows the log read-only
  (:class:`flaskstack.admin._views.AuditLogView`); rows hold the user's id
  and email as they were, with no foreign key, so deleting a user keeps
  the history of what they did (``user_email`` is the user's id when the
  user model has no email).

The table is ``admin_audit_log`` beside flaskstack's default ``User``, and
``<user table>_admin_audit_log`` beside another user model, declared when
the admin is on: ``flask db migrate`` sees it like flaskstack's other tables.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import types
import typing as t
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from flaskstack.auth import _models as _user_models
from flaskstack.database import db

if t.TYPE_CHECKING:
    from sqlalchemy.orm import Session, UOWTransaction

__all__ = ["audit_model", "watch"]

_WATCH_KEY = "flaskstack.admin.audit"
_SECRET_WORDS = ("password", "secret", "token", "hash")
HIDDEN = "(hidden)"
"""What the log shows instead of a secret column's values."""


class _AuditColumns:
    """One change made in the admin: a row created, changed or deleted."""

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_user_models.now, index=True
    )
    user_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    user_email: Mapped[str] = mapped_column(sa.String(320), default="")
    action: Mapped[str] = mapped_column(sa.String(16))
    model: Mapped[str] = mapped_column(sa.String(255), index=True)
    table_name: Mapped[str] = mapped_column(sa.String(255))
    primary_key: Mapped[str] = mapped_column(sa.String(255), index=True)
    changes: Mapped[dict[str, t.Any]] = mapped_column(sa.JSON, default=dict)
    request_id: Mapped[str] = mapped_column(sa.String(128), default="", index=True)

    def __repr__(self) -> str:
        return f"<AuditEntry {self.action} {self.model} {self.primary_key}>"


_AUDIT_MODELS: dict[type[t.Any], type[t.Any]] = {}


def audit_model(user_model: type[t.Any]) -> type[t.Any]:
    """The audit log's model beside ``user_model`` (declared once per user model)."""
    if user_model not in _AUDIT_MODELS:
        table = "admin_audit_log"
        if user_model is not _user_models._default_user:
            table = f"{sa.inspect(user_model).local_table.name}_admin_audit_log"
        name = f"{user_model.__name__}AdminAuditEntry"
        body = {
            "__module__": user_model.__module__,
            "__qualname__": name,
            "__doc__": _AuditColumns.__doc__,
            "__tablename__": table,
        }
        _AUDIT_MODELS[user_model] = types.new_class(
            name, (_AuditColumns, db.Model), exec_body=lambda ns: ns.update(body)
        )
    return _AUDIT_MODELS[user_model]


class _Watch(t.NamedTuple):
    model: type[t.Any]
    user_id: str | None
    user: str
    request_id: str


def watch(session: Session, model: type[t.Any], user: t.Any, request_id: str) -> None:
    """Record what ``session`` flushes from now on in ``model``, as done by ``user``."""
    key = _user_models.user_key(user)
    label = str(getattr(user, "email", None) or key)
    session.info[_WATCH_KEY] = _Watch(model, None if key is None else str(key), label, request_id)
    _listen()


_listening = False


def _listen() -> None:
    global _listening
    if not _listening:
        # On the session class Flask-SQLAlchemy's scoped session makes: once per process.
        sa.event.listen(db.session, "after_flush", _after_flush)
        _listening = True


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    watching: _Watch | None = session.info.get(_WATCH_KEY)
    if watching is None:
        return
    rows = []
    for action, objects in (
        ("create", session.new),
        ("change", session.dirty),
        ("delete", session.deleted),
    ):
        for obj in objects:
            if isinstance(obj, watching.model):
                continue
            entry = _entry(action, obj)
            if entry is not None:
                rows.append({**entry, **_who(watching)})
    if rows:
        session.connection().execute(sa.insert(watching.model.__table__), rows)


def _who(watching: _Watch) -> dict[str, t.Any]:
    return {
        "at": _user_models.now(),
        "user_id": watching.user_id,
        "user_email": watching.user,
        "request_id": watching.request_id,
    }


def _entry(action: str, obj: t.Any) -> dict[str, t.Any] | None:
    state = sa.inspect(obj)
    mapper = state.mapper
    changes: dict[str, dict[str, t.Any]] = {}
    for attribute in mapper.column_attrs:
        history = state.attrs[attribute.key].history
        if action == "change" and not history.has_changes():
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if action == "create":
            new = getattr(obj, attribute.key)
            if new is None:
                continue
            change = {"new": new}
        elif action == "delete":
            old = history.unchanged[0] if history.unchanged else old
            change = {"old": old}
        else:
            change = {"old": old, "new": new}
        hidden = any(word in attribute.key.lower() for word in _SECRET_WORDS)
        changes[attribute.key] = {k: HIDDEN if hidden else _json(v) for k, v in change.items()}
    if action == "change" and not changes:
        return None  # only a relationship's collection changed: its own rows say what
    identity = mapper.primary_key_from_instance(obj)
    return {
        "action": action,
        "model": mapper.class_.__name__,
        "table_name": mapper.local_table.name if mapper.local_table is not None else "",
        "primary_key": ",".join(str(value) for value in identity),
        "changes": changes,
    }


def _json(value: t.Any) -> t.Any:
    """``value`` as JSON can hold it."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _json(value.value)
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json(item) for key, item in value.items()}
    if isinstance(value, bytes):
        return f"({len(value)} bytes)"
    return str(value)
