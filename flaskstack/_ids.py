"""Integer ids in URLs that no row can have: a 404, on every database, never a 500.

A client can put any digits in ``/api/notes/<int:note_id>``. The rule:
**an integer path value that the column it is looked up in cannot hold
names no row, so the answer is 404** — the same as for an id that could
exist but does not. Two pieces enforce it, so no view has to:

- flaskstack's ``int`` URL converter (Werkzeug's, with a default ``max`` of
  2**63 - 1, the largest 64-bit signed integer): a longer number matches no
  rule and is a 404 before any view runs. Without it SQLite raises
  ``OverflowError`` and PostgreSQL ``numeric_value_out_of_range`` for such
  values. A rule's own ``max`` (``<int(max=99):n>``) still applies. The
  converter replaces Werkzeug's default in ``app.url_map.converters``; an
  app that registered an ``int`` converter of its own keeps it. Rules the
  app added before :func:`flaskstack.init_app` keep the converter they were
  built with.
- a column narrower than 64 bits (``db.Integer`` is a 32-bit ``integer`` on
  PostgreSQL) fails the lookup with SQLSTATE ``22003``
  (``numeric_value_out_of_range``) for a value between 2**31 and 2**63. A
  statement failing so that was given an integer path value outside the
  32-bit range is answered 404 (through the app's 404 handler, a problem
  document under the API prefix) and the transaction rolled back, by the
  database's error handler (:mod:`flaskstack.database`), which
  :func:`path_value_out_of_range` tells. A number the client sent in the
  body or the query string that the column cannot hold is refused 422 (body)
  or 400 (query string), naming the field; one the app computed itself is a
  bug and stays a 500. An app's own handler for ``DataError`` answers
  instead.

Query-string and body integers are bounded the same way by
:class:`flaskstack.rest.Integer` (422 or 400 naming the bound).
"""

from __future__ import annotations

import typing as t

from flask import request
from werkzeug.routing import IntegerConverter

if t.TYPE_CHECKING:
    import sqlalchemy as sa
    from flask import Flask
    from werkzeug.routing import Map

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "BoundedIntegerConverter",
    "path_value_out_of_range",
]

INT64_MIN = -(2**63)
"""The smallest value of a 64-bit signed integer: ``rest.Integer``'s default ``minimum``."""

INT64_MAX = 2**63 - 1
"""The largest value of a 64-bit signed integer: ``rest.Integer``'s default ``maximum``, and the
largest number the ``int`` URL converter matches."""

INT32_MIN = -(2**31)
"""The smallest value of a 32-bit signed integer (PostgreSQL ``integer``, MySQL ``INT``)."""

INT32_MAX = 2**31 - 1
"""The largest value of a 32-bit signed integer (PostgreSQL ``integer``, MySQL ``INT``)."""
_OUT_OF_RANGE = "22003"


class BoundedIntegerConverter(IntegerConverter):
    """Werkzeug's ``int`` converter, stopping at the largest 64-bit signed integer.

    Takes the same arguments (``fixed_digits``, ``min``, ``max``,
    ``signed``); ``max`` defaults to 2**63 - 1 and ``min``, for a signed
    rule, to -2**63.
    """

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = None,
        signed: bool = False,
    ) -> None:
        if max is None:
            max = INT64_MAX
        if min is None and signed:
            min = INT64_MIN
        super().__init__(map, fixed_digits, min, max, signed)


def _init_app(app: Flask) -> None:
    """Bound ``app``'s ``int`` converter, unless the app registered one of its own."""
    if app.url_map.converters.get("int") is IntegerConverter:
        app.url_map.converters["int"] = BoundedIntegerConverter


def path_value_out_of_range(error: sa.exc.DataError) -> tuple[str, int] | None:
    """The path value a statement failing with ``numeric_value_out_of_range`` was given."""
    original = error.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if state != _OUT_OF_RANGE:
        return None
    params = error.params
    if isinstance(params, t.Mapping):
        bound = list(params.values())
    elif isinstance(params, (list, tuple)):
        bound = list(params)
    else:
        return None
    for name, value in (request.view_args or {}).items():
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and not INT32_MIN <= value <= INT32_MAX
            and value in bound
        ):
            return name, value
    return None
