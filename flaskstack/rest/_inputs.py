"""Declaring and validating what a resource accepts: JSON bodies and query strings.

A :class:`Schema` lists its fields as class attributes; :func:`body` and
:func:`query` validate the request against one and hand the view a plain
``dict``. Every problem is collected, so the client learns about all its
mistakes at once, each under the field's path (``"user.email"``,
``"tags.2"``)::

    class NewNote(rest.Schema):
        title = rest.String(required=True, min_length=1, max_length=200)
        tags = rest.List(rest.String(max_length=30), default=list)

    class Notes(rest.Resource):
        @rest.body(NewNote)
        def post(self, body): ...

What the client gets wrong, and the answer:

- no body, or not ``application/json``: 415;
- a body that is not UTF-8 or not JSON: 400 saying where parsing stopped;
- a body over ``MAX_CONTENT_LENGTH``: 413;
- a missing field, a wrong type, a value out of range, a field the schema
  does not know: 422 with ``errors`` mapping each field to its messages;
- a bad query parameter: 400 with the same ``errors``.

A field that is absent and not required is absent from the ``dict`` too,
unless it has a ``default``: a partial update can tell "not sent" from
"sent as null".
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import math
import re
import typing as t
import uuid

from flask import request
from werkzeug.exceptions import (
    BadRequest,
    RequestEntityTooLarge,
    UnprocessableEntity,
    UnsupportedMediaType,
)
from werkzeug.wsgi import LimitedStream

from flaskstack._ids import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN
from flaskstack.forms import _UNSTORABLE_MESSAGE, _unstorable

from ._meta import describe

if t.TYPE_CHECKING:
    from werkzeug.datastructures import MultiDict

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "UNSET",
    "UUID",
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
    "Schema",
    "String",
    "ValidationError",
    "body",
    "query",
]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
Errors = dict[str, list[str]]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: t.Any = _Unset()
"""The value of a field's ``default`` when it has none."""


class ValidationError(UnprocessableEntity):
    """422: the request body is well-formed JSON with invalid content.

    Raise it from a view for checks a schema cannot make (a taken user
    name, say); the problem document lists ``errors`` by field::

        raise rest.ValidationError({"username": ["has already been taken"]})

    :param errors: Messages by field path.
    :param detail: The problem's ``detail``; a summary by default.
    """

    def __init__(self, errors: t.Mapping[str, t.Sequence[str]], detail: str | None = None) -> None:
        self.errors = {key: list(messages) for key, messages in errors.items()}
        super().__init__(detail or _summary(self.errors, "The request body is invalid"))
        self.data = {"errors": self.errors}


class InvalidQuery(BadRequest):
    """400: a query-string parameter is missing or invalid; ``errors`` by parameter."""

    def __init__(self, errors: t.Mapping[str, t.Sequence[str]]) -> None:
        self.errors = {key: list(messages) for key, messages in errors.items()}
        super().__init__(_summary(self.errors, "The query string is invalid"))
        self.data = {"errors": self.errors}


def _summary(errors: Errors, what: str) -> str:
    names = ", ".join(repr(name) for name in errors) or "the body"
    return f"{what}: see 'errors' for {names}."


class Invalid(Exception):
    """Raised by :meth:`Field.load` with the message for the client."""


class Field:
    """One value a schema accepts. Subclasses convert and check it.

    :param required: Refuse a request that leaves the field out.
    :param default: The value when the field is left out: a value, or a
        callable returning a fresh one (``default=list``).
    :param nullable: Accept JSON ``null`` (as ``None``).
    :param description: Shown in the OpenAPI document.
    """

    json_type: t.ClassVar[str] = "string"

    def __init__(
        self,
        *,
        required: bool = False,
        default: t.Any = UNSET,
        nullable: bool = False,
        description: str | None = None,
    ) -> None:
        if required and default is not UNSET:
            raise TypeError("a field cannot be both required and have a default")
        self.required = required
        self.default = default
        self.nullable = nullable
        self.description = description
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def load(self, value: object) -> t.Any:
        """Convert a JSON value, raising :class:`Invalid` with a message."""
        raise NotImplementedError

    def load_text(self, value: str) -> t.Any:
        """Convert a query-string value; by default as :meth:`load` would a JSON string."""
        return self.load(value)

    def default_value(self) -> t.Any:
        """The default, called if it is callable."""
        return self.default() if callable(self.default) else self.default

    def json_schema(self) -> dict[str, t.Any]:
        """This field as a JSON Schema (for OpenAPI 3.1)."""
        schema: dict[str, t.Any] = {
            "type": [self.json_type, "null"] if self.nullable else self.json_type
        }
        schema.update(self._constraints())
        if self.description:
            schema["description"] = self.description
        if self.default is not UNSET and not callable(self.default):
            schema["default"] = self.default
        return schema

    def _constraints(self) -> dict[str, t.Any]:
        return {}


class String(Field):
    """A JSON string.

    :param min_length: Fewest characters (``1`` refuses an empty string).
    :param max_length: Most characters.
    :param pattern: A regular expression the whole value must match.
    :param choices: The only values accepted.
    :param strip: Remove surrounding whitespace before checking.
    """

    def __init__(
        self,
        *,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        choices: t.Sequence[str] | None = None,
        strip: bool = False,
        **options: t.Any,
    ) -> None:
        super().__init__(**options)
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = re.compile(pattern) if pattern is not None else None
        self.choices = tuple(choices) if choices is not None else None
        self.strip = strip

    def load(self, value: object) -> t.Any:
        if not isinstance(value, str):
            raise Invalid("Must be a string.")
        if _unstorable(value):
            raise Invalid(_UNSTORABLE_MESSAGE)
        if self.strip:
            value = value.strip()
        if self.min_length is not None and len(value) < self.min_length:
            raise Invalid(
                "Must not be empty."
                if self.min_length == 1
                else f"Must be at least {self.min_length} characters long."
            )
        if self.max_length is not None and len(value) > self.max_length:
            raise Invalid(f"Must be at most {self.max_length} characters long.")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise Invalid(f"Must match the pattern {self.pattern.pattern!r}.")
        if self.choices is not None and value not in self.choices:
            raise Invalid(f"Must be one of: {', '.join(map(repr, self.choices))}.")
        return value

    def _constraints(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {}
        if self.min_length is not None:
            out["minLength"] = self.min_length
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.pattern is not None:
            out["pattern"] = anchored(self.pattern.pattern)
        if self.choices is not None:
            out["enum"] = list(self.choices)
        return out


def anchored(pattern: str) -> str:
    """``pattern`` as a JSON Schema ``pattern`` that matches whole values only, as validation does.

    JSON Schema's ``pattern`` matches anywhere in the value. ``^`` and a
    lookahead for "no character follows" anchor it in ECMA-262 and Python
    alike; ``$`` would not do, since Python's also matches before a final
    newline, and tools written in Python would then accept ``"value\\n"``.
    """
    return rf"^(?:{pattern})(?![\s\S])"


class Email(String):
    """An e-mail address: one ``@``, no spaces, a dot in the domain. Surrounding spaces go."""

    _SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

    def __init__(self, *, max_length: int = 254, **options: t.Any) -> None:
        super().__init__(max_length=max_length, strip=True, **options)

    def load(self, value: object) -> t.Any:
        text: str = super().load(value)
        if not self._SHAPE.fullmatch(text):
            raise Invalid("Must be an e-mail address such as name@example.com.")
        return text

    def _constraints(self) -> dict[str, t.Any]:
        return {**super()._constraints(), "format": "email"}


class _Number(Field):
    def __init__(
        self, *, minimum: float | None = None, maximum: float | None = None, **options: t.Any
    ) -> None:
        super().__init__(**options)
        self.minimum = minimum
        self.maximum = maximum

    def _check_range(self, value: t.Any) -> t.Any:
        if self.minimum is not None and value < self.minimum:
            raise Invalid(f"Must be at least {self.minimum}.")
        if self.maximum is not None and value > self.maximum:
            raise Invalid(f"Must be at most {self.maximum}.")
        return value

    def _constraints(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


class Integer(_Number):
    """A whole number (JSON ``true`` is not one) that a 64-bit integer column can hold.

    ``minimum`` and ``maximum`` default to the range of a 64-bit signed
    integer (:data:`INT64_MIN`, :data:`INT64_MAX`): the widest integer any
    supported database stores, so no value this field accepts makes a query
    fail. For a 32-bit column (``db.Integer`` on PostgreSQL), narrow it to
    what the column holds::

        count = rest.Integer(minimum=0, maximum=2**31 - 1)

    ``None`` removes a bound, for a value that never reaches the database.
    A value out of range is refused with the bound it broke, in JSON bodies
    and query strings alike (any number of digits).
    """

    json_type = "integer"

    def __init__(
        self,
        *,
        minimum: int | None = INT64_MIN,
        maximum: int | None = INT64_MAX,
        **options: t.Any,
    ) -> None:
        super().__init__(minimum=minimum, maximum=maximum, **options)

    def load(self, value: object) -> t.Any:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise Invalid("Must be a whole number.")
        return self._check_range(value)

    def load_text(self, value: str) -> t.Any:
        text = value.strip()
        match = _WHOLE_NUMBER.fullmatch(text)
        if match is None:
            raise Invalid("Must be a whole number.")
        sign, digits = match.groups()
        digits = digits.lstrip("0") or "0"
        if len(digits) > _MAX_DIGITS:
            # Too long to be within any bound this field can have; converting
            # it would only cost time (and Python refuses past 4300 digits).
            if sign == "-" and self.minimum is not None:
                raise Invalid(f"Must be at least {self.minimum}.")
            if sign != "-" and self.maximum is not None:
                raise Invalid(f"Must be at most {self.maximum}.")
            raise Invalid(f"Must be a whole number of at most {_MAX_DIGITS} digits.")
        return self.load(int(sign + digits))


# ASCII digits only: str.isdigit() and int() also take other scripts' digits.
_WHOLE_NUMBER = re.compile(r"([+-]?)([0-9]+)", re.ASCII)
_MAX_DIGITS = 1000


class Float(_Number):
    """A finite number. Takes ``minimum`` and ``maximum``."""

    json_type = "number"

    def load(self, value: object) -> t.Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid("Must be a number.")
        if not math.isfinite(value):
            raise Invalid("Must be a finite number.")
        return self._check_range(float(value))

    def load_text(self, value: str) -> t.Any:
        try:
            number = float(value)
        except ValueError:
            raise Invalid("Must be a number.") from None
        return self.load(number)


class Decimal(_Number):
    """An exact decimal, from a JSON number or string; ``places`` limits the fraction digits."""

    def __init__(self, *, places: int | None = None, **options: t.Any) -> None:
        super().__init__(**options)
        self.places = places

    def load(self, value: object) -> t.Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise Invalid("Must be a decimal number, as a number or a string.")
        try:
            number = decimal.Decimal(str(value).strip())
        except decimal.InvalidOperation:
            raise Invalid("Must be a decimal number such as '12.50'.") from None
        if not number.is_finite():
            raise Invalid("Must be a finite number.")
        exponent = number.as_tuple().exponent
        if self.places is not None and isinstance(exponent, int) and -exponent > self.places:
            raise Invalid(f"Must have at most {self.places} digits after the decimal point.")
        return self._check_range(number)

    def json_schema(self) -> dict[str, t.Any]:
        schema = super().json_schema()
        schema["type"] = ["string", "number", *(["null"] if self.nullable else [])]
        return schema


class Boolean(Field):
    """JSON ``true`` or ``false``; in a query string also ``1``/``0``, ``yes``/``no``."""

    json_type = "boolean"
    _TEXT: t.ClassVar[dict[str, bool]] = {
        "true": True, "1": True, "yes": True, "on": True,
        "false": False, "0": False, "no": False, "off": False,
    }  # fmt: skip

    def load(self, value: object) -> t.Any:
        if not isinstance(value, bool):
            raise Invalid("Must be true or false.")
        return value

    def load_text(self, value: str) -> t.Any:
        try:
            return self._TEXT[value.strip().lower()]
        except KeyError:
            raise Invalid("Must be true or false.") from None


class DateTime(Field):
    """An ISO 8601 date and time with a time zone (``2026-11-22T09:30:00Z``); an aware datetime."""

    def load(self, value: object) -> t.Any:
        if not isinstance(value, str):
            raise Invalid("Must be a date and time as a string, such as 2026-11-22T09:30:00Z.")
        text = value.strip()
        if text[-1:] in ("z", "Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise Invalid(
                "Must be an ISO 8601 date and time, such as 2026-11-22T09:30:00Z."
            ) from None
        if moment.tzinfo is None:
            raise Invalid("Must include a time zone, such as 2026-11-22T09:30:00Z or +01:00.")
        return moment

    def _constraints(self) -> dict[str, t.Any]:
        return {"format": "date-time"}


class Date(Field):
    """An ISO 8601 calendar date (``2026-11-22``); a ``datetime.date``."""

    def load(self, value: object) -> t.Any:
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise Invalid("Must be a date such as 2026-11-22.")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise Invalid("Must be a real date such as 2026-11-22.") from None

    def _constraints(self) -> dict[str, t.Any]:
        return {"format": "date"}


class UUID(Field):
    """A UUID in its usual text form; a ``uuid.UUID``."""

    def load(self, value: object) -> t.Any:
        if not isinstance(value, str):
            raise Invalid("Must be a UUID as a string.")
        try:
            return uuid.UUID(value)
        except ValueError:
            raise Invalid("Must be a UUID such as 6f1c2b0e-8d3a-4c9b-a1f2-3e4d5c6b7a80.") from None

    def _constraints(self) -> dict[str, t.Any]:
        return {"format": "uuid"}


class List(Field):
    """A JSON array of ``item`` values; in a query string, the parameter repeated.

    :param item: The field every element must satisfy.
    :param min_items: Fewest elements.
    :param max_items: Most elements.
    """

    json_type = "array"

    def __init__(
        self,
        item: Field,
        *,
        min_items: int | None = None,
        max_items: int | None = None,
        **options: t.Any,
    ) -> None:
        super().__init__(**options)
        self.item = item
        self.min_items = min_items
        self.max_items = max_items

    def load(self, value: object) -> t.Any:
        if not isinstance(value, list):
            raise Invalid("Must be a list.")
        self._check_size(value)
        return value  # the elements are loaded by _load_value, which knows their paths

    def _check_size(self, value: t.Sized) -> None:
        if self.min_items is not None and len(value) < self.min_items:
            raise Invalid(f"Must have at least {self.min_items} item(s).")
        if self.max_items is not None and len(value) > self.max_items:
            raise Invalid(f"Must have at most {self.max_items} item(s).")

    def _constraints(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {"items": self.item.json_schema()}
        if self.min_items is not None:
            out["minItems"] = self.min_items
        if self.max_items is not None:
            out["maxItems"] = self.max_items
        return out


class Nested(Field):
    """A JSON object validated by another :class:`Schema`."""

    json_type = "object"

    def __init__(self, schema: type[Schema], **options: t.Any) -> None:
        super().__init__(**options)
        self.schema = schema

    def load(self, value: object) -> t.Any:
        if not isinstance(value, dict):
            raise Invalid("Must be an object.")
        return value

    def json_schema(self) -> dict[str, t.Any]:
        ref: dict[str, t.Any] = {"$ref": f"#/components/schemas/{self.schema.schema_name()}"}
        if self.nullable:
            ref = {"oneOf": [ref, {"type": "null"}]}
        if self.description:
            ref["description"] = self.description
        return ref


def _load_value(field: Field, value: object, path: str, errors: Errors) -> t.Any:
    if value is None:
        if not field.nullable:
            errors.setdefault(path, []).append("Must not be null.")
        return None
    try:
        loaded = field.load(value)
    except Invalid as exc:
        errors.setdefault(path, []).append(str(exc))
        return None
    if isinstance(field, List):
        return [
            _load_value(field.item, element, f"{path}.{index}", errors)
            for index, element in enumerate(loaded)
        ]
    if isinstance(field, Nested):
        return field.schema._load_object(loaded, f"{path}.", errors)
    return loaded


class Schema:
    """What a JSON body or a query string may contain: a class whose attributes are fields.

    Subclasses inherit their bases' fields. ``unknown`` says what happens to
    a body field the schema does not declare: ``"reject"`` (the default: a
    misspelt field is reported, not silently lost) or ``"ignore"``. Query
    strings always ignore parameters they do not declare (proxies and
    analytics add their own).
    """

    unknown: t.ClassVar[t.Literal["reject", "ignore"]] = "reject"
    fields: t.ClassVar[dict[str, Field]] = {}

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        collected: dict[str, Field] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Field):
                    collected[name] = value
        cls.fields = collected

    @classmethod
    def schema_name(cls) -> str:
        """The name of this schema in the OpenAPI document's components."""
        return cls.__name__

    @classmethod
    def load(cls, data: object) -> dict[str, t.Any]:
        """Validate a decoded JSON body.

        :raises ValidationError: listing every problem found.
        """
        errors: Errors = {}
        if not isinstance(data, dict):
            kind = type(data).__name__ if data is not None else "null"
            raise ValidationError(
                {}, f"The request body must be a JSON object, not {_json_kind(data, kind)}."
            )
        result = cls._load_object(data, "", errors)
        if errors:
            raise ValidationError(errors)
        return result

    @classmethod
    def _load_object(cls, data: dict[str, t.Any], prefix: str, errors: Errors) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {}
        for name, field in cls.fields.items():
            path = prefix + name
            if name not in data:
                if field.required:
                    errors.setdefault(path, []).append("This field is required.")
                elif field.default is not UNSET:
                    result[name] = field.default_value()
                continue
            result[name] = _load_value(field, data[name], path, errors)
        if cls.unknown == "reject":
            for name in data:
                if name not in cls.fields:
                    errors.setdefault(prefix + str(name), []).append("Unknown field.")
        return result

    @classmethod
    def load_query(cls, args: MultiDict[str, str]) -> dict[str, t.Any]:
        """Validate query-string parameters.

        :raises InvalidQuery: listing every problem found.
        """
        errors: Errors = {}
        result: dict[str, t.Any] = {}
        for name, field in cls.fields.items():
            values = args.getlist(name)
            if not values:
                if field.required:
                    errors.setdefault(name, []).append("This parameter is required.")
                elif field.default is not UNSET:
                    result[name] = field.default_value()
                continue
            try:
                if isinstance(field, List):
                    field._check_size(values)
                    result[name] = [field.item.load_text(value) for value in values]
                elif len(values) > 1:
                    raise Invalid("Give this parameter once.")
                else:
                    result[name] = field.load_text(values[0])
            except Invalid as exc:
                errors.setdefault(name, []).append(str(exc))
        if errors:
            raise InvalidQuery(errors)
        return result

    @classmethod
    def json_schema(cls) -> dict[str, t.Any]:
        """This schema as a JSON Schema object (for OpenAPI 3.1)."""
        schema: dict[str, t.Any] = {
            "type": "object",
            "properties": {name: field.json_schema() for name, field in cls.fields.items()},
        }
        required = [name for name, field in cls.fields.items() if field.required]
        if required:
            schema["required"] = required
        if cls.unknown == "reject":
            schema["additionalProperties"] = False
        if cls.__doc__:
            schema["description"] = " ".join(cls.__doc__.split())
        return schema


def _json_kind(data: object, fallback: str) -> str:
    kinds = {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return kinds.get(type(data), fallback)


_JSON_TYPES = ("application/json",)


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def body_was_cut_off() -> bool:
    """Whether ``MAX_CONTENT_LENGTH`` cut off the body of the current request.

    Werkzeug refuses a body whose ``Content-Length`` is over the limit with
    413 before anything reads it. A body sent without one (chunked) it reads
    only up to the limit and hands the reader what fit, with no error. The
    request stream tells: it was read to the limit, and the server's input
    has more (one byte more tells a body of exactly the limit, which is
    allowed, from a longer one).
    """
    if request.max_content_length is None or request.content_length is not None:
        return False
    stream = request.stream
    if not isinstance(stream, LimitedStream) or not stream.is_exhausted:
        return False
    return bool(request.environ["wsgi.input"].read(1))


def body_too_large() -> RequestEntityTooLarge:
    """The 413 for a body over ``MAX_CONTENT_LENGTH``, saying the limit."""
    limit = request.max_content_length
    return RequestEntityTooLarge(
        f"The request body is larger than the {limit} bytes this server accepts "
        "(MAX_CONTENT_LENGTH): send a smaller body."
    )


def read_json() -> object:
    """The request's JSON body, decoded strictly.

    :raises UnsupportedMediaType: without a body, or if it is not JSON.
    :raises BadRequest: if it is not UTF-8 or not valid JSON.
    :raises RequestEntityTooLarge: if it is larger than ``MAX_CONTENT_LENGTH``.
    """
    mimetype = request.mimetype
    if not (
        mimetype in _JSON_TYPES
        or (mimetype.startswith("application/") and mimetype.endswith("+json"))
    ):
        given = f"Content-Type {mimetype!r}" if mimetype else "no Content-Type"
        raise UnsupportedMediaType(
            f"The request body must be JSON sent with 'Content-Type: application/json' "
            f"(the request has {given})."
        )
    raw = request.get_data(cache=True)
    if body_was_cut_off():
        # What fit may still parse: never act on part of a body.
        raise body_too_large()
    if not raw.strip():
        raise BadRequest("The request body is empty: send a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The request body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise BadRequest(f"The request body is not valid JSON: {exc.msg} at {where}.") from None
    except (ValueError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise BadRequest(f"The request body is not valid JSON: {reason}.") from None


def body(schema: type[Schema], *, arg: str = "body") -> t.Callable[[F], F]:
    """Validate the JSON body against ``schema``; the view gets the result as ``arg``.

    ::

        @rest.body(NewNote)
        def post(self, body): ...

    The schema appears as the operation's request body in the OpenAPI document.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            kwargs[arg] = schema.load(read_json())
            return view(*args, **kwargs)

        return describe(t.cast("F", wrapper), body=schema)

    return decorate


def query(schema: type[Schema], *, arg: str = "query") -> t.Callable[[F], F]:
    """Validate the query string against ``schema``; the view gets the result as ``arg``.

    Bad parameters get 400 with ``errors`` by parameter. The fields appear as
    the operation's query parameters in the OpenAPI document.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            kwargs[arg] = schema.load_query(request.args)
            return view(*args, **kwargs)

        return describe(t.cast("F", wrapper), query=schema)

    return decorate
