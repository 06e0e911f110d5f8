"""Parsers for the settings table.

Each turns a raw value (a string from the environment, or a Python object
from code) into the setting's type, or raises :exc:`ValueError`; the table
row supplies the message saying what was expected.
"""

from __future__ import annotations

import math
import re
import typing as t
from datetime import timedelta

from ._mail_url import parse_mail_url as _parse_mail_url
from ._redis_url import parse_redis_url as parse_url

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError


def parse_optional_bool(value: object) -> bool | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    return parse_bool(value)


def parse_positive_float(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, (int, float, str)):
        number = float(value)
        if number > 0:
            return number
    raise ValueError


def parse_optional_int(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, (int, str)):
        number = int(value)
        if number > 0:
            return number
    raise ValueError


def parse_str(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError


def parse_str_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return [str(v).strip() for v in value]
    raise ValueError


def parse_job_queues(value: object) -> list[str]:
    names = parse_str_list(value)
    if (
        names
        and all(NAMESPACE_RE.fullmatch(name) for name in names)
        and len(set(names)) == len(names)
    ):
        return names
    raise ValueError


def parse_session_cookie_keys(value: object) -> list[str]:
    """A list of session keys that may stay in a signed cookie; never ``_user_id``."""
    keys = parse_str_list(value)
    if "_user_id" in keys:
        # Flask-Login's signed-in user: a cookie session cannot be revoked.
        raise ValueError("'_user_id' (the signed-in user) is always stored in Redis; remove it")
    return keys


def parse_mapping(value: object) -> dict[str, t.Any]:
    if isinstance(value, t.Mapping):
        return dict(value)
    raise ValueError


def parse_json_mapping(value: object) -> dict[str, t.Any]:
    """A mapping, or a JSON object in a string (from the environment); ``None``/``""``: empty."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
    if isinstance(value, t.Mapping):
        return dict(value)
    raise ValueError


def parse_choice(*choices: str) -> t.Callable[[object], str]:
    def parse(value: object) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise ValueError

    return parse


def parse_samesite(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if isinstance(value, str) and value.strip().lower() in ("lax", "strict"):
        return value.strip().capitalize()
    raise ValueError


NAMESPACE_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def parse_namespace(value: object) -> str:
    if isinstance(value, str) and NAMESPACE_RE.fullmatch(value):
        return value
    raise ValueError


def parse_path(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.startswith("/") and " " not in value:
        return value
    raise ValueError


def parse_url_prefix(value: object) -> str:
    if (
        isinstance(value, str)
        and value.startswith("/")
        and len(value) > 1
        and not value.endswith("/")
        and not any(c in value for c in " <>?#")
    ):
        return value
    raise ValueError


def parse_log_level(value: object) -> str:
    if isinstance(value, str) and value.upper() in {
        "DEBUG",
        "INFO",
        "WARNING",
        "ERROR",
        "CRITICAL",
    }:
        return value.upper()
    raise ValueError


def parse_redis_url(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parse_url(value)  # raises ValueError saying what is wrong
        return value
    raise ValueError


def parse_mail_url(value: object) -> str | None:
    """A mail URL (``smtp://``, ``smtps://``, ``console://``, ``memory://``, ``file://``)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        _parse_mail_url(value)  # raises ValueError saying what is wrong
        return value.strip()
    raise ValueError


_ADDRESS_RE = re.compile(r"[^\s@<>,;\"]+@[^\s@<>,;\"]+")


def parse_mail_address(value: object) -> str | None:
    """One address, bare or with a display name: ``app@example.com``, ``App <app@example.com>``."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and "\n" not in value and "\r" not in value:
        text = value.strip()
        _, _, rest = text.rpartition("<")
        address = rest[:-1] if rest.endswith(">") and "<" in text else text
        if _ADDRESS_RE.fullmatch(address.strip()):
            return text
    raise ValueError


def parse_database_url(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", value):
        return value
    raise ValueError


def parse_database_urls(value: object) -> list[str]:
    """URLs as a list, or in one string separated by commas or whitespace."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, (list, tuple)):
        raise ValueError
    urls = [parse_database_url(item.strip() if isinstance(item, str) else item) for item in value]
    if any(url is None for url in urls):
        raise ValueError("an empty URL")
    return [url for url in urls if url is not None]


def parse_secret(value: object) -> str | bytes | None:
    if value is None or value == "" or value == b"":
        return None
    if isinstance(value, (str, bytes)):
        return value
    raise ValueError


def parse_cache_type(value: object) -> str | None:
    if value is None or value == "":
        return None
    return parse_str(value)


def parse_cache_timeout(value: object) -> int:
    if isinstance(value, timedelta):
        value = math.ceil(value.total_seconds())
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError


def parse_cache_key_prefix(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError


def parse_non_negative_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, (int, str)):
        number = int(value)
        if number >= 0:
            return number
    raise ValueError


def parse_positive_int(value: object) -> int:
    number = parse_non_negative_int(value)
    if number > 0:
        return number
    raise ValueError


def parse_optional_float(value: object) -> float | None:
    if value is None or value == "":
        return None
    return parse_positive_float(value)


def parse_import_path(value: object) -> object:
    """A ``"package.module:Name"`` string (imported later), or the object itself."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        module, sep, name = value.partition(":")
        if sep and module and name.isidentifier():
            return value
        raise ValueError("expected 'package.module:ClassName'")
    if isinstance(value, type):
        return value
    raise ValueError


def parse_networks(value: object) -> list[str]:
    """IP networks (CIDR or single addresses), as a list or a comma-separated string."""
    import ipaddress

    items = parse_str_list(value)
    if not items:
        raise ValueError("name at least one network")
    return [str(ipaddress.ip_network(item, strict=False)) for item in items]


def parse_optional_str(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    raise ValueError


_ORIGIN_RE = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.\-]*)://"
    r"(?P<host>[a-z0-9](?:[a-z0-9\-.]*[a-z0-9])?|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _origin_problem(origin: str) -> str | None:
    """What is wrong with ``origin`` as a browser sends it in ``Origin``, or ``None``."""
    if origin != origin.strip():
        return f"{origin!r} has spaces around it"
    if origin.lower() != origin:
        return f"{origin!r} has upper-case letters; browsers send the origin in lower case"
    if "*" in origin:
        return f"{origin!r} is a pattern; list each origin, or give '*' alone"
    match = _ORIGIN_RE.fullmatch(origin)
    if match is None:
        if origin.endswith("/") and _ORIGIN_RE.fullmatch(origin[:-1]):
            return f"{origin!r} ends with '/'; an origin has no path"
        return f"{origin!r} is not scheme://host[:port] (no path, query or user)"
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        return f"{origin!r} has no valid port"
    if port is not None and _DEFAULT_PORTS.get(match["scheme"]) == port:
        return f"{origin!r} names the default port, which browsers leave out of the origin"
    return None


def parse_cors_origins(value: object) -> list[str]:
    """Exact origins (``scheme://host[:port]``), or ``['*']`` alone; empty for none."""
    origins = parse_str_list(value)
    if "*" in origins and len(origins) > 1:
        raise ValueError("'*' allows every origin: give it alone or list the origins")
    if origins == ["*"]:
        return origins
    for origin in origins:
        problem = _origin_problem(origin)
        if problem is not None:
            raise ValueError(problem)
    return list(dict.fromkeys(origins))


def parse_origins(value: object) -> list[str]:
    """Exact origins (``scheme://host[:port]``), no ``'*'``; empty for none."""
    origins = parse_str_list(value)
    for origin in origins:
        if origin == "*":
            raise ValueError("'*' is not an origin here: list each origin")
        problem = _origin_problem(origin)
        if problem is not None:
            raise ValueError(problem)
    return list(dict.fromkeys(origins))


_HOST_LABEL = r"[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?"
_HOST_NAME_RE = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")


def parse_optional_host_name(value: object) -> str | None:
    """A lower-case host name (no scheme, port or path), or ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and _HOST_NAME_RE.fullmatch(value) and len(value) <= 253:
        return value
    raise ValueError


_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")


def parse_header_names(value: object) -> list[str]:
    """HTTP header names (letters, digits, ``-`` and ``_``)."""
    names = parse_str_list(value)
    for name in names:
        if not _HEADER_NAME_RE.fullmatch(name):
            raise ValueError(f"{name!r} is not a header name (letters, digits, '-', '_')")
    return list(dict.fromkeys(names))


def parse_path_patterns(value: object) -> list[str]:
    """URL paths: ``/exact`` or ``/prefix/*`` (the prefix and everything under it)."""
    paths = parse_str_list(value)
    for path in paths:
        stem = path[:-2] if path.endswith("/*") else path
        if not path.startswith("/") or any(c in stem for c in " *?#<>"):
            raise ValueError(f"{path!r} is not a path such as '/exact' or '/prefix/*'")
    return paths
