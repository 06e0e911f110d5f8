"""REST APIs on Flask-RESTful: problem+json errors, one schema for input and output, OpenAPI.

:data:`flaskstack.api` is the app-independent :class:`Api`; this module holds
what resources are written with. One :class:`Schema` describes what comes in
and what goes out, and the OpenAPI document says both::

    from flaskstack import api, db, rest
    from flaskstack.auth import auth_required, current_user

    class Note(rest.Schema):
        \"\"\"A note.\"\"\"

        id = rest.Integer(dump_only=True)
        title = rest.String(required=True, min_length=1, max_length=200)
        body = rest.String(default="")
        created_at = rest.DateTime(dump_only=True)

    @api.resource("/notes")
    class Notes(rest.Resource):
        method_decorators = {"post": [auth_required]}

        @rest.paginated(Note)
        def get(self):
            \"\"\"List the notes, oldest first.\"\"\"
            return db.select(NoteRow).order_by(NoteRow.id)

        @rest.body(Note)
        @rest.marshal_with(Note, status=201)
        def post(self, body):
            \"\"\"Write a note.\"\"\"
            note = NoteRow(author=current_user, **body)
            db.session.add(note)
            db.session.commit()
            return note

What flaskstack promises under the API prefix (``FLASKSTACK_API_PREFIX``,
``/api`` by default):

- **Errors** are RFC 9457 ``application/problem+json`` — unknown URLs, wrong
  methods, CSRF failures, 401/403, invalid input, throttling, ``abort()``
  and uncaught exceptions alike (:func:`abort`, :func:`problem_for`). A 500 says
  only its request id, which the log line with the traceback carries too.
  A handler the app registers for a status code, or on a blueprint, answers
  first, as Flask's order of precedence says.
- **Input** is declared with a :class:`Schema` and checked by :func:`body`
  and :func:`query`: 415, 400, 413 and 422 each say precisely what is wrong,
  field by field. A body over ``MAX_CONTENT_LENGTH`` is 413 also when it is
  sent chunked, without a ``Content-Length``. A field the schema does not
  declare is dropped (``FLASKSTACK_API_UNKNOWN_FIELDS = "reject"``, or
  ``unknown = "reject"`` on a schema, answers 422 instead).
- **Uploads**: a schema with a :class:`File` field is read from a
  ``multipart/form-data`` body, each file streamed to a temporary file and
  held to its ``max_size`` and ``content_types``.
- **URLs**: ``/notes`` and ``/notes/`` reach the same resource, for every
  method, without a redirect (``strict_slashes=False`` on the API's rules;
  pass ``strict_slashes=True`` to ``add_resource`` for the other behaviour).
  ``OPTIONS`` is answered ``204 No Content`` with ``Allow``.
- **Auth**: :func:`flaskstack.auth.auth_required` accepts an API token or
  the session; requests with a token need no CSRF token, cookie-authenticated
  unsafe requests need ``X-CSRFToken``. A token that is sent but wrong,
  expired or revoked is 401 with ``"error": "invalid_token"`` in the problem
  and in ``WWW-Authenticate`` (RFC 6750). A :class:`Resource` checks CSRF
  after its ``method_decorators``, so a client without credentials gets 401.
  Exempt a public unsafe resource (sign-up returning a token) with
  ``@flaskstack.csrf.exempt`` on its class.
- **Pagination** with a cap, an envelope and ``Link`` headers
  (:func:`paginated`).
- **Output**: :func:`marshal_with`, :func:`paginated` and :func:`marshal`
  write objects with a :class:`Schema` (ISO 8601 datetimes with time zones,
  UUIDs, exact decimals); :func:`etag` for conditional GETs;
  ``flaskstack.cache.cached(query_string=True)`` on a ``get`` for
  server-side caching. Flask-RESTful field dicts (:mod:`flaskstack.rest.fields`)
  still work, with a ``DeprecationWarning``, until the next release.
- **OpenAPI 3.1** at ``<prefix>/openapi.json``, whose request schemas accept
  exactly what validation accepts (``FLASKSTACK_API_OPENAPI_PATH``;
  ``None`` turns it off). When the app already serves that URL,
  :func:`flaskstack.init_app` refuses with a :class:`~flaskstack.ConfigError`
  naming the setting, rather than shadow the app's view. Swagger UI shows it
  at ``<prefix>/docs`` in development (``FLASKSTACK_API_DOCS_PATH``).
- **Rate limits** (:func:`flaskstack.limits.limit`) and **CORS**
  (``FLASKSTACK_CORS_ORIGINS``), off until configured.

``FLASKSTACK_API_PROBLEMS = False`` leaves every error to the app's own
handlers: flaskstack then registers no error handler for the API.
"""

from __future__ import annotations

import typing as t

from flaskstack._hooks import after_response
from flaskstack._routes import clashes_with_existing

from . import _errors, _resources, fields
from ._errors import abort, problem_for
from ._inputs import (
    UUID,
    Boolean,
    Date,
    DateTime,
    Decimal,
    Email,
    Field,
    File,
    Float,
    Integer,
    Invalid,
    InvalidQuery,
    List,
    Nested,
    Password,
    Schema,
    String,
    Url,
    ValidationError,
    body,
    query,
)
from ._output import etag, marshal, marshal_with
from ._pagination import Page, paginate, paginated
from ._resources import Api, Resource

if t.TYPE_CHECKING:
    from flask import Flask

    from flaskstack._state import StackState
    from flaskstack.config import Resolution
    from flaskstack.errors import Problem

__all__ = [
    "UUID",
    "Api",
    "Boolean",
    "Date",
    "DateTime",
    "Decimal",
    "Email",
    "Field",
    "File",
    "Float",
    "Integer",
    "Invalid",
    "InvalidQuery",
    "List",
    "Nested",
    "Page",
    "Password",
    "Resource",
    "Schema",
    "String",
    "Url",
    "ValidationError",
    "abort",
    "api",
    "body",
    "etag",
    "fields",
    "marshal",
    "marshal_with",
    "paginate",
    "paginated",
    "problem_for",
    "query",
]

api = Api()
"""The app-independent API, also exported as ``flaskstack.api``.

Its resources are served under each app's ``FLASKSTACK_API_PREFIX``.
"""


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Refuse an OpenAPI or docs path where the app already has a rule of its own."""
    problems: list[Problem] = []
    prefix = api.prefix if api.prefix is not None else resolution["FLASKSTACK_API_PREFIX"]
    path = resolution["FLASKSTACK_API_OPENAPI_PATH"]
    if path:
        problems.extend(clashes_with_existing(app, _resources.OPENAPI_SETTING, prefix + path))
    if resolution["FLASKSTACK_API_DOCS_PATH"]:
        from . import _docs_ui  # only when the docs are on: they cost nothing otherwise

        problems.extend(_docs_ui.prepare(app, resolution, prefix))
    return problems


def _init_app(app: Flask, state: StackState) -> None:
    """Route ``app``'s errors under API prefixes to problem documents and serve :data:`api`."""
    _errors.install(app)
    after_response(app, _resources.answer_options)
    api.setup(app, state)
    if app.config["FLASKSTACK_API_DOCS_PATH"] and app.config["FLASKSTACK_API_OPENAPI_PATH"]:
        from . import _docs_ui

        prefix = api.prefix if api.prefix is not None else app.config["FLASKSTACK_API_PREFIX"]
        _docs_ui.init_app(app, prefix)
