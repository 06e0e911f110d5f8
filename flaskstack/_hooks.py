"""Hooks flaskstack's components share, so Flask runs one function for them all.

- :func:`after_response`: Flask calls each ``after_request`` function
  through ``ensure_sync``, which inspects it on every request; flaskstack's
  components (request ids, security headers, the remember-me cookie) share a
  single registered function instead, and run in the order Flask would have
  run them: the one added last runs first.
- :func:`on_first_request`: what must run once the app's set-up is over
  (refusing what was registered after ``init_app``), from one
  ``request_started`` receiver per app, so one hook that refuses cannot keep
  the others from running.
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

_FirstRequestHook = t.Callable[["Flask"], None]

# The hooks still to run for each app, in the order they were added.
_first_request_hooks: weakref.WeakKeyDictionary[Flask, list[_FirstRequestHook]] = (
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


def on_first_request(app: Flask, hook: _FirstRequestHook) -> None:
    """Run ``hook(app)`` once, when ``app`` starts its first request.

    That is the moment the app's set-up is finished (Flask refuses new URL
    rules from then on) and has no public flag of its own; Flask's
    ``request_started`` signal marks it. Every hook of the app runs, in the
    order they were added, from one receiver: a hook that raises fails that
    request (once all of them ran) and runs again on the next one; the
    others are done.
    """
    hooks = _first_request_hooks.get(app)
    if hooks is None:
        hooks = _first_request_hooks[app] = []
        request_started.connect(_run_first_request_hooks, sender=app)
    hooks.append(hook)


def _run_first_request_hooks(sender: Flask, **extra: t.Any) -> None:
    hooks = _first_request_hooks.get(sender, [])
    failed: list[_FirstRequestHook] = []
    error: Exception | None = None
    for hook in list(hooks):
        try:
            hook(sender)
        except Exception as exc:
            failed.append(hook)
            error = error or exc
    hooks[:] = failed
    if not failed:
        request_started.disconnect(_run_first_request_hooks, sender=sender)
        _first_request_hooks.pop(sender, None)
    if error is not None:
        raise error
