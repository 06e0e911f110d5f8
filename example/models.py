"""Conduit's tables, declared on :data:`flaskstack.db`.

Users are the app's own model (``FLASKSTACK_USER_MODEL = "example.models:User"``):
:class:`flaskstack.auth.UserMixin` brings the email, the password hash and the
session token; Conduit adds a username, a bio and an image. Articles have a
unique slug made from their title; tags, favourites and follows are plain
association tables.

Times are stored as UTC with their time zone. SQLite hands them back naive;
:func:`utc` puts the zone back wherever they are shown.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import typing as t
import unicodedata

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flaskstack import Model, db
from flaskstack.auth import UserMixin, normalise_email

__all__ = [
    "IMAGE_URL_PATTERN",
    "USERNAME_PATTERN",
    "USERNAME_RULE",
    "Article",
    "Comment",
    "Tag",
    "User",
    "article_tags",
    "email_taken",
    "favorites",
    "follows",
    "slugify",
    "storable",
    "unique_slug",
    "username_taken",
    "utc",
]

USERNAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}"
"""What a username looks like: it appears in URLs (``/profiles/<username>``)."""

USERNAME_RULE = "Use up to 40 letters, digits, '.', '_' or '-', starting with a letter or digit."
"""How to meet :data:`USERNAME_PATTERN`, in words."""

IMAGE_URL_PATTERN = r"(https?://\S+)?"
"""A profile image: an http(s) URL, or empty for none (pages show an initial instead)."""

SLUG_MAX_LENGTH = 255
# Slugs that would hide another route under /api/articles/.
_RESERVED_SLUGS = frozenset({"feed"})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` as an aware UTC datetime (SQLite returns stored UTC times naive)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


follows = sa.Table(
    "follow",
    db.metadata,
    sa.Column(
        "follower_id", sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "followed_id",
        sa.ForeignKey("user_account.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)
"""Who follows whom: one row per (follower, followed) pair."""

favorites = sa.Table(
    "favorite",
    db.metadata,
    sa.Column("user_id", sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "article_id", sa.ForeignKey("article.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
)
"""Which user favourited which article."""

article_tags = sa.Table(
    "article_tag",
    db.metadata,
    sa.Column("article_id", sa.ForeignKey("article.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag_id", sa.ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True),
)
"""The tags of each article."""


class User(UserMixin, Model):
    """A Conduit user: flaskstack's account columns plus a public profile.

    A user created without a username (the sign-up page asks only for an
    email and a password) gets one made from the email's local part when it
    is first saved; it can be changed on the settings page.
    """

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(40), unique=True)
    bio: Mapped[str] = mapped_column(sa.Text, default="")
    image: Mapped[str] = mapped_column(sa.String(500), default="")

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"


class Tag(Model):
    """A tag, shared by every article that carries it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)


class Article(Model):
    """An article; its slug is its address."""

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(SLUG_MAX_LENGTH), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.String(500))
    body: Mapped[str] = mapped_column(sa.Text)
    author_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_now, index=True
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_now, onupdate=_now
    )

    author: Mapped[User] = relationship(User, lazy="joined", innerjoin=True)
    tags: Mapped[list[Tag]] = relationship(Tag, secondary=article_tags, lazy="selectin")

    @property
    def tag_list(self) -> list[str]:
        """The names of the article's tags, sorted."""
        return sorted(tag.name for tag in self.tags)

    def __repr__(self) -> str:
        return f"<Article {self.id} {self.slug!r}>"


class Comment(Model):
    """A comment on an article."""

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(sa.Text)
    article_id: Mapped[int] = mapped_column(
        sa.ForeignKey("article.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=_now, onupdate=_now
    )

    author: Mapped[User] = relationship(User, lazy="joined", innerjoin=True)
    article: Mapped[Article] = relationship(Article)


# -- slugs and usernames ----------------------------------------------------------------


def storable(text: str) -> bool:
    """Whether the databases can store ``text``: PostgreSQL refuses the NUL character and
    neither database takes a lone surrogate (which JSON's ``\\ud800`` escapes can produce)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def slugify(text: str, max_length: int = 80) -> str:
    """A URL-safe slug of ``text``: lower-case ASCII words joined by hyphens.

    ``"How to train your dragon"`` gives ``"how-to-train-your-dragon"``;
    text without a letter or digit gives ``"article"``.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = "-".join(words)[:max_length].strip("-")
    return slug or "article"


def unique_slug(title: str, connection: sa.Connection | None = None) -> str:
    """A slug for ``title`` that no article has; a random suffix when the plain one is taken."""
    base = slugify(title)
    candidate = base
    while candidate in _RESERVED_SLUGS or _slug_taken(candidate, connection):
        candidate = f"{base}-{secrets.token_hex(3)}"
    return candidate


def _slug_taken(slug: str, connection: sa.Connection | None) -> bool:
    query = sa.select(Article.id).where(Article.slug == slug)
    executor: t.Any = connection if connection is not None else db.session
    return executor.execute(query).first() is not None


def username_taken(username: str, *, exclude: User | None = None) -> bool:
    """Whether another user has ``username``, ignoring case (``Alice`` and ``alice`` clash)."""
    query = sa.select(User.id).where(sa.func.lower(User.username) == username.lower())
    if exclude is not None and exclude.id is not None:
        query = query.where(User.id != exclude.id)
    return db.session.execute(query).first() is not None


def email_taken(email: str, *, exclude: User | None = None) -> bool:
    """Whether another user has ``email`` (compared normalised, as it is stored)."""
    query = sa.select(User.id).where(User.email == normalise_email(email))
    if exclude is not None and exclude.id is not None:
        query = query.where(User.id != exclude.id)
    return db.session.execute(query).first() is not None


def _username_from_email(connection: sa.Connection, email: str) -> str:
    local = email.partition("@")[0]
    ascii_local = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode("ascii")
    base = re.sub(r"[^A-Za-z0-9_.-]", "", ascii_local).lstrip("_.-")[:32] or "user"
    candidate = base
    while connection.execute(
        sa.select(User.id).where(sa.func.lower(User.username) == candidate.lower())
    ).first():
        candidate = f"{base}{secrets.randbelow(10_000)}"
    return candidate


@event.listens_for(User, "before_insert")
def _give_username(mapper: t.Any, connection: sa.Connection, user: User) -> None:
    """Users signing up with an email only get a username made from it."""
    if not user.username:
        user.username = _username_from_email(connection, user.email or "")
