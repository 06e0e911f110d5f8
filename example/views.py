"""Conduit's pages: the article list, articles with comments, the editor, profiles, settings.

Signing in, signing up and signing out are flaskstack's auth pages
(``/auth/login``, ``/auth/register``, ``POST /auth/logout``), drawn with this
app's templates (``templates/flaskstack/``). Every form posts with a CSRF
token; every change redirects (post/redirect/get) and says what it did in a
flashed message, which the layout shows. An article's page is cached for
visitors without a cookie (:mod:`example.caching`).
"""

from __future__ import annotations

import math
import re
import typing as t

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from flaskstack import cache, db
from flaskstack.auth import PasswordPolicyError, auth_required, current_user, login_user
from flaskstack.urls import safe_next

from . import caching, conduit
from .forms import ArticleForm, CommentForm, SettingsForm, split_tags
from .models import Article, Comment, User, email_taken, storable, username_taken, utc

if t.TYPE_CHECKING:
    import datetime as dt

    from werkzeug.wrappers import Response

__all__ = ["PER_PAGE", "bp"]

PER_PAGE = 10

bp = Blueprint("conduit", __name__)


@bp.app_template_filter("day")
def _day(moment: dt.datetime) -> str:
    """``November 22, 2026``."""
    value = utc(moment)
    return f"{value:%B} {value.day}, {value.year}"


@bp.app_template_filter("iso")
def _iso(moment: dt.datetime) -> str:
    return utc(moment).isoformat(timespec="seconds")


@bp.app_template_filter("paragraphs")
def _paragraphs(text: str) -> Markup:
    """Plain text as HTML paragraphs: blank lines separate them, line breaks stay."""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(escape(line) for line in b.split("\n")))
        for b in blocks
        if b
    )


def _viewer() -> User | None:
    if current_user.is_authenticated:
        return t.cast("User", current_user._get_current_object())
    return None


def _me() -> User:
    return t.cast("User", current_user._get_current_object())


def _article_or_404(slug: str) -> Article:
    article = conduit.find_article(slug) if storable(slug) else None
    if article is None:
        abort(404)
    return article


def _page_number() -> int:
    text = request.args.get("page", "1")
    return int(text) if text.isdigit() and 0 < int(text) < 100_000 else 1


# -- reading -----------------------------------------------------------------------------


@bp.get("/")
def home() -> str:
    """Articles, newest first: everyone's, the followed users' (``?feed=yours``) or a tag's."""
    viewer = _viewer()
    tag = request.args.get("tag") or None
    if tag is not None and not storable(tag):
        abort(404)
    feed = "tag" if tag else request.args.get("feed", "global")
    if feed == "yours" and viewer is None:
        feed = "global"
    query = conduit.article_select(tag=tag, feed_of=viewer if feed == "yours" else None)
    page = _page_number()
    rows, total = conduit.list_articles(query, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    return render_template(
        "home.html",
        articles=conduit.article_views(rows, viewer),
        feed=feed,
        tag=tag,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        tags=conduit.popular_tags()[: conduit.POPULAR_TAGS_SHOWN],
    )


def _article_page_key() -> str:
    return caching.article_page_key(t.cast("dict[str, str]", request.view_args)["slug"])


@bp.get("/article/<slug>")
@cache.cached(
    timeout=caching.ARTICLE_TIMEOUT,
    key_prefix=_article_page_key,
    unless=lambda: not caching.is_anonymous_request(),
    per_user=False,  # only requests without credentials use this cache
)
def article(slug: str) -> str:
    """An article with its comments."""
    item = _article_or_404(slug)
    viewer = _viewer()
    return render_template(
        "article.html",
        article=item,
        view=conduit.article_views([item], viewer)[0],
        comments=conduit.comment_views(conduit.article_comments(item), viewer),
        form=CommentForm() if viewer is not None else None,
    )


@bp.get("/profile/<username>")
def profile(username: str) -> str:
    """A user's articles, or the articles they favourited (``?favorites=1``)."""
    user = conduit.find_user(username) if storable(username) else None
    if user is None:
        abort(404)
    viewer = _viewer()
    favorites = request.args.get("favorites") == "1"
    query = conduit.article_select(
        author=None if favorites else user.username,
        favorited_by=user.username if favorites else None,
    )
    page = _page_number()
    rows, total = conduit.list_articles(query, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    return render_template(
        "profile.html",
        profile=conduit.profile_view(user, viewer),
        is_me=viewer is not None and viewer.id == user.id,
        articles=conduit.article_views(rows, viewer),
        favorites=favorites,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
    )


# -- writing -----------------------------------------------------------------------------


@bp.route("/editor", methods=["GET", "POST"])
@auth_required
def new_article() -> str | Response:
    """Write a new article."""
    form = ArticleForm()
    if form.validate_on_submit():
        item = conduit.create_article(
            _me(),
            title=form.title.data,
            description=form.description.data,
            body=form.body.data,
            tags=split_tags(form.tags.data),
        )
        flash("Your article is published.", "success")
        return redirect(url_for("conduit.article", slug=item.slug))
    return render_template("editor.html", form=form, article=None)


@bp.route("/editor/<slug>", methods=["GET", "POST"])
@auth_required
def edit_article(slug: str) -> str | Response:
    """Edit one of your articles."""
    item = _article_or_404(slug)
    if item.author_id != _me().id:
        abort(403)
    form = ArticleForm(obj=item if request.method == "GET" else None)
    if request.method == "GET":
        form.tags.data = " ".join(item.tag_list)
    if form.validate_on_submit():
        conduit.update_article(
            item,
            title=form.title.data,
            description=form.description.data,
            body=form.body.data,
            tags=split_tags(form.tags.data),
        )
        flash("Your changes are saved.", "success")
        return redirect(url_for("conduit.article", slug=item.slug))
    return render_template("editor.html", form=form, article=item)


@bp.post("/article/<slug>/delete")
@auth_required
def delete_article(slug: str) -> Response:
    """Delete one of your articles."""
    item = _article_or_404(slug)
    if item.author_id != _me().id:
        abort(403)
    title = item.title  # read before the row is gone
    conduit.delete_article(item)
    flash(f"The article “{title}” is deleted.", "success")
    return redirect(url_for("conduit.home"))


@bp.post("/article/<slug>/comments")
@auth_required
def add_comment(slug: str) -> str | Response:
    """Comment on an article."""
    item = _article_or_404(slug)
    form = CommentForm()
    if form.validate_on_submit():
        conduit.add_comment(_me(), item, form.body.data)
        flash("Your comment is posted.", "success")
        return redirect(url_for("conduit.article", slug=slug) + "#comments")
    viewer = _me()
    return render_template(
        "article.html",
        article=item,
        view=conduit.article_views([item], viewer)[0],
        comments=conduit.comment_views(conduit.article_comments(item), viewer),
        form=form,
    )


@bp.post("/article/<slug>/comments/<int:comment_id>/delete")
@auth_required
def delete_comment(slug: str, comment_id: int) -> Response:
    """Delete one of your comments."""
    item = _article_or_404(slug)
    comment = db.session.get(Comment, comment_id)
    if comment is None or comment.article_id != item.id:
        abort(404)
    if comment.author_id != _me().id:
        abort(403)
    conduit.delete_comment(comment)
    flash("Your comment is deleted.", "success")
    return redirect(url_for("conduit.article", slug=slug) + "#comments")


@bp.post("/article/<slug>/favorite")
@auth_required
def favorite(slug: str) -> Response:
    """Favourite an article."""
    conduit.favorite(_me(), _article_or_404(slug))
    flash("Added to your favourites.", "success")
    return redirect(safe_next(default=url_for("conduit.article", slug=slug)))


@bp.post("/article/<slug>/unfavorite")
@auth_required
def unfavorite(slug: str) -> Response:
    """Stop favouriting an article."""
    conduit.unfavorite(_me(), _article_or_404(slug))
    flash("Removed from your favourites.", "success")
    return redirect(safe_next(default=url_for("conduit.article", slug=slug)))


@bp.post("/profile/<username>/follow")
@auth_required
def follow(username: str) -> Response:
    """Follow a user."""
    user = conduit.find_user(username) if storable(username) else None
    if user is None:
        abort(404)
    if user.id != _me().id:
        conduit.follow(_me(), user)
        flash(f"You follow {user.username}.", "success")
    return redirect(safe_next(default=url_for("conduit.profile", username=username)))


@bp.post("/profile/<username>/unfollow")
@auth_required
def unfollow(username: str) -> Response:
    """Stop following a user."""
    user = conduit.find_user(username) if storable(username) else None
    if user is None:
        abort(404)
    conduit.unfollow(_me(), user)
    flash(f"You no longer follow {user.username}.", "success")
    return redirect(safe_next(default=url_for("conduit.profile", username=username)))


@bp.route("/settings", methods=["GET", "POST"])
@auth_required
def settings() -> str | Response:
    """Change your profile, email or password."""
    me = _me()
    form = SettingsForm(obj=me if request.method == "GET" else None)
    if request.method == "GET":
        form.password.data = ""
    if form.validate_on_submit():
        if username_taken(form.username.data, exclude=me):
            form.username.errors.append("This username is taken.")
        if email_taken(form.email.data, exclude=me):
            form.email.errors.append("An account with this email already exists.")
        if not (form.username.errors or form.email.errors):
            try:
                conduit.update_profile(
                    me,
                    email=form.email.data,
                    username=form.username.data,
                    password=form.password.data or None,
                    bio=form.bio.data or "",
                    image=form.image.data or "",
                )
            except PasswordPolicyError as exc:
                form.password.errors.append(str(exc))
            else:
                if form.password.data:
                    login_user(me)  # a new password ended every session, this one too
                # After login_user, which starts a new session.
                flash("Your settings are saved.", "success")
                return redirect(url_for("conduit.profile", username=me.username))
    return render_template("settings.html", form=form)
