"""HTML error pages for people: 400, 403, 404, 405, 413, 429, 500 and 503.

This module owns the pages a browser gets when a request fails with one of
:data:`PAGE_CODES`. Each is rendered from an overridable template,
``flaskstack/errors/<code>.html`` (falling back to
``flaskstack/errors/_base.html``), which extends ``flaskstack/base.html`` and
so takes the app's layout when the app overrides that template. A page shows
the error's title, its description (what went wrong and what to do) and the
request id (``X-Request-ID``), which the logs carry too. The error's own
headers (``Allow``, ``Retry-After``, ``WWW-Authenticate``) are kept.

The rules it keeps:

- **A guest.** The app's own error handlers answer first, wherever Flask
  would have called them had flaskstack registered none: for the status
  code or an exception class (``HTTPException``, ``Exception``), app-wide
  or on the request's blueprints, registered before or after
  :func:`flaskstack.init_app` (:func:`flaskstack.problems._app_handler`). A
  code the app handled before ``init_app`` gets no handler of flaskstack's.
- **Browsers only.** A request under an API prefix, or one that prefers
  JSON (:func:`flaskstack.problems._prefers_json`), is answered as it was
  without these pages: by flaskstack's problem documents, or Flask's page.
  Failed CSRF checks keep their own handler (:mod:`flaskstack.forms`).
- **Never a second failure.** A template that fails to render (a broken
  override, a layout that needs the session while Redis is down) is logged
  and the client gets Werkzeug's plain page for the original error.
- **Free when nothing fails.** Handlers run only for errors; no template is
  loaded before the first error page. ``FLASKSTACK_ERROR_PAGES = False``
  registers nothing.
"""

from __future__ import annotations

import logging
import typing as t

from flask import current_app, render_template
from werkzeug.wrappers import Response

from .logs import request_id
from .problems import (
    _app_handler,
    _next_handler,
    _own_handler,
    _prefers_json,
    _ServiceUnavailableProblem,
)

if t.TYPE_CHECKING:
    from flask import Flask
    from flask.typing import ResponseReturnValue
    from werkzeug.exceptions import HTTPException

__all__ = ["PAGE_CODES", "init_app", "render_error_page"]

PAGE_CODES = (400, 403, 404, 405, 413, 429, 500, 503)
"""The status codes that get flaskstack's HTML page."""

SETTING = "FLASKSTACK_ERROR_PAGES"

# Headers of the error's own response that describe its body, which is replaced.
_BODY_HEADERS = {"content-type", "content-length"}

_logger = logging.getLogger("flaskstack.errors")


def render_error_page(error: HTTPException, **context: t.Any) -> Response:
    """The HTML page answering ``error``, or Werkzeug's if the template fails.

    Renders ``flaskstack/errors/<code>.html`` (or ``flaskstack/errors/_base.html``)
    with ``error``, ``code``, ``title``, ``description``, ``request_id`` and
    ``retry_after`` (the ``Retry-After`` header's value, or ``None``), plus
    ``context`` (``csrf=True`` for a failed CSRF check: the page says to
    reload the form).
    """
    code = error.code or 500
    source = error.get_response()  # its headers (Allow, Retry-After...) are kept
    try:
        html = render_template(
            [f"flaskstack/errors/{code}.html", "flaskstack/errors/_base.html"],
            error=error,
            code=code,
            title=error.name,
            description=error.description or "",
            request_id=request_id(),
            retry_after=source.headers.get("Retry-After"),
            **context,
        )
    except _ServiceUnavailableProblem as exc:
        # The app's layout reads the session (who is signed in) and its store
        # is down: an outage already logged where it happened, not a bug here.
        _logger.warning(
            "The %s error page was sent as Werkzeug's plain page: %s", code, exc.description
        )
        return source
    except Exception:
        # Whatever else broke (the app's override, its layout), answering must
        # not fail a second time.
        _logger.exception(
            "The %s error page could not be rendered; Werkzeug's page was sent instead.", code
        )
        return source
    response = Response(html, status=code, mimetype="text/html")
    for name, value in source.headers.items():
        if name.lower() not in _BODY_HEADERS:
            response.headers.add(name, value)
    response.vary.add("Accept")
    return response


@_own_handler
def _answer_with_page(error: HTTPException) -> ResponseReturnValue:
    """The handler :func:`init_app` registers for each of :data:`PAGE_CODES`.

    The app's own handler answers if it has one; a JSON or API client gets
    what the next handler in Flask's order gives (flaskstack's problem
    documents), or Flask's page; a browser gets the HTML page.
    """
    handler = _app_handler(error)
    wants_json = _prefers_json()
    if handler is None and wants_json:
        handler = _next_handler(error, _answer_with_page)
    if handler is not None:
        return current_app.ensure_sync(handler)(error)  # type: ignore[no-any-return]
    if wants_json or error.response is not None:
        # abort(response) carries its own answer; JSON clients get Flask's.
        return error
    return render_error_page(error)


def init_app(app: Flask) -> None:
    """Register the HTML error pages on ``app``, unless ``FLASKSTACK_ERROR_PAGES`` is false.

    A status code for which the app already registered a handler of its own
    keeps it: Flask holds one handler per code and class.
    """
    if not app.config[SETTING]:
        return
    own = app.error_handler_spec.get(None, {})
    for code in PAGE_CODES:
        if not own.get(code):
            app.register_error_handler(code, _answer_with_page)
