"""RFC 9457 problem details, and telling JSON clients from browsers.

Every error flaskstack produces for a client that prefers JSON is an
``application/problem+json`` object with ``type``, ``title``, ``status``,
``detail`` and the ``request_id`` of the request; browsers get HTML.
:func:`prefers_json` is the one rule for telling them apart, and
:func:`is_api_request` says whether a request is under an API prefix, where
every error is a problem document whatever the client asked for.

flaskstack's error handlers never take precedence over the app's own: each
first looks for the handler Flask would have chosen had flaskstack registered
none (the app's, app-wide or on the request's blueprints, for the error's
status code or one of its classes, registered before or after
:func:`flaskstack.init_app`) and lets it answer.
"""

from __future__ import annotations

import json
import typing as t

from flask import current_app, has_request_context, request
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

from ._credentials import has_api_token
from ._state import EXTENSION_KEY
from .logs import request_id

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from flask.typing import ErrorHandlerCallable, ResponseReturnValue

__all__ = ["PROBLEM_MIMETYPE", "is_api_request", "problem"]

PROBLEM_MIMETYPE = "application/problem+json"
"""The media type of an RFC 9457 problem document."""


def _prefers_json() -> bool:
    """Whether the current request wants JSON rather than an HTML page.

    True under an API prefix (:func:`is_api_request`), when the request body
    is JSON, when its ``Authorization`` header
    carries an API token (``FLASKSTACK_API_TOKEN_SCHEMES``; a browser behind
    Basic auth still gets HTML), or when its ``Accept`` header ranks a JSON
    type above HTML.
    """
    if not has_request_context():
        return False
    if request.is_json or has_api_token() or is_api_request():
        return True
    accept = request.accept_mimetypes
    best = accept.best_match(["text/html", "application/json", PROBLEM_MIMETYPE])
    return best is not None and best != "text/html"


def is_api_request() -> bool:
    """Whether the current request's path is under one of the app's API prefixes.

    The prefixes are ``FLASKSTACK_API_PREFIX`` and those of every
    :class:`flaskstack.rest.Api` registered on a blueprint.
    """
    if not has_request_context():
        return False
    state = current_app.extensions.get(EXTENSION_KEY)
    if state is None:
        return False
    path = request.path
    return any(path == prefix or path.startswith(prefix + "/") for prefix in state.api_prefixes)


_HANDLER_ATTRIBUTE = "_flaskstack_error_handler"

_H = t.TypeVar("_H", bound=t.Callable[..., t.Any])


def _own_handler(handler: _H) -> _H:
    """Mark ``handler`` as one of flaskstack's error handlers (see :func:`_app_handler`)."""
    setattr(handler, _HANDLER_ATTRIBUTE, True)
    return handler


def _is_own_handler(handler: t.Callable[..., t.Any]) -> bool:
    """Whether ``handler`` is one of flaskstack's (:func:`_own_handler`)."""
    return bool(getattr(handler, _HANDLER_ATTRIBUTE, False))


def _app_handler(error: BaseException) -> ErrorHandlerCallable | None:
    """The handler Flask would choose for ``error`` if flaskstack had registered none.

    Flask keeps one handler per class and status code and prefers the most
    specific class: a handler of flaskstack's for ``HTTPException`` or
    ``CSRFError`` would otherwise beat the app's for ``Exception``, for
    ``HTTPException``, or a blueprint's for either. This walks Flask's own
    order (status code first, then class; the request's blueprints before
    the app; the error's classes from the most specific) over the public
    ``error_handler_spec``, skipping flaskstack's handlers.
    """
    return _find_handler(error, lambda handler: not _is_own_handler(handler))


def _next_handler(
    error: BaseException, skipped: t.Callable[..., t.Any]
) -> ErrorHandlerCallable | None:
    """The handler Flask would choose for ``error`` if ``skipped`` were not registered.

    flaskstack's HTML error pages are registered for status codes, which
    Flask consults before classes; for a request they do not answer (an API
    or JSON client), this finds the handler that would have answered
    without them: the app's, or flaskstack's problem documents.
    """
    return _find_handler(error, lambda handler: handler is not skipped)


def _find_handler(
    error: BaseException, accept: t.Callable[[t.Callable[..., t.Any]], bool]
) -> ErrorHandlerCallable | None:
    """The first handler in Flask's order for ``error`` that ``accept`` takes."""
    code = error.code if isinstance(error, HTTPException) else None
    names: tuple[str | None, ...] = (*request.blueprints, None)
    spec = current_app.error_handler_spec
    for status in (code, None) if code is not None else (None,):
        for name in names:
            handlers = spec.get(name, {}).get(status)
            if not handlers:
                continue
            for cls in type(error).__mro__:
                handler = handlers.get(cls)
                if handler is not None and accept(handler):
                    return handler
    return None


def _answer_with_app_handler(error: BaseException) -> ResponseReturnValue | None:
    """Let the app's own handler for ``error`` answer, if it has one (:func:`_app_handler`)."""
    handler = _app_handler(error)
    if handler is None:
        return None
    return current_app.ensure_sync(handler)(error)  # type: ignore[no-any-return]


def _problem_body(status: int, detail: str, title: str | None = None, **extra: t.Any) -> str:
    """The JSON text of a problem object; in a request, it carries the request id."""
    if has_request_context():
        extra.setdefault("request_id", request_id())
    body = {
        "type": "about:blank",
        "title": title or HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return json.dumps(body)


def problem(
    status: int,
    detail: str,
    title: str | None = None,
    headers: t.Mapping[str, str] | None = None,
    **extra: t.Any,
) -> Response:
    """A complete ``application/problem+json`` response."""
    response = Response(
        _problem_body(status, detail, title, **extra), status=status, mimetype=PROBLEM_MIMETYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class _ServiceUnavailableProblem(ServiceUnavailable):
    """503 with ``Retry-After``: an HTML page for browsers, a problem document for JSON clients.

    :param retry_after: Seconds until the client may try again; rounded to a
        whole number of at least 1.
    """

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after=max(1, round(retry_after)))

    def get_headers(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, t.Any] | None = None
    ) -> list[tuple[str, str]]:
        """``Retry-After``, and the content type :meth:`get_body` produces."""
        headers = super().get_headers(environ, scope)
        if _prefers_json():
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            headers.append(("Content-Type", PROBLEM_MIMETYPE))
        return headers

    def get_body(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, t.Any] | None = None
    ) -> str:
        """HTML for browsers; an RFC 9457 problem for clients that prefer JSON."""
        if not _prefers_json():
            return super().get_body(environ, scope)
        return _problem_body(self.code or 503, self.description or "")
