"""The sample app's one table."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from flaskstack import db

__all__ = ["Note"]


class Note(db.Model):  # type: ignore[name-defined,misc]
    """A note with a title."""

    __tablename__ = "sample_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
