"""Every error under an API prefix is ``application/problem+json``.

The rule: while a request's path is under ``FLASKSTACK_API_PREFIX`` (or the
prefix of an API on a blueprint), whatever goes wrong — an unknown URL, a
method the resource lacks, a failed CSRF check, a refused login, a body too
large, an ``abort()``, an exception in the view — the client gets an RFC 9457
problem document with the right status and headers (``Allow``,
``Retry-After``, ``WWW-Authenticate``…). Everywhere else the app's own error
handlers answer, untouched. A body sent without ``Content-Length`` (chunked)
that ``MAX_CONTENT_LENGTH`` cut off is 413, whatever its truncated remains
made the reader fail with.

It is done with one error handler that Flask calls like any other: it is
registered for :class:`~werkzeug.exceptions.HTTPException`. The app's own
error handlers keep precedence, wherever Flask would have called them had
flaskstack registered none: a handler for a status code
(``@app.errorhandler(404)``), a blueprint's handler (``@bp.errorhandler(...)``,
so an API blueprint with its own JSON errors keeps them for its routes), and
an app-wide handler for ``HTTPException`` or ``Exception``, registered before
or after ``flaskstack.init_app``. To answer API clients with a problem
document from such a handler, return :func:`problem_for` when
:func:`flaskstack.problems.is_api_request` is true::

    @app.errorhandler(404)
    def not_found(error):
        if is_api_request():
            return problem_for(error)
        return render_template("404.html"), 404

``FLASKSTACK_API_PROBLEMS = False`` turns all of this off: flaskstack then
registers no error handler for the API, and errors under the prefix are
answered by the app's handlers or Flask's defaults.

An exception that is not an HTTP error, and for which the app registered no
handler, is a 500: Flask logs it with its traceback (which carries the request
id), sends ``got_request_exception``, and calls this handler with the
:class:`~werkzeug.exceptions.InternalServerError` that wraps it; the client
gets the request id only — never the exception's text. When Flask propagates
exceptions (``TESTING``, ``DEBUG``, ``PROPAGATE_EXCEPTIONS``) it propagates as
usual and the debugger shows it.

The routing is flaskstack's own rather than Flask-RESTful's, whose router
answers in its own JSON format for its resources only and leaves an unknown
URL under the prefix to the app's HTML 404 page.
"""

from __future__ import annotations

import typing as t

from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    default_exceptions,
)

from flaskstack.problems import _answer_with_app_handler, _own_handler, is_api_request, problem

from ._inputs import body_too_large, body_was_cut_off

if t.TYPE_CHECKING:
    from flask import Flask
    from flask.typing import ResponseReturnValue
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


@_own_handler
def _answer_http_error(error: HTTPException) -> ResponseReturnValue:
    """Answer ``error``: the handler :func:`install` registers for ``HTTPException``.

    The app's own handler for the error, if it has one, answers. Otherwise,
    under an API prefix: a problem document (for an unhandled exception, the
    request id and nothing of the exception). Elsewhere: what Flask would
    have answered without this handler.
    """
    api_request = is_api_request()
    if api_request and _body_cut_off(error):
        error = body_too_large()
    answer = _answer_with_app_handler(error)
    if answer is not None:
        return answer
    if not api_request:
        return error  # Flask renders the error itself, as with no handler at all
    if isinstance(error, InternalServerError) and error.original_exception is not None:
        # An exception no handler took: Flask logged it with its traceback.
        return problem(500, SERVER_ERROR_DETAIL)
    if error.code is None or error.code < 400 or error.response is not None:
        # Not an error to rewrite: abort(response) carries its own response.
        # (Flask never passes a redirect such as the trailing-slash
        # RequestRedirect to error handlers.)
        return error
    return problem_for(error)


def _body_cut_off(error: HTTPException) -> bool:
    """Whether ``error`` came from reading a body that ``MAX_CONTENT_LENGTH`` cut off.

    A reader that found a truncated document (invalid JSON, an unfinished
    form) fails with a 4xx that blames the client's syntax; the answer is a
    413 instead (:func:`~flaskstack.rest._inputs.body_was_cut_off`).
    """
    code = error.code or 500
    if not 400 <= code < 500 or code == 413 or error.response is not None:
        return False
    return body_was_cut_off()


def install(app: Flask) -> None:
    """Route ``app``'s errors under its API prefixes to problem documents.

    Registers a handler for ``HTTPException``, unless the app already
    registered one of its own, which is kept, or ``FLASKSTACK_API_PROBLEMS``
    is false.
    """
    if not app.config["FLASKSTACK_API_PROBLEMS"]:
        return
    if app.error_handler_spec.get(None, {}).get(None, {}).get(HTTPException) is None:
        app.register_error_handler(HTTPException, _answer_http_error)
