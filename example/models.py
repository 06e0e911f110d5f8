"""The example app's tables, declared on :data:`flaskstack.db`."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from flaskstack import db

__all__ = ["Note"]


class Note(db.Model):  # type: ignore[name-defined,misc]
    """A short text note."""

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    body: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    # CURRENT_TIMESTAMP is UTC on SQLite and means the same on PostgreSQL,
    # so the migration generated from it runs on both.
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()
    )

    def to_dict(self) -> dict[str, object]:
        """The note as JSON-ready data; ``created_at`` in ISO 8601 with its UTC offset."""
        created = self.created_at
        if created.tzinfo is None:  # SQLite keeps no offset; its CURRENT_TIMESTAMP is UTC
            created = created.replace(tzinfo=dt.timezone.utc)
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "created_at": created.isoformat(),
        }
