"""The fields of a :class:`~flaskstack.rest.Schema`: what comes in, what goes out, and the document.

(Text fields are in :mod:`flaskstack.rest._strings`.)

A field does three things, and keeps them in agreement:

- :meth:`Field.load` checks and converts a value a client sent (JSON, or
  text from a query string or a form);
- :meth:`Field.format` writes a value for a response;
- :meth:`Field.json_schema` describes both for the OpenAPI document. The
  input description accepts exactly what :meth:`~Field.load` accepts:
  lengths, bounds, anchored patterns, choices, text no database can store
  (NUL) and whitespace that ``strip`` removes are all
  stated, so a validator or a test generator working from the document
  reaches the server's verdict.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import typing as t
import uuid

from flaskstack._ids import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN

if t.TYPE_CHECKING:
    from ._schema import Schema

__all__ = [
    "UNSET",
    "UUID",
    "Boolean",
    "Date",
    "DateTime",
    "Decimal",
    "Field",
    "File",
    "Float",
    "Integer",
    "Invalid",
    "List",
    "Nested",
    "anchored",
]

Mode = t.Literal["load", "dump"]
Ref = t.Callable[["type[Schema]", Mode], str]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: t.Any = _Unset()
"""The value of a field's ``default`` when it has none."""


class Invalid(Exception):
    """Raised by :meth:`Field.load` with the message for the client."""


def default_ref(schema: type[Schema], mode: Mode) -> str:
    """How a nested schema is referred to: its component in the OpenAPI document."""
    return f"#/components/schemas/{schema.schema_name()}"


# The characters str.strip() removes (str.isspace()), spelled so that ECMA-262
# and Python regular expressions read them alike (their \s differ).
WHITESPACE = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# What no database column stores: NUL. Lone surrogates (no UTF-8 form) are
# refused too, but left out: regular expression engines on UTF-8 strings (Rust's,
# behind jsonschema-rs and Schemathesis) cannot name them, and drop the pattern.
_UNSTORABLE = r"\x00"
_ANY = f"[^{_UNSTORABLE}]"
_KEPT = f"[^{_UNSTORABLE}{WHITESPACE}]"  # a character strip() keeps
_SPACE = f"[{WHITESPACE}]"
_END = r"(?![\s\S])"
_ANYTHING = r"[\s\S]*"


def anchored(pattern: str) -> str:
    """``pattern`` as a JSON Schema ``pattern`` that matches whole values only, as validation does.

    JSON Schema's ``pattern`` matches anywhere in the value. ``^`` and a
    lookahead for "no character follows" anchor it in ECMA-262 and Python
    alike; ``$`` would not do, since Python's also matches before a final
    newline, and tools written in Python would then accept ``"value\\n"``.
    """
    return rf"^(?:{pattern}){_END}"


def _ecma_escape(text: str) -> str:
    """``text`` as a literal in a regular expression both ECMA-262 (``u`` flag) and Python read."""
    return re.sub(r"([\^$\\.*+?()\[\]{}|/])", r"\\\1", text)


class Field:
    """One value of a schema, both ways. Subclasses convert and check it.

    :param required: Refuse a request that leaves the field out.
    :param default: The value when the field is left out: a value, or a
        callable returning a fresh one (``default=list``).
    :param nullable: Accept JSON ``null`` (as ``None``); the document says
        ``null`` is a possible value in responses too.
    :param description: Shown in the OpenAPI document.
    :param attribute: Where :meth:`Schema.dump <flaskstack.rest.Schema.dump>`
        reads the value: an attribute or key name, dotted for a path
        (``"author.name"``). The field's own name by default.
    :param load_only: Accepted in requests, never written in responses (a password).
    :param dump_only: Written in responses; in a request it is not a field
        of the schema (an id, a creation time), so the unknown-field policy
        applies to it.
    """

    json_type: t.ClassVar[str] = "string"

    def __init__(
        self,
        *,
        required: bool = False,
        default: t.Any = UNSET,
        nullable: bool = False,
        description: str | None = None,
        attribute: str | None = None,
        load_only: bool = False,
        dump_only: bool = False,
    ) -> None:
        if required and default is not UNSET:
            raise TypeError("a field cannot be both required and have a default")
        if load_only and dump_only:
            raise TypeError("a field cannot be both load_only and dump_only")
        self.required = required
        self.default = default
        self.nullable = nullable
        self.description = description
        self.attribute = attribute
        self.load_only = load_only
        self.dump_only = dump_only
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def load(self, value: object) -> t.Any:
        """Convert a JSON value, raising :class:`Invalid` with a message."""
        raise NotImplementedError

    def load_text(self, value: str) -> t.Any:
        """Convert a query-string or form value; by default as :meth:`load` would a JSON string."""
        return self.load(value)

    def format(self, value: t.Any) -> t.Any:
        """Write a value that is not ``None`` for a response (JSON types only)."""
        return value

    def default_value(self) -> t.Any:
        """The default, called if it is callable."""
        return self.default() if callable(self.default) else self.default

    def json_schema(self, mode: Mode = "load", ref: Ref = default_ref) -> dict[str, t.Any]:
        """This field as a JSON Schema (for OpenAPI 3.1).

        :param mode: ``"load"`` describes what requests may send,
            ``"dump"`` what responses contain.
        :param ref: How a nested schema is referred to.
        """
        kind = self.json_type if mode == "load" else self._dump_type()
        schema: dict[str, t.Any] = {"type": [kind, "null"] if self.nullable else kind}
        schema.update(self._constraints() if mode == "load" else self._dump_constraints())
        if self.description:
            schema["description"] = self.description
        if mode == "load" and self.default is not UNSET and not callable(self.default):
            schema["default"] = self.default
        if self.dump_only and mode == "dump":
            schema["readOnly"] = True
        if self.load_only and mode == "load":
            schema["writeOnly"] = True
        return schema

    def _dump_type(self) -> str:
        return self.json_type

    def _constraints(self) -> dict[str, t.Any]:
        return {}

    def _dump_constraints(self) -> dict[str, t.Any]:
        return {}


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


_BITS = {32: (INT32_MIN, INT32_MAX), 64: (INT64_MIN, INT64_MAX)}


class Integer(_Number):
    """A whole number (JSON ``true`` is not one) that an integer column can hold.

    ``minimum`` and ``maximum`` default to the range of a signed integer of
    ``bits`` bits: 64 (:data:`INT64_MIN`, :data:`INT64_MAX`), the widest any
    supported database stores, so no value this field accepts makes a query
    fail. For a 32-bit column (``db.Integer`` is ``integer`` on PostgreSQL)
    say so, and 2**31 is refused with the bound, which the document states::

        count = rest.Integer(bits=32, minimum=0)

    ``None`` removes a bound, for a value that never reaches the database.
    A value out of range is refused with the bound it broke, in JSON bodies
    and query strings alike (any number of digits).

    :param bits: 32 or 64: the column's size, for the default bounds.
    """

    json_type = "integer"

    def __init__(
        self,
        *,
        bits: t.Literal[32, 64] = 64,
        minimum: int | _Unset | None = UNSET,
        maximum: int | _Unset | None = UNSET,
        **options: t.Any,
    ) -> None:
        if bits not in _BITS:
            raise TypeError(f"bits must be 32 or 64, not {bits!r}")
        low, high = _BITS[bits]
        super().__init__(
            minimum=low if isinstance(minimum, _Unset) else minimum,
            maximum=high if isinstance(maximum, _Unset) else maximum,
            **options,
        )

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

    def format(self, value: t.Any) -> t.Any:
        return int(value)


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

    def format(self, value: t.Any) -> t.Any:
        return float(value)


class Decimal(_Number):
    """An exact decimal, from a JSON number or string; ``places`` limits the fraction digits.

    A string holds digits with at most one point and a sign (``"-12.50"``).
    Responses write it as a string (``"12.50"``), so no digit is lost to a
    JavaScript client's floating point. The document states ``minimum`` and
    ``maximum`` for numbers only: JSON Schema has no bounds for a number
    written as a string, which validation holds to them as well.
    """

    def __init__(self, *, places: int | None = None, **options: t.Any) -> None:
        super().__init__(**options)
        self.places = places

    def load(self, value: object) -> t.Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise Invalid("Must be a decimal number, as a number or a string.")
        if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
            raise Invalid("Must be a decimal number such as '12.50'.")
        try:
            number = decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            raise Invalid("Must be a decimal number such as '12.50'.") from None
        if not number.is_finite():
            raise Invalid("Must be a finite number.")
        exponent = number.as_tuple().exponent
        if self.places is not None and isinstance(exponent, int) and -exponent > self.places:
            raise Invalid(f"Must have at most {self.places} digits after the decimal point.")
        return self._check_range(number)

    def format(self, value: t.Any) -> t.Any:
        return str(value)

    def json_schema(self, mode: Mode = "load", ref: Ref = default_ref) -> dict[str, t.Any]:
        schema = super().json_schema(mode, ref)
        if mode != "load":
            return schema
        schema["type"] = ["string", "number", *(["null"] if self.nullable else [])]
        number: dict[str, t.Any] = {"type": "number"}
        for key in ("minimum", "maximum"):
            if key in schema:
                number[key] = schema.pop(key)
        fraction = r"[0-9]*" if self.places is None else f"[0-9]{{0,{self.places}}}"
        digits = r"[0-9]+" if self.places is None else f"[0-9]{{1,{self.places}}}"
        text = anchored(rf"[+-]?(?:[0-9]+(?:\.{fraction})?|\.{digits})")
        if self.places is not None:
            number["multipleOf"] = float(decimal.Decimal(1).scaleb(-self.places))
        # Bounds apply to a number given as a string too, which JSON Schema cannot say.
        schema["anyOf"] = [number, {"type": "string", "pattern": text}, {"type": "null"}]
        if not self.nullable:
            schema["anyOf"].pop()
        return schema


# A decimal as text: digits, one point, a sign; no exponent, no spaces, no "_".
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class Boolean(Field):
    """JSON ``true`` or ``false``; in a query string or form also ``1``/``0``, ``yes``/``no``."""

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

    def format(self, value: t.Any) -> t.Any:
        return bool(value)


_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DATE_TIME = (
    rf"{_DATE}[Tt][0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{{2}}:[0-9]{{2}})"
)
_TIME_PARTS = re.compile(r"([0-9:]{8})(?:\.([0-9]+))?(Z|[+-][0-9:]{5})")
_UUID = "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"


class DateTime(Field):
    """An RFC 3339 date and time with a time zone (``2026-11-22T09:30:00Z``); an aware datetime.

    Responses write ISO 8601 with the time zone; a naive datetime is taken
    to be UTC, as databases usually store it. Override :meth:`format` for
    another spelling.
    """

    _SHAPE = re.compile(_DATE_TIME)

    def load(self, value: object) -> t.Any:
        if not isinstance(value, str):
            raise Invalid("Must be a date and time as a string, such as 2026-11-22T09:30:00Z.")
        if not self._SHAPE.fullmatch(value):
            raise Invalid(
                "Must be an RFC 3339 date and time with a time zone, such as 2026-11-22T09:30:00Z."
            )
        # Python 3.10's fromisoformat takes neither "Z" nor 1, 2, 4 or 5 fraction digits.
        day, _, rest = value.upper().partition("T")
        clock, fraction, zone = _TIME_PARTS.fullmatch(rest).groups()  # type: ignore[union-attr]
        micro = (fraction or "").ljust(6, "0")[:6]
        zone = "+00:00" if zone == "Z" else zone
        try:
            return dt.datetime.fromisoformat(f"{day}T{clock}.{micro}{zone}")
        except ValueError:
            raise Invalid("Must be a real date and time, such as 2026-11-22T09:30:00Z.") from None

    def format(self, value: t.Any) -> t.Any:
        if not isinstance(value, dt.datetime):
            raise TypeError(f"{value!r} is not a datetime")
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat()

    def _constraints(self) -> dict[str, t.Any]:
        return {"format": "date-time", "pattern": anchored(_DATE_TIME)}

    def _dump_constraints(self) -> dict[str, t.Any]:
        return {"format": "date-time"}


class Date(Field):
    """An ISO 8601 calendar date (``2026-11-22``); a ``datetime.date``."""

    _SHAPE = re.compile(_DATE)

    def load(self, value: object) -> t.Any:
        if not isinstance(value, str) or not self._SHAPE.fullmatch(value):
            raise Invalid("Must be a date such as 2026-11-22.")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise Invalid("Must be a real date such as 2026-11-22.") from None

    def format(self, value: t.Any) -> t.Any:
        if isinstance(value, dt.datetime):
            value = value.date()
        if not isinstance(value, dt.date):
            raise TypeError(f"{value!r} is not a date")
        return value.isoformat()

    def _constraints(self) -> dict[str, t.Any]:
        return {"format": "date", "pattern": anchored(_DATE)}

    def _dump_constraints(self) -> dict[str, t.Any]:
        return {"format": "date"}


class UUID(Field):
    """A UUID in its usual text form (8-4-4-4-12 hexadecimal digits); a ``uuid.UUID``."""

    _SHAPE = re.compile(_UUID)

    def load(self, value: object) -> t.Any:
        if not isinstance(value, str) or not self._SHAPE.fullmatch(value):
            raise Invalid("Must be a UUID such as 6f1c2b0e-8d3a-4c9b-a1f2-3e4d5c6b7a80.")
        return uuid.UUID(value)

    def format(self, value: t.Any) -> t.Any:
        return str(value)

    def _constraints(self) -> dict[str, t.Any]:
        return {"format": "uuid", "pattern": anchored(_UUID)}

    def _dump_constraints(self) -> dict[str, t.Any]:
        return {"format": "uuid"}


class List(Field):
    """A JSON array of ``item`` values; in a query string or form, the parameter repeated.

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
        return value  # the elements are loaded by the schema, which knows their paths

    def _check_size(self, value: t.Sized) -> None:
        if self.min_items is not None and len(value) < self.min_items:
            raise Invalid(f"Must have at least {self.min_items} item(s).")
        if self.max_items is not None and len(value) > self.max_items:
            raise Invalid(f"Must have at most {self.max_items} item(s).")

    def format(self, value: t.Any) -> t.Any:
        item = self.item
        return [None if element is None else item.format(element) for element in value]

    def json_schema(self, mode: Mode = "load", ref: Ref = default_ref) -> dict[str, t.Any]:
        schema = super().json_schema(mode, ref)
        schema["items"] = self.item.json_schema(mode, ref)
        if mode == "load":
            if self.min_items is not None:
                schema["minItems"] = self.min_items
            if self.max_items is not None:
                schema["maxItems"] = self.max_items
        return schema


class Nested(Field):
    """A JSON object described by another :class:`~flaskstack.rest.Schema`, both ways."""

    json_type = "object"

    def __init__(self, schema: type[Schema], **options: t.Any) -> None:
        super().__init__(**options)
        self.schema = schema

    def load(self, value: object) -> t.Any:
        if not isinstance(value, dict):
            raise Invalid("Must be an object.")
        return value

    def format(self, value: t.Any) -> t.Any:
        return self.schema.dump(value)

    def json_schema(self, mode: Mode = "load", ref: Ref = default_ref) -> dict[str, t.Any]:
        schema: dict[str, t.Any] = {"$ref": ref(self.schema, mode)}
        if self.nullable:
            schema = {"oneOf": [schema, {"type": "null"}]}
        if self.description:
            schema["description"] = self.description
        return schema


class File(Field):
    """An uploaded file, in a ``multipart/form-data`` body: a Werkzeug ``FileStorage``.

    A schema with a file field makes :func:`~flaskstack.rest.body` read
    ``multipart/form-data`` instead of JSON; its other fields are the
    form's text fields. The file is streamed to a temporary file (on disk
    past a few hundred kilobytes), never read into memory whole, and
    closed when the view returns: read or save it there
    (``body["avatar"].save(path)``).

    :param max_size: The most bytes the file may have; more is 413 naming
        the field and the limit, refused while the body streams in when
        flaskstack parses it.
    :param content_types: The media types accepted (``"image/png"``, or
        ``"image/*"``), as the client labels the part; another is 422.
        Check the content itself too where it matters.
    """

    json_type = "string"

    def __init__(
        self,
        *,
        max_size: int | None = None,
        content_types: t.Sequence[str] | None = None,
        **options: t.Any,
    ) -> None:
        options.setdefault("load_only", True)
        if options.get("nullable") or options.get("default", UNSET) is not UNSET:
            raise TypeError("a File field cannot be nullable or have a default")
        super().__init__(**options)
        self.max_size = max_size
        self.content_types = tuple(content_types) if content_types is not None else None

    def load(self, value: object) -> t.Any:
        raise Invalid("Must be a file, sent as multipart/form-data.")

    def accepts(self, content_type: str | None) -> bool:
        """Whether a part labelled ``content_type`` is one of :attr:`content_types`."""
        if self.content_types is None:
            return True
        given = (content_type or "application/octet-stream").split(";")[0].strip().lower()
        for allowed in self.content_types:
            allowed = allowed.lower()
            if given == allowed or (
                allowed.endswith("/*") and given.startswith(allowed[:-1]) and given != allowed[:-1]
            ):
                return True
        return False

    def json_schema(self, mode: Mode = "load", ref: Ref = default_ref) -> dict[str, t.Any]:
        schema = super().json_schema(mode, ref)
        schema["format"] = "binary"
        schema["contentMediaType"] = (
            self.content_types[0]
            if self.content_types and len(self.content_types) == 1
            else "application/octet-stream"
        )
        if self.max_size is not None:
            limit = f"At most {self.max_size} bytes."
            schema["description"] = (
                f"{schema['description']} {limit}" if self.description else limit
            )
        return schema
