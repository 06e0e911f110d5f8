"""HTTP clients for the running stack, and a small bounded load driver.

:class:`Browser` talks to an :class:`~reliability.stackrun.AppServer` over a
new loopback connection per request (gunicorn's sync workers close every
connection anyway), keeps cookies like a browser behind the TLS-terminating
proxy the app is told about (``X-Forwarded-Proto: https``, a client address
in ``X-Forwarded-For``, a same-origin ``Referer`` on unsafe requests), and
sends headers as bytes, so a test can send what no well-behaved client
would. :func:`raw_exchange` sends bytes that are not even a valid request.

:class:`Load` runs a scenario on several threads for a bounded time and
records every request (status, latency, connection errors) in :class:`Stats`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import http.client
import http.cookies
import json as jsonlib
import socket
import threading
import time
import typing as t
import urllib.parse

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = ["Browser", "Load", "Reply", "Stats", "raw_exchange"]

#: Seconds a client waits for a response before it counts the request as failed.
REQUEST_TIMEOUT = 15.0
HeaderItems = t.Union["Mapping[str, str | bytes]", "Iterable[tuple[str, str | bytes]]"]


@dataclasses.dataclass
class Reply:
    """One response, fully read."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    elapsed: float

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        """Every value of header ``name``."""
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    @property
    def content_type(self) -> str:
        """The media type, without parameters, lower-cased ('' if none)."""
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def json(self) -> t.Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.body)

    def cookies(self) -> dict[str, http.cookies.Morsel[str]]:
        """The cookies this response sets (or deletes), by name."""
        jar: dict[str, http.cookies.Morsel[str]] = {}
        for value in self.all("Set-Cookie"):
            parsed: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            parsed.load(value)
            jar.update(parsed)
        return jar

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.content_type or '-'} {len(self.body)} bytes>"


def _is_deletion(morsel: http.cookies.Morsel[str]) -> bool:
    if morsel["max-age"] not in ("", None):
        try:
            return int(morsel["max-age"]) <= 0
        except ValueError:
            return False
    expires = morsel["expires"]
    return bool(expires) and "1970" in expires


class Stats:
    """Every request a :class:`Browser` made: status (or error), latency, label, time.

    Thread-safe. ``status`` is ``None`` when no response came (the error's
    class name is recorded instead).
    """

    @dataclasses.dataclass(frozen=True)
    class Entry:
        started: float
        elapsed: float
        label: str
        status: int | None
        error: str | None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[Stats.Entry] = []

    def record(
        self, label: str, started: float, elapsed: float, status: int | None, error: str | None
    ) -> None:
        """Add one request."""
        with self._lock:
            self.entries.append(Stats.Entry(started, elapsed, label, status, error))

    def between(self, start: float, end: float) -> list[Stats.Entry]:
        """Requests that started in ``[start, end)`` (``time.monotonic`` values)."""
        with self._lock:
            return [e for e in self.entries if start <= e.started < end]

    @property
    def total(self) -> int:
        """The number of requests made."""
        return len(self.entries)

    def statuses(self, entries: Iterable[Stats.Entry] | None = None) -> collections.Counter[str]:
        """How many requests got each status (``"error:<Class>"`` for no response)."""
        chosen = self.entries if entries is None else entries
        return collections.Counter(
            str(e.status) if e.status is not None else f"error:{e.error}" for e in chosen
        )

    def by_label(self) -> dict[str, collections.Counter[str]]:
        """:meth:`statuses` per label."""
        grouped: dict[str, list[Stats.Entry]] = collections.defaultdict(list)
        for entry in self.entries:
            grouped[entry.label].append(entry)
        return {label: self.statuses(items) for label, items in sorted(grouped.items())}

    def slowest(self) -> Stats.Entry | None:
        """The request that took longest."""
        return max(self.entries, key=lambda e: e.elapsed, default=None)

    def percentile(self, fraction: float) -> float:
        """The latency below which ``fraction`` of the requests finished (seconds)."""
        times = sorted(e.elapsed for e in self.entries)
        if not times:
            return 0.0
        return times[min(len(times) - 1, int(fraction * len(times)))]

    def summary(self) -> dict[str, t.Any]:
        """Counts and latencies, JSON-ready."""
        slowest = self.slowest()
        return {
            "requests": self.total,
            "statuses": dict(sorted(self.statuses().items())),
            "by_label": {k: dict(sorted(v.items())) for k, v in self.by_label().items()},
            "p50_ms": round(self.percentile(0.50) * 1000, 1),
            "p99_ms": round(self.percentile(0.99) * 1000, 1),
            "max_ms": round(slowest.elapsed * 1000, 1) if slowest else 0.0,
        }


class Browser:
    """A cookie-keeping HTTP client for one :class:`~reliability.stackrun.AppServer`.

    :param address: ``(host, port)`` of the server (``AppServer.address``).
    :param https: Pretend the request came through the TLS-terminating proxy
        (``X-Forwarded-Proto: https``). Cookies marked ``Secure`` are sent
        either way: the proxy, not this client, talks TLS to the browser.
    :param client_address: The address the proxy reports in ``X-Forwarded-For``.
    :param stats: Where to record every request, if anywhere.
    """

    def __init__(
        self,
        address: tuple[str, int],
        *,
        https: bool = True,
        client_address: str = "198.51.100.10",
        stats: Stats | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.host, self.port = address
        self.https = https
        self.client_address = client_address
        self.stats = stats
        self.timeout = timeout
        self.cookies: dict[str, str] = {}

    @property
    def origin(self) -> str:
        """What a browser would send as ``Origin`` for this site."""
        scheme = "https" if self.https else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def use(self, address: tuple[str, int]) -> Browser:
        """A browser for another server that shares this one's cookies (same site)."""
        other = Browser(
            address,
            https=self.https,
            client_address=self.client_address,
            stats=self.stats,
            timeout=self.timeout,
        )
        other.cookies = self.cookies
        return other

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        form: Mapping[str, str] | None = None,
        json: t.Any = None,
        headers: HeaderItems | None = None,
        send_cookies: bool = True,
        referer: bool = True,
        label: str | None = None,
    ) -> Reply:
        """Send one request; keep the cookies the response sets.

        :param body: Raw body bytes (give ``Content-Type`` in ``headers``).
        :param form: Fields to send URL-encoded.
        :param json: A value to send as ``application/json``.
        :param headers: Extra headers, values as ``str`` or raw ``bytes``;
            they are sent after the defaults, so a name given here repeats it.
        :param send_cookies: Send the kept cookies.
        :param referer: Send a same-origin ``Referer`` on unsafe methods, as
            browsers do (the CSRF check requires it over HTTPS).
        :param label: How :attr:`stats` groups this request (default: the path).
        :raises OSError: when no response arrives (refused, reset, timed out).
        """
        sent: list[tuple[str, str | bytes]] = [
            ("Host", f"{self.host}:{self.port}"),
            ("X-Forwarded-For", self.client_address),
            ("X-Forwarded-Proto", "https" if self.https else "http"),
        ]
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent.append(("Content-Type", "application/x-www-form-urlencoded"))
        elif json is not None:
            body = jsonlib.dumps(json).encode()
            sent.append(("Content-Type", "application/json"))
        if referer and method.upper() not in ("GET", "HEAD", "OPTIONS"):
            sent.append(("Referer", self.origin + "/"))
        if send_cookies and self.cookies:
            sent.append(("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())))
        extra = headers.items() if hasattr(headers, "items") else headers or ()
        sent.extend(t.cast("Iterable[tuple[str, str | bytes]]", extra))
        if body is not None:
            sent.append(("Content-Length", str(len(body))))

        started = time.monotonic()
        try:
            reply = self._exchange(method, path, sent, body)
        except OSError as exc:
            if self.stats is not None:
                elapsed = time.monotonic() - started
                self.stats.record(label or path, started, elapsed, None, type(exc).__name__)
            raise
        if self.stats is not None:
            self.stats.record(label or path, started, reply.elapsed, reply.status, None)
        for name, morsel in reply.cookies().items():
            if _is_deletion(morsel):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value
        return reply

    def _exchange(
        self, method: str, path: str, headers: list[tuple[str, str | bytes]], body: bytes | None
    ) -> Reply:
        started = time.monotonic()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            connection.endheaders(body)
            response = connection.getresponse()
            data = response.read()
            return Reply(response.status, response.getheaders(), data, time.monotonic() - started)
        finally:
            connection.close()

    def announce(
        self,
        method: str,
        path: str,
        length: int,
        *,
        headers: HeaderItems | None = None,
        send: int = 65536,
    ) -> Reply | None:
        """Announce a ``length``-byte body, send only its first ``send`` bytes, read the answer.

        How a client uploading something too large meets a server that refuses
        it from the ``Content-Length`` alone, without the test pushing the whole
        body through a socket the server has stopped reading.
        """
        sent: list[tuple[str, str | bytes]] = [
            ("Host", f"{self.host}:{self.port}"),
            ("X-Forwarded-For", self.client_address),
            ("X-Forwarded-Proto", "https" if self.https else "http"),
            ("Referer", self.origin + "/"),
            ("Content-Length", str(length)),
        ]
        if self.cookies:
            sent.append(("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())))
        extra = headers.items() if hasattr(headers, "items") else headers or ()
        sent.extend(t.cast("Iterable[tuple[str, str | bytes]]", extra))
        head = f"{method} {path} HTTP/1.1\r\n".encode()
        for name, value in sent:
            raw = value if isinstance(value, bytes) else value.encode("latin-1")
            head += name.encode("latin-1") + b": " + raw + b"\r\n"
        return raw_exchange((self.host, self.port), head + b"\r\n", body=b"x" * send)

    def get(self, path: str, **options: t.Any) -> Reply:
        """``request("GET", path, ...)``."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: t.Any) -> Reply:
        """``request("POST", path, ...)``."""
        return self.request("POST", path, **options)

    def csrf_token(self) -> str:
        """A CSRF token bound to this browser's session (``GET /csrf-token``)."""
        reply = self.get("/csrf-token", headers={"Accept": "application/json"}, label="csrf")
        if reply.status != 200:
            raise AssertionError(f"GET /csrf-token answered {reply.status}: {reply.text[:300]}")
        return t.cast("str", reply.json()["csrf_token"])


def raw_exchange(
    address: tuple[str, int], data: bytes, timeout: float = 10.0, body: bytes = b""
) -> Reply | None:
    """Send ``data`` as is and read one response; ``None`` if the server just closed.

    For requests no HTTP library will build: invalid request lines, bytes
    that are not UTF-8 in the path or headers, broken framing. ``body`` is
    sent after ``data`` as far as the server keeps reading it.
    """
    started = time.monotonic()
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        if body:
            # The server may answer early and stop reading: then read its answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(body)
        try:
            with sock.makefile("rb") as stream:
                if not stream.peek(1):
                    return None
                response = http.client.HTTPResponse(_Stream(stream))  # type: ignore[arg-type]
                response.begin()
                content = response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None
        return Reply(response.status, response.getheaders(), content, time.monotonic() - started)


class _Stream:
    """What :class:`http.client.HTTPResponse` needs from a socket: ``makefile``."""

    def __init__(self, stream: t.Any) -> None:
        self._stream = stream

    def makefile(self, mode: str) -> t.Any:
        return self._stream


class Load:
    """Run ``step`` on ``concurrency`` threads until stopped or ``duration`` is up.

    Each thread gets its own browser from ``make_browser(index)`` (recording
    into :attr:`stats`) and calls ``step(browser, index)`` in a loop. A step
    that raises counts as an ``error:<Class>`` request and the loop goes on,
    so one bad response never stops the load. Use it as a context manager to
    inject faults while it runs::

        with Load(make_browser, step, concurrency=4, duration=30) as load:
            time.sleep(2)
            redis.stop()
        assert not load.stats.server_errors()

    Leaving the block stops the threads (each finishes its request, which is
    bounded by the client timeout) and waits for them.
    """

    def __init__(
        self,
        make_browser: Callable[[int, Stats], Browser],
        step: Callable[[Browser, int], None],
        *,
        concurrency: int,
        duration: float,
    ) -> None:
        self.stats = Stats()
        self.step = step
        self.make_browser = make_browser
        self.concurrency = concurrency
        self.duration = duration
        self.failures: collections.Counter[str] = collections.Counter()
        self.failure_examples: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.started = 0.0
        self.finished = 0.0

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        self._deadline = self.started + self.duration
        for index in range(self.concurrency):
            thread = threading.Thread(
                target=self._run, args=(index,), name=f"load-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until the duration is up, then stop."""
        remaining = self._deadline - time.monotonic()
        if remaining > 0:
            self._stop.wait(remaining)
        self.stop()

    def stop(self) -> None:
        """Stop the threads and wait for them (bounded)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT * 2 + 5)
            if thread.is_alive():
                raise RuntimeError(f"load thread {thread.name} did not stop")
        if not self.finished:
            self.finished = time.monotonic()

    def _run(self, index: int) -> None:
        browser = self.make_browser(index, self.stats)
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                self.step(browser, index)
            except OSError:
                time.sleep(0.01)  # recorded by the browser; don't spin on a dead port
            except Exception as exc:  # a scenario check failed: count it, keep going
                with self._lock:
                    self.failures[type(exc).__name__] += 1
                    if len(self.failure_examples) < 10:
                        self.failure_examples.append(f"{type(exc).__name__}: {exc}")
