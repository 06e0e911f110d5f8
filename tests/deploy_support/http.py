"""A small HTTP/1.1 client that behaves like a browser on http://127.0.0.1.

It keeps cookies as a browser does for a loopback origin, which counts as
secure: ``Secure`` cookies are stored and sent back over plain HTTP, so an
app in the production profile can be driven without TLS. Every request opens
its own connection (gunicorn's sync workers close each one anyway) and
carries an ``X-Request-ID`` the access log can be searched for.

:meth:`Browser.stall` sends all of a request but its last byte: the gunicorn
worker that accepts the connection is then busy with it until
:meth:`Stalled.finish`, so a request sent in the meantime is served by
another worker.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.cookies
import socket
import typing as t
import uuid
from html.parser import HTMLParser
from urllib.parse import urlencode

__all__ = ["Browser", "Response", "Stalled", "form_fields"]


@dataclasses.dataclass
class Response:
    """What came back: status, headers, body, and the request id that was sent."""

    status: int
    headers: http.client.HTTPMessage
    body: str
    request_id: str

    def set_cookies(self) -> list[http.cookies.Morsel[str]]:
        morsels = []
        for header in self.headers.get_all("Set-Cookie") or []:
            cookie = http.cookies.SimpleCookie()
            cookie.load(header)
            morsels.extend(cookie.values())
        return morsels


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            attributes = dict(attrs)
            if attributes.get("name"):
                self.values[t.cast("str", attributes["name"])] = attributes.get("value") or ""


def form_fields(page: str) -> dict[str, str]:
    """The named ``<input>`` fields of an HTML page and their values (the CSRF token among them)."""
    parser = _Inputs()
    parser.feed(page)
    return parser.values


class Stalled:
    """A request sent but for its last byte, holding the worker that accepted it."""

    def __init__(self, browser: Browser, sock: socket.socket, rest: bytes, request_id: str) -> None:
        self._browser = browser
        self._sock = sock
        self._rest = rest
        self.request_id = request_id

    def finish(self) -> Response:
        """Send the last byte and read the response."""
        try:
            self._sock.sendall(self._rest)
            return self._browser._read(self._sock, self.request_id)
        finally:
            self._sock.close()


class Browser:
    """Requests to one ``host:port``, keeping the cookies it is given."""

    def __init__(self, host: str, port: int, *, timeout: float = 15.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}

    def _encode(
        self, method: str, path: str, form: t.Mapping[str, str] | None, request_id: str
    ) -> bytes:
        body = urlencode(form).encode() if form is not None else b""
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Connection: close",
            "Accept: text/html,application/json",
            f"X-Request-ID: {request_id}",
        ]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if form is not None:
            lines.append("Content-Type: application/x-www-form-urlencoded")
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=self.timeout)

    def _read(self, sock: socket.socket, request_id: str) -> Response:
        raw = http.client.HTTPResponse(sock)
        raw.begin()
        body = raw.read().decode("utf-8", "replace")
        response = Response(raw.status, raw.headers, body, request_id)
        for morsel in response.set_cookies():
            if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                self.cookies.pop(morsel.key, None)
            else:
                self.cookies[morsel.key] = morsel.value
        return response

    def request(
        self, method: str, path: str, *, form: t.Mapping[str, str] | None = None
    ) -> Response:
        """Send one request on a new connection and read the whole response."""
        request_id = uuid.uuid4().hex
        with self._connect() as sock:
            sock.sendall(self._encode(method, path, form, request_id))
            return self._read(sock, request_id)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, form: t.Mapping[str, str]) -> Response:
        return self.request("POST", path, form=form)

    def stall(self, method: str, path: str, *, form: t.Mapping[str, str] | None = None) -> Stalled:
        """Send all of a request but its last byte; :meth:`Stalled.finish` sends it."""
        request_id = uuid.uuid4().hex
        data = self._encode(method, path, form, request_id)
        sock = self._connect()
        try:
            sock.sendall(data[:-1])
        except BaseException:
            sock.close()
            raise
        return Stalled(self, sock, data[-1:], request_id)
