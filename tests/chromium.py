"""Debian's Chromium, headless, driven by Playwright: the browser of the browser tests.

Playwright drives ``/usr/bin/chromium`` (``apt-get install chromium``, which
``.ci/run`` does); it never downloads a browser of its own. A test that cannot
start the browser fails with the command that installs it.

Never answer requests with Playwright's ``route``: it answers CORS preflights
itself, so a cross-origin test that intercepts requests passes when the server
is wrong. Pages are served by real servers on loopback.
"""

from __future__ import annotations

import contextlib
import os
import typing as t
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

if t.TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["CHROMIUM", "LAUNCH_ARGS", "chromium"]

CHROMIUM = Path(os.environ.get("FLASKSTACK_CHROMIUM") or "/usr/bin/chromium")
LAUNCH_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, closed on exit."""
    if not CHROMIUM.is_file():
        raise AssertionError(
            f"no Chromium at {CHROMIUM}: install Debian's package "
            "(apt-get update && apt-get install -y chromium) or set FLASKSTACK_CHROMIUM"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(LAUNCH_ARGS))
        try:
            yield browser
        finally:
            browser.close()
