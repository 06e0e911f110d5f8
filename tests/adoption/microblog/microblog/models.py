import secrets
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from microblog import db, login


def _utcnow():
    return datetime.now(timezone.utc).replace(tzinfo=None)


class User(UserMixin, db.Model):
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    username: so.Mapped[str] = so.mapped_column(sa.String(64), index=True, unique=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(120), index=True, unique=True)
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    about_me: so.Mapped[str | None] = so.mapped_column(sa.String(280))
    token: so.Mapped[str | None] = so.mapped_column(sa.String(32), index=True, unique=True)
    token_expiration: so.Mapped[datetime | None]

    posts: so.WriteOnlyMapped["Post"] = so.relationship(back_populates="author")

    def __repr__(self):
        return f"<User {self.username}>"

    def set_password(self, password):
        self.password_hash = generate_password_hash(
            password, current_app.config["PASSWORD_HASH_METHOD"]
        )

    def check_password(self, password):
        return self.password_hash is not None and check_password_hash(self.password_hash, password)

    def get_token(self, expires_in=3600):
        now = _utcnow()
        if (
            self.token
            and self.token_expiration
            and self.token_expiration > now + timedelta(seconds=60)
        ):
            return self.token
        self.token = secrets.token_hex(16)
        self.token_expiration = now + timedelta(seconds=expires_in)
        db.session.add(self)
        return self.token

    def revoke_token(self):
        self.token_expiration = _utcnow() - timedelta(seconds=1)

    @staticmethod
    def check_token(token):
        user = db.session.scalar(sa.select(User).where(User.token == token))
        if user is None or user.token_expiration is None or user.token_expiration < _utcnow():
            return None
        return user

    def to_dict(self):
        return {
            "id": self.id,
            "username": self.username,
            "about_me": self.about_me,
            "post_count": db.session.scalar(
                sa.select(sa.func.count()).select_from(Post).where(Post.user_id == self.id)
            ),
        }


@login.user_loader
def load_user(id):
    return db.session.get(User, int(id))


class Post(db.Model):
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    body: so.Mapped[str] = so.mapped_column(sa.String(140))
    timestamp: so.Mapped[datetime] = so.mapped_column(index=True, default=_utcnow)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey(User.id), index=True)

    author: so.Mapped[User] = so.relationship(back_populates="posts")

    def __repr__(self):
        return f"<Post {self.body}>"

    def to_dict(self):
        return {
            "id": self.id,
            "body": self.body,
            "timestamp": self.timestamp.isoformat() + "Z",
            "author": self.author.username,
        }
