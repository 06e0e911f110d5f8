"""Interactive API docs: Swagger UI over the OpenAPI document of :data:`flaskstack.api`.

``FLASKSTACK_API_DOCS_PATH`` (``/docs`` under the API prefix in development
and testing, off in production unless set) places one page that shows the
document at ``FLASKSTACK_API_OPENAPI_PATH`` with Swagger UI: every operation,
an *Authorize* dialog for the document's security schemes, and *Try it out*.
The rules this module keeps:

- **Served by the app, never a CDN.** Swagger UI's files come from the
  ``flask-swagger-ui`` distribution, served through the blueprint its
  documented :func:`flask_swagger_ui.get_swaggerui_blueprint` returns, at
  ``<docs path>/<file>``. The page works offline.
- **No inline script or style.** The page is flaskstack's own: it loads the
  Swagger UI files and one initialiser script (``static/api-docs.js``) from
  the app, and hands its settings over in ``data-*`` attributes. It runs
  under the app's security headers and a strict Content-Security-Policy
  (``script-src 'self'; style-src 'self'; img-src 'self' data:``); when the
  response has no policy of the app's, the page sends that one itself. The
  package's own index page (an inline script) redirects to flaskstack's.
- **Free when off.** ``flask_swagger_ui`` is imported only when the docs are
  on, and no rule is added otherwise.
- **A guest.** When the app already has a rule at the page's URL,
  :func:`flaskstack.init_app` refuses with the setting that moves it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import typing as t
from pathlib import Path

from flask import Blueprint, Response, redirect, request
from markupsafe import escape

from flaskstack._routes import add_own_rule, clashes_with_existing
from flaskstack.errors import Problem

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response as BaseResponse

    from flaskstack.config import Resolution

__all__ = ["PAGE_POLICY", "SETTING", "init_app", "prepare"]

SETTING = "FLASKSTACK_API_DOCS_PATH"
_OPENAPI_SETTING = "FLASKSTACK_API_OPENAPI_PATH"

PAGE_ENDPOINT = "flaskstack_api_docs"
SCRIPT_ENDPOINT = "flaskstack_api_docs_script"
ASSETS_BLUEPRINT = "flaskstack_api_docs_assets"
INITIALISER = "flaskstack-api-docs.js"

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'"
)
"""The Content-Security-Policy the docs page needs, sent when the app sets none."""

# Versioned URLs (``?v=``) never change content, so browsers may keep them.
_IMMUTABLE = "public, max-age=31536000, immutable"
_SCRIPT = Path(__file__).with_name("static") / "api-docs.js"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API docs</title>
<link rel="stylesheet" href="{assets}/index.css?v={version}">
<link rel="stylesheet" href="{assets}/swagger-ui.css?v={version}">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png?v={version}" sizes="32x32">
<link rel="icon" type="image/png" href="{assets}/favicon-16x16.png?v={version}" sizes="16x16">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}" data-csrf-token-url="{csrf}"></div>
<script src="{assets}/swagger-ui-bundle.js?v={version}"></script>
<script src="{script}"></script>
</body>
</html>
"""


def prepare(app: Flask, resolution: Resolution, prefix: str) -> list[Problem]:
    """Problems with serving the docs page under ``prefix``; nothing is written to ``app``.

    The docs need the OpenAPI document: a docs path set while the document
    is off is refused, while the default path is then simply off.
    """
    entry = resolution.entries[SETTING]
    path: str | None = entry.value
    if not path:
        return []
    if not resolution[_OPENAPI_SETTING]:
        if entry.source in ("default", "profile"):
            return []
        return [
            Problem(
                "config.E001",
                SETTING,
                f"{path!r} while {_OPENAPI_SETTING} is None",
                "None while the OpenAPI document is off: the docs page shows that document",
                f"set {_OPENAPI_SETTING} to a path such as '/openapi.json' to serve the "
                f"document, or {SETTING} to None",
            )
        ]
    if path.endswith("/"):
        return [
            Problem(
                "config.E001",
                SETTING,
                repr(path),
                "a URL path starting with '/' and not ending with '/', such as '/docs'",
                f"set {SETTING} to a path such as '/docs' (it is placed under the API prefix)",
            )
        ]
    page = prefix + path
    return [
        *clashes_with_existing(app, SETTING, page),
        *clashes_with_existing(app, SETTING, f"{page}/"),
        *clashes_with_existing(app, SETTING, f"{page}/{INITIALISER}"),
    ]


def init_app(app: Flask, prefix: str) -> None:
    """Serve the docs page, its initialiser and Swagger UI's files on ``app`` under ``prefix``."""
    from flask_swagger_ui import get_swaggerui_blueprint  # type: ignore[import-untyped]

    page = prefix + app.config[SETTING]
    openapi = prefix + app.config[_OPENAPI_SETTING]
    version, script, script_version = _files()
    title = app.config["FLASKSTACK_API_TITLE"] or app.name
    csrf_path = app.config.get("FLASKSTACK_CSRF_TOKEN_PATH") or ""

    def api_docs() -> Response:
        root = request.script_root
        html = _PAGE.format(
            title=escape(title),
            assets=escape(root + page),
            version=escape(version),
            openapi=escape(root + openapi),
            csrf=escape(root + csrf_path if csrf_path else ""),
            script=escape(f"{root}{page}/{INITIALISER}?v={script_version}"),
        )
        response = Response(html, mimetype="text/html")
        response.headers["Content-Security-Policy"] = PAGE_POLICY
        response.headers["Cache-Control"] = "no-cache"
        return response

    def api_docs_script() -> Response:
        response = Response(script, mimetype="text/javascript")
        response.headers["Cache-Control"] = _cache_control(script_version)
        return response

    add_own_rule(app, page, PAGE_ENDPOINT, api_docs, SETTING)
    add_own_rule(app, f"{page}/{INITIALISER}", SCRIPT_ENDPOINT, api_docs_script, SETTING)

    assets: Blueprint = get_swaggerui_blueprint(page, openapi, blueprint_name=ASSETS_BLUEPRINT)
    index_paths = {f"{page}/", f"{page}/index.html"}

    @assets.before_request
    def to_flaskstack_page() -> BaseResponse | None:
        # The package's index page starts Swagger UI with an inline script,
        # which a strict Content-Security-Policy blocks: flaskstack's page
        # does the same from a file.
        if request.path in index_paths:
            return redirect(request.script_root + page)
        return None

    @assets.after_request
    def cached(response: Response) -> Response:
        # Unversioned URLs keep what send_from_directory chose (revalidation,
        # or the app's SEND_FILE_MAX_AGE_DEFAULT).
        if response.status_code == 200 and request.args.get("v") == version:
            response.headers["Cache-Control"] = _IMMUTABLE
        return response

    app.register_blueprint(assets)


@functools.cache
def _files() -> tuple[str, bytes, str]:
    """Swagger UI's version, the initialiser script and its version; read once per process."""
    script = _SCRIPT.read_bytes()
    return (
        importlib.metadata.version("flask-swagger-ui"),
        script,
        hashlib.sha256(script).hexdigest()[:16],
    )


def _cache_control(version: str) -> str:
    """Long caching for a URL versioned with ``version``; revalidation otherwise."""
    return _IMMUTABLE if request.args.get("v") == version else "no-cache"
