"""What Conduit caches, under which keys, and when the copies are forgotten.

Two things are read far more often than they change, and look the same to
every anonymous visitor:

- the tag list (``GET /api/tags`` and the home page's sidebar), under
  :data:`TAGS_KEY`;
- an article as someone not signed in sees it: its page
  (``/article/<slug>``) and its JSON (``GET /api/articles/<slug>``), under
  keys made by :func:`article_page_key` and :func:`article_json_key`.

Requests from signed-in users (a session or remember-me cookie, or an API
token) are never served from nor stored in the article caches
(:func:`is_anonymous_request`): their pages show their own favourites and
follows. Every write in :mod:`example.conduit` calls the ``forget_*``
function for what it changed right after committing, so nobody sees a
stale copy; the timeouts only bound how long an unused copy occupies Redis.

Everything goes through :data:`flaskstack.cache`: on Redis in production,
in-process without it, and a Redis outage only means cache misses.
"""

from __future__ import annotations

import typing as t

from flask import current_app, request

from flaskstack import cache

__all__ = [
    "ARTICLE_TIMEOUT",
    "TAGS_KEY",
    "TAGS_TIMEOUT",
    "article_json_key",
    "article_page_key",
    "forget_articles",
    "forget_tags",
    "get_tags",
    "is_anonymous_request",
    "set_tags",
]

TAGS_KEY = "conduit/tags"
TAGS_TIMEOUT = 3600
ARTICLE_TIMEOUT = 600


def get_tags() -> list[str] | None:
    """The cached tag list, or ``None`` when there is none."""
    value = cache.get(TAGS_KEY)
    return t.cast("list[str]", value) if isinstance(value, list) else None


def set_tags(names: list[str]) -> None:
    """Cache the tag list."""
    cache.set(TAGS_KEY, names, timeout=TAGS_TIMEOUT)


def forget_tags() -> None:
    """Drop the cached tag list (an article was written, retagged or deleted)."""
    cache.delete(TAGS_KEY)


def article_page_key(slug: str) -> str:
    """The key of the anonymous HTML page of the article ``slug``."""
    return f"conduit/article-page/{slug}"


def article_json_key(slug: str) -> str:
    """The key of the anonymous JSON of the article ``slug``."""
    return f"conduit/article-json/{slug}"


def forget_articles(slugs: t.Iterable[str]) -> None:
    """Drop every cached copy of the articles ``slugs``."""
    keys = [key for slug in slugs for key in (article_page_key(slug), article_json_key(slug))]
    if keys:
        cache.delete_many(*keys)


def is_anonymous_request() -> bool:
    """Whether the request carries no credentials: no session or remember-me cookie, no token.

    Decided from the headers alone, so a cache hit never loads the session.
    """
    if "Authorization" in request.headers:
        return False
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cookie_names = (
        app.session_interface.get_cookie_name(app),
        app.config.get("REMEMBER_COOKIE_NAME", "remember_token"),
    )
    return not any(name in request.cookies for name in cookie_names)
