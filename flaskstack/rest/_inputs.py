"""Reading what a resource accepts: JSON bodies, ``multipart/form-data`` uploads, query strings.

:func:`body` and :func:`query` validate the request against a
:class:`~flaskstack.rest.Schema` and hand the view a plain ``dict``::

    class NewNote(rest.Schema):
        title = rest.String(required=True, min_length=1, max_length=200)
        tags = rest.List(rest.String(max_length=30), default=list)

    class Notes(rest.Resource):
        @rest.body(NewNote)
        def post(self, body): ...

What the client gets wrong, and the answer:

- no body, or not ``application/json`` (``multipart/form-data`` for a
  schema with a :class:`~flaskstack.rest.File`): 415;
- a body that is not UTF-8 or not JSON, a malformed multipart body: 400
  saying where parsing stopped;
- a body over ``MAX_CONTENT_LENGTH``, a file over its field's ``max_size``:
  413 saying the limit;
- a missing field, a wrong type, a value out of range, a file of the wrong
  type, a field the schema does not know when unknown fields are refused:
  422 with ``errors`` mapping each field to its messages;
- a bad query parameter: 422 with the same ``errors``.

A field that is absent and not required is absent from the ``dict`` too,
unless it has a ``default``: a partial update can tell "not sent" from
"sent as null".
"""

from __future__ import annotations

import functools
import json
import tempfile
import typing as t

from flask import current_app, request
from werkzeug.exceptions import (
    BadRequest,
    RequestEntityTooLarge,
    UnsupportedMediaType,
)
from werkzeug.formparser import FormDataParser
from werkzeug.wsgi import LimitedStream

from flaskstack._ids import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN

from ._fields import (
    UNSET,
    UUID,
    Boolean,
    Date,
    DateTime,
    Decimal,
    Field,
    File,
    Float,
    Integer,
    Invalid,
    List,
    Nested,
    anchored,
)
from ._meta import describe
from ._schema import InvalidQuery, Schema, ValidationError
from ._strings import Email, Password, String, Url

if t.TYPE_CHECKING:
    from werkzeug.datastructures import FileStorage, MultiDict

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
    "File",
    "Float",
    "Integer",
    "Invalid",
    "InvalidQuery",
    "List",
    "Nested",
    "Password",
    "Schema",
    "String",
    "Url",
    "ValidationError",
    "anchored",
    "body",
    "query",
]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
SchemaLike = type[Schema] | Schema


def schema_class(schema: SchemaLike) -> type[Schema]:
    """The class of ``schema`` (a :class:`Schema` class or instance)."""
    if isinstance(schema, Schema):
        return type(schema)
    if isinstance(schema, type) and issubclass(schema, Schema):
        return schema
    raise TypeError(f"expected a rest.Schema class or instance, not {schema!r}")


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


# -- multipart/form-data -------------------------------------------------------------------

# Werkzeug's own threshold: smaller files stay in memory, larger ones go to disk.
_SPOOL_SIZE = 500 * 1024


class FileTooLarge(RequestEntityTooLarge):
    """413: an uploaded file is larger than its field's ``max_size``; ``errors`` by field."""

    def __init__(self, fields: t.Mapping[str, int]) -> None:
        self.errors = {name: [f"Must be at most {limit} bytes."] for name, limit in fields.items()}
        names = " or ".join(f"{name!r} (at most {limit} bytes)" for name, limit in fields.items())
        super().__init__(f"A file is larger than its field allows: {names}. Send a smaller file.")
        self.data = {"errors": self.errors}


class _CappedFile(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
    """A spooled temporary file that refuses to grow past ``limit`` bytes while it is written."""

    def __init__(self, limit: int | None, too_large: t.Callable[[], FileTooLarge]) -> None:
        super().__init__(max_size=_SPOOL_SIZE, mode="w+b")
        self.limit = limit
        self.written = 0
        self.too_large = too_large

    def write(self, data: t.Any) -> int:
        self.written += len(data)
        if self.limit is not None and self.written > self.limit:
            raise self.too_large()
        written: int = super().write(data)
        return written


def _file_limits(schema: type[Schema]) -> dict[str, int | None]:
    return {
        name: field.max_size for name, field in schema.fields.items() if isinstance(field, File)
    }


def read_multipart(
    schema: type[Schema],
) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
    """The request's ``multipart/form-data`` text fields and files, each file within its limit.

    Files are streamed to temporary files. While flaskstack reads the body,
    a file stops being written at the largest ``max_size`` of the schema's
    file fields; a body something read before (the CSRF check reads the
    form of a cookie-authenticated request) was bounded by
    ``MAX_CONTENT_LENGTH``, and each file's size is checked after.

    :raises UnsupportedMediaType: if the body is not ``multipart/form-data`` (or a
        urlencoded form, which has no files).
    :raises BadRequest: if it is malformed.
    :raises FileTooLarge: if a file is over its field's ``max_size``.
    """
    mimetype = request.mimetype
    if mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        given = f"Content-Type {mimetype!r}" if mimetype else "no Content-Type"
        raise UnsupportedMediaType(
            "The request body must be sent as 'Content-Type: multipart/form-data' "
            f"(the request has {given})."
        )
    limits = _file_limits(schema)
    sized = {name: limit for name, limit in limits.items() if limit is not None}
    cap = None if len(sized) < len(limits) else max(sized.values(), default=None)

    def too_large() -> FileTooLarge:
        over = {name: limit for name, limit in sized.items() if cap is None or limit <= cap}
        return FileTooLarge(over if len(over) == 1 else sized)

    opened: list[_CappedFile] = []

    def stream_factory(
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None,
        content_length: int | None = None,
    ) -> t.IO[bytes]:
        opened.append(_CappedFile(cap, too_large))
        return t.cast("t.IO[bytes]", opened[-1])

    form: MultiDict[str, str]
    files: MultiDict[str, FileStorage]
    stream = request.stream
    if isinstance(stream, LimitedStream) and stream.is_exhausted:
        form, files = request.form, request.files  # read before, by Werkzeug
        if body_was_cut_off():
            close_files(files)
            raise body_too_large()
    else:
        parser = FormDataParser(
            stream_factory=stream_factory,
            max_form_memory_size=request.max_form_memory_size,
            max_content_length=request.max_content_length,
            max_form_parts=request.max_form_parts,
            silent=False,
            cls=request.parameter_storage_class,
        )
        try:
            _, form, files = parser.parse(
                stream, mimetype, request.content_length, request.mimetype_params
            )
            if body_was_cut_off():
                raise body_too_large()
        except ValueError as exc:
            _close(opened)
            raise BadRequest(f"The multipart/form-data body is malformed: {exc}.") from None
        except BaseException:
            _close(opened)
            raise
    too_big = {}
    for name, limit in sized.items():
        for part in files.getlist(name):
            if _size(part) > limit:
                too_big[name] = limit
    if too_big:
        close_files(files)
        raise FileTooLarge(too_big)
    return form, files


def _size(part: FileStorage) -> int:
    stream = part.stream
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def _close(opened: t.Iterable[t.Any]) -> None:
    for file in opened:
        file.close()


def close_files(files: MultiDict[str, FileStorage]) -> None:
    """Close every uploaded file (their temporary files go)."""
    _close(part.stream for _, part in files.items(multi=True))


def body(schema: SchemaLike, *, arg: str = "body") -> t.Callable[[F], F]:
    """Validate the request body against ``schema``; the view gets the result as ``arg``.

    ::

        @rest.body(NewNote)
        def post(self, body): ...

    The body is JSON, or ``multipart/form-data`` when the schema has a
    :class:`~flaskstack.rest.File` field: its text fields are read as query
    strings are (``"true"``, ``"12"``, a list as the field repeated), each
    file is a Werkzeug ``FileStorage`` in the result, closed when the view
    returns. The schema appears as the operation's request body in the
    OpenAPI document.
    """
    klass = schema_class(schema)
    if klass.has_files():
        nested = [
            name
            for name, field in klass.fields.items()
            if isinstance(field, Nested)
            or (isinstance(field, List) and isinstance(field.item, (Nested, List, File)))
        ]
        if nested:
            raise TypeError(
                f"{klass.__qualname__} has files, so it is read from a multipart/form-data body, "
                f"which has no nested objects: {', '.join(map(repr, nested))}"
            )

    def decorate(view: F) -> F:
        if not klass.has_files():

            @functools.wraps(view)
            def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                kwargs[arg] = klass.load(read_json())
                return view(*args, **kwargs)

        else:

            @functools.wraps(view)
            def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                form, files = read_multipart(klass)
                try:
                    csrf_field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
                    kwargs[arg] = klass.load_form(form, files, ignore=(csrf_field,))
                    return view(*args, **kwargs)
                finally:
                    close_files(files)

        return describe(t.cast("F", wrapper), body=klass)

    return decorate


def query(schema: SchemaLike, *, arg: str = "query") -> t.Callable[[F], F]:
    """Validate the query string against ``schema``; the view gets the result as ``arg``.

    Bad parameters get 422 with ``errors`` by parameter. The fields appear as
    the operation's query parameters in the OpenAPI document.
    """
    klass = schema_class(schema)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            kwargs[arg] = klass.load_query(request.args)
            return view(*args, **kwargs)

        return describe(t.cast("F", wrapper), query=klass)

    return decorate
