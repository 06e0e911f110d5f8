"""Loopback ports for the servers the tests start.

A port taken by binding to port 0 comes from the kernel's ephemeral range,
the same range every outgoing connection on the machine takes its local port
from. Between the moment a test picks such a port and the moment its server
binds it, a client connection (to PostgreSQL, to Redis, to anything) can be
given that very port, and the server then fails with "Address already in
use". The ports here are picked below the ephemeral range, where the kernel
never hands out ports on its own, and are checked free before they are
returned.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import typing as t
from pathlib import Path

from werkzeug.serving import make_server

if t.TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["HOST", "PortsExhausted", "free_port", "free_ports"]

HOST = "127.0.0.1"

# Lowest port picked: above the well-known and most registered service ports.
_LOWEST = 10_000
# Used when the kernel's ephemeral range cannot be read.
_DEFAULT_EPHEMERAL_FLOOR = 32_768
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_ATTEMPTS_PER_PORT = 200

_random = random.SystemRandom()


class PortsExhausted(RuntimeError):
    """No free port could be found below the ephemeral range."""


def _ephemeral_floor() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_FLOOR


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int, *, companion_offset: int = 0) -> list[int]:
    """Return ``count`` distinct loopback ports that nothing is bound to now.

    Every port is below the kernel's ephemeral range, so no outgoing
    connection can take it before the server that asked for it binds it.
    With ``companion_offset``, ``port + companion_offset`` is free and below
    that range too (a Redis Cluster node's bus port).
    """
    top = _ephemeral_floor() - companion_offset
    if top - _LOWEST < 1_000:
        raise PortsExhausted(
            f"the ephemeral port range starts at {_ephemeral_floor()}, which leaves no room "
            f"for test servers between {_LOWEST} and it; raise the range's lower bound in "
            f"{_EPHEMERAL_RANGE}"
        )
    ports: list[int] = []
    for _ in range(count * _ATTEMPTS_PER_PORT):
        if len(ports) == count:
            break
        port = _random.randrange(_LOWEST, top)
        if port in ports or not _is_free(port):
            continue
        if companion_offset and not _is_free(port + companion_offset):
            continue
        ports.append(port)
    if len(ports) < count:
        raise PortsExhausted(f"found only {len(ports)} of {count} free loopback ports below {top}")
    return ports


def free_port() -> int:
    """Return one loopback port that nothing is bound to now (see :func:`free_ports`)."""
    return free_ports(1)[0]


@contextlib.contextmanager
def serving(app: t.Any, port: int, host: str = HOST) -> Iterator[None]:
    """Serve the WSGI ``app`` on ``host:port`` from a thread for the block (Werkzeug, threaded)."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
