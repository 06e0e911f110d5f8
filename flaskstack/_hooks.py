"""One ``after_request`` hook for all of flaskstack's response work.

Flask calls each ``after_request`` function through ``ensure_sync``, which
inspects it on every request; flaskstack's components (request ids,
security headers, the remember-me cookie) share a single registered
function instead, and run in the order Flask would have run them: the one
added last runs first.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

ResponseHook = t.Callable[["Response"], "Response"]

_KEY = "flaskstack.after_response"


def after_response(app: Flask, hook: ResponseHook) -> None:
    """Run ``hook(response)`` after each request of ``app``, as ``app.after_request`` would."""
    hooks: list[ResponseHook] | None = app.extensions.get(_KEY)
    if hooks is None:
        hooks = app.extensions[_KEY] = []
        app.after_request(_runner(hooks))
    hooks.insert(0, hook)


def _runner(hooks: list[ResponseHook]) -> ResponseHook:
    def flaskstack_after_request(response: Response) -> Response:
        for hook in hooks:
            response = hook(response)
        return response

    return flaskstack_after_request
