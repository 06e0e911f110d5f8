"""Real SMTP servers on loopback for the tests: aiosmtpd, plus two that misbehave.

:class:`SMTPServer` runs aiosmtpd in a thread of the test process on a free
port: plain, STARTTLS or implicit TLS (with a certificate from
:func:`make_certificate`), with or without AUTH. Every message it receives is
kept, parsed, in :attr:`SMTPServer.messages`; :meth:`SMTPServer.wait_for`
waits for messages sent by another thread or process (a browser test's
server sends after the response). :class:`SilentServer` accepts connections
and never answers; :class:`TricklingServer` answers one byte at a time,
forever. :func:`free_port` is a port nothing listens on.

Usage::

    with SMTPServer(tls="starttls", certificate=cert, users={"app": "pw"}) as server:
        app = make_app({"MAIL_URL": server.url(user="app", password="pw")})
        ...
        (message,) = server.wait_for(1)
        assert message.subject == "Reset your password"
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import logging
import socket
import ssl
import subprocess
import threading
import time
import typing as t
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"

Tls = t.Literal["starttls", "implicit"]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (at the time of the call)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


@dataclasses.dataclass(frozen=True)
class Certificate:
    """A throw-away CA and a server certificate it signed, for ``localhost`` and 127.0.0.1.

    :ivar ca: The CA certificate (PEM): trust it with ``SSL_CERT_FILE``.
    :ivar cert: The server's certificate (PEM).
    :ivar key: The server's private key (PEM).
    """

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificate(directory: Path) -> Certificate:
    """Make a CA and a server certificate signed by it with ``openssl`` (strict-X.509 clean)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    extensions = directory / "server.ext"
    extensions.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n",
        encoding="ascii",
    )

    def openssl(*args: str | Path) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", ca_key, "-out", ca, "-subj", "/CN=flaskstack test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=localhost",
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-out", cert, "-extfile", extensions,
    )  # fmt: skip
    return Certificate(ca, cert, key)


@dataclasses.dataclass(frozen=True)
class Received:
    """One message the server accepted.

    :ivar mail_from: The envelope sender (``MAIL FROM``).
    :ivar rcpt_tos: The envelope recipients (``RCPT TO``).
    :ivar message: The parsed message.
    :ivar login: The user name the client logged in with, if it did.
    :ivar tls: Whether the session was encrypted when the message was sent.
    """

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None
    tls: bool

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, content_type: str) -> str | None:
        """The decoded body of the first ``content_type`` part (``text/plain``, ``text/html``)."""
        for part in self.message.walk():
            if part.get_content_type() == content_type and not part.is_multipart():
                return t.cast("EmailMessage", part).get_content()
        return None


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: t.Any, session: t.Any, envelope: t.Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        received = Received(
            envelope.mail_from,
            list(envelope.rcpt_tos),
            t.cast("EmailMessage", message),
            login,
            # The transport of an implicit TLS session is TLS from the start (aiosmtpd
            # sets session.ssl only on STARTTLS).
            session.ssl is not None or smtp.transport.get_extra_info("ssl_object") is not None,
        )
        with self.server.condition:
            self.server.messages.append(received)
            self.server.condition.notify_all()
        return "250 Message accepted for delivery"


# aiosmtpd logs on "mail.log", and warns there itself at every AUTH (it sets its own
# deprecated Session.login_data). That is the test server talking, not the app: with
# flaskstack's handler on the root logger it would land in the output the tests read.
logging.getLogger("mail.log").setLevel(logging.ERROR)


class SMTPServer:
    """aiosmtpd on 127.0.0.1 in a thread; what it receives is in :attr:`messages`.

    :param tls: ``"starttls"`` (offered, and required before AUTH),
        ``"implicit"`` (TLS from the first byte) or ``None``.
    :param certificate: The server's certificate, for either kind of TLS.
    :param users: Accepted logins (user name → password); with users, AUTH is
        offered (and required before ``MAIL FROM`` after STARTTLS).
    """

    def __init__(
        self,
        *,
        tls: Tls | None = None,
        certificate: Certificate | None = None,
        users: t.Mapping[str, str] | None = None,
    ) -> None:
        if tls is not None and certificate is None:
            raise ValueError("TLS needs a certificate (make_certificate)")
        self.tls = tls
        self.users = dict(users or {})
        self.messages: list[Received] = []
        self.condition = threading.Condition()
        self.host = HOST
        self.port = free_port()
        kwargs: dict[str, t.Any] = {}
        if tls == "starttls":
            assert certificate is not None
            kwargs.update(tls_context=certificate.server_context(), require_starttls=True)
        elif tls == "implicit":
            assert certificate is not None
            kwargs["ssl_context"] = certificate.server_context()
        if self.users:
            # AUTH is required after STARTTLS. aiosmtpd cannot tell that an implicit TLS
            # session is encrypted, and plain SMTP tests log in without TLS on purpose:
            # there AUTH is offered (a wrong password is refused) but not required.
            starttls = tls == "starttls"
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=starttls,
                auth_require_tls=starttls,
            )
        self.controller = Controller(
            _Handler(self), hostname=HOST, port=self.port, server_hostname="localhost", **kwargs
        )

    def _authenticate(
        self, server: t.Any, session: t.Any, envelope: t.Any, mechanism: str, auth_data: t.Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode()
            if self.users.get(user) == auth_data.password.decode():
                return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)

    def url(self, *, user: str | None = None, password: str | None = None) -> str:
        """The ``MAIL_URL`` of this server (``smtp://``, ``?starttls=1``, or ``smtps://``)."""
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        credentials = ""
        if user is not None:
            credentials = quote(user, safe="")
            if password is not None:
                credentials += ":" + quote(password, safe="")
            credentials += "@"
        query = "?starttls=1" if self.tls == "starttls" else ""
        return f"{scheme}://{credentials}{self.host}:{self.port}{query}"

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """The messages received, once there are at least ``count`` (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"the SMTP server received {len(self.messages)} message(s) in "
                        f"{timeout:g}s, expected {count}"
                    )
                self.condition.wait(left)
            return list(self.messages)

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _HoldingServer:
    """Accepts connections on a free port and holds each open; ``serve`` says what it sends."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind((HOST, 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def url(self) -> str:
        return f"smtp://{HOST}:{self.port}"

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(connection)
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection: socket.socket) -> None:
        """Say nothing."""

    def __enter__(self) -> _HoldingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)
        for connection in self.connections:
            connection.close()
        self.listener.close()


class SilentServer(_HoldingServer):
    """Accepts every connection and never sends a byte (a blackholed SMTP server)."""


class TricklingServer(_HoldingServer):
    """Answers one byte of a greeting that never ends, every ``interval`` seconds."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__()
        self.interval = interval

    def serve(self, connection: socket.socket) -> None:
        while not self.stopped.is_set():
            try:
                connection.sendall(b"2")
            except OSError:
                return
            time.sleep(self.interval)
