"""The cache's serialiser: tagged JSON, never pickle.

Whoever can write to Redis must not be able to run code in the app, so
cached values are stored as JSON with tags for the exact types listed in
:class:`CacheSerializer`; any other value is not cached (and is computed
every time), with one warning per type.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime as dt
import decimal
import functools
import json
import logging
import threading
import typing as t
import uuid

from cachelib.serializers import BaseSerializer
from flask import current_app
from markupsafe import Markup
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, default_exceptions
from werkzeug.wrappers import Response

from flaskstack.errors import FlaskStackError

logger = logging.getLogger("flaskstack.caching")


class _Once:
    """Logs each distinct message once for its owner (a backend, a cached function)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def warning(self, key: str, message: str, *args: object) -> None:
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
        logger.warning(message, *args)


# -- serialisation -----------------------------------------------------------


class UncacheableValue(FlaskStackError, TypeError):
    """A value :class:`CacheSerializer` cannot store (the cache skips it)."""


_TAG = "~"  # a JSON object with this key is a tagged value; plain dicts never have it


def _encode_response(value: Response) -> dict[str, t.Any]:
    if value.is_streamed or value.direct_passthrough:
        raise UncacheableValue("a streamed response (its body is produced while it is sent)")
    return {
        "status": value.status,
        "headers": value.headers.to_wsgi_list(),
        "body": base64.b64encode(value.get_data()).decode("ascii"),
    }


def _decode_response(data: dict[str, t.Any]) -> Response:
    response_class: type[Response] = (
        current_app.response_class if current_app else _default_response_class()
    )
    return response_class(
        base64.b64decode(data["body"]), status=data["status"], headers=data["headers"]
    )


def _default_response_class() -> type[Response]:
    from flask import Response as FlaskResponse

    return FlaskResponse


def _encode_http_exception(value: HTTPException) -> dict[str, t.Any]:
    cls = type(value)
    # Only what rebuilding from the code and description restores exactly:
    # no custom response, no subclass, no extra headers (Retry-After, Allow…).
    if (
        value.code is None
        or default_exceptions.get(value.code) is not cls
        or value.response is not None
        or cls(description=value.description).get_headers() != value.get_headers()
    ):
        raise UncacheableValue(f"this {cls.__name__} (rebuilding it would lose information)")
    return {"code": value.code, "description": value.description}


def _decode_http_exception(data: dict[str, t.Any]) -> HTTPException:
    return default_exceptions[data["code"]](description=data["description"])


@dataclasses.dataclass(frozen=True)
class _Codec:
    encode: t.Callable[[t.Any], t.Any]
    decode: t.Callable[[t.Any], t.Any]


# Exact types only: a subclass (an IntEnum, a str subclass) would come back as
# its base type, which is a different value; such values are not cached.
_CODECS: dict[str, tuple[type, _Codec]] = {
    "tuple": (tuple, _Codec(lambda v: list(v), tuple)),
    "bytes": (bytes, _Codec(lambda v: base64.b64encode(v).decode("ascii"), base64.b64decode)),
    "set": (set, _Codec(list, set)),
    "frozenset": (frozenset, _Codec(list, frozenset)),
    "datetime": (dt.datetime, _Codec(dt.datetime.isoformat, dt.datetime.fromisoformat)),
    "date": (dt.date, _Codec(dt.date.isoformat, dt.date.fromisoformat)),
    "time": (dt.time, _Codec(dt.time.isoformat, dt.time.fromisoformat)),
    "timedelta": (
        dt.timedelta,
        _Codec(lambda v: [v.days, v.seconds, v.microseconds], lambda v: dt.timedelta(*v)),
    ),
    "decimal": (decimal.Decimal, _Codec(str, decimal.Decimal)),
    "uuid": (uuid.UUID, _Codec(str, uuid.UUID)),
    "markup": (Markup, _Codec(str, Markup)),
    "headers": (Headers, _Codec(lambda v: v.to_wsgi_list(), Headers)),
}
_TAG_BY_TYPE = {cls: name for name, (cls, _) in _CODECS.items()}
_JSON_SCALARS = (type(None), bool, int, float, str)


class CacheSerializer(BaseSerializer):
    """Stores cache values as JSON, with tags for the Python types JSON lacks.

    It round-trips exactly: ``None``, ``bool``, ``int``, ``float``, ``str``,
    ``list``, ``dict`` (any hashable keys), ``tuple``, ``bytes``, ``set``,
    ``frozenset``, ``datetime``, ``date``, ``time``, ``timedelta``,
    ``Decimal``, ``UUID``, ``Markup``, Werkzeug ``Headers``, and the values
    cached views return: a :class:`~flask.Response` (status, headers, body;
    rebuilt as the app's response class) and the standard
    :class:`~werkzeug.exceptions.HTTPException` of :func:`~flask.abort`.

    Anything else (a model instance, a dataclass, an enum, a subclass of a
    type above, a streamed response) raises :exc:`UncacheableValue`, and
    the backends then skip storing it, with one warning per type: the
    function is simply computed every time. Decoding never runs code, so
    whatever someone writes to Redis, the worst outcome is a cache miss.

    Integers are stored as their decimal digits, so ``INCRBY`` works on them
    (:meth:`~RedisCache.inc`). ``CACHE_SERIALIZER`` replaces this serialiser
    (cachelib's pickle one caches any object, for those who trust everyone
    able to write to their Redis).
    """

    def dumps(self, value: t.Any, protocol: int | None = None) -> bytes:
        """Encode ``value``; ``protocol`` (pickle's) is accepted and ignored.

        :raises UncacheableValue: if ``value`` holds a type listed nowhere above.
        """
        try:
            return json.dumps(self._tag(value), ensure_ascii=False, separators=(",", ":")).encode(
                "utf-8"
            )
        except (ValueError, RecursionError) as exc:  # a circular structure
            raise UncacheableValue(str(exc)) from exc

    def loads(self, bvalue: bytes | bytearray | str) -> t.Any:
        """Decode what :meth:`dumps` produced.

        :raises ValueError: if ``bvalue`` is not such data.
        """
        try:
            # json.loads(bvalue, object_hook=...) without building a decoder per call.
            if isinstance(bvalue, (bytes, bytearray)):
                text = bvalue.decode(json.detect_encoding(bvalue), "surrogatepass")
            else:
                text = bvalue
            return self._decoder.decode(text)
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ValueError(f"not a cache value: {exc}") from exc

    @functools.cached_property
    def _decoder(self) -> json.JSONDecoder:
        return json.JSONDecoder(object_hook=self._untag)

    def _tag(self, value: t.Any) -> t.Any:
        kind = type(value)
        if kind in _JSON_SCALARS:
            return value
        if kind is list:
            return [self._tag(item) for item in value]
        if kind is dict or kind is collections.OrderedDict:
            if _TAG not in value and all(type(key) is str for key in value):
                return {key: self._tag(item) for key, item in value.items()}
            pairs = [[self._tag(key), self._tag(item)] for key, item in value.items()]
            return {_TAG: "dict", "v": pairs}
        name = _TAG_BY_TYPE.get(kind)
        if name is not None:
            encoded = _CODECS[name][1].encode(value)
            if name in ("tuple", "set", "frozenset"):
                encoded = [self._tag(item) for item in encoded]
            return {_TAG: name, "v": encoded}
        if isinstance(value, Response):
            return {_TAG: "response", "v": _encode_response(value)}
        if isinstance(value, HTTPException):
            return {_TAG: "http_exception", "v": _encode_http_exception(value)}
        raise UncacheableValue(f"a value of type {kind.__module__}.{kind.__qualname__}")

    @staticmethod
    def _untag(obj: dict[str, t.Any]) -> t.Any:
        if _TAG not in obj:
            return obj
        name, payload = obj[_TAG], obj["v"]
        if name == "dict":
            return {key: item for key, item in payload}
        if name == "response":
            return _decode_response(payload)
        if name == "http_exception":
            return _decode_http_exception(payload)
        return _CODECS[name][1].decode(payload)


def _skip(once: _Once, exc: UncacheableValue) -> None:
    once.warning(
        str(exc),
        "not caching %s: the cache stores JSON-compatible values, responses and standard "
        "HTTP errors only (see flaskstack.caching.CacheSerializer); it is computed every time",
        exc,
    )


def _dump(serializer: BaseSerializer, value: t.Any, once: _Once) -> bytes | None:
    """Encode ``value`` for storage, or log (once per reason) why it cannot be."""
    try:
        data = serializer.dumps(value)
    except UncacheableValue as exc:
        _skip(once, exc)
        return None
    return data  # a user's CACHE_SERIALIZER may return None
