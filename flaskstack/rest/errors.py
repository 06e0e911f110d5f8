"""Every error under an API prefix is ``application/problem+json``.

The rule: while a request's path is under ``FLASKSTACK_API_PREFIX`` (or the
prefix of an API on a blueprint), whatever goes wrong — an unknown URL, a
method the resource lacks, a failed CSRF check, a refused login, a body too
large, an ``abort()``, an exception in the view — the client gets an RFC 9457
problem document with the right status and headers (``Allow``,
``Retry-After``, ``WWW-Authenticate``…). Everywhere else the app's own error
handlers answer, untouched.

The routing is flaskstack's own rather than Flask-RESTful's, whose router
answers in its own JSON format for its resources only and leaves an unknown
URL under the prefix to the app's HTML 404 page.

An exception that is not an HTTP error, and for which the app registered no
handler, is a 500: logged with its traceback and the request id, and
answered with the request id only — never the exception's text. When Flask
propagates exceptions (``TESTING``, ``DEBUG``, ``PROPAGATE_EXCEPTIONS``) it
propagates as usual.
"""

from __future__ import annotations

import sys
import typing as t

from flask import got_request_exception
from werkzeug.exceptions import HTTPException

from flaskstack.logs import request_id
from flaskstack.problems import is_api_request, problem

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

__all__ = ["abort", "install", "problem_for"]

# Headers of an error response that describe its body, which is replaced.
_BODY_HEADERS = {"content-type", "content-length"}

SERVER_ERROR_DETAIL = (
    "The server could not complete the request because of an internal error. It has been "
    "logged; quote the request id when you report it."
)


def abort(status: int, detail: str | None = None, **extra: t.Any) -> t.NoReturn:
    """Stop the request with an HTTP error; under an API prefix, a problem document.

    ::

        rest.abort(404, f"There is no note {note_id}.")
        rest.abort(409, "The slug is taken.", slug=slug)

    :param status: An HTTP error status (4xx or 5xx).
    :param detail: The problem's ``detail``; the status's standard text if left out.
    :param extra: Extension members of the problem document.
    """
    from werkzeug.exceptions import default_exceptions

    try:
        error = default_exceptions[status](detail)
    except KeyError:
        raise ValueError(f"{status} is not an HTTP error status werkzeug knows") from None
    error.data = dict(extra)  # type: ignore[attr-defined]
    raise error


def problem_for(error: HTTPException) -> Response:
    """The problem document answering ``error``, keeping its meaningful headers.

    ``detail`` is the error's description, or the ``message``/``detail``
    that Flask-RESTful's ``abort(code, message=...)`` or :func:`abort` put
    in its ``data``; the rest of ``data`` becomes extension members.
    """
    code = error.code or 500
    data = dict(getattr(error, "data", None) or {})
    detail = data.pop("detail", None) or data.pop("message", None) or error.description
    headers = {
        name: value
        for name, value in error.get_response().headers.items()
        if name.lower() not in _BODY_HEADERS
    }
    return problem(code, str(detail or ""), title=error.name, headers=headers, **data)


def _handles_error(error: HTTPException) -> bool:
    # A redirect (trailing-slash RequestRedirect) or abort(response) is not
    # an error to rewrite.
    return error.code is not None and error.code >= 400 and error.response is None


def install(app: Flask) -> None:
    """Route ``app``'s errors under its API prefixes to problem documents."""
    handle_user_exception = app.handle_user_exception
    handle_exception = app.handle_exception

    def route_user_exception(error: Exception) -> t.Any:
        if isinstance(error, HTTPException) and _handles_error(error) and is_api_request():
            return problem_for(error)
        return handle_user_exception(error)

    def route_exception(error: Exception) -> Response:
        if not is_api_request():
            return handle_exception(error)
        exc_info = sys.exc_info()
        got_request_exception.send(app, _async_wrapper=app.ensure_sync, exception=error)
        propagate = app.config["PROPAGATE_EXCEPTIONS"]
        if propagate is None:
            propagate = app.testing or app.debug
        if propagate:
            if exc_info[1] is error:
                raise
            raise error
        app.log_exception(exc_info)
        response = problem(500, SERVER_ERROR_DETAIL, request_id=request_id())
        return app.finalize_request(response, from_error_handler=True)

    app.handle_user_exception = route_user_exception  # type: ignore[method-assign,assignment]
    app.handle_exception = route_exception  # type: ignore[method-assign,assignment]
