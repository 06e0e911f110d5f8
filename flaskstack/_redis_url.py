"""Redis URLs: the forms flaskstack accepts and how each is read.

``redis://``, ``rediss://`` and ``unix://`` URLs belong to redis-py: it
parses them (port, database, query arguments) when it builds the client,
and :func:`check_standalone_url` asks it to, for ``flask stack check``.
flaskstack adds one rule of its own, checked without importing redis-py
(which would add a third to the start-up of a worker that has not used Redis
yet): a TCP URL names a host, as redis-py would otherwise connect to
localhost. The Sentinel and Cluster forms, which redis-py has no URL syntax
for, are flaskstack's own.
"""

from __future__ import annotations

import dataclasses
import typing as t
from urllib.parse import unquote, urlsplit

__all__ = ["REDIS_URL_FORMS", "Kind", "RedisTarget", "check_standalone_url", "parse_redis_url"]

REDIS_URL_FORMS = (
    "redis://[[user]:password@]host[:port][/db]",
    "rediss://… (TLS)",
    "unix://[[user]:password@]/path/to/redis.sock[?db=N]",
    "redis+sentinel://[[user]:password@]host:port[,host:port…]/service[/db]",
    "redis+cluster://[[user]:password@]host:port[,host:port…]",
)
"""The accepted forms of a Redis URL, as shown in error messages."""

Kind = t.Literal["standalone", "sentinel", "cluster"]


@dataclasses.dataclass(frozen=True)
class RedisTarget:
    """A parsed Redis URL.

    :ivar kind: ``standalone``, ``sentinel`` or ``cluster``.
    :ivar url: The URL as given (for standalone servers, handed to redis-py).
    :ivar nodes: Sentinel or cluster nodes as ``(host, port)``.
    :ivar service: The Sentinel service (master group) name.
    :ivar db: The database number of a Sentinel URL (a standalone URL's is
        redis-py's to read; a cluster has database 0 only).
    """

    kind: Kind
    url: str = dataclasses.field(repr=False)  # may hold a password
    nodes: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)


def _parse_nodes(netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    nodes = []
    for part in netloc.split(","):
        part = part.strip()
        if not part:
            raise ValueError("an empty host in the node list")
        if part.startswith("["):  # [::1]:26379
            host, _, rest = part[1:].partition("]")
            port_text = rest.removeprefix(":")
        else:
            host, _, port_text = part.rpartition(":") if ":" in part else (part, "", "")
        if not host:
            raise ValueError(f"no host in {part!r}")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ValueError(f"the port of {part!r} is not a number") from None
        if not 0 < port < 65536:
            raise ValueError(f"the port of {part!r} is out of range")
        nodes.append((host, port))
    return tuple(nodes)


def _parse_standalone_url(url: str) -> RedisTarget:
    """Accept a ``redis://``, ``rediss://`` or ``unix://`` URL that names where to connect.

    The rest of it is redis-py's to judge when it builds the client
    (:func:`check_standalone_url`).
    """
    parts = urlsplit(url)  # raises ValueError for a malformed host ("[::1")
    if parts.scheme.lower() != "unix" and not parts.hostname:
        raise ValueError("no host")
    return RedisTarget("standalone", url)


def check_standalone_url(url: str) -> None:
    """Have redis-py parse a standalone URL as it will when it builds the client.

    Opens no connection; imports redis-py.

    :raises ValueError: with redis-py's message, when it refuses the URL.
    """
    from redis import ConnectionPool

    ConnectionPool.from_url(url)


def parse_redis_url(url: str) -> RedisTarget:
    """Parse a Redis URL in one of :data:`REDIS_URL_FORMS`.

    :raises ValueError: saying what is wrong with the URL.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("not a URL")
    if scheme in ("redis", "rediss", "unix"):
        return _parse_standalone_url(url)
    if scheme not in ("redis+sentinel", "redis+cluster"):
        raise ValueError(f"unknown scheme {scheme!r}")

    netloc, _, path = rest.partition("/")
    path = path.split("?", 1)[0]
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user_text, has_password, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if has_password else None
    parts = [p for p in path.split("/") if p]

    if scheme == "redis+cluster":
        if parts not in ([], ["0"]):
            raise ValueError("a Redis Cluster URL has no path (a cluster has database 0 only)")
        nodes = _parse_nodes(netloc, 6379)
        return RedisTarget("cluster", url, nodes, username=username, password=password)

    nodes = _parse_nodes(netloc, 26379)
    if not parts or len(parts) > 2:
        raise ValueError("a Sentinel URL ends in /service or /service/db")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError(f"the database {parts[1]!r} is not a number")
        db = int(parts[1])
    return RedisTarget("sentinel", url, nodes, unquote(parts[0]), db, username, password)
