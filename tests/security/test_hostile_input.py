"""Hostile input, generated with Hypothesis, against the stack under gunicorn.

Malformed and oversize JSON, forms and multipart bodies, bytes that are not
UTF-8, huge and repeated headers, malformed, forged and oversize cookies,
path traversal, and SQL-looking strings in every text field. The rules:
never a 5xx, and a rejected request writes nothing.

Every example goes to the real server; ``$FLASKSTACK_HYPOTHESIS_EXAMPLES``
(default 30) bounds the examples per test, and there is no deadline (the
machine is shared and slow).
"""

from __future__ import annotations

import json
import os
import typing as t
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability import app_endpoints
from reliability.browser import raw_exchange
from reliability.figures import FIGURES

if t.TYPE_CHECKING:
    from reliability.browser import Browser, Reply
    from reliability.stackfixtures import Stack

EXAMPLES = int(os.environ.get("FLASKSTACK_HYPOTHESIS_EXAMPLES") or 30)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SQL_STRINGS = (
    "' OR '1'='1",
    "' OR 1=1 --",
    "admin'--",
    "'; DROP TABLE users; --",
    '" OR ""="',
    "1; SELECT pg_sleep(10)",
    "' UNION SELECT email, password_hash FROM users --",
    "%' AND 1=0 UNION SELECT NULL--",
    "\\'; COPY users TO '/tmp/x'; --",
    "$$; DROP TABLE users; $$",
    "' || (SELECT version()) || '",
    "1e308",
    "-1",
    "NULL",
    "a\x00b@example.test",
    "\x00",
    "' OR 1=1 /*",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "<script>alert(1)</script>",
)
FORM_FIELDS = ("email", "password", "confirm", "remember", "next", "csrf_token")
POST_TARGETS = ("/auth/login", "/auth/register", "/auth/logout", app_endpoints.SESSION)

texts = st.one_of(
    st.text(max_size=400),
    st.sampled_from(SQL_STRINGS),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50).map(lambda s: s + "@example.test"),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(FORM_FIELDS) | st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=20,
)


def _tried(reply: Reply | None) -> None:
    FIGURES.add("hostile_inputs_tried")
    if reply is not None and 400 <= reply.status < 500:
        FIGURES.add("hostile_inputs_refused_4xx")


def _assert_clean(reply: Reply | None, what: object) -> None:
    """Never a 5xx; no traceback or driver error in what the client sees."""
    _tried(reply)
    if reply is None:  # the server closed the connection: gunicorn's answer to garbage
        return
    assert reply.status < 500, (what, reply.status, reply.text[:500])
    assert "Traceback" not in reply.text
    assert "psycopg" not in reply.text
    assert "sqlalchemy" not in reply.text.lower()


class Writes:
    """Checks that a request that was not accepted wrote no row."""

    def __init__(self, stack: Stack) -> None:
        self.url = stack.database_url
        self.rows = app_endpoints.row_count(self.url)

    def check(self, reply: Reply | None, accepted: tuple[int, ...] = (302,)) -> None:
        """Only an accepted request may add rows: a form's redirect, an API's 2xx."""
        rows = app_endpoints.row_count(self.url)
        if reply is None or reply.status not in accepted:
            assert rows == self.rows, "a refused request wrote a row"
        self.rows = rows


@pytest.fixture(scope="module")
def fuzzer(fuzz_stack: Stack) -> Browser:
    return fuzz_stack.browser(client_address="198.18.0.1")


@given(target=st.sampled_from(POST_TARGETS), value=json_values, valid_token=st.booleans())
@FUZZ
def test_json_bodies(
    fuzz_stack: Stack, fuzzer: Browser, target: str, value: object, valid_token: bool
) -> None:
    writes = Writes(fuzz_stack)
    headers = {"Accept": "application/json"}
    if valid_token:
        headers["X-CSRFToken"] = fuzzer.csrf_token()
    reply = fuzzer.post(target, json=value, headers=headers)
    _assert_clean(reply, value)
    writes.check(reply)


@given(target=st.sampled_from(POST_TARGETS), body=st.binary(max_size=3000))
@FUZZ
def test_malformed_json_bodies(
    fuzz_stack: Stack, fuzzer: Browser, target: str, body: bytes
) -> None:
    writes = Writes(fuzz_stack)
    token = fuzzer.csrf_token()
    reply = fuzzer.post(
        target,
        body=b'{"email": ' + body,
        headers={"Content-Type": "application/json", "X-CSRFToken": token},
    )
    _assert_clean(reply, body)
    assert reply.status in (200, 302, 400, 415), reply.status
    writes.check(reply)


@given(
    target=st.sampled_from(POST_TARGETS),
    fields=st.dictionaries(st.sampled_from(FORM_FIELDS) | st.text(max_size=20), texts, max_size=6),
)
@FUZZ
def test_form_fields(
    fuzz_stack: Stack, fuzzer: Browser, target: str, fields: dict[str, str]
) -> None:
    writes = Writes(fuzz_stack)
    form = {"csrf_token": fuzzer.csrf_token(), **fields}
    reply = fuzzer.post(target, form=form)
    _assert_clean(reply, fields)
    writes.check(reply)


@pytest.mark.parametrize("payload", SQL_STRINGS)
@pytest.mark.parametrize("field", ["email", "password", "confirm", "next"])
def test_sql_looking_strings_in_every_field(
    fuzz_stack: Stack, fuzzer: Browser, field: str, payload: str
) -> None:
    writes = Writes(fuzz_stack)
    for target in ("/auth/login", "/auth/register"):
        form = {
            "email": app_endpoints.write_key(),
            "password": app_endpoints.PASSWORD,
            "confirm": app_endpoints.PASSWORD,
            "csrf_token": fuzzer.csrf_token(),
            field: payload,
        }
        reply = fuzzer.post(target, form=form)
        _assert_clean(reply, (target, field, payload))
        writes.check(reply)
    reply = fuzzer.get("/notes?" + urllib.parse.urlencode({"q": payload, "page": payload}))
    _assert_clean(reply, payload)


@given(
    target=st.sampled_from(POST_TARGETS),
    raw=st.binary(max_size=600),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=latin-1",
            "application/x-www-form-urlencoded; charset=utf-16",
            "text/plain",
            "application/xml",
            "",
        ]
    ),
)
@FUZZ
def test_form_bytes_that_are_not_utf8(
    fuzz_stack: Stack, fuzzer: Browser, target: str, raw: bytes, content_type: str
) -> None:
    writes = Writes(fuzz_stack)
    token = fuzzer.csrf_token()
    body = b"csrf_token=" + token.encode() + b"&email=" + raw + b"&password=" + raw[::-1]
    headers = {"Content-Type": content_type} if content_type else {}
    reply = fuzzer.post(target, body=body, headers=headers)
    _assert_clean(reply, raw)
    writes.check(reply)


def _multipart(parts: list[tuple[bytes, bytes, bytes]], boundary: bytes) -> bytes:
    body = b""
    for name, filename, content in parts:
        disposition = b'form-data; name="' + name + b'"'
        if filename:
            disposition += b'; filename="' + filename + b'"'
        body += b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n"
        body += content + b"\r\n"
    return body + b"--" + boundary + b"--\r\n"


@given(
    target=st.sampled_from(POST_TARGETS),
    parts=st.lists(
        st.tuples(
            st.sampled_from([b"email", b"password", b"csrf_token", b"file"])
            | st.binary(max_size=20),
            st.binary(max_size=40),
            st.binary(max_size=500),
        ),
        max_size=5,
    ),
    boundary=st.sampled_from([b"b0undary", b"", b"x" * 200, b"\xff\xfe"]) | st.binary(max_size=30),
    declared=st.sampled_from(["same", "other", "missing"]),
    truncate=st.integers(min_value=0, max_value=400),
)
@FUZZ
def test_multipart_bodies(
    fuzz_stack: Stack,
    fuzzer: Browser,
    target: str,
    parts: list[tuple[bytes, bytes, bytes]],
    boundary: bytes,
    declared: str,
    truncate: int,
) -> None:
    writes = Writes(fuzz_stack)
    token = fuzzer.csrf_token()
    body = _multipart([(b"csrf_token", b"", token.encode()), *parts], boundary)
    body = body[: len(body) - truncate] if truncate < len(body) else body
    announced = {"same": boundary, "other": b"something-else", "missing": None}[declared]
    content_type = b"multipart/form-data"
    if announced is not None:
        content_type += b"; boundary=" + announced.replace(b"\r", b"").replace(b"\n", b"")
    reply = fuzzer.post(target, body=body, headers=[("Content-Type", content_type)])
    _assert_clean(reply, (parts, boundary))
    writes.check(reply)


header_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
    min_size=1,
    max_size=40,
)
header_values = st.binary(max_size=300).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")
)


@given(
    path=st.sampled_from(["/healthz", app_endpoints.DB_READ, app_endpoints.SESSION, "/auth/login"]),
    headers=st.lists(st.tuples(header_names, header_values), max_size=30),
    repeat=st.sampled_from(["Cookie", "Host", "Content-Length", "X-Forwarded-For", "Accept", ""]),
    times=st.integers(min_value=2, max_value=150),
)
@FUZZ
def test_headers(
    fuzz_stack: Stack,
    fuzzer: Browser,
    path: str,
    headers: list[tuple[str, bytes]],
    repeat: str,
    times: int,
) -> None:
    sent: list[tuple[str, str | bytes]] = list(headers)
    if repeat:
        sent += [(repeat, b"1")] * times
    try:
        reply: Reply | None = fuzzer.get(path, headers=sent)
    except OSError:
        reply = None  # closed without an answer: refused before any app code ran
    _assert_clean(reply, (headers, repeat, times))


@pytest.mark.parametrize("size", [8190, 8191, 20_000, 70_000])
def test_huge_header_values(fuzz_stack: Stack, fuzzer: Browser, size: int) -> None:
    for name in ("X-Big", "Cookie", "Authorization", "Accept-Language"):
        try:
            reply: Reply | None = fuzzer.get(app_endpoints.SESSION, headers={name: "a" * size})
        except OSError:
            reply = None
        _assert_clean(reply, (name, size))
        if reply is not None and size > 8190:
            assert 400 <= reply.status < 500


cookie_values = st.one_of(
    st.binary(max_size=5000).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.text(max_size=300).map(lambda s: s.encode("utf-8")),
    st.builds(
        lambda sid, sig: (sid + "." + sig).encode(),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", max_size=60),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", max_size=40),
    ),
)


@given(
    value=cookie_values,
    name=st.sampled_from([b"session", b"remember_token", b"session; session", b""]),
    path=st.sampled_from([app_endpoints.SESSION, "/csrf-token", "/_probe/whoami"]),
)
@FUZZ
def test_cookies(fuzz_stack: Stack, value: bytes, name: bytes, path: str) -> None:
    browser = fuzz_stack.browser(client_address="198.18.0.2")
    cookie = (name + b"=" + value) if name else value
    cookie = cookie.replace(b"\r", b"").replace(b"\n", b"")  # what any client refuses to send
    try:
        reply: Reply | None = browser.get(
            path, headers=[("Cookie", cookie), ("Accept", "application/json")]
        )
    except OSError:
        reply = None
    _assert_clean(reply, cookie)
    if reply is not None and path == app_endpoints.SESSION and reply.status == 200:
        assert reply.json()["user"] is None  # a forged cookie never signs anyone in


TRAVERSALS = (
    "../../../../etc/passwd",
    "..%2f..%2f..%2f..%2fetc%2fpasswd",
    "..%252f..%252f..%252fetc%252fpasswd",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "....//....//....//etc/passwd",
    "..\\..\\..\\etc\\passwd",
    "..%5c..%5c..%5cetc%5cpasswd",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "//etc/passwd",
    "..%00/etc/passwd",
    "%00../../etc/passwd",
    "..%c0%af..%c0%afetc%c0%afpasswd",
    "..%ef%bc%8f..%ef%bc%8fetc%ef%bc%8fpasswd",
    "../../../../proc/self/environ",
    "../../flaskstack/config.py",
    "../__init__.py",
    "..;/..;/etc/passwd",
    "~/.ssh/id_rsa",
)


@pytest.mark.parametrize("payload", TRAVERSALS)
@pytest.mark.parametrize("prefix", ["/static/", "/flaskstack_auth/static/", "/"])
def test_path_traversal(fuzz_stack: Stack, fuzzer: Browser, prefix: str, payload: str) -> None:
    reply = raw_exchange(
        fuzz_stack.server.address,
        f"GET {prefix}{payload} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(
            "latin-1"
        ),
    )
    _assert_clean(reply, payload)
    assert reply is not None
    if reply.status == 308:  # doubled slashes merged: a path on this site, tried next
        target = urllib.parse.urlsplit(
            urllib.parse.urljoin("http://127.0.0.1/", reply.header("Location") or "")
        )
        assert target.netloc == "127.0.0.1", target
        location = target.path
        reply = raw_exchange(
            fuzz_stack.server.address,
            f"GET {location} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(
                "latin-1"
            ),
        )
        _assert_clean(reply, location)
        assert reply is not None
    assert reply.status in (400, 404), (payload, reply.status)
    assert b"root:" not in reply.body
    assert b"SECRET_KEY" not in reply.body
    assert b"import" not in reply.body


@given(
    path=st.binary(min_size=1, max_size=200).map(
        lambda b: b.replace(b" ", b"").replace(b"\r", b"").replace(b"\n", b"")
    ),
    query=st.binary(max_size=200),
)
@FUZZ
def test_request_lines_with_raw_bytes(fuzz_stack: Stack, path: bytes, query: bytes) -> None:
    encoded_query = urllib.parse.quote_from_bytes(query, safe="=&%").encode()
    line = b"GET /" + path + b"?" + encoded_query + b" HTTP/1.1\r\n"
    reply = raw_exchange(
        fuzz_stack.server.address,
        line + b"Host: 127.0.0.1\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
    )
    _assert_clean(reply, line)


@given(
    query=st.binary(max_size=300), target=st.sampled_from(["/notes", "/auth/login", "/csrf-token"])
)
@FUZZ
def test_query_strings(fuzz_stack: Stack, fuzzer: Browser, query: bytes, target: str) -> None:
    encoded = urllib.parse.quote_from_bytes(query, safe="=&")
    for name in ("next", "page", "seconds", "q"):
        reply = fuzzer.get(f"{target}?{name}={encoded}&{encoded}")
        _assert_clean(reply, query)


@pytest.mark.parametrize(
    ("content_type", "size"),
    [("application/json", 16 * 1024 * 1024 + 1), ("application/x-www-form-urlencoded", 10**9)],
)
def test_oversize_bodies_are_refused_before_reading(
    fuzz_stack: Stack, fuzzer: Browser, content_type: str, size: int
) -> None:
    writes = Writes(fuzz_stack)
    token = fuzzer.csrf_token()
    for target in POST_TARGETS:
        reply = fuzzer.announce(
            "POST", target, size, headers={"Content-Type": content_type, "X-CSRFToken": token}
        )
        assert reply is not None
        _assert_clean(reply, (target, size))
        assert reply.status == 413
        writes.check(reply)


def test_deeply_nested_json(fuzz_stack: Stack, fuzzer: Browser) -> None:
    writes = Writes(fuzz_stack)
    token = fuzzer.csrf_token()
    for depth in (100, 10_000, 100_000):
        body = ("[" * depth + "]" * depth).encode()
        for target in POST_TARGETS:
            reply = fuzzer.post(
                target,
                body=body,
                headers={"Content-Type": "application/json", "X-CSRFToken": token},
            )
            _assert_clean(reply, (target, depth))
            writes.check(reply)


@pytest.fixture(scope="module")
def api_writer(fuzz_stack: Stack) -> app_endpoints.Writer:
    return app_endpoints.Writer(fuzz_stack.browser(client_address="198.18.0.3"))


@given(
    operation=st.sampled_from(app_endpoints.API_WRITES),
    body=st.one_of(
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=2000),
        st.text(max_size=500).map(lambda s: s.encode("utf-16")),
        st.just(b'{"user": {"email": "a@b.c", "password": "x\xff\xfe"}}'),
        st.just(b'{"article": {"title": "\\u0000", "description": "d", "body": "b"}}'),
    ),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=latin-1", "text/plain", "", "*/*"]
    ),
    with_token=st.booleans(),
)
@FUZZ
def test_api_bodies(
    fuzz_stack: Stack,
    api_writer: app_endpoints.Writer,
    operation: tuple[str, str, bool],
    body: bytes,
    content_type: str,
    with_token: bool,
) -> None:
    """Under the API prefix a refusal is a precise 4xx problem document that wrote nothing."""
    method, path, _ = operation
    writes = Writes(fuzz_stack)
    headers = {
        "Accept": "application/json",
        **({"Content-Type": content_type} if content_type else {}),
    }
    if with_token:
        headers["Authorization"] = f"Token {api_writer.token}"
    reply = api_writer.browser.request(method, path, body=body, headers=headers)
    _assert_clean(reply, (method, path, body[:100]))
    if reply.status >= 400:
        assert reply.content_type == "application/problem+json", (reply.status, reply.text[:200])
        assert reply.json()["status"] == reply.status
    writes.check(reply, accepted=(200, 201))


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "POST",
            "/api/users",
            {"user": {"username": "n\x00", "email": "n@x.io", "password": "p" * 12}},
        ),
        ("POST", "/api/users/login", {"user": {"email": "a\x00@x.io", "password": "p" * 12}}),
        ("POST", "/api/articles", {"article": {"title": "t\x00", "description": "d", "body": "b"}}),
        ("POST", "/api/articles", {"article": {"title": "t", "description": "d", "body": "\x00"}}),
        ("PUT", "/api/user", {"user": {"bio": "\x00"}}),
    ],
)
def test_nul_characters_in_api_text_fields(
    fuzz_stack: Stack,
    api_writer: app_endpoints.Writer,
    method: str,
    path: str,
    body: dict[str, t.Any],
) -> None:
    """PostgreSQL cannot store U+0000 in text: the API must refuse it as invalid input."""
    writes = Writes(fuzz_stack)
    reply = api_writer.browser.request(method, path, json=body, headers=api_writer.auth)
    _assert_clean(reply, body)
    assert reply.status in (400, 401, 422), (reply.status, reply.text[:300])
    assert reply.content_type == "application/problem+json"
    writes.check(reply, accepted=())
