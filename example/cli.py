"""``flask example …``: commands of the reference app."""

from __future__ import annotations

import dataclasses
import datetime as dt

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from flaskstack import db

from . import caching
from .models import Article, Comment, Tag, User, favorites, follows

__all__ = ["DEMO_ARTICLES", "DEMO_PASSWORD", "DEMO_USERS", "example"]

DEMO_PASSWORD = "conduit-demo-password"
"""The password of every demo user (they are for trying the app out, never for production)."""


@dataclasses.dataclass(frozen=True)
class DemoUser:
    """A demo user."""

    username: str
    email: str
    bio: str


@dataclasses.dataclass(frozen=True)
class DemoArticle:
    """A demo article, with who wrote, favourited and commented on it."""

    slug: str
    author: str
    title: str
    description: str
    body: str
    tags: tuple[str, ...]
    hours_ago: int
    favourited_by: tuple[str, ...] = ()
    comments: tuple[tuple[str, str], ...] = ()


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("ada", "ada@example.com", "Writes about engines, analytical and otherwise."),
    DemoUser("grace", "grace@example.com", "Compilers, debugging, and the odd moth."),
    DemoUser("linus", "linus@example.com", "Kernels and version control."),
)

DEMO_FOLLOWS: tuple[tuple[str, str], ...] = (
    ("ada", "grace"),
    ("grace", "ada"),
    ("linus", "ada"),
)
"""(follower, followed) pairs."""

DEMO_ARTICLES: tuple[DemoArticle, ...] = (
    DemoArticle(
        slug="welcome-to-conduit",
        author="ada",
        title="Welcome to Conduit",
        description="The reference app of flaskstack, in one article.",
        body=(
            "Conduit is a small Medium clone: sign up, write articles with tags, follow "
            "other writers, favourite and comment.\n\n"
            "Every page here is a Flask view on flaskstack: sessions, CSRF, the cache and "
            "the database come from one call to flaskstack.init_app. The same content is "
            "served as JSON under /api, the RealWorld API."
        ),
        tags=("flaskstack", "welcome"),
        hours_ago=1,
        favourited_by=("grace", "linus"),
        comments=(("grace", "Nice to be here!"), ("linus", "Where is the source?")),
    ),
    DemoArticle(
        slug="caching-without-surprises",
        author="grace",
        title="Caching without surprises",
        description="Why a cached page must only ever reach the user it was made for.",
        body=(
            "The tag list and the article pages seen by visitors without a cookie are "
            "cached; every write forgets the copies it made stale.\n\n"
            "Signed-in users always get a fresh page: it shows their own favourites."
        ),
        tags=("caching", "flaskstack", "redis"),
        hours_ago=2,
        favourited_by=("ada",),
        comments=(("ada", "Forgetting on write beats short timeouts."),),
    ),
    DemoArticle(
        slug="tokens-for-apis",
        author="linus",
        title="Tokens for APIs",
        description="Authorization: Token, and why such requests need no CSRF token.",
        body=(
            "API clients sign up or log in and get a token; they send it in the "
            "Authorization header. Browsers never add that header on their own, so those "
            "requests cannot be forged cross-site."
        ),
        tags=("api", "security"),
        hours_ago=3,
        favourited_by=("ada", "grace"),
    ),
    DemoArticle(
        slug="migrations-on-two-databases",
        author="ada",
        title="Migrations on two databases",
        description="One Alembic history for SQLite in development and PostgreSQL in production.",
        body=(
            "Constraint names come from a naming convention, and batch mode lets SQLite "
            "alter tables.\n\nRun flask db upgrade, then flask stack check."
        ),
        tags=("database", "migrations"),
        hours_ago=5,
    ),
)

example = AppGroup("example", help="Commands of the example app.")


@example.command("seed")
def seed_command() -> None:
    """Add the demo users, articles, comments, follows and favourites that are missing.

    Safe to run again: what exists already is left as it is.
    """
    now = dt.datetime.now(dt.timezone.utc)
    users = _users()
    added_articles = 0
    added_comments = 0
    for demo in DEMO_ARTICLES:
        article = db.session.execute(
            sa.select(Article).where(Article.slug == demo.slug)
        ).scalar_one_or_none()
        if article is None:
            created = now - dt.timedelta(hours=demo.hours_ago)
            article = Article(
                slug=demo.slug,
                title=demo.title,
                description=demo.description,
                body=demo.body,
                author=users[demo.author],
                tags=[_tag(name) for name in demo.tags],
                created_at=created,
                updated_at=created,
            )
            db.session.add(article)
            db.session.flush()
            added_articles += 1
        for name in demo.favourited_by:
            _link(favorites, user_id=users[name].id, article_id=article.id)
        for author, body in demo.comments:
            exists = db.session.execute(
                sa.select(Comment.id).where(
                    Comment.article_id == article.id,
                    Comment.author_id == users[author].id,
                    Comment.body == body,
                )
            ).first()
            if exists is None:
                db.session.add(Comment(article=article, author=users[author], body=body))
                added_comments += 1
    for follower, followed in DEMO_FOLLOWS:
        _link(follows, follower_id=users[follower].id, followed_id=users[followed].id)
    db.session.commit()
    caching.forget_tags()
    caching.forget_articles(demo.slug for demo in DEMO_ARTICLES)
    click.echo(
        f"Demo data: {len(DEMO_USERS)} users, {len(DEMO_ARTICLES)} articles "
        f"({added_articles} added now, {added_comments} comment(s) added now)."
    )
    click.echo(
        f"Sign in as {DEMO_USERS[0].email} (or any demo user) with the password {DEMO_PASSWORD!r}."
    )


def _users() -> dict[str, User]:
    users: dict[str, User] = {}
    for demo in DEMO_USERS:
        user = db.session.execute(
            sa.select(User).where(User.email == demo.email)
        ).scalar_one_or_none()
        if user is None:
            user = User(username=demo.username, bio=demo.bio)
            user.set_email(demo.email)
            user.set_password(DEMO_PASSWORD)
            db.session.add(user)
            db.session.flush()
        users[demo.username] = user
    return users


def _tag(name: str) -> Tag:
    tag = db.session.execute(sa.select(Tag).where(Tag.name == name)).scalar_one_or_none()
    if tag is None:
        tag = Tag(name=name)
        db.session.add(tag)
    return tag


def _link(table: sa.Table, **values: int) -> None:
    """Insert the association row ``values`` into ``table`` unless it is there."""
    condition = sa.and_(*(table.c[name] == value for name, value in values.items()))
    if db.session.execute(sa.select(sa.literal(1)).where(condition)).first() is None:
        db.session.execute(sa.insert(table).values(**values))
