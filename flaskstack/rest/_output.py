"""Turning what a resource returns into a JSON response.

A resource method returns data (``dict``, ``list``, an object written by a
:class:`~flaskstack.rest.Schema` through :func:`marshal_with`), optionally
with a status and headers, as in Flask-RESTful; :func:`output_json` writes
it. Values JSON has no type for are written the way API clients expect:
datetimes and dates in ISO 8601 (naive datetimes as UTC), UUIDs as text,
decimals as strings (no digit lost to floating point), sets and tuples as
arrays. Anything else is a programming error, reported as such rather than
sent half-encoded.

Flask-RESTful's dicts of output fields still work where a schema is taken,
with a ``DeprecationWarning`` naming the replacement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import functools
import json
import typing as t
import uuid
import warnings

from flask import current_app, request
from flask_restful import fields as _restful_fields
from flask_restful.utils import unpack
from werkzeug.wrappers import Response

from ._inputs import SchemaLike, schema_class
from ._meta import describe

if t.TYPE_CHECKING:
    from ._schema import Schema

__all__ = ["etag", "marshal", "marshal_with", "output_json", "to_response"]

Output = SchemaLike | t.Mapping[str, t.Any]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def _encode(value: object) -> t.Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(
        f"a resource returned a {type(value).__name__}, which has no JSON form: write it "
        "with rest.marshal_with(Schema) or return plain data"
    )


def output_json(data: t.Any, code: int, headers: t.Mapping[str, str] | None = None) -> Response:
    """The ``application/json`` representation of ``data`` (204 and 304 have no body)."""
    if code in (204, 304):
        body = ""
    else:
        indent = 2 if current_app.debug else None
        body = json.dumps(data, default=_encode, ensure_ascii=False, indent=indent) + "\n"
    response = Response(body, status=code, mimetype="application/json")
    if code in (204, 304):
        del response.headers["Content-Type"]
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def to_response(value: t.Any) -> Response:
    """What a resource method returned, as a response (as the API would send it)."""
    if isinstance(value, Response):
        return value
    data, code, headers = unpack(value)
    return output_json(data, code or 200, headers)


def marshal(
    data: t.Any,
    schema: Output | None = None,
    envelope: str | None = None,
    *,
    fields: t.Mapping[str, t.Any] | None = None,
) -> t.Any:
    """``data`` written by ``schema``: an object, or a list or tuple of them.

    ::

        rest.marshal(note, Note)  # {"id": 1, "title": "..."}
        rest.marshal([note], Note, envelope="notes")  # {"notes": [{...}]}

    :param schema: A :class:`~flaskstack.rest.Schema` class or instance. A
        dict of Flask-RESTful output fields is deprecated (it warns) and is
        written as Flask-RESTful writes it.
    :param envelope: Wrap the output in an object under this key.
    :param fields: Flask-RESTful's keyword for ``schema``: a deprecated dict
        of output fields, accepted for one release (it warns).
    """
    if fields is not None:
        if schema is not None:
            raise TypeError("marshal() takes schema or fields, not both")
        schema = fields
    if schema is None:
        raise TypeError("marshal() needs the schema to write data with")
    if not isinstance(schema, t.Mapping):
        return _dump(data, schema_class(schema), envelope)
    _warn_fields("marshal(data, fields)", "marshal(data, Schema)")
    return marshal_fields(data, schema, envelope)


def _dump(data: t.Any, schema: type[Schema], envelope: str | None) -> t.Any:
    out = schema.dump(data, many=isinstance(data, (list, tuple)))
    return {envelope: out} if envelope else out


def _warn_fields(old: str, new: str, stacklevel: int = 3) -> None:
    warnings.warn(
        f"rest.{old} with a dict of Flask-RESTful fields is deprecated and goes in the next "
        f"release: declare the output as a rest.Schema and use rest.{new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def marshal_fields(
    data: t.Any, fields: t.Mapping[str, t.Any], envelope: str | None = None
) -> t.Any:
    """Flask-RESTful's :func:`~flask_restful.marshal`, for the deprecated dicts of fields.

    The same fields, the same output (as plain dicts), with the work that
    does not depend on the data (instantiating field classes, splitting
    attribute names) done once per fields dict instead of once per item.
    """
    steps = _plan(fields)
    if isinstance(data, (list, tuple)):
        out: t.Any = [_apply(steps, item) for item in data]
    else:
        out = _apply(steps, data)
    return {envelope: out} if envelope else out


# A step: the output key, and either a nested plan, or a field and the plain
# attribute name to read (None when the field's own ``output`` must run).
_Step = tuple[str, "list[_Step] | None", t.Any, "str | None"]
_plans: dict[int, tuple[tuple[tuple[str, t.Any], ...], list[_Step]]] = {}
_MAX_PLANS = 512


def _plan(fields: t.Mapping[str, t.Any]) -> list[_Step]:
    items = tuple(fields.items())
    cached = _plans.get(id(fields))
    if cached is not None and cached[0] == items:  # the same dict, unchanged
        return cached[1]
    steps: list[_Step] = []
    for key, field in items:
        if isinstance(field, dict):
            steps.append((key, _plan(field), None, None))
            continue
        instance = field() if isinstance(field, type) else field
        name = key if instance.attribute is None else instance.attribute
        plain = (
            type(instance).output is _restful_fields.Raw.output
            and isinstance(name, str)
            and "." not in name
        )
        steps.append((key, None, instance, name if plain else None))
    if len(_plans) >= _MAX_PLANS:  # fields dicts built per request: keep memory bounded
        _plans.clear()
    _plans[id(fields)] = (items, steps)  # holds the items, so the id stays taken
    return steps


def _apply(steps: list[_Step], obj: t.Any) -> dict[str, t.Any]:
    indexable = not hasattr(obj, "strip") and hasattr(obj, "__iter__")
    result: dict[str, t.Any] = {}
    for key, nested, field, name in steps:
        if nested is not None:
            result[key] = _apply(nested, obj)
        elif name is None:
            result[key] = field.output(key, obj)
        else:
            # What Flask-RESTful's Raw.output does for a plain attribute name.
            value = None
            if indexable:
                try:
                    value = obj[name]
                except (IndexError, TypeError, KeyError):
                    value = getattr(obj, name, None)
            else:
                value = getattr(obj, name, None)
            result[key] = field.default if value is None else field.format(value)
    return result


def marshal_with(
    schema: Output, envelope: str | None = None, *, status: int | None = None
) -> t.Callable[[F], F]:
    """Write what the method returns with ``schema``; like Flask-RESTful's, plus ``status``.

    ::

        @rest.marshal_with(Note, status=201)
        def post(self, body): ...

    :param schema: A :class:`~flaskstack.rest.Schema` class or instance;
        it is the success response's schema in the OpenAPI document. A dict
        of Flask-RESTful output fields is deprecated (it warns).
    :param envelope: Wrap the output in an object under this key.
    :param status: The status when the method returns only data (``201``
        for a create, say); also the success status in the OpenAPI document.
    """
    if isinstance(schema, t.Mapping):
        _warn_fields("marshal_with(fields)", "marshal_with(Schema)")
        fields: t.Mapping[str, t.Any] | None = schema
        output: t.Any = schema
    else:
        fields = None
        output = schema_class(schema)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            value = view(*args, **kwargs)
            if isinstance(value, Response):
                return value
            data, code, headers = unpack(value)
            if status is not None and not isinstance(value, tuple):
                code = status
            if fields is not None:
                return marshal_fields(data, fields, envelope), code, headers
            return _dump(data, output, envelope), code, headers

        return describe(t.cast("F", wrapper), output=output, envelope=envelope, status=status)

    return decorate


def etag(view: F) -> F:
    """Answer ``GET`` and ``HEAD`` with an ``ETag``, and ``If-None-Match`` with 304.

    The tag is a hash of the JSON body, so a client revalidating an unchanged
    resource downloads nothing (the view still runs: put
    ``cache.cached(...)`` around it as well to skip that work). Responses get
    ``Cache-Control: private, no-cache`` unless the view set its own, so
    clients revalidate every time and shared caches keep nothing.
    """

    @functools.wraps(view)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        response = to_response(view(*args, **kwargs))
        if request.method not in ("GET", "HEAD") or response.status_code != 200:
            return response
        response.add_etag()
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "private, no-cache"
        return response.make_conditional(request)

    return describe(t.cast("F", wrapper), etag=True)
