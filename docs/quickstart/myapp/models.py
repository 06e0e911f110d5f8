"""The app's tables, declared on flaskstack.db."""

from datetime import datetime

import sqlalchemy as sa
from flaskstack import db
from flaskstack.auth import User
from sqlalchemy.orm import Mapped, mapped_column, relationship


class Note(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    author_id: Mapped[int] = mapped_column(sa.ForeignKey(User.id))
    author: Mapped[User] = relationship()
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
