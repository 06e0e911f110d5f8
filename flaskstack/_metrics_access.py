"""Who may read the metrics endpoint, and the production rule that keeps it private.

The endpoint answers a request only when its client address is in
``FLASKSTACK_METRICS_ALLOW`` and, when ``FLASKSTACK_METRICS_TOKEN`` is set,
it carries that token as ``Authorization: Bearer <token>``. A client outside
the networks gets the same 404 as any unknown URL (the endpoint does not
exist for it); a client inside them without the token gets 401.

The client address is the one the app sees: ``X-Forwarded-For`` counts only
through ``FLASKSTACK_PROXY_FIX``. A request that carries forwarding headers
the app does not trust came through a proxy whose own address says nothing
of the client (a proxy on the same host is on loopback): it is refused.

The rule this module keeps: it imports nothing but the standard library, so
the production check (:func:`safety_problems`, run for every app) costs
nothing to an app with metrics off.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import typing as t

from .errors import Problem

if t.TYPE_CHECKING:
    from werkzeug.datastructures import Headers

    from .config import Resolution

__all__: list[str] = []

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""The environment variable that puts prometheus-client in multiprocess mode."""


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR``, or ``None`` (one process)."""
    return os.environ.get(MULTIPROCESS_VARIABLE) or None


def networks(values: t.Iterable[str]) -> tuple[_Network, ...]:
    """The networks of ``FLASKSTACK_METRICS_ALLOW`` (already validated by its parser)."""
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


_NOT_PUBLIC: tuple[_Network, ...] = tuple(
    ipaddress.ip_network(value)
    for value in (
        "127.0.0.0/8",  # loopback
        "10.0.0.0/8",  # private (RFC 1918)
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",  # link-local
        "::1/128",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
    )
)
"""The networks a metrics endpoint may be open to without a token.

Listed here rather than read from :attr:`ipaddress.IPv4Network.is_private`,
whose answer for a network changed between Python releases (before 3.11.10 and
3.12.4, ``0.0.0.0/0`` counted as private).
"""


def is_public(network: _Network) -> bool:
    """Whether ``network`` holds an address that is neither private, loopback nor link-local."""
    return not any(
        network.version == allowed.version and network.subnet_of(allowed)  # type: ignore[arg-type]
        for allowed in _NOT_PUBLIC
    )


class Access:
    """The decision for one app: :meth:`refusal` says which status a request gets, if refused."""

    def __init__(self, allow: t.Iterable[str], token: str | None, proxies_trusted: bool) -> None:
        self.networks = networks(allow)
        self.token = token.encode() if token else None
        self.proxies_trusted = proxies_trusted

    def address_allowed(self, remote_addr: str | None) -> bool:
        """Whether ``remote_addr`` lies in one of the allowed networks."""
        if not remote_addr:
            return False
        try:
            address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def refusal(self, remote_addr: str | None, headers: Headers) -> int | None:
        """``None`` to serve the request, else its status: 404 (not for this client) or 401."""
        if not self.proxies_trusted and any(name in headers for name in _FORWARDING_HEADERS):
            return 404
        if not self.address_allowed(remote_addr):
            return 404
        if self.token is None:
            return None
        scheme, _, credentials = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credentials.strip().encode(), self.token
        ):
            return 401
        return None


def safety_problems(resolution: Resolution) -> list[Problem]:
    """``metrics.E001``: the endpoint open without a token to networks that are not private."""
    if not resolution["FLASKSTACK_METRICS"] or not resolution["FLASKSTACK_METRICS_PATH"]:
        return []
    if resolution["FLASKSTACK_METRICS_TOKEN"]:
        return []
    public = [str(n) for n in networks(resolution["FLASKSTACK_METRICS_ALLOW"]) if is_public(n)]
    if not public:
        return []
    return [
        Problem(
            "metrics.E001",
            "FLASKSTACK_METRICS_ALLOW",
            f"{resolution['FLASKSTACK_METRICS_ALLOW']!r} (public: {', '.join(public)}), with no "
            "FLASKSTACK_METRICS_TOKEN",
            "private networks only (loopback, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
            "fc00::/7), or a token",
            "set FLASKSTACK_METRICS_TOKEN to a random string and give it to Prometheus "
            "(authorization: {credentials: ...}), or list only the networks Prometheus scrapes "
            "from in FLASKSTACK_METRICS_ALLOW",
        )
    ]
