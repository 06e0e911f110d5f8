"""User models."""

import datetime as dt

from flask import current_app
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from fieldnotes.database import Column, PkModel, db, reference_col, relationship


def _utcnow():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Role(PkModel):
    """A role for a user."""

    __tablename__ = "roles"
    name = Column(db.String(80), unique=True, nullable=False)
    user_id = reference_col("users", nullable=True)
    user = relationship("User", backref="roles")

    def __init__(self, name, **kwargs):
        """Create instance."""
        super().__init__(name=name, **kwargs)

    def __repr__(self):
        """Represent instance as a unique string."""
        return f"<Role({self.name})>"


class User(UserMixin, PkModel):
    """A user of the app."""

    __tablename__ = "users"
    username = Column(db.String(80), unique=True, nullable=False)
    email = Column(db.String(80), unique=True, nullable=False)
    password = Column(db.String(255), nullable=True)
    created_at = Column(db.DateTime, nullable=False, default=_utcnow)
    first_name = Column(db.String(64), nullable=True)
    last_name = Column(db.String(64), nullable=True)
    active = Column(db.Boolean(), default=False)
    is_admin = Column(db.Boolean(), default=False)

    def __init__(self, username, email, password=None, **kwargs):
        """Create instance."""
        super().__init__(username=username, email=email, **kwargs)
        if password:
            self.set_password(password)
        else:
            self.password = None

    def set_password(self, password):
        """Set password."""
        self.password = generate_password_hash(
            password, current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
        )

    def check_password(self, value):
        """Check password."""
        return self.password is not None and check_password_hash(self.password, value)

    @property
    def full_name(self):
        """Full user name."""
        return f"{self.first_name} {self.last_name}"

    def __repr__(self):
        """Represent instance as a unique string."""
        return f"<User({self.username!r})>"


class Note(PkModel):
    """A note a user wrote."""

    __tablename__ = "notes"
    body = Column(db.Text, nullable=False)
    created_at = Column(db.DateTime, nullable=False, default=_utcnow)
    user_id = reference_col("users")
    author = relationship("User", backref="notes")
