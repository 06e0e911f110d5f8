"""Safe redirect targets: which ``next`` values a view may redirect to.

This module owns one rule: **a redirect target taken from a request is
followed only when it is a path on this site.** That means a path-absolute
relative reference (``/profile``, ``/articles/1?page=2#top``) that every
browser, and every layer that decodes it once more, resolves against the
current origin. Anything that could name another origin, however indirectly,
is refused, and the caller falls back to a default it chose itself.

What is refused, and why:

- Anything not starting with ``/``: absolute URLs (even to this host: it is
  simpler and loses nothing, since ``/path`` reaches the same page), other
  schemes (``javascript:``, ``data:``, ``http:evil.com``), bare host names,
  ``@evil.com``, relative paths without a leading slash, ``?query`` alone.
- ``//host`` and ``/\\host`` (scheme-relative; browsers read ``\\`` as ``/``),
  and paths that become one after removing dot segments (``/.//evil.com``,
  ``/a/..//evil.com``): a browser keeps those on this host, but a server or
  proxy that normalises the path and redirects again does not.
- Backslashes, whitespace and control characters anywhere: browsers drop
  tabs and newlines inside URLs and strip leading and trailing spaces, which
  turns ``/\\t/evil.com`` into ``//evil.com``.
- Anything that becomes unsafe after percent-decoding, repeated until the
  text no longer changes (``/%2F%2Fevil.com``, ``/%5Cevil.com``,
  ``/%252F%252Fevil.com``, ``/%09/evil.com``), since some layer between the
  browser and the app may decode it again.
- Non-ASCII characters in the path other than letters, marks and digits
  (full-width solidus U+FF0F, division slash U+2215, fraction slash U+2044,
  zero-width and bidi controls, non-ASCII spaces); the path is also checked
  again after NFKC normalisation.

The query string and fragment cannot change where the browser goes, so they
are held only to the basic rules (no raw whitespace, backslash or control
character, and no control character once decoded): ``/search?q=%2F%2F`` and
``/search?q=a%20b`` are accepted.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

from flask import request

__all__ = ["is_safe_redirect", "safe_next"]

# Percent-decoding is repeated until the text is stable; a target that still
# changes after this many rounds is no real page of this site.
_MAX_DECODES = 4

_SINGLE_DOT = frozenset({".", "%2e"})
_DOUBLE_DOT = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})


def is_safe_redirect(target: str | None) -> bool:
    """Whether ``target`` is a path on this site, safe to redirect a browser to.

    Only a path-absolute reference passes: ``/`` alone, or ``/`` followed by
    anything but another ``/`` or ``\\``, with no whitespace, backslash or
    control character, and still such a path after percent-decoding and
    NFKC normalisation. Absolute URLs are refused even when they name this
    host. See the module documentation for the full list and the reasons.

    >>> is_safe_redirect("/articles/7?page=2")
    True
    >>> is_safe_redirect("//evil.example")
    False
    >>> is_safe_redirect("https://example.com/")
    False

    :param target: The candidate, typically the ``next`` argument of a request.
    :returns: ``True`` only when redirecting to ``target`` keeps the browser
        on this site; ``False`` for ``None`` and the empty string.
    """
    if not isinstance(target, str) or not target:
        return False
    if any(ch.isspace() or ch == "\\" or _is_control(ch) for ch in target):
        return False
    split = min((i for i in (target.find("?"), target.find("#")) if i >= 0), default=len(target))
    path, rest = target[:split], target[split:]
    return _path_is_safe(path) and _rest_is_safe(rest)


def safe_next(default: str = "/", arg: str = "next") -> str:
    """The request's ``next`` target if it is safe, else ``default``.

    Reads ``request.args[arg]`` and, when the query string has none, the
    submitted form's field of that name, so a login form can carry ``next``
    either way::

        @app.post("/login")
        def login():
            ...
            return redirect(safe_next(default=url_for("index")))

    :param default: Where to go when there is no target or it is not safe.
        It comes from the code, not the request, so it is not checked.
    :param arg: The name of the query argument or form field.
    :returns: A path on this site, or ``default``.
    """
    target = request.args.get(arg)
    if target is None and request.method not in ("GET", "HEAD"):
        target = request.form.get(arg)
    return target if target is not None and is_safe_redirect(target) else default


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc"


def _path_is_safe(path: str) -> bool:
    """Check the raw path, each percent-decoded form of it, and their NFKC forms."""
    layer = path
    for _ in range(_MAX_DECODES + 1):
        if not _layer_is_safe(layer):
            return False
        normalised = unicodedata.normalize("NFKC", layer)
        if normalised != layer and not _layer_is_safe(normalised):
            return False
        decoded = unquote(layer)
        if decoded == layer:
            return True
        layer = decoded
    return False


def _layer_is_safe(path: str) -> bool:
    if not path.startswith("/") or path[1:2] in ("/", "\\"):
        return False
    for ch in path:
        if ch == "\\" or _is_control(ch):
            return False
        if not ch.isascii() and not _is_plain_non_ascii(ch):
            return False
    return not _without_dot_segments(path).startswith("//")


def _is_plain_non_ascii(ch: str) -> bool:
    # Letters, marks and digits never stand for a separator; U+FFFD is what
    # undecodable bytes (``/%FF``) become and stands for nothing either.
    return unicodedata.category(ch)[0] in "LMN" or ch == "\ufffd"


def _without_dot_segments(path: str) -> str:
    """``path`` with ``.`` and ``..`` segments resolved, as a browser does (RFC 3986 5.2.4)."""
    kept: list[str] = []
    for segment in path.split("/")[1:]:
        lowered = segment.lower()
        if lowered in _SINGLE_DOT:
            continue
        if lowered in _DOUBLE_DOT:
            if kept:
                kept.pop()
            continue
        kept.append(segment)
    return "/" + "/".join(kept)


def _rest_is_safe(rest: str) -> bool:
    """The query and fragment: no control character, even once decoded.

    Unlike the path, a query still changing after the last round is accepted:
    it cannot take the browser anywhere (``?url=https%253A%252F%252F...``).
    """
    layer = rest
    for _ in range(_MAX_DECODES):
        layer = unquote(layer)
        if any(_is_control(ch) for ch in layer):
            return False
    return True
