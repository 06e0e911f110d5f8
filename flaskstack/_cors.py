"""CORS on Flask-CORS: which origins' pages may call the API from JavaScript.

The rules this module keeps:

- **Off until configured.** With ``FLASKSTACK_CORS_ORIGINS`` empty (the
  default) nothing is registered and Flask-CORS is never imported.
- **Exact origins only.** Each allowed origin is matched as a whole,
  case-insensitively, as the browser sends it: Flask-CORS receives each one as
  an escaped, anchored pattern, so ``https://app.example.com`` never allows
  ``https://appXexample.com`` or ``https://app.example.com.evil.test``.
  ``'*'`` allows every origin; production refuses it with credentials
  (``cors.E001``) and ``flask stack check --deploy`` warns about it
  (``cors.W001``).
- **The API prefix, and what the app names.** CORS answers under
  ``FLASKSTACK_API_PREFIX`` (the prefix itself and paths below it, matched
  case-sensitively: not ``/API/...``, not ``/api-other``), under
  ``FLASKSTACK_CORS_PATHS``, and at ``FLASKSTACK_CSRF_TOKEN_PATH`` when
  credentials are allowed, so a page on another origin can fetch its token.
- **Errors too.** The headers are added by an ``after_request`` hook, which
  Flask runs for error responses as well (401, 404, 422, 429, a 500 from an
  exception): a script can read the problem document. Flask-CORS is told not
  to wrap the app's exception handling (``intercept_exceptions=False``).
- **Caches keep origins apart.** Every response on those paths, and every
  response that carries a grant, has ``Vary: Origin``.
- **Preflights** are Flask's automatic ``OPTIONS`` answers (204 under the API
  prefix), with the grant added for allowed origins. They never need a CSRF
  token or credentials. CORS does not relax CSRF: a cookie-authenticated
  unsafe request from an allowed origin still sends ``X-CSRFToken``.
- **Guest, not owner.** An app that registered Flask-CORS itself keeps it: with
  ``FLASKSTACK_CORS_ORIGINS`` set, :func:`flaskstack.init_app` refuses
  (``cors.E002``) rather than add a second, conflicting set of headers, and an
  extra ``CORS(app)`` after ``init_app`` fails the app's first request the same
  way.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from flask import request

from ._hooks import after_response, on_first_request
from .errors import ConfigError, Problem

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

    from ._state import StackState
    from .config import Resolution

ORIGINS = "FLASKSTACK_CORS_ORIGINS"
CREDENTIALS = "FLASKSTACK_CORS_CREDENTIALS"
EXPOSE_HEADERS = "FLASKSTACK_CORS_EXPOSE_HEADERS"

# The request id header in FLASKSTACK_CORS_EXPOSE_HEADERS' default, replaced by
# FLASKSTACK_REQUEST_ID_HEADER's value when the default is in effect.
_DEFAULT_REQUEST_ID_HEADER = "X-Request-ID"

_GRANT_HEADER = "Access-Control-Allow-Origin"


def _flask_cors_hooks(app: Flask) -> list[t.Callable[..., t.Any]]:
    """The app-wide ``after_request`` functions that Flask-CORS registered.

    Flask-CORS keeps no entry in ``app.extensions``; what ``CORS(app)``
    leaves behind is one ``after_request`` function defined in its package.
    """
    return [
        function
        for function in app.after_request_funcs.get(None, [])
        if (getattr(function, "__module__", None) or "").split(".")[0] == "flask_cors"
    ]


def _app_has_flask_cors(origins: t.Sequence[str]) -> Problem:
    return Problem(
        id="cors.E002",
        key=ORIGINS,
        value=f"{list(origins)!r} (the app registered Flask-CORS itself, CORS(app))",
        expected="one CORS set-up: the app's own or flaskstack's",
        fix=(
            "remove CORS(app) / cors.init_app(app) from the factory and configure "
            "FLASKSTACK_CORS_*, or leave FLASKSTACK_CORS_ORIGINS empty to keep the app's own"
        ),
    )


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Refuse a second CORS set-up; expose the app's own request id header by default."""
    origins: list[str] = resolution[ORIGINS]
    if not origins:
        return []
    exposed = resolution.entries[EXPOSE_HEADERS]
    request_id_header = resolution["FLASKSTACK_REQUEST_ID_HEADER"]
    if exposed.source == "default" and request_id_header != _DEFAULT_REQUEST_ID_HEADER:
        value = [
            request_id_header if name == _DEFAULT_REQUEST_ID_HEADER else name
            for name in exposed.value
        ]
        resolution.entries[EXPOSE_HEADERS] = dataclasses.replace(exposed, value=value)
    if _flask_cors_hooks(app):
        return [_app_has_flask_cors(origins)]
    return []


def _path_patterns(app: Flask, api_prefixes: t.Sequence[str]) -> list[re.Pattern[str]]:
    """The paths CORS answers on: the API prefixes, FLASKSTACK_CORS_PATHS, the CSRF token path."""
    config = app.config
    patterns = [_below(prefix) for prefix in api_prefixes]
    for path in config["FLASKSTACK_CORS_PATHS"]:
        patterns.append(_below(path[:-2]) if path.endswith("/*") else _exactly(path))
    token_path = config["FLASKSTACK_CSRF_TOKEN_PATH"]
    if config[CREDENTIALS] and token_path:
        patterns.append(_exactly(token_path))
    return patterns


def _below(prefix: str) -> re.Pattern[str]:
    """``prefix`` itself and every path under it: ``/api``, ``/api/x``; not ``/api-x``."""
    return re.compile(re.escape(prefix.rstrip("/")) + r"(?:/.*)?\Z", re.DOTALL)


def _exactly(path: str) -> re.Pattern[str]:
    return re.compile(re.escape(path) + r"\Z")


def _origin_pattern(origin: str) -> re.Pattern[str]:
    """``origin`` as a whole, in any case: never a prefix, and its dots are dots."""
    return re.compile(re.escape(origin) + r"\Z", re.IGNORECASE)


class _VaryOnOrigin:
    """Add ``Vary: Origin`` where the answer depends on the request's ``Origin``.

    Flask-CORS adds it only to responses that carry a grant, and not at all
    for a single allowed origin; a shared cache must not hand one origin's
    answer (or a same-origin answer without a grant) to another.
    """

    def __init__(self, patterns: t.Sequence[re.Pattern[str]]) -> None:
        self.patterns = tuple(patterns)

    def __call__(self, response: Response) -> Response:
        path = request.path
        if _GRANT_HEADER in response.headers or any(p.match(path) for p in self.patterns):
            response.vary.add("Origin")
        return response


def _refuse_another_cors(app: Flask) -> None:
    """Refuse a Flask-CORS the app registered after :func:`flaskstack.init_app`."""
    if len(_flask_cors_hooks(app)) > 1:
        raise ConfigError([_app_has_flask_cors(app.config[ORIGINS])])


def _init_app(app: Flask, state: StackState) -> None:
    """Answer the allowed origins on the CORS paths; nothing when no origin is allowed.

    The API prefixes are those of ``state`` so far: ``FLASKSTACK_API_PREFIX``
    (or the prefix given to :data:`flaskstack.api`); an API on a blueprint
    registered later is added with ``FLASKSTACK_CORS_PATHS``.
    """
    config = app.config
    origins: list[str] = config[ORIGINS]
    if not origins:
        return
    from flask_cors import CORS

    patterns = _path_patterns(app, state.api_prefixes)
    everyone = origins == ["*"]
    credentials: bool = config[CREDENTIALS]
    CORS(
        app,
        resources=list(patterns),
        origins="*" if everyone else [_origin_pattern(origin) for origin in origins],
        supports_credentials=credentials,
        # '*' with credentials is not allowed by browsers: the origin is echoed then
        # (development only; production refuses the combination).
        send_wildcard=everyone and not credentials,
        expose_headers=list(config[EXPOSE_HEADERS]),
        allow_headers=list(config["FLASKSTACK_CORS_ALLOW_HEADERS"]),
        max_age=config["FLASKSTACK_CORS_MAX_AGE"],
        vary_header=True,
        # No grant for a request without Origin (it is not a CORS request).
        always_send=False,
        # Flask runs after_request functions for error responses too; wrapping
        # Flask's handle_exception methods is not needed, and breaks with Flask
        # versions that change their signature.
        intercept_exceptions=False,
    )
    after_response(app, _VaryOnOrigin(patterns))
    on_first_request(app, _refuse_another_cors)


def _safety_problems(resolution: Resolution) -> list[Problem]:
    """``cors.E001``: every origin allowed, with credentials (refused in production)."""
    if resolution[ORIGINS] == ["*"] and resolution[CREDENTIALS]:
        return [
            Problem(
                id="cors.E001",
                key=CREDENTIALS,
                value="True with FLASKSTACK_CORS_ORIGINS = ['*']",
                expected="an explicit list of origins in FLASKSTACK_CORS_ORIGINS when "
                "credentials are allowed",
                fix="list the origins of your front ends in FLASKSTACK_CORS_ORIGINS, or set "
                "FLASKSTACK_CORS_CREDENTIALS to False: with '*' any site could act as its "
                "signed-in visitors",
            )
        ]
    return []


def _check_findings(app: Flask) -> list[tuple[str, str]]:
    """``(check id, message)`` for ``flask stack check --deploy``."""
    config = app.config
    origins = config.get(ORIGINS) or []
    found: list[tuple[str, str]] = []
    if origins == ["*"]:
        found.append(
            (
                "cors.W001",
                "FLASKSTACK_CORS_ORIGINS is ['*']: every site's pages may call the API.",
            )
        )
    return found
