"""What the API and the pages both do: find, list, write and present Conduit's content.

Every change goes through a function here, which commits and then forgets
the cached copies the change makes stale (:mod:`example.caching`); the API
resources and the page views only check permissions and translate input.

Presenting: :func:`article_views` and :func:`profile_view` turn rows into
the data both the JSON API and the templates show, computing what depends
on who is looking (``favorited``, ``following``) for a whole page of
articles in three queries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

import sqlalchemy as sa

from flaskstack import db

from . import caching
from .models import (
    Article,
    Comment,
    Tag,
    User,
    article_tags,
    favorites,
    follows,
    slugify,
    unique_slug,
)

__all__ = [
    "ArticleView",
    "CommentView",
    "ProfileView",
    "add_comment",
    "article_comments",
    "article_select",
    "article_views",
    "comment_views",
    "create_article",
    "delete_article",
    "delete_comment",
    "favorite",
    "find_article",
    "find_user",
    "follow",
    "list_articles",
    "normalise_tags",
    "popular_tags",
    "profile_view",
    "unfavorite",
    "unfollow",
    "update_article",
    "update_profile",
]

TAG_MAX_LENGTH = 64
POPULAR_TAGS_SHOWN = 20


# -- finding ----------------------------------------------------------------------------


def find_user(username: str) -> User | None:
    """The user with exactly this username, or ``None``."""
    return db.session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()


def find_article(slug: str) -> Article | None:
    """The article with this slug, or ``None``."""
    return db.session.execute(sa.select(Article).where(Article.slug == slug)).scalar_one_or_none()


def article_select(
    *,
    tag: str | None = None,
    author: str | None = None,
    favorited_by: str | None = None,
    feed_of: User | None = None,
) -> sa.Select[t.Any]:
    """Articles, newest first, filtered by tag, author's or favouriting user's username.

    ``feed_of`` keeps the articles of the users that user follows.
    """
    query = sa.select(Article)
    if tag is not None:
        query = query.where(
            Article.id.in_(
                sa.select(article_tags.c.article_id)
                .join(Tag, Tag.id == article_tags.c.tag_id)
                .where(Tag.name == tag)
            )
        )
    if author is not None:
        query = query.where(
            Article.author_id.in_(sa.select(User.id).where(User.username == author))
        )
    if favorited_by is not None:
        query = query.where(
            Article.id.in_(
                sa.select(favorites.c.article_id)
                .join(User, User.id == favorites.c.user_id)
                .where(User.username == favorited_by)
            )
        )
    if feed_of is not None:
        query = query.where(
            Article.author_id.in_(
                sa.select(follows.c.followed_id).where(follows.c.follower_id == feed_of.id)
            )
        )
    return query.order_by(Article.created_at.desc(), Article.id.desc())


def list_articles(query: sa.Select[t.Any], *, limit: int, offset: int) -> tuple[list[Article], int]:
    """One slice of ``query`` and the number of articles it holds in all."""
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    rows = list(db.session.scalars(query.limit(limit).offset(offset)))
    return rows, total


def popular_tags() -> list[str]:
    """The tags in use, the most used first (cached until an article changes)."""
    cached = caching.get_tags()
    if cached is not None:
        return cached
    uses = sa.func.count(article_tags.c.article_id)
    rows = db.session.execute(
        sa.select(Tag.name)
        .join(article_tags, article_tags.c.tag_id == Tag.id)
        .group_by(Tag.id, Tag.name)
        .order_by(uses.desc(), Tag.name)
    )
    names = [name for (name,) in rows]
    caching.set_tags(names)
    return names


# -- presenting -------------------------------------------------------------------------


class ProfileView(t.TypedDict):
    """A user as others see them."""

    username: str
    bio: str
    image: str
    following: bool


class ArticleView(t.TypedDict):
    """An article as one viewer sees it."""

    slug: str
    title: str
    description: str
    body: str
    tagList: list[str]
    createdAt: dt.datetime
    updatedAt: dt.datetime
    favorited: bool
    favoritesCount: int
    author: ProfileView


def profile_view(user: User, viewer: User | None) -> ProfileView:
    """``user``'s profile, with whether ``viewer`` follows them."""
    following = viewer is not None and bool(_followed_among(viewer, {user.id}))
    return _profile(user, following)


def _profile(user: User, following: bool) -> ProfileView:
    return {
        "username": user.username,
        "bio": user.bio or "",
        "image": user.image or "",
        "following": following,
    }


def _followed_among(viewer: User, user_ids: set[int]) -> set[int]:
    if not user_ids:
        return set()
    rows = db.session.execute(
        sa.select(follows.c.followed_id).where(
            follows.c.follower_id == viewer.id, follows.c.followed_id.in_(user_ids)
        )
    )
    return {followed for (followed,) in rows}


@dataclasses.dataclass(frozen=True)
class _Favourites:
    counts: dict[int, int]
    mine: set[int]


def _favourites(article_ids: set[int], viewer: User | None) -> _Favourites:
    if not article_ids:
        return _Favourites({}, set())
    rows = db.session.execute(
        sa.select(favorites.c.article_id, sa.func.count())
        .where(favorites.c.article_id.in_(article_ids))
        .group_by(favorites.c.article_id)
    )
    counts = {article_id: count for article_id, count in rows}
    mine: set[int] = set()
    if viewer is not None:
        mine = set(
            db.session.scalars(
                sa.select(favorites.c.article_id).where(
                    favorites.c.user_id == viewer.id, favorites.c.article_id.in_(article_ids)
                )
            )
        )
    return _Favourites(counts, mine)


def article_views(articles: t.Sequence[Article], viewer: User | None) -> list[ArticleView]:
    """``articles`` as ``viewer`` (``None``: nobody signed in) sees them."""
    ids = {article.id for article in articles}
    liked = _favourites(ids, viewer)
    followed = (
        _followed_among(viewer, {article.author_id for article in articles})
        if viewer is not None
        else set()
    )
    return [
        {
            "slug": article.slug,
            "title": article.title,
            "description": article.description,
            "body": article.body,
            "tagList": article.tag_list,
            "createdAt": article.created_at,
            "updatedAt": article.updated_at,
            "favorited": article.id in liked.mine,
            "favoritesCount": liked.counts.get(article.id, 0),
            "author": _profile(article.author, article.author_id in followed),
        }
        for article in articles
    ]


class CommentView(t.TypedDict):
    """A comment as one viewer sees it."""

    id: int
    body: str
    createdAt: dt.datetime
    updatedAt: dt.datetime
    author: ProfileView


def comment_views(comments: t.Sequence[Comment], viewer: User | None) -> list[CommentView]:
    """``comments`` as ``viewer`` sees them."""
    followed = (
        _followed_among(viewer, {comment.author_id for comment in comments})
        if viewer is not None
        else set()
    )
    return [
        {
            "id": comment.id,
            "body": comment.body,
            "createdAt": comment.created_at,
            "updatedAt": comment.updated_at,
            "author": _profile(comment.author, comment.author_id in followed),
        }
        for comment in comments
    ]


def article_comments(article: Article) -> list[Comment]:
    """The comments on ``article``, newest first."""
    return list(
        db.session.scalars(
            sa.select(Comment)
            .where(Comment.article_id == article.id)
            .order_by(Comment.created_at.desc(), Comment.id.desc())
        )
    )


# -- writing ----------------------------------------------------------------------------


def normalise_tags(names: t.Iterable[str]) -> list[str]:
    """Tags without surrounding spaces, empty names or repeats, in the order given."""
    seen: dict[str, None] = {}
    for name in names:
        cleaned = name.strip()
        if cleaned:
            seen.setdefault(cleaned[:TAG_MAX_LENGTH], None)
    return list(seen)


def _tags_named(names: list[str]) -> list[Tag]:
    existing = {
        tag.name: tag for tag in db.session.scalars(sa.select(Tag).where(Tag.name.in_(names)))
    }
    tags = []
    for name in names:
        tag = existing.get(name)
        if tag is None:
            tag = existing[name] = Tag(name=name)
            db.session.add(tag)
        tags.append(tag)
    return tags


def create_article(
    author: User, *, title: str, description: str, body: str, tags: t.Iterable[str] = ()
) -> Article:
    """Write a new article by ``author``; its slug comes from the title.

    Two requests may pick the same new slug or tag at the same moment: the
    unique constraints refuse the second, which then tries once more.
    """
    names = normalise_tags(tags)
    for attempt in range(2):
        article = Article(
            slug=unique_slug(title),
            title=title,
            description=description,
            body=body,
            author=author,
            tags=_tags_named(names),
        )
        db.session.add(article)
        try:
            db.session.commit()
        except sa.exc.IntegrityError:
            db.session.rollback()
            if attempt:
                raise
            continue
        break
    caching.forget_tags()
    return article


def update_article(
    article: Article,
    *,
    title: str | None = None,
    description: str | None = None,
    body: str | None = None,
    tags: t.Iterable[str] | None = None,
) -> Article:
    """Change the given fields; a new title gives the article a new slug."""
    old_slug = article.slug
    if title is not None and title != article.title:
        renamed = slugify(title) != slugify(article.title)
        article.title = title
        if renamed:
            article.slug = unique_slug(title)
    if description is not None:
        article.description = description
    if body is not None:
        article.body = body
    if tags is not None:
        article.tags = _tags_named(normalise_tags(tags))
    db.session.commit()
    caching.forget_articles({old_slug, article.slug})
    if tags is not None:
        caching.forget_tags()
    return article


def delete_article(article: Article) -> None:
    """Delete ``article`` with its comments, tag links and favourites.

    The foreign keys cascade on PostgreSQL; SQLite enforces them only when a
    connection turns them on, so the rows that point at the article go first.
    """
    slug = article.slug
    db.session.execute(sa.delete(favorites).where(favorites.c.article_id == article.id))
    db.session.execute(sa.delete(Comment).where(Comment.article_id == article.id))
    db.session.delete(article)  # its article_tag rows go with it (a many-to-many)
    db.session.commit()
    caching.forget_articles({slug})
    caching.forget_tags()


def favorite(user: User, article: Article) -> None:
    """Make ``article`` one of ``user``'s favourites (again is fine)."""
    exists = db.session.execute(
        sa.select(favorites.c.user_id).where(
            favorites.c.user_id == user.id, favorites.c.article_id == article.id
        )
    ).first()
    if exists is None:
        db.session.execute(sa.insert(favorites).values(user_id=user.id, article_id=article.id))
        _commit_unless_done_already()
        caching.forget_articles({article.slug})


def unfavorite(user: User, article: Article) -> None:
    """Remove ``article`` from ``user``'s favourites (if it was one)."""
    result = db.session.execute(
        sa.delete(favorites).where(
            favorites.c.user_id == user.id, favorites.c.article_id == article.id
        )
    )
    db.session.commit()
    if getattr(result, "rowcount", 0):
        caching.forget_articles({article.slug})


def follow(user: User, target: User) -> None:
    """Make ``user`` follow ``target`` (again is fine)."""
    exists = db.session.execute(
        sa.select(follows.c.follower_id).where(
            follows.c.follower_id == user.id, follows.c.followed_id == target.id
        )
    ).first()
    if exists is None:
        db.session.execute(sa.insert(follows).values(follower_id=user.id, followed_id=target.id))
        _commit_unless_done_already()


def _commit_unless_done_already() -> None:
    """Commit a new association row; a concurrent request that added it first is fine."""
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()


def unfollow(user: User, target: User) -> None:
    """Make ``user`` stop following ``target`` (if they did)."""
    db.session.execute(
        sa.delete(follows).where(
            follows.c.follower_id == user.id, follows.c.followed_id == target.id
        )
    )
    db.session.commit()


def add_comment(author: User, article: Article, body: str) -> Comment:
    """Comment on ``article``."""
    comment = Comment(body=body, article=article, author=author)
    db.session.add(comment)
    db.session.commit()
    caching.forget_articles({article.slug})
    return comment


def delete_comment(comment: Comment) -> None:
    """Delete ``comment``."""
    slug = comment.article.slug
    db.session.delete(comment)
    db.session.commit()
    caching.forget_articles({slug})


def update_profile(
    user: User,
    *,
    email: str | None = None,
    username: str | None = None,
    password: str | None = None,
    bio: str | None = None,
    image: str | None = None,
) -> User:
    """Change ``user``'s account and profile; the caller checked that names are free.

    A new password signs the user out everywhere else (see
    :meth:`flaskstack.auth.UserMixin.set_password`), which raises
    :class:`flaskstack.auth.PasswordPolicyError` for a password the policy
    refuses, before anything changed.
    """
    if password is not None:
        user.set_password(password)
    if email is not None:
        user.set_email(email)
    if username is not None:
        user.username = username
    if bio is not None:
        user.bio = bio
    if image is not None:
        user.image = image
    shown_elsewhere = username is not None or bio is not None or image is not None
    db.session.commit()
    if shown_elsewhere:
        caching.forget_articles(_slugs_showing(user))
    return user


def _slugs_showing(user: User) -> set[str]:
    """The articles whose pages show ``user``: written or commented on by them."""
    written = sa.select(Article.slug).where(Article.author_id == user.id)
    commented = (
        sa.select(Article.slug)
        .join(Comment, Comment.article_id == Article.id)
        .where(Comment.author_id == user.id)
    )
    return set(db.session.scalars(sa.union(written, commented)))
