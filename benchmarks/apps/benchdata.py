"""What every benchmark app shows, so that they all do the same work per request."""

from __future__ import annotations

PAGE_TITLE = "Welcome"

PAGE_ITEMS: tuple[dict[str, str], ...] = tuple(
    {
        "slug": f"item-{number}",
        "name": f"Item {number}",
        "summary": f"What item {number} is about, in a sentence of ordinary length.",
    }
    for number in range(1, 21)
)
"""The anonymous page lists these (it never reads the session or the database)."""

LATEST_NOTES = 20
"""How many notes the cached view lists, newest first."""

CACHE_SECONDS = 3600
"""How long the cached view is kept: longer than any benchmark run."""

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
"""Pagination of the API list."""

MESSAGE_MAX_LENGTH = 500
"""The feedback form's one field."""
