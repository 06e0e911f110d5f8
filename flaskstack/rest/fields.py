"""Deprecated: Flask-RESTful output fields. Declare output with a :class:`~flaskstack.rest.Schema`.

A :class:`~flaskstack.rest.Schema` describes what a resource takes in and
gives out, and the OpenAPI document from one class::

    # before                                    # now
    NOTE = {                                    class Note(rest.Schema):
        "id": rest.fields.Integer,                  id = rest.Integer(dump_only=True)
        "title": rest.fields.String,                title = rest.String()
        "at": rest.fields.DateTime,                 at = rest.DateTime()
    }
    @rest.marshal_with(NOTE)                    @rest.marshal_with(Note)

Every name here still works, as before, and warns with a
``DeprecationWarning`` naming its replacement; the module goes in the next
release. What the fields wrote is unchanged: ISO 8601 datetimes with a time
zone (naive ones taken as UTC), ``2026-11-22`` dates, UUIDs as text,
decimals as strings; Flask-RESTful's others as Flask-RESTful writes them.
"""

from __future__ import annotations

import typing as t
import warnings

from . import _legacy_fields

# The Schema field that writes what each of these wrote.
_REPLACEMENTS = {
    "UUID": "rest.UUID()",
    "Arbitrary": "rest.Decimal()",
    "Boolean": "rest.Boolean()",
    "Date": "rest.Date()",
    "DateTime": "rest.DateTime()",
    "Decimal": "rest.Decimal()",
    "Fixed": "rest.Decimal() (with Decimal values)",
    "Float": "rest.Float()",
    "FormattedString": "a rest.String() read from a property of the object",
    "Integer": "rest.Integer()",
    "List": "rest.List(field)",
    "MarshallingException": "TypeError, which Field.format raises",
    "Nested": "rest.Nested(Schema)",
    "Price": "rest.Decimal() (with Decimal values)",
    "Raw": "a rest.Field subclass with its own format()",
    "String": "rest.String()",
    "Url": "rest.Url() read from a property of the object",
}

# Deprecated names are not exported: each still works, read one at a time, and warns.
__all__: list[str] = []


def __getattr__(name: str) -> t.Any:
    if name not in _REPLACEMENTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"flaskstack.rest.fields.{name} is deprecated and goes in the next release: declare "
        f"the output in a rest.Schema with {_REPLACEMENTS[name]} and pass the schema to "
        "marshal_with, paginated or marshal",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(_legacy_fields, name)
