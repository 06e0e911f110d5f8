"""The adapter over Flask-Mailman: registration, the SMTP backend, the connection probe.

The rules this module keeps:

- **Imported on first use.** Nothing imports it until mail is sent (or
  ``flask stack check`` probes the server), so a worker that sends no mail
  never imports Flask-Mailman. :func:`mailman_state` registers Flask-Mailman
  on the app then, once, under a lock.
- **One deadline per message.** :class:`EmailBackend` is Flask-Mailman's SMTP
  backend (its documented extension point, ``MAIL_BACKEND``) with a
  connection class that gives the whole exchange, from connecting to
  ``QUIT``, ``MAIL_TIMEOUT`` seconds: each socket operation may wait only
  for what is left, and a watchdog shuts the socket down when the time is up,
  so a server that answers one byte at a time cannot stretch it either. The
  host name lookup (``getaddrinfo``) cannot be interrupted and is not covered.
- **Verified STARTTLS.** smtplib's ``starttls()`` without a context encrypts
  but checks no certificate; the connection class passes the default,
  verifying context, as Flask-Mailman already does for ``smtps://``.

Everything here uses Flask-Mailman's documented API (``Mail.init_app``,
``MAIL_BACKEND`` naming a backend class, the backend's ``connection_class``,
``open``/``close``, the locmem backend's ``outbox``) and smtplib's public
methods; ``tests/test_mail.py`` fails when either changes under it.
"""

from __future__ import annotations

import contextlib
import functools
import smtplib
import socket
import ssl
import threading
import time
import typing as t

from flask_mailman import EmailMultiAlternatives, Mail
from flask_mailman.backends.smtp import EmailBackend as _MailmanSMTPBackend

from ._mail_url import SMTP_BACKENDS

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = [
    "DeadlineExceeded",
    "EmailBackend",
    "deliver",
    "describe",
    "mailman_state",
    "outbox",
    "probe",
]

_MAIL = Mail()
_REGISTRATION_LOCK = threading.Lock()

# Flask-Mailman's default when MAIL_TIMEOUT is unset; flaskstack always sets it.
_FALLBACK_TIMEOUT = 10.0


def mailman_state(app: Flask) -> t.Any:
    """Flask-Mailman's state for ``app``, registering Flask-Mailman on first use.

    An app that registered Flask-Mailman itself keeps its own registration.
    The state reads the ``MAIL_*`` keys once, as ``Mail.init_app`` does.
    """
    state = app.extensions.get("mailman")
    if state is not None:
        return state
    with _REGISTRATION_LOCK:
        state = app.extensions.get("mailman")
        if state is None:
            state = _MAIL.init_app(app)
    return state


def outbox(app: Flask) -> list[t.Any]:
    """The list the ``locmem`` backend appends ``app``'s messages to (created empty)."""
    state = mailman_state(app)
    if getattr(state, "outbox", None) is None:
        state.outbox = []
    messages: list[t.Any] = state.outbox
    return messages


class DeadlineExceeded(smtplib.SMTPServerDisconnected):
    """The SMTP exchange did not finish within ``MAIL_TIMEOUT`` seconds."""


class _DeadlineMixin(smtplib.SMTP):
    """Bound every read and write of an smtplib connection by one deadline.

    Put before :class:`smtplib.SMTP` or :class:`smtplib.SMTP_SSL` in the bases.
    """

    sock: socket.socket | None
    _watchdog: threading.Timer | None = None
    _expired: bool = False

    def __init__(self, *args: t.Any, deadline: float, timeout_seconds: float, **kwargs: t.Any):
        self.deadline = deadline
        self.timeout_seconds = timeout_seconds
        kwargs["timeout"] = max(0.001, deadline - time.monotonic())
        super().__init__(*args, **kwargs)

    def send(self, s: t.Any) -> None:
        self._arm()
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        self._arm()
        try:
            return super().getreply()
        except smtplib.SMTPServerDisconnected:
            self._left()  # the watchdog's doing: say so
            raise

    def close(self) -> None:
        self._disarm()
        super().close()

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0 or self._expired:
            raise DeadlineExceeded(
                f"the mail server did not finish within {self.timeout_seconds:g} seconds "
                "(FLASKSTACK_MAIL_TIMEOUT)"
            )
        return left

    def _arm(self) -> None:
        left = self._left()
        sock = self.sock
        if sock is None:
            return
        sock.settimeout(left)
        if self._watchdog is None:
            self._watchdog = threading.Timer(left, self._expire)
            self._watchdog.daemon = True
            self._watchdog.start()

    def _expire(self) -> None:
        # Wakes a read blocked on a server that trickles its answer.
        self._expired = True
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # closed already
                sock.shutdown(socket.SHUT_RDWR)

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()


class _DeadlineSMTP(_DeadlineMixin):
    def starttls(self, *args: t.Any, **kwargs: t.Any) -> tuple[int, bytes]:
        if kwargs.get("context") is None:
            kwargs["context"] = ssl.create_default_context()
        return super().starttls(*args, **kwargs)


class _DeadlineSMTPSSL(_DeadlineMixin, smtplib.SMTP_SSL):
    """Implicit TLS: :class:`smtplib.SMTP_SSL` under the same deadline."""


class EmailBackend(_MailmanSMTPBackend):  # type: ignore[misc]  # Flask-Mailman is untyped
    """Flask-Mailman's SMTP backend, with one deadline over each connection.

    The deadline starts when the connection opens and lasts ``MAIL_TIMEOUT``
    seconds (``FLASKSTACK_MAIL_TIMEOUT``); STARTTLS verifies the server's
    certificate against the system's CAs (``SSL_CERT_FILE`` names others).
    """

    @property
    def connection_class(self) -> t.Callable[..., smtplib.SMTP]:
        seconds = float(self.timeout) if self.timeout else _FALLBACK_TIMEOUT
        deadline = time.monotonic() + seconds
        base = _DeadlineSMTPSSL if self.use_ssl else _DeadlineSMTP
        return functools.partial(base, deadline=deadline, timeout_seconds=seconds)


def deliver(
    app: Flask,
    subject: str,
    text: str,
    html: str | None,
    recipients: list[str],
    reply_to: str | None,
    local_sender: str,
) -> None:
    """Send one message through ``app``'s Flask-Mailman backend (in an app context).

    :param local_sender: The sender when none is configured and the backend
        keeps mail in the process (console, memory, file); over SMTP a missing
        sender is an error.
    :raises Exception: whatever stopped the message (connection, TLS, login,
        refusal, deadline); the connection is closed in any case.
    """
    state = mailman_state(app)
    sender = state.default_sender
    if not sender:
        if state.backend in SMTP_BACKENDS:
            raise ValueError("no sender: set FLASKSTACK_MAIL_FROM (MAIL_DEFAULT_SENDER)")
        sender = local_sender
    connection = _MAIL.get_connection()
    try:
        message = EmailMultiAlternatives(
            subject,
            text,
            sender,
            recipients,
            connection=connection,
            reply_to=[reply_to] if reply_to else None,
        )
        if html is not None:
            message.attach_alternative(html, "text/html")
        sent = message.send()
    finally:
        # A failed exchange leaves the connection half-open; what failed is raised.
        with contextlib.suppress(OSError, smtplib.SMTPException):
            connection.close()
    if not sent:
        raise RuntimeError(f"the mail backend {state.backend!r} accepted no message")


def probe(app: Flask) -> str | None:
    """Connect to ``app``'s SMTP server as sending would: ``EHLO``, STARTTLS, login, ``QUIT``.

    :returns: ``None`` when every step succeeded, else what failed.
    """
    state = mailman_state(app)
    backend = EmailBackend(mailman=state)
    try:
        backend.open()
        backend.connection.ehlo_or_helo_if_needed()
        backend.connection.noop()
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        return describe(exc)
    finally:
        # The server may be gone already; what failed is reported above.
        with contextlib.suppress(OSError, smtplib.SMTPException):
            backend.close()
    return None


def describe(exc: BaseException) -> str:
    """A one-line account of a failed delivery, for logs and check findings."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"the server refused the login ({exc.smtp_code} {_text(exc.smtp_error)})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the server answered {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate was not accepted ({exc.verify_message})"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"no answer in time ({exc or 'timed out'})"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
