"""The Conduit REST API (RealWorld spec) on :data:`flaskstack.api`, under ``/api``.

Conduit's conventions, and how flaskstack meets them:

- **Auth**: ``Authorization: Token <token>``. Tokens are flaskstack API
  tokens (:func:`flaskstack.auth.create_token`), issued at sign-up and login;
  the app accepts the ``Token`` and ``Bearer`` schemes
  (``FLASKSTACK_API_TOKEN_SCHEMES``). Requests with a token need no CSRF
  token; sign-up and login, which take no credentials, are exempt with
  ``@flaskstack.csrf.exempt``.
- **Bodies** are wrapped in one key (``{"user": {...}}``,
  ``{"article": {...}}``); invalid ones get 422 with Conduit's
  ``{"errors": {"field": ["message"]}}``, carried by flaskstack's problem
  document, the field names without the wrapper key.
- **Statuses**: 401 without (valid) credentials, 403 for someone else's
  article or comment, 404 for an unknown slug, username or comment, 422 for
  invalid input (query parameters included), 201 for a new user or article,
  204 for a deletion.
- **Lists** take ``limit`` and ``offset`` and answer
  ``{"articles": [...], "articlesCount": n}``, newest first; list items
  leave out the body.
- **Times** are ISO 8601 in UTC with milliseconds (``2026-11-22T09:30:00.000Z``);
  ``tagList`` is sorted.
"""

from __future__ import annotations

import datetime as dt
import functools
import typing as t

import sqlalchemy as sa
from flask import current_app, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

import flaskstack
from flaskstack import api, cache, db, rest
from flaskstack.auth import (
    PasswordPolicyError,
    auth_required,
    create_token,
    current_user,
    normalise_email,
    request_token,
    second_factor_needed,
    verify_password,
    verify_second_factor,
)
from flaskstack.throttle import login_throttles

from . import caching, conduit
from .models import (
    USERNAME_PATTERN,
    USERNAME_RULE,
    Article,
    Comment,
    User,
    email_taken,
    storable,
    username_taken,
    utc,
)

__all__ = ["TOKEN_LIFETIME"]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

TOKEN_LIFETIME = dt.timedelta(days=30)
"""How long a token issued at sign-up or login stays valid."""

TAKEN = "has already been taken"


# -- output ------------------------------------------------------------------------------


class Timestamp(rest.DateTime):
    """A datetime in UTC with milliseconds: ``2026-11-22T09:30:00.000Z``."""

    def format(self, value: t.Any) -> str:
        if not isinstance(value, dt.datetime):
            raise TypeError(f"{value!r} is not a datetime")
        return utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Account(rest.Schema):
    """The signed-in user, with their token."""

    email = rest.String()
    token = rest.String()
    username = rest.String()
    bio = rest.String()
    image = rest.String()


class PublicProfile(rest.Schema):
    """A user as others see them."""

    username = rest.String()
    bio = rest.String()
    image = rest.String()
    following = rest.Boolean()


class ArticleSummary(rest.Schema):
    """An article in a list: everything but its body."""

    slug = rest.String()
    title = rest.String()
    description = rest.String()
    tagList = rest.List(rest.String())  # Conduit's names
    createdAt = Timestamp()
    updatedAt = Timestamp()
    favorited = rest.Boolean()
    favoritesCount = rest.Integer()
    author = rest.Nested(PublicProfile)


class ArticleDetail(ArticleSummary):
    """An article."""

    body = rest.String()


class ArticleList(rest.Schema):
    """A slice of articles and how many there are in all."""

    articles = rest.List(rest.Nested(ArticleSummary))
    articlesCount = rest.Integer()


class CommentDetail(rest.Schema):
    """A comment."""

    id = rest.Integer()
    createdAt = Timestamp()
    updatedAt = Timestamp()
    body = rest.String()
    author = rest.Nested(PublicProfile)


class CommentList(rest.Schema):
    """The comments on an article."""

    comments = rest.List(rest.Nested(CommentDetail))


class TagList(rest.Schema):
    """Tags."""

    tags = rest.List(rest.String())


def _user_data(user: User, token: str) -> dict[str, t.Any]:
    return {
        "email": user.email,
        "token": token,
        "username": user.username,
        "bio": user.bio or "",
        "image": user.image or "",
    }


# -- input -------------------------------------------------------------------------------


def enveloped(key: str, schema: type[rest.Schema]) -> t.Callable[[F], F]:
    """Validate a body of the form ``{key: {...schema...}}``; the view gets the inner dict.

    Errors name the inner fields without the wrapper (``"email"``, not
    ``"user.email"``), as Conduit clients expect.
    """
    envelope = type(
        f"{schema.__name__}Request",
        (rest.Schema,),
        {key: rest.Nested(schema, required=True), "__doc__": schema.__doc__},
    )
    prefix = f"{key}."

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def unwrap(*args: t.Any, body: dict[str, t.Any], **kwargs: t.Any) -> t.Any:
            return view(*args, body=body[key], **kwargs)

        loaded = rest.body(envelope)(unwrap)

        @functools.wraps(loaded)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            try:
                return loaded(*args, **kwargs)
            except rest.ValidationError as exc:
                if not any(field.startswith(prefix) for field in exc.errors):
                    raise
                raise rest.ValidationError(
                    {field.removeprefix(prefix): messages for field, messages in exc.errors.items()}
                ) from None

        return t.cast("F", wrapper)

    return decorate


class NewUser(rest.Schema):
    """A new account."""

    username = rest.String(
        required=True,
        strip=True,
        min_length=1,
        max_length=40,
        pattern=USERNAME_PATTERN,
        pattern_message=USERNAME_RULE,
    )
    email = rest.Email(required=True)
    password = rest.Password(required=True)


class LoginUser(rest.Schema):
    """Credentials."""

    email = rest.String(required=True, strip=True, min_length=1, max_length=320)
    # Any length: a password set under an older policy still signs in.
    password = rest.String(required=True, min_length=1, load_only=True)
    code = rest.String(
        strip=True,
        min_length=1,
        max_length=64,
        load_only=True,
        description="With two-factor sign-in on for the user: a code from their app, or a "
        "recovery code.",
    )


class UpdateUser(rest.Schema):
    """Changes to the current user; at least one field."""

    email = rest.Email()
    username = rest.String(
        strip=True,
        min_length=1,
        max_length=40,
        pattern=USERNAME_PATTERN,
        pattern_message=USERNAME_RULE,
    )
    password = rest.Password()
    bio = rest.String(nullable=True, max_length=10_000)
    image = rest.Url(nullable=True, blank=True, max_length=500)

    @classmethod
    def json_schema(cls, *args: t.Any, **kwargs: t.Any) -> dict[str, t.Any]:
        """The document says "at least one field" too: one of them is required."""
        schema = super().json_schema(*args, **kwargs)
        if "properties" in schema and (args[:1] or [kwargs.get("mode", "load")])[0] == "load":
            schema["anyOf"] = [{"required": [name]} for name in schema["properties"]]
        return schema


class NewArticle(rest.Schema):
    """A new article."""

    title = rest.String(required=True, strip=True, min_length=1, max_length=200)
    description = rest.String(required=True, strip=True, min_length=1, max_length=500)
    body = rest.String(required=True, min_length=1)
    tagList = rest.List(rest.String(max_length=64), default=list)  # Conduit's name


class UpdateArticle(rest.Schema):
    """Changes to an article. The article as the API wrote it may be sent back whole:
    the fields it cannot change (``slug``, ``author``, ...) are ignored."""

    title = rest.String(strip=True, min_length=1, max_length=200)
    description = rest.String(strip=True, min_length=1, max_length=500)
    body = rest.String(min_length=1)
    tagList = rest.List(rest.String(max_length=64))  # Conduit's name


class NewComment(rest.Schema):
    """A new comment."""

    body = rest.String(required=True, strip=True, min_length=1, max_length=10_000)


class ArticleFilters(rest.Schema):
    """Which articles, and which slice of them."""

    tag = rest.String(description="Only articles with this tag.")
    author = rest.String(description="Only articles by this username.")
    favorited = rest.String(description="Only articles this username favourited.")
    limit = rest.Integer(minimum=1, default=20, description="How many articles (at most).")
    offset = rest.Integer(minimum=0, default=0, description="How many articles to skip.")


class FeedSlice(rest.Schema):
    """Which slice of the feed."""

    limit = rest.Integer(minimum=1, default=20, description="How many articles (at most).")
    offset = rest.Integer(minimum=0, default=0, description="How many articles to skip.")


# -- helpers -----------------------------------------------------------------------------


def _viewer() -> User | None:
    if current_user.is_authenticated:
        return t.cast("User", current_user._get_current_object())
    return None


def _me() -> User:
    return t.cast("User", current_user._get_current_object())


def _article_or_404(slug: str) -> Article:
    article = conduit.find_article(slug) if storable(slug) else None
    if article is None:
        rest.abort(404, f"There is no article {slug!r}.", errors={"article": ["not found"]})
    return article


def _user_or_404(username: str) -> User:
    user = conduit.find_user(username) if storable(username) else None
    if user is None:
        rest.abort(404, f"There is no user {username!r}.", errors={"profile": ["not found"]})
    return user


def _forbidden(what: str) -> t.NoReturn:
    rest.abort(403, f"Only the author of this {what} may change it.", errors={what: ["forbidden"]})


def _articles_page(query: t.Any, limit: int, offset: int) -> dict[str, t.Any]:
    limit = min(limit, current_app.config["FLASKSTACK_API_MAX_PER_PAGE"])
    rows, total = conduit.list_articles(query, limit=limit, offset=offset)
    return {"articles": conduit.article_views(rows, _viewer()), "articlesCount": total}


def _check_names_free(user: User | None, email: str | None, username: str | None) -> None:
    errors: dict[str, list[str]] = {}
    if email is not None and email_taken(email, exclude=user):
        errors["email"] = [TAKEN]
    if username is not None and username_taken(username, exclude=user):
        errors["username"] = [TAKEN]
    if errors:
        raise rest.ValidationError(errors)


def _issue_token(user: User) -> str:
    token, _record = create_token(user, name="conduit", expires_in=TOKEN_LIFETIME)
    return token


# -- users -------------------------------------------------------------------------------


@flaskstack.csrf.exempt
@api.resource("/users")
class Users(rest.Resource):
    """Sign-up."""

    @enveloped("user", NewUser)
    @rest.marshal_with(Account, envelope="user", status=201)
    def post(self, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """Register a new user; the answer carries their first token."""
        _check_names_free(None, body["email"], body["username"])
        user = User(username=body["username"])
        user.set_email(body["email"])
        try:
            user.set_password(body["password"])
        except PasswordPolicyError as exc:
            raise rest.ValidationError({"password": [str(exc)]}) from None
        db.session.add(user)
        try:
            db.session.flush()
        except sa.exc.IntegrityError:  # taken by a concurrent sign-up since the check
            db.session.rollback()
            _check_names_free(None, body["email"], body["username"])
            raise
        token = _issue_token(user)
        db.session.commit()
        return _user_data(user, token)


@flaskstack.csrf.exempt
@api.resource("/users/login")
class Login(rest.Resource):
    """Login: email and password for a token."""

    @enveloped("user", LoginUser)
    @rest.marshal_with(Account, envelope="user")
    def post(self, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """Exchange an email and password for a new token.

        Failed attempts are throttled per account and per client address,
        as on the sign-in page (429 with ``Retry-After``). With two-factor
        sign-in on for the user (``FLASKSTACK_TWO_FACTOR``), ``code`` is
        needed too: 401 naming ``code`` without it or when it is wrong.
        """
        email = normalise_email(body["email"])
        address = request.remote_addr or "unknown"
        throttles = login_throttles(current_app._get_current_object())  # type: ignore[attr-defined]
        throttles.guard(email, address)
        user = db.session.execute(sa.select(User).where(User.email == email)).scalar_one_or_none()
        if user is None:
            verify_password(None, body["password"])  # as long as a wrong password takes
            signed_in = False
        else:
            signed_in = user.check_password(body["password"]) and user.is_active
        if user is None or not signed_in:
            throttles.failed(email, address)
            error = Unauthorized(
                "Wrong email or password.",
                www_authenticate=WWWAuthenticate("Token", {"realm": current_app.name}),
            )
            error.data = {"errors": {"email or password": ["is invalid"]}}  # type: ignore[attr-defined]
            raise error
        throttles.succeeded(email)
        _second_factor(user, body.get("code"))
        token = _issue_token(user)
        db.session.commit()  # the token, and a password hash redone with current settings
        return _user_data(user, token)


def _second_factor(user: User, code: str | None) -> None:
    """401 unless ``user`` needs no second factor or ``code`` is right (FLASKSTACK_TWO_FACTOR)."""
    if not second_factor_needed(user):
        return
    if code is None or not verify_second_factor(user, code):
        error = Unauthorized(
            "Send the code from your authenticator app (or a recovery code) as user.code."
            if code is None
            else "The code is not right, or it was used already.",
            www_authenticate=WWWAuthenticate("Token", {"realm": current_app.name}),
        )
        error.data = {"errors": {"code": ["is required" if code is None else "is invalid"]}}  # type: ignore[attr-defined]
        raise error


@api.resource("/user")
class CurrentUser(rest.Resource):
    """The signed-in user."""

    method_decorators: t.ClassVar[list[t.Any]] = [auth_required]

    @rest.marshal_with(Account, envelope="user")
    def get(self) -> dict[str, t.Any]:
        """The current user, with the token the request used."""
        return _user_data(_me(), request_token() or "")

    @enveloped("user", UpdateUser)
    @rest.marshal_with(Account, envelope="user")
    def put(self, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """Change the current user's email, username, password, bio or image."""
        if not body:
            raise rest.ValidationError({"user": ["Give at least one field to change."]})
        user = _me()
        _check_names_free(user, body.get("email"), body.get("username"))
        changes = dict(body)
        for field in ("bio", "image"):
            if field in changes and changes[field] is None:
                changes[field] = ""  # null clears
        try:
            conduit.update_profile(user, **changes)
        except PasswordPolicyError as exc:
            raise rest.ValidationError({"password": [str(exc)]}) from None
        return _user_data(user, request_token() or "")


# -- profiles ----------------------------------------------------------------------------


@api.resource("/profiles/<username>")
class Profile(rest.Resource):
    """A user's public profile."""

    @rest.marshal_with(PublicProfile, envelope="profile")
    def get(self, username: str) -> conduit.ProfileView:
        """A profile; ``following`` says whether the signed-in user follows it."""
        return conduit.profile_view(_user_or_404(username), _viewer())


@api.resource("/profiles/<username>/follow")
class Follow(rest.Resource):
    """Following a user."""

    method_decorators: t.ClassVar[list[t.Any]] = [auth_required]

    @rest.marshal_with(PublicProfile, envelope="profile")
    def post(self, username: str) -> conduit.ProfileView:
        """Follow the user."""
        target = _user_or_404(username)
        me = _me()
        if target.id == me.id:
            raise rest.ValidationError({"profile": ["You cannot follow yourself."]})
        conduit.follow(me, target)
        return conduit.profile_view(target, me)

    @rest.marshal_with(PublicProfile, envelope="profile")
    def delete(self, username: str) -> conduit.ProfileView:
        """Stop following the user."""
        target = _user_or_404(username)
        conduit.unfollow(_me(), target)
        return conduit.profile_view(target, _me())


# -- articles ----------------------------------------------------------------------------


@api.resource("/articles")
class Articles(rest.Resource):
    """All articles, and writing one."""

    method_decorators: t.ClassVar[dict[str, list[t.Any]]] = {"post": [auth_required]}

    @rest.query(ArticleFilters)
    @rest.marshal_with(ArticleList)
    def get(self, query: dict[str, t.Any]) -> dict[str, t.Any]:
        """Recent articles, newest first, by tag, author or the user who favourited them."""
        select = conduit.article_select(
            tag=query.get("tag"), author=query.get("author"), favorited_by=query.get("favorited")
        )
        return _articles_page(select, query["limit"], query["offset"])

    @enveloped("article", NewArticle)
    @rest.marshal_with(ArticleDetail, envelope="article", status=201)
    def post(self, body: dict[str, t.Any]) -> conduit.ArticleView:
        """Write an article."""
        article = conduit.create_article(
            _me(),
            title=body["title"],
            description=body["description"],
            body=body["body"],
            tags=body["tagList"],
        )
        return conduit.article_views([article], _me())[0]


@api.resource("/articles/feed")
class Feed(rest.Resource):
    """Articles by the users the signed-in user follows."""

    method_decorators: t.ClassVar[list[t.Any]] = [auth_required]

    @rest.query(FeedSlice)
    @rest.marshal_with(ArticleList)
    def get(self, query: dict[str, t.Any]) -> dict[str, t.Any]:
        """Recent articles by followed users, newest first."""
        select = conduit.article_select(feed_of=_me())
        return _articles_page(select, query["limit"], query["offset"])


@api.resource("/articles/<slug>")
class ArticleItem(rest.Resource):
    """One article."""

    method_decorators: t.ClassVar[dict[str, list[t.Any]]] = {
        "put": [auth_required],
        "delete": [auth_required],
    }

    @rest.marshal_with(ArticleDetail, envelope="article")
    def get(self, slug: str) -> conduit.ArticleView:
        """An article; cached for requests without credentials until it changes."""
        if not caching.is_anonymous_request():
            return conduit.article_views([_article_or_404(slug)], _viewer())[0]
        key = caching.article_json_key(slug)
        hit = cache.get(key)
        if isinstance(hit, dict):
            return t.cast("conduit.ArticleView", hit)
        view = conduit.article_views([_article_or_404(slug)], None)[0]
        cache.set(key, view, timeout=caching.ARTICLE_TIMEOUT)
        return view

    @enveloped("article", UpdateArticle)
    @rest.marshal_with(ArticleDetail, envelope="article")
    def put(self, slug: str, body: dict[str, t.Any]) -> conduit.ArticleView:
        """Change an article (its author only); a new title gives it a new slug."""
        article = _article_or_404(slug)
        if article.author_id != _me().id:
            _forbidden("article")
        conduit.update_article(
            article,
            title=body.get("title"),
            description=body.get("description"),
            body=body.get("body"),
            tags=body.get("tagList"),
        )
        return conduit.article_views([article], _me())[0]

    def delete(self, slug: str) -> tuple[str, int]:
        """Delete an article (its author only)."""
        article = _article_or_404(slug)
        if article.author_id != _me().id:
            _forbidden("article")
        conduit.delete_article(article)
        return "", 204


@api.resource("/articles/<slug>/favorite")
class Favorite(rest.Resource):
    """Favouriting an article."""

    method_decorators: t.ClassVar[list[t.Any]] = [auth_required]

    @rest.marshal_with(ArticleDetail, envelope="article")
    def post(self, slug: str) -> conduit.ArticleView:
        """Favourite the article."""
        article = _article_or_404(slug)
        conduit.favorite(_me(), article)
        return conduit.article_views([article], _me())[0]

    @rest.marshal_with(ArticleDetail, envelope="article")
    def delete(self, slug: str) -> conduit.ArticleView:
        """Stop favouriting the article."""
        article = _article_or_404(slug)
        conduit.unfavorite(_me(), article)
        return conduit.article_views([article], _me())[0]


# -- comments ----------------------------------------------------------------------------


@api.resource("/articles/<slug>/comments")
class Comments(rest.Resource):
    """The comments on an article."""

    method_decorators: t.ClassVar[dict[str, list[t.Any]]] = {"post": [auth_required]}

    @rest.marshal_with(CommentList)
    def get(self, slug: str) -> dict[str, t.Any]:
        """The comments, newest first."""
        comments = conduit.article_comments(_article_or_404(slug))
        return {"comments": conduit.comment_views(comments, _viewer())}

    @enveloped("comment", NewComment)
    @rest.marshal_with(CommentDetail, envelope="comment")
    def post(self, slug: str, body: dict[str, t.Any]) -> conduit.CommentView:
        """Comment on the article."""
        comment = conduit.add_comment(_me(), _article_or_404(slug), body["body"])
        return conduit.comment_views([comment], _me())[0]


@api.resource("/articles/<slug>/comments/<int:comment_id>")
class CommentItem(rest.Resource):
    """One comment."""

    method_decorators: t.ClassVar[list[t.Any]] = [auth_required]

    def delete(self, slug: str, comment_id: int) -> tuple[str, int]:
        """Delete a comment (its author only)."""
        article = _article_or_404(slug)
        comment = db.session.get(Comment, comment_id)
        if comment is None or comment.article_id != article.id:
            rest.abort(
                404,
                f"Article {slug!r} has no comment {comment_id}.",
                errors={"comment": ["not found"]},
            )
        if comment.author_id != _me().id:
            _forbidden("comment")
        conduit.delete_comment(comment)
        return "", 204


# -- tags --------------------------------------------------------------------------------


@api.resource("/tags")
class Tags(rest.Resource):
    """The tags in use."""

    @rest.marshal_with(TagList)
    def get(self) -> dict[str, t.Any]:
        """Every tag in use, the most used first (cached until an article changes)."""
        return {"tags": conduit.popular_tags()}
