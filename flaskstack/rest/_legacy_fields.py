"""Flask-RESTful's output fields with JSON-safe types: what :mod:`flaskstack.rest.fields` serves.

Deprecated with that module; :class:`flaskstack.rest.Schema` fields write
the same output. ``_json_schema`` describes a dict of these fields for the
OpenAPI document.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from flask_restful import fields as _fields
from flask_restful.fields import (
    Arbitrary,
    Boolean,
    Fixed,
    Float,
    FormattedString,
    Integer,
    List,
    MarshallingException,
    Nested,
    Price,
    Raw,
    String,
    Url,
)

__all__ = [
    "UUID",
    "Arbitrary",
    "Boolean",
    "Date",
    "DateTime",
    "Decimal",
    "Fixed",
    "Float",
    "FormattedString",
    "Integer",
    "List",
    "MarshallingException",
    "Nested",
    "Price",
    "Raw",
    "String",
    "Url",
]


class DateTime(Raw):  # type: ignore[misc]
    """A datetime as ISO 8601 with a time zone; naive values are taken as UTC."""

    def format(self, value: t.Any) -> str:
        if not isinstance(value, dt.datetime):
            raise MarshallingException(f"{value!r} is not a datetime")
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        text: str = value.isoformat()
        return text


class Date(Raw):  # type: ignore[misc]
    """A date as ISO 8601 (``2026-11-22``)."""

    def format(self, value: t.Any) -> str:
        if isinstance(value, dt.datetime):
            value = value.date()
        if not isinstance(value, dt.date):
            raise MarshallingException(f"{value!r} is not a date")
        return value.isoformat()


class UUID(Raw):  # type: ignore[misc]
    """A UUID as text."""

    def format(self, value: t.Any) -> str:
        return str(value)


class Decimal(Raw):  # type: ignore[misc]
    """A decimal as a string, every digit kept."""

    def format(self, value: t.Any) -> str:
        return str(value)


_SCHEMAS: list[tuple[type, dict[str, t.Any]]] = [
    (DateTime, {"type": "string", "format": "date-time"}),
    (Date, {"type": "string", "format": "date"}),
    (UUID, {"type": "string", "format": "uuid"}),
    (Decimal, {"type": "string"}),
    (_fields.DateTime, {"type": "string"}),
    (Integer, {"type": "integer"}),
    (Float, {"type": "number"}),
    (Boolean, {"type": "boolean"}),
    (String, {"type": "string"}),
    (FormattedString, {"type": "string"}),
    (Url, {"type": "string", "format": "uri-reference"}),
    (Arbitrary, {"type": "string"}),
    (Fixed, {"type": "string"}),
]


def _json_schema(spec: t.Any) -> dict[str, t.Any]:
    """The JSON Schema of what ``marshal(data, spec)`` produces.

    ``spec`` is a dict of fields (as given to ``marshal_with``) or one field.
    Fields this function does not know (a custom ``Raw`` subclass) are
    described as any value.
    """
    if isinstance(spec, dict):
        return {
            "type": "object",
            "properties": {str(name): _json_schema(field) for name, field in spec.items()},
        }
    field = spec() if isinstance(spec, type) else spec
    if isinstance(field, Nested):
        schema = _json_schema(field.nested)
        return {"oneOf": [schema, {"type": "null"}]} if field.allow_null else schema
    if isinstance(field, List):
        return {"type": "array", "items": _json_schema(field.container)}
    for kind, schema in _SCHEMAS:
        if isinstance(field, kind):
            nullable = not isinstance(field, Integer) or field.default is None
            return {**schema, "type": [schema["type"], "null"]} if nullable else dict(schema)
    return {}
