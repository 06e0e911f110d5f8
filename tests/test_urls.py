"""Safe redirect targets: open-redirect payloads are refused, paths on this site are not."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask, redirect

from flaskstack.health import public
from flaskstack.urls import is_safe_redirect, safe_next

if t.TYPE_CHECKING:
    from conftest import AppFactory
    from werkzeug.wrappers import Response

# Open-redirect payloads in the style of the OWASP cheat sheet and
# PayloadsAllTheThings, written for this test: each one, followed blindly,
# sends the browser (or a layer that decodes or normalises it once more)
# to another origin, runs script, or injects a header.
ATTACKS: list[str] = [
    # other hosts, absolute and scheme-relative
    "https://evil.com",
    "http://evil.com/",
    "ftp://evil.com",
    "//evil.com",
    "///evil.com",
    "////evil.com",
    "//evil.com:80/",
    "//evil.com/%2F..",
    "//2130706433/",
    "//0x7f.1/",
    "https:///evil.com",
    # a scheme without (all) its slashes still leaves the site
    "http:evil.com",
    "https:evil.com",
    "https:/evil.com",
    # userinfo and fragment tricks that only look like this host
    "https://localhost@evil.com",
    "//localhost@evil.com",
    "https://evil.com#@localhost",
    "https://evil.com\\@localhost",
    "@evil.com",
    "evil.com",
    "evil.com/profile",
    # backslashes, which browsers read as slashes
    "/\\evil.com",
    "/\\/evil.com",
    "\\\\evil.com",
    "\\/evil.com",
    "/\\\\evil.com",
    # script and data schemes
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "javascript://%0Aalert(1)",
    "java\tscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    # percent-encoded slashes and backslashes, once, twice and more
    "/%2F%2Fevil.com",
    "/%2f%2fevil.com",
    "%2F%2Fevil.com",
    "/%2F/evil.com",
    "/%5Cevil.com",
    "/%5C%5Cevil.com",
    "/%5C/evil.com",
    "/%252F%252Fevil.com",
    "/%25252F%25252Fevil.com",
    "/%252525252F%252525252Fevil.com",
    "/%255Cevil.com",
    # whitespace and control characters, raw and encoded (browsers drop
    # tabs and newlines inside URLs and strip spaces around them)
    " /profile",
    "/profile ",
    " //evil.com",
    "\t//evil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "\x00//evil.com",
    "/\x00",
    "/\x7f",
    "/\x85/evil.com",
    "/%09/evil.com",
    "/%0a/evil.com",
    "/%0d%0a/evil.com",
    "/%00",
    "/profile\r\nSet-Cookie: stolen=1",
    "/profile%0d%0aSet-Cookie:%20stolen=1",
    "/profile?x=%0d%0aSet-Cookie:%20stolen=1",
    "/profile#%00",
    # dot segments that leave "//host" behind once resolved
    "/.//evil.com",
    "/..//evil.com",
    "/a/..//evil.com",
    "/%2e//evil.com",
    "/%2E%2E//evil.com",
    "/.%2e//evil.com",
    # Unicode look-alikes of "/" and "\", invisible and non-ASCII space characters
    "/\uff0fevil.com",
    "\uff0f\uff0fevil.com",
    "/\u2215evil.com",
    "/\u2044evil.com",
    "/\ufe68evil.com",
    "/\uff3cevil.com",
    "/%EF%BC%8Fevil.com",
    "/%E2%88%95evil.com",
    "/\u200b/evil.com",
    "/\u202e/moc.live",
    "/\ufeff/evil.com",
    "/\u00a0/evil.com",
    "/\u3000/evil.com",
    "/\u2028/evil.com",
    "//evil\u3002com",
]

# Not attacks, but not a path starting with "/" either: refused by design, so
# the rule stays simple (the default is used instead).
NOT_A_SITE_PATH: list[str] = [
    "",
    "profile",
    "./profile",
    "../profile",
    "?tab=2",
    "#top",
    "https://localhost/profile",
    "http://localhost/",
]

SAME_SITE: list[str] = [
    "/",
    "/profile",
    "/profile/",
    "/articles/a-b?x=1&y=2#frag",
    "/articles/42/edit",
    # the query string and fragment cannot change where the browser goes
    "/search?q=%2F%2F",
    "/search?q=//evil.com",
    "/search?q=https%3A%2F%2Fevil.com",
    "/search?q=a%20b&sort=-date",
    "/search?q=%5C",
    "/?next=//evil.com",
    "/profile#//evil.com",
    "/go?u=%252525252F%252525252Fevil.com",
    "/search?q=it\u2019s",
    # non-ASCII letters, raw or encoded, and other unusual but harmless paths
    "/caf%C3%A9",
    "/caf\u00e9",
    "/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82",
    "/files/report%202024.pdf",
    "/100%25",
    "/@alice",
    "/a/b/../c",
    "/./profile",
    "/a:b",
    "/~user/page",
    "/%FF",
    # paths on this site whose text looks like a URL: the browser requests
    # https://this-site/javascript:alert(1), never runs it
    "/javascript:alert(1)",
    "/http://evil.com",
]


def test_enough_distinct_payloads() -> None:
    assert len(set(ATTACKS)) == len(ATTACKS) >= 40


@pytest.mark.parametrize("target", ATTACKS)
def test_open_redirect_payload_is_refused(target: str) -> None:
    assert is_safe_redirect(target) is False


@pytest.mark.parametrize("target", NOT_A_SITE_PATH)
def test_anything_but_a_site_path_is_refused(target: str) -> None:
    assert is_safe_redirect(target) is False


def test_none_is_refused() -> None:
    assert is_safe_redirect(None) is False


@pytest.mark.parametrize("target", SAME_SITE)
def test_same_site_path_is_accepted(target: str) -> None:
    assert is_safe_redirect(target) is True


def add_login_view(app: Flask) -> Flask:
    @app.route("/login", methods=["GET", "POST"])
    @public
    def login() -> Response:
        return redirect(safe_next(default="/home"))

    @app.get("/elsewhere")
    @public
    def elsewhere() -> Response:
        return redirect(safe_next(default="/start", arg="return_to"))

    return app


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return add_login_view(make_app(profile="testing"))


def test_view_follows_a_same_site_next(app: Flask) -> None:
    client = app.test_client()
    for target in SAME_SITE:
        response = client.get("/login", query_string={"next": target})
        assert response.status_code == 302
        # Flask sends the location as an URI: non-ASCII characters encoded
        assert response.headers["Location"] == target.replace("\u00e9", "%C3%A9").replace(
            "\u2019", "%E2%80%99"
        )


def test_view_refuses_every_payload(app: Flask) -> None:
    client = app.test_client()
    for target in [*ATTACKS, *NOT_A_SITE_PATH]:
        response = client.get("/login", query_string={"next": target})
        assert response.status_code == 302
        assert response.headers["Location"] == "/home", target


def test_view_refuses_a_payload_in_the_form(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/login", data={"next": "//evil.com"}).headers["Location"] == "/home"
    assert client.post("/login", data={"next": "/profile"}).headers["Location"] == "/profile"


def test_query_argument_comes_before_the_form(app: Flask) -> None:
    response = app.test_client().post(
        "/login", query_string={"next": "/from-query"}, data={"next": "/from-form"}
    )
    assert response.headers["Location"] == "/from-query"


def test_view_without_next_uses_the_default(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/login").headers["Location"] == "/home"
    assert client.get("/login?next=").headers["Location"] == "/home"


def test_decoded_query_string_is_checked(app: Flask) -> None:
    # Werkzeug decodes the query string once; the check decodes what is left.
    client = app.test_client()
    assert client.get("/login?next=%2F%2Fevil.com").headers["Location"] == "/home"
    assert client.get("/login?next=/%252F%252Fevil.com").headers["Location"] == "/home"
    assert client.get("/login?next=%2Fprofile").headers["Location"] == "/profile"


def test_argument_name_and_default_are_chosen_by_the_view(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/elsewhere?next=/profile").headers["Location"] == "/start"
    assert client.get("/elsewhere?return_to=/profile").headers["Location"] == "/profile"
    assert client.get("/elsewhere?return_to=//evil.com").headers["Location"] == "/start"
