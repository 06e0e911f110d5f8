"""One class describes a resource's data both ways: :class:`Schema`.

``Schema.load`` checks what a client sends (a JSON body, a query string,
a ``multipart/form-data`` form), collecting every problem so the client
learns about all its mistakes at once, each under the field's path
(``"user.email"``, ``"tags.2"``). ``Schema.dump`` writes an object for a
response. ``Schema.json_schema`` describes either for the OpenAPI document.

A body field the schema does not declare is dropped, or refused with 422
naming it, by the schema's ``unknown`` or else ``FLASKSTACK_API_UNKNOWN_FIELDS``
(``"ignore"`` by default: a client that sends an object back as it received
it, read-only fields included, is not refused).
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from flask import current_app, has_app_context
from werkzeug.exceptions import UnprocessableEntity

from ._fields import UNSET, Field, File, Invalid, List, Mode, Nested, Ref, default_ref

if t.TYPE_CHECKING:
    from werkzeug.datastructures import FileStorage, MultiDict

__all__ = ["InvalidQuery", "Schema", "ValidationError"]

Errors = dict[str, list[str]]
Unknown = t.Literal["reject", "ignore"]


class ValidationError(UnprocessableEntity):
    """422: the request body is well-formed with invalid content.

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


class InvalidQuery(UnprocessableEntity):
    """422: a query-string parameter is missing or invalid; ``errors`` by parameter.

    The same status as an invalid body: the request is well formed, and a
    value in it is not acceptable.
    """

    def __init__(self, errors: t.Mapping[str, t.Sequence[str]]) -> None:
        self.errors = {key: list(messages) for key, messages in errors.items()}
        super().__init__(_summary(self.errors, "The query string is invalid"))
        self.data = {"errors": self.errors}


def _summary(errors: Errors, what: str) -> str:
    names = ", ".join(repr(name) for name in errors) or "the body"
    return f"{what}: see 'errors' for {names}."


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


# How dump writes one value: the output key, the field's format (None when it
# writes the value as it is), the attribute name (None when the path has dots),
# the attribute path.
_Step = tuple[str, "t.Callable[[t.Any], t.Any] | None", "str | None", tuple[str, ...]]


def _step(name: str, field: Field) -> _Step:
    path = tuple((field.attribute or name).split("."))
    write = None if type(field).format is Field.format else field.format
    return (name, write, path[0] if len(path) == 1 else None, path)


def _read(obj: t.Any, name: str) -> t.Any:
    if isinstance(obj, t.Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


class Schema:
    """What a resource takes in and gives out: a class whose attributes are fields.

    ::

        class Note(rest.Schema):
            id = rest.Integer(dump_only=True)
            title = rest.String(required=True, min_length=1, max_length=200)
            owner = rest.String(attribute="owner.email", dump_only=True)
            created_at = rest.DateTime(dump_only=True)

    :func:`~flaskstack.rest.body` and :func:`~flaskstack.rest.query` load
    requests with it; :func:`~flaskstack.rest.marshal_with`,
    :func:`~flaskstack.rest.paginated` and :func:`~flaskstack.rest.marshal`
    write responses with it; the OpenAPI document describes both from it.
    Subclasses inherit their bases' fields. A class or an instance may be
    passed wherever a schema is taken.

    ``unknown`` says what happens to a body field the schema does not
    declare (dump-only fields included): ``"ignore"`` drops it, ``"reject"``
    answers 422 naming it. ``None`` (the default) follows the app's
    ``FLASKSTACK_API_UNKNOWN_FIELDS``. Query strings always ignore
    parameters they do not declare (proxies and analytics add their own).
    """

    unknown: t.ClassVar[Unknown | None] = None
    fields: t.ClassVar[dict[str, Field]] = {}
    _dump_steps: t.ClassVar[list[_Step]] = []

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        collected: dict[str, Field] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Field):
                    collected[name] = value
        cls.fields = collected
        if cls.unknown not in (None, "ignore", "reject"):
            raise TypeError(
                f"{cls.__qualname__}.unknown must be 'ignore', 'reject' or None, "
                f"not {cls.unknown!r}"
            )
        cls._dump_steps = [
            _step(name, field) for name, field in collected.items() if not field.load_only
        ]

    @classmethod
    def schema_name(cls) -> str:
        """The name of this schema in the OpenAPI document's components."""
        return cls.__name__

    @classmethod
    def unknown_policy(cls) -> Unknown:
        """``unknown``, or else the app's ``FLASKSTACK_API_UNKNOWN_FIELDS`` (``"ignore"``)."""
        if cls.unknown is not None:
            return cls.unknown
        if has_app_context():
            policy: Unknown = current_app.config.get("FLASKSTACK_API_UNKNOWN_FIELDS", "ignore")
            return policy
        return "ignore"

    @classmethod
    def has_files(cls) -> bool:
        """Whether a :class:`~flaskstack.rest.File` field makes the body ``multipart/form-data``."""
        return any(isinstance(field, File) for field in cls.fields.values())

    # -- in ----------------------------------------------------------------------------

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
            if field.dump_only:
                continue
            path = prefix + name
            if name not in data:
                if field.required:
                    errors.setdefault(path, []).append("This field is required.")
                elif field.default is not UNSET:
                    result[name] = field.default_value()
                continue
            result[name] = _load_value(field, data[name], path, errors)
        if cls.unknown_policy() == "reject":
            for name in data:
                if name not in cls.fields or cls.fields[name].dump_only:
                    errors.setdefault(prefix + str(name), []).append("Unknown field.")
        return result

    @classmethod
    def load_query(cls, args: MultiDict[str, str]) -> dict[str, t.Any]:
        """Validate query-string parameters.

        :raises InvalidQuery: listing every problem found.
        """
        errors: Errors = {}
        result = cls._load_text(args, errors, "parameter")
        if errors:
            raise InvalidQuery(errors)
        return result

    @classmethod
    def _load_text(cls, args: MultiDict[str, str], errors: Errors, what: str) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {}
        for name, field in cls.fields.items():
            if field.dump_only or isinstance(field, File):
                continue
            values = args.getlist(name)
            if not values:
                if field.required:
                    errors.setdefault(name, []).append(f"This {what} is required.")
                elif field.default is not UNSET:
                    result[name] = field.default_value()
                continue
            try:
                if isinstance(field, List):
                    field._check_size(values)
                    result[name] = [field.item.load_text(value) for value in values]
                elif len(values) > 1:
                    raise Invalid(f"Give this {what} once.")
                else:
                    result[name] = field.load_text(values[0])
            except Invalid as exc:
                errors.setdefault(name, []).append(str(exc))
        return result

    @classmethod
    def load_form(
        cls,
        form: MultiDict[str, str],
        files: MultiDict[str, FileStorage],
        *,
        ignore: t.Collection[str] = (),
    ) -> dict[str, t.Any]:
        """Validate a ``multipart/form-data`` body: text fields and files.

        A file part sent without a file (an empty file input) counts as
        left out. Sizes are checked by :func:`~flaskstack.rest.body`, which
        knows how the body was read.

        :param ignore: Form fields that are never unknown (the CSRF token).
        :raises ValidationError: listing every problem found.
        """
        errors: Errors = {}
        result = cls._load_text(form, errors, "field")
        for name, field in cls.fields.items():
            if not isinstance(field, File):
                continue
            sent = [part for part in files.getlist(name) if part.filename or _size(part)]
            if not sent:
                if field.required:
                    errors.setdefault(name, []).append("This file is required.")
                continue
            if len(sent) > 1:
                errors.setdefault(name, []).append("Send one file.")
                continue
            part = sent[0]
            if not field.accepts(part.content_type):
                allowed = ", ".join(field.content_types or ())
                given = part.mimetype or "none"
                errors.setdefault(name, []).append(
                    f"Must be a file of type {allowed} (the part's Content-Type is {given})."
                )
                continue
            result[name] = part
        if cls.unknown_policy() == "reject":
            for name in [*form.keys(), *files.keys()]:
                declared = cls.fields.get(name)
                if name not in ignore and (declared is None or declared.dump_only):
                    errors.setdefault(name, []).append("Unknown field.")
        if errors:
            raise ValidationError(errors)
        return result

    # -- out ---------------------------------------------------------------------------

    @classmethod
    def dump(cls, obj: t.Any, *, many: bool = False) -> t.Any:
        """``obj`` (an object or a mapping) as JSON data: every field but the load-only ones.

        Each value is read from the field's ``attribute`` (its name by
        default) and written by its :meth:`~flaskstack.rest.Field.format`;
        a missing value or ``None`` is written as ``null``.

        :param many: ``obj`` is a sequence: dump each item.
        """
        steps = cls._dump_steps
        if many:
            return [cls._dump_one(steps, item) for item in obj]
        return cls._dump_one(steps, obj)

    @staticmethod
    def _dump_one(steps: list[_Step], obj: t.Any) -> dict[str, t.Any]:
        read = obj.get if isinstance(obj, Mapping) else None  # one check per object
        result: dict[str, t.Any] = {}
        for key, write, attribute, path in steps:
            if attribute is not None:
                value = read(attribute) if read is not None else getattr(obj, attribute, None)
            else:
                value = obj
                for name in path:
                    value = _read(value, name)
                    if value is None:
                        break
            if value is None or write is None:
                result[key] = value
            else:
                result[key] = write(value)
        return result

    # -- the document ------------------------------------------------------------------

    @classmethod
    def json_schema(
        cls, mode: Mode = "load", ref: Ref = default_ref, *, unknown: Unknown | None = None
    ) -> dict[str, t.Any]:
        """This schema as a JSON Schema object (for OpenAPI 3.1).

        :param mode: ``"load"``: what a request may send (dump-only fields
            left out; ``additionalProperties: false`` when unknown fields
            are refused). ``"dump"``: what a response holds (load-only
            fields left out, every other field present).
        :param ref: How nested schemas are referred to.
        :param unknown: The policy in effect when the schema has none
            (the app's setting); :meth:`unknown_policy` by default.
        """
        skip = "dump_only" if mode == "load" else "load_only"
        fields = {name: f for name, f in cls.fields.items() if not getattr(f, skip)}
        schema: dict[str, t.Any] = {
            "type": "object",
            "properties": {name: field.json_schema(mode, ref) for name, field in fields.items()},
        }
        if mode == "load":
            required = [name for name, field in fields.items() if field.required]
        else:
            required = list(fields)
        if required:
            schema["required"] = required
        policy = cls.unknown or unknown or cls.unknown_policy()
        if mode == "load" and policy == "reject":
            schema["additionalProperties"] = False
        if cls.__doc__:
            schema["description"] = " ".join(cls.__doc__.split())
        return schema


def _size(part: FileStorage) -> int:
    """The size of an uploaded file, from its stream's position at the end (nothing is read)."""
    stream = part.stream
    here = stream.tell()
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(here)
    return size


def _json_kind(data: object, fallback: str) -> str:
    kinds = {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return kinds.get(type(data), fallback)
