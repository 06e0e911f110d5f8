"""One ``after_request`` hook for all of flaskstack's response work.

Flask calls each ``after_request`` function through ``ensure_sync``, which
inspects it on every request; flaskstack's components (request ids,
security headers, the remember-me cookie) share a single registered
function instead, and run in the order Flask would have run them: the one
added last runs first.
"""

from __future__ import annotations

import typing as t
import weakref

from flask import request_started

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

ResponseHook = t.Callable[["Response"], "Response"]

_KEY = "flaskstack.after_response"

_first_request_hooks: weakref.WeakKeyDictionary[Flask, list[t.Callable[..., None]]] = (
    weakref.WeakKeyDictionary()
)


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


def on_first_request(app: Flask, hook: t.Callable[[Flask], None]) -> None:
    """Run ``hook(app)`` once, when ``app`` starts its first request.

    That is the moment the app's set-up is finished (Flask refuses new URL
    rules from then on) and has no public flag of its own; Flask's
    ``request_started`` signal marks it. An exception raised by ``hook``
    fails that request, and the hook runs again on the next one.
    """

    def first_request(sender: Flask, **extra: t.Any) -> None:
        hook(sender)
        request_started.disconnect(first_request, sender=sender)
        _first_request_hooks.pop(sender, None)

    # Blinker holds receivers weakly: keep this one alive as long as the app.
    _first_request_hooks.setdefault(app, []).append(first_request)
    request_started.connect(first_request, sender=app)
