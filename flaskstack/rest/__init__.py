"""REST APIs on Flask-RESTful: problem+json errors, validated input, pagination, OpenAPI.

:data:`flaskstack.api` is the app-independent :class:`Api`; this module holds
what resources are written with::

    from flaskstack import api, db, rest
    from flaskstack.auth import auth_required, current_user

    class NewNote(rest.Schema):
        title = rest.String(required=True, min_length=1, max_length=200)
        body = rest.String(default="")

    NOTE = {"id": rest.fields.Integer, "title": rest.fields.String,
            "created_at": rest.fields.DateTime}

    @api.resource("/notes")
    class Notes(rest.Resource):
        method_decorators = {"post": [auth_required]}

        @rest.paginated(NOTE)
        def get(self):
            \"\"\"List the notes, oldest first.\"\"\"
            return db.select(Note).order_by(Note.id)

        @rest.body(NewNote)
        @rest.marshal_with(NOTE, status=201)
        def post(self, body):
            \"\"\"Write a note.\"\"\"
            note = Note(author=current_user, **body)
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
  sent chunked, without a ``Content-Length``.
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
- **Output**: :func:`marshal_with` and :mod:`flaskstack.rest.fields`
  (ISO 8601 datetimes with time zones, UUIDs, exact decimals); :func:`etag`
  for conditional GETs; ``flaskstack.cache.cached(query_string=True)`` on a
  ``get`` for server-side caching.
- **OpenAPI 3.1** at ``<prefix>/openapi.json`` (``FLASKSTACK_API_OPENAPI_PATH``;
  ``None`` turns it off). When the app already serves that URL,
  :func:`flaskstack.init_app` refuses with a :class:`~flaskstack.ConfigError`
  naming the setting, rather than shadow the app's view.

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
    Float,
    Integer,
    Invalid,
    InvalidQuery,
    List,
    Nested,
    Schema,
    String,
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
    "Float",
    "Integer",
    "Invalid",
    "InvalidQuery",
    "List",
    "Nested",
    "Page",
    "Resource",
    "Schema",
    "String",
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
    """Refuse an OpenAPI path where the app already has a rule of its own."""
    path = resolution["FLASKSTACK_API_OPENAPI_PATH"]
    if not path:
        return []
    prefix = api.prefix if api.prefix is not None else resolution["FLASKSTACK_API_PREFIX"]
    return clashes_with_existing(app, _resources.OPENAPI_SETTING, prefix + path)


def _init_app(app: Flask, state: StackState) -> None:
    """Route ``app``'s errors under API prefixes to problem documents and serve :data:`api`."""
    _errors.install(app)
    after_response(app, _resources.answer_options)
    api.setup(app, state)
