"""Mail URLs: the forms ``MAIL_URL`` accepts and the Flask-Mailman keys each becomes.

One URL names where mail goes, as ``DATABASE_URL`` and ``REDIS_URL`` name
their servers. :func:`parse_mail_url` reads it without importing
Flask-Mailman (settings are validated in every worker, most of which never
send mail); :func:`mailman_keys` translates it into the ``MAIL_*`` keys
Flask-Mailman reads, which :func:`flaskstack.init_app` only ever
``setdefault``\\ s.
"""

from __future__ import annotations

import dataclasses
import typing as t
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "MAIL_URL_FORMS",
    "SMTP_BACKEND",
    "SMTP_BACKENDS",
    "MailTarget",
    "mailman_keys",
    "parse_mail_url",
]

MAIL_URL_FORMS = (
    "smtp://[user:password@]host[:port][?starttls=1] (port 25 by default; STARTTLS on request)",
    "smtps://[user:password@]host[:port] (TLS from the first byte, port 465 by default)",
    "console:// (print each message to standard output)",
    "memory:// (keep messages in the app's outbox, for tests)",
    "file:///absolute/directory (write each message to a file there)",
)
"""The accepted forms of a mail URL, as shown in error messages."""

SMTP_BACKEND = "flaskstack._mail_backend.EmailBackend"
"""The Flask-Mailman backend flaskstack uses for SMTP: Flask-Mailman's, with a
deadline over the whole exchange and a verified certificate after STARTTLS."""

SMTP_BACKENDS = frozenset(
    {
        SMTP_BACKEND,
        "smtp",
        "flask_mailman.backends.smtp",
        "flask_mailman.backends.smtp.EmailBackend",
    }
)
"""``MAIL_BACKEND`` values that send over SMTP (flaskstack's and Flask-Mailman's own)."""

Scheme = t.Literal["smtp", "smtps", "console", "memory", "file"]

_BACKENDS: dict[str, str] = {
    "smtp": SMTP_BACKEND,
    "smtps": SMTP_BACKEND,
    "console": "console",
    "memory": "locmem",
    "file": "file",
}
_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclasses.dataclass(frozen=True)
class MailTarget:
    """A parsed mail URL.

    :ivar scheme: ``smtp``, ``smtps``, ``console``, ``memory`` or ``file``.
    :ivar host: The SMTP server (SMTP schemes only).
    :ivar port: Its port.
    :ivar username: The login name, if the URL has one.
    :ivar password: The password, if the URL has one.
    :ivar starttls: Upgrade a ``smtp://`` connection with STARTTLS.
    :ivar path: The directory of a ``file://`` URL.
    """

    scheme: Scheme
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    starttls: bool = False
    path: str | None = None

    @property
    def smtp(self) -> bool:
        """Whether mail goes to an SMTP server (rather than staying in this process)."""
        return self.scheme in ("smtp", "smtps")

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted (implicit TLS or STARTTLS)."""
        return self.scheme == "smtps" or self.starttls


def parse_mail_url(url: str) -> MailTarget:
    """Parse a mail URL in one of :data:`MAIL_URL_FORMS`.

    :raises ValueError: saying what is wrong (never echoing the password).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("not a URL with a valid port") from None
    scheme = parts.scheme.lower()
    if scheme not in _BACKENDS:
        shown = f"{scheme!r}" if scheme else "no scheme"
        raise ValueError(f"{shown} is not one of smtp, smtps, console, memory, file")
    if scheme in ("console", "memory"):
        if parts.netloc or parts.path or parts.query or parts.fragment:
            raise ValueError(f"{scheme}:// takes nothing after it")
        return MailTarget(t.cast("Scheme", scheme))
    if scheme == "file":
        if parts.netloc or parts.query or parts.fragment or not parts.path.startswith("/"):
            raise ValueError("file:// needs an absolute directory, as in file:///var/mail/app")
        return MailTarget("file", path=unquote(parts.path))
    host = parts.hostname
    if not host:
        raise ValueError("no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("an SMTP URL has no path")
    starttls = False
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "starttls":
            raise ValueError(f"unknown query argument {name!r} (only starttls is accepted)")
        if value.lower() not in _TRUE | _FALSE:
            raise ValueError("starttls takes 1 or 0")
        starttls = value.lower() in _TRUE
    if starttls and scheme == "smtps":
        raise ValueError("smtps:// is TLS already; starttls is for smtp://")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ValueError("a password without a user name")
    return MailTarget(
        t.cast("Scheme", scheme),
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        username=username,
        password=password,
        starttls=starttls,
    )


def mailman_keys(target: MailTarget, *, timeout: float, sender: str | None) -> dict[str, t.Any]:
    """The Flask-Mailman settings ``target`` stands for.

    :param timeout: ``FLASKSTACK_MAIL_TIMEOUT``, the deadline of one SMTP exchange.
    :param sender: ``FLASKSTACK_MAIL_FROM``, the default sender (left out when ``None``).
    """
    keys: dict[str, t.Any] = {"MAIL_BACKEND": _BACKENDS[target.scheme], "MAIL_TIMEOUT": timeout}
    if sender is not None:
        keys["MAIL_DEFAULT_SENDER"] = sender
    if target.smtp:
        keys.update(
            MAIL_SERVER=target.host,
            MAIL_PORT=target.port,
            MAIL_USERNAME=target.username,
            MAIL_PASSWORD=target.password,
            MAIL_USE_TLS=target.starttls,
            MAIL_USE_SSL=target.scheme == "smtps",
        )
    elif target.scheme == "file":
        keys["MAIL_FILE_PATH"] = target.path
    return keys
