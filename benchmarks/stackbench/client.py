"""A tiny HTTP client for setting up sessions and counting: one request, one connection."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import http.cookies
import typing as t
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

__all__ = ["USER_AGENT", "Reply", "cookie_header", "request", "update_cookies"]

USER_AGENT = "stackbench/1"
"""Sent by every request of the harness and of the load generator: Flask-Login's
session protection compares it with the one seen at login."""


@dataclasses.dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def set_cookies(self) -> list[str]:
        return [value for key, value in self.headers if key.lower() == "set-cookie"]


def request(
    base_url: str,
    method: str,
    path: str,
    headers: t.Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30,
) -> Reply:
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    try:
        all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def update_cookies(jar: dict[str, str], reply: Reply) -> None:
    """Apply the reply's ``Set-Cookie`` headers to ``jar`` (name -> value)."""
    for header in reply.set_cookies:
        cookie: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            expired = morsel["max-age"] in ("0", "-1") or not morsel.value
            if expired or _in_the_past(morsel["expires"]):
                jar.pop(name, None)
            else:
                jar[name] = morsel.value


def _in_the_past(expires: str) -> bool:
    if not expires:
        return False
    try:
        moment = parsedate_to_datetime(expires)
    except (TypeError, ValueError):
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment < dt.datetime.now(dt.timezone.utc)


def cookie_header(jar: t.Mapping[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())
