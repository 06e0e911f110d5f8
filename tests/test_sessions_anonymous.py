"""Visitors who are not signed in: their session lives in a signed cookie, not in Redis.

A crawler hitting the sign-in page, the registration page or ``GET
/csrf-token`` must not fill Redis. The session (the CSRF secret, flashed
messages, Flask-Login's bookkeeping) stays in a signed cookie until it holds
anything else or the visitor signs in; then it moves into Redis under a new
id. Redis is a test-owned server whose commands are counted
(``redis_server``); each test has a key namespace of its own on it.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import secrets
import typing as t
import uuid

import pytest
import sqlalchemy as sa
from flask import Flask, flash, get_flashed_messages, redirect, session
from flask.sessions import SecureCookieSessionInterface, session_json_serializer
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

import flaskstack
from flaskstack import db
from flaskstack.auth import current_user, logout_user
from flaskstack.forms import Form

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import AppFactory
    from flask.testing import FlaskClient
    from redis_servers import RedisServer
    from werkzeug.test import TestResponse
    from werkzeug.wrappers import Response

PASSWORD = "correct horse battery staple"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
MISSING = "The CSRF session token is missing."
BIG = secrets.token_urlsafe(3000)
KEY = "the-apps-secret-key-" + "k" * 30


def add_views(app: Flask) -> None:
    """Pages an app has besides flaskstack's: a form for anyone, a cart, who am I."""

    @app.post("/subscribe")
    def subscribe() -> Response:
        Form()  # the CSRF check already ran before the view
        flash("Thanks, you are subscribed.")
        return redirect("/thanks")

    @app.get("/thanks")
    def thanks() -> dict[str, t.Any]:
        return {"messages": get_flashed_messages()}

    @app.post("/shout")
    def shout() -> Response:
        flash(BIG)  # too big for a cookie, even compressed
        return redirect("/thanks")

    @app.post("/cart")
    def cart() -> str:
        session["cart"] = ["tea"]
        return "added"

    @app.get("/whoami")
    def whoami() -> dict[str, t.Any]:
        return {"user": current_user.email if current_user.is_authenticated else None}

    @app.post("/bye")
    def bye() -> Response:
        logout_user()
        flash("You are signed out.")
        return redirect("/thanks")


class Site(t.NamedTuple):
    app: Flask
    server: RedisServer
    namespace: str

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def keys(self) -> set[str]:
        """Every key of this app in Redis, sessions or not."""
        with self.server.client(decode_responses=True) as direct:
            return set(direct.scan_iter(match=f"{self.namespace}:*"))

    def session_keys(self) -> set[str]:
        return {key for key in self.keys() if key.startswith(f"{self.namespace}:session:")}

    def commands(self, request: Callable[[], t.Any]) -> dict[str, int]:
        """The Redis commands ``request()`` made."""
        self.server.reset_stats()
        request()
        return self.server.command_counts()


@pytest.fixture
def build(
    make_app: AppFactory, postgres_url: str, redis_server: RedisServer
) -> t.Iterator[Callable[..., Site]]:
    """``build(server=..., **config)``: a site with flaskstack's auth pages and one user."""
    made: list[Site] = []

    def factory(server: RedisServer = redis_server, **config: t.Any) -> Site:
        namespace = f"test-sessions-anonymous-{uuid.uuid4().hex[:12]}"
        settings = {
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "FLASKSTACK_REDIS_URL": server.url,
            "FLASKSTACK_NAMESPACE": namespace,
            "FLASKSTACK_PASSWORD_METHOD": "pbkdf2:sha256:1000",  # fast; hashing is not tested
            **config,
        }
        app = make_app(settings, profile="testing")
        add_views(app)
        with app.app_context():
            auth = flaskstack.get_state(app).auth
            model = auth.user_model
            assert model is not None
            # Only the auth tables of this app, not every model of the test process.
            db.metadata.create_all(bind=db.engine, tables=[m.__table__ for m in auth.models])
            if not db.session.execute(sa.select(model)).first():  # a second site, same database
                user = model(email="alice@example.com", active=True)
                user.set_password(PASSWORD)
                db.session.add(user)
                db.session.commit()
        made.append(Site(app, server, namespace))
        return made[-1]

    yield factory
    for site in made:
        if site.server.running:
            keys = site.keys()
            if keys:
                with site.server.client() as direct:
                    direct.delete(*keys)


@pytest.fixture
def site(build: Callable[..., Site]) -> Site:
    return build()


def csrf_from(response: TestResponse) -> str:
    assert response.status_code == 200, response.text
    found = CSRF_FIELD.search(response.text)
    assert found is not None, response.text
    return found.group(1)


def session_cookie(client: FlaskClient) -> str | None:
    found = client.get_cookie("session")
    return None if found is None else found.value


def set_session_cookies(response: TestResponse) -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]


def in_redis(cookie: str | None) -> bool:
    """Whether ``cookie`` is flaskstack's ``<id>.<signature>``: the data is in Redis."""
    return cookie is not None and not cookie.startswith("~") and cookie.count(".") == 1


def whoami(client: FlaskClient) -> str | None:
    user: str | None = client.get("/whoami").get_json()["user"]
    return user


def sign_in(client: FlaskClient, token: str | None = None) -> TestResponse:
    if token is None:
        token = csrf_from(client.get("/auth/login", headers=BROWSER))
    data = {"csrf_token": token, "email": "alice@example.com", "password": PASSWORD}
    return client.post("/auth/login", data=data, headers=BROWSER)


def key_of(app: Flask) -> str:
    assert isinstance(app.secret_key, str)
    return app.secret_key


def cookie_serializer(
    app: Flask, salt: str = "flaskstack.cookie-session"
) -> URLSafeTimedSerializer:
    """Signs a cookie session as flaskstack does (the format under test)."""
    return URLSafeTimedSerializer(
        [key_of(app)],
        salt=salt,
        serializer=session_json_serializer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
    )


# -- a new visitor ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/login", "/auth/register", "/csrf-token"])
def test_a_new_visitor_costs_redis_nothing(site: Site, path: str) -> None:
    visitor = site.client()
    views = [visitor.get(path, headers=BROWSER) for _ in range(3)]
    assert [v.status_code for v in views] == [200, 200, 200]

    # The first view hands out the session that carries the CSRF secret...
    (first,) = set_session_cookies(views[0])
    assert first.startswith("session=~")
    assert "HttpOnly" in first
    assert "SameSite=Lax" in first
    assert "Cookie" in views[0].vary
    # ...and the same page viewed again with it settles: nothing new to send.
    assert set_session_cookies(views[-1]) == []
    assert site.keys() == set()

    stranger = site.client()
    assert site.commands(lambda: stranger.get(path, headers=BROWSER)) == {}
    assert site.commands(lambda: stranger.get(path, headers=BROWSER)) == {}  # with the cookie
    assert site.keys() == set()


def test_the_token_from_the_cookie_session_signs_in_and_the_session_moves_to_redis(
    site: Site,
) -> None:
    browser = site.client()
    token = csrf_from(browser.get("/auth/login", headers=BROWSER))
    anonymous = session_cookie(browser)
    assert anonymous is not None
    assert anonymous.startswith("~")

    signing_in: list[TestResponse] = []
    commands = site.commands(lambda: signing_in.append(sign_in(browser, token)))
    assert signing_in[0].status_code == 302
    assert commands.get("set") == 1  # the new session: the only session write
    assert "getex" not in commands  # nothing to read: it came in the cookie

    signed_in = session_cookie(browser)
    assert in_redis(signed_in)
    assert signed_in is not None
    sid = signed_in.split(".")[0]
    assert site.session_keys() == {f"{site.namespace}:session:{sid}"}
    assert sid not in anonymous  # a new id, not derived from what the visitor held
    assert whoami(browser) == "alice@example.com"

    # The cookie from before signing in is no session of alice's, and costs nothing.
    replayed = site.client()
    replayed.set_cookie("session", anonymous)
    assert site.commands(lambda: replayed.get("/whoami")) == {}
    assert whoami(replayed) is None
    assert site.session_keys() == {f"{site.namespace}:session:{sid}"}


def test_signing_out_leaves_no_redis_key(site: Site) -> None:
    browser = site.client()
    assert sign_in(browser).status_code == 302
    assert len(site.session_keys()) == 1
    token = browser.get("/csrf-token").get_json()["csrf_token"]
    assert browser.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert site.keys() == set()
    assert session_cookie(browser) is None
    assert whoami(browser) is None

    # Signed out with a flash after it: the message rides in a cookie, not Redis.
    assert sign_in(browser).status_code == 302
    token = browser.get("/csrf-token").get_json()["csrf_token"]
    bye = browser.post("/bye", data={"csrf_token": token})
    assert bye.status_code == 302
    assert site.keys() == set()
    assert (session_cookie(browser) or "").startswith("~")
    assert browser.get("/thanks").get_json() == {"messages": ["You are signed out."]}
    assert whoami(browser) is None
    assert site.keys() == set()


def test_an_anonymous_flash_survives_the_redirect_in_the_cookie(site: Site) -> None:
    visitor = site.client()
    token = visitor.get("/csrf-token").get_json()["csrf_token"]
    posted: list[TestResponse] = []
    commands = site.commands(
        lambda: posted.append(visitor.post("/subscribe", data={"csrf_token": token}))
    )
    assert posted[0].status_code == 302
    assert commands == {}
    shown = visitor.get("/thanks")
    assert shown.get_json() == {"messages": ["Thanks, you are subscribed."]}
    assert visitor.get("/thanks").get_json() == {"messages": []}  # shown once
    assert site.keys() == set()
    assert (session_cookie(visitor) or "").startswith("~")  # the CSRF secret stays


def test_any_other_key_moves_the_session_into_redis(site: Site) -> None:
    visitor = site.client()
    token = visitor.get("/csrf-token").get_json()["csrf_token"]
    before = session_cookie(visitor)
    assert visitor.post("/cart", data={"csrf_token": token}).text == "added"
    cookie = session_cookie(visitor)
    assert in_redis(cookie)
    assert cookie is not None
    (key,) = site.session_keys()
    assert key.endswith(":session:" + cookie.split(".")[0])
    with site.server.client() as direct:
        stored = session_json_serializer.loads(direct.get(key).decode())
    assert stored["cart"] == ["tea"]
    assert "csrf_token" in stored  # the data moved with it: the token still works
    assert visitor.post("/subscribe", data={"csrf_token": token}).status_code == 302

    # The cookie from before is still just a visitor's: it carries no cart.
    replayed = site.client()
    replayed.set_cookie("session", before or "")
    assert replayed.post("/cart", data={"csrf_token": token}).text == "added"
    assert len(site.session_keys()) == 2


def test_a_session_too_big_for_a_cookie_goes_to_redis(site: Site) -> None:
    visitor = site.client()
    token = visitor.get("/csrf-token").get_json()["csrf_token"]
    visitor.post("/shout", data={"csrf_token": token})
    assert in_redis(session_cookie(visitor))
    assert len(site.session_keys()) == 1
    assert visitor.get("/thanks").get_json() == {"messages": [BIG]}


# -- cookies the server did not issue ----------------------------------------------------------


class _SignedLongAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return super().get_timestamp() - 32 * 86400  # older than PERMANENT_SESSION_LIFETIME


def forged(app: Flask, how: str, token_secret: str) -> str:
    """A cookie session the server would not issue, holding ``token_secret`` as CSRF secret."""
    data = {"csrf_token": token_secret}
    ours = cookie_serializer(app)
    if how == "tampered":
        _payload, stamp, signature = ours.dumps(data).split(".")
        other = ours.dumps({"csrf_token": "0" * 40}).split(".")[0]
        return f"~{other}.{stamp}.{signature}"
    if how == "wrong-key":
        other_app = Flask("elsewhere")
        other_app.secret_key = "somebody-elses-secret-key-" + "x" * 20
        return "~" + cookie_serializer(other_app).dumps(data)
    if how == "other-salt":  # the right key, signed for another purpose
        return "~" + cookie_serializer(app, salt="wtf-csrf-token").dumps(data)
    if how == "expired":
        expired = URLSafeTimedSerializer(
            [key_of(app)],
            salt="flaskstack.cookie-session",
            serializer=session_json_serializer,
            signer=_SignedLongAgo,
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
        )
        return "~" + expired.dumps(data)
    if how == "user-id":  # signed with the app's key, but carrying a signed-in user
        return "~" + ours.dumps({**data, "_user_id": "1", "_fresh": True})
    return {"garbage": "~garbage", "empty": "~", "dots": "~a.b.c"}[how]


@pytest.mark.parametrize(
    "how", ["tampered", "wrong-key", "other-salt", "expired", "user-id", "garbage", "empty", "dots"]
)
def test_a_cookie_session_the_server_did_not_issue_is_an_empty_session(
    site: Site, how: str
) -> None:
    app = site.app
    # A token for the secret the forged cookie holds, as a page would have shown it.
    secret = hashlib.sha1(b"attacker").hexdigest()
    with app.test_request_context():
        token = URLSafeTimedSerializer(key_of(app), salt="wtf-csrf-token").dumps(secret)

    client = site.client()
    client.set_cookie("session", forged(app, how, secret))
    assert whoami(client) is None
    refused = client.post("/subscribe", data={"csrf_token": token}, headers=BROWSER)
    assert refused.status_code == 400
    assert MISSING in refused.text
    assert site.keys() == set()

    client.set_cookie("session", forged(app, how, secret))
    page = client.get("/auth/login", headers=BROWSER)  # a fresh session, a fresh secret
    fresh = session_cookie(client)
    assert fresh is not None
    assert fresh.startswith("~")
    assert fresh != forged(app, how, secret)
    data = {"csrf_token": csrf_from(page)}
    assert client.post("/subscribe", data=data).status_code == 302
    assert site.keys() == set()


def test_a_cookie_session_with_a_key_off_the_list_is_refused(build: Callable[..., Site]) -> None:
    """A cookie issued under a longer allow-list (or by another app with this key) is refused."""
    wide = build(SECRET_KEY=KEY, FLASKSTACK_SESSION_COOKIE_KEYS=["csrf_token", "cart"])
    visitor = wide.client()
    token = visitor.get("/csrf-token").get_json()["csrf_token"]
    visitor.post("/cart", data={"csrf_token": token})
    cookie = session_cookie(visitor)
    assert cookie is not None
    assert cookie.startswith("~")  # "cart" was allowed in the cookie there
    assert wide.keys() == set()

    narrow = build(SECRET_KEY=KEY)  # the default list
    client = narrow.client()
    client.set_cookie("session", cookie)
    refused = client.post("/subscribe", data={"csrf_token": token})
    assert refused.status_code == 400
    assert MISSING in refused.text


def test_user_id_is_refused_in_the_allow_list(make_app: AppFactory) -> None:
    with pytest.raises(flaskstack.ConfigError) as caught:
        make_app({"FLASKSTACK_SESSION_COOKIE_KEYS": ["csrf_token", "_user_id"]})
    assert "FLASKSTACK_SESSION_COOKIE_KEYS" in str(caught.value)
    assert "'_user_id' (the signed-in user) is always stored in Redis" in str(caught.value)


# -- other paths in --------------------------------------------------------------------------


def test_an_empty_allow_list_keeps_every_session_in_redis(build: Callable[..., Site]) -> None:
    site = build(FLASKSTACK_SESSION_COOKIE_KEYS=[])
    visitor = site.client()
    token = csrf_from(visitor.get("/auth/login", headers=BROWSER))
    assert in_redis(session_cookie(visitor))
    assert len(site.session_keys()) == 1
    assert sign_in(visitor, token).status_code == 302
    assert whoami(visitor) == "alice@example.com"
    assert len(site.session_keys()) == 1  # rotated: the anonymous key was deleted


def test_a_flask_cookie_holding_only_a_csrf_secret_becomes_a_cookie_session(site: Site) -> None:
    """Adoption: a visitor's cookie from before flaskstack keeps its CSRF secret, out of Redis."""
    app = site.app
    flask_cookies = SecureCookieSessionInterface().get_signing_serializer(app)
    assert flask_cookies is not None
    secret = hashlib.sha1(b"before").hexdigest()
    token = URLSafeTimedSerializer(key_of(app), salt="wtf-csrf-token").dumps(secret)

    visitor = site.client()
    visitor.set_cookie("session", flask_cookies.dumps({"csrf_token": secret}))
    posted: list[TestResponse] = []
    commands = site.commands(
        lambda: posted.append(visitor.post("/subscribe", data={"csrf_token": token}))
    )
    assert posted[0].status_code == 302
    assert commands == {}
    assert (session_cookie(visitor) or "").startswith("~")
    assert visitor.get("/thanks").get_json() == {"messages": ["Thanks, you are subscribed."]}
    assert site.keys() == set()


def test_a_permanent_anonymous_session_gets_a_cookie_that_expires(site: Site) -> None:
    app = site.app

    @app.get("/keep")
    def keep() -> str:
        session.permanent = True
        session["_flashes"] = [("message", "kept")]
        return "kept"

    response = site.client().get("/keep")
    (cookie,) = set_session_cookies(response)
    assert cookie.startswith("session=~")
    expires = re.search(r"Expires=([^;]+)", cookie)
    assert expires is not None
    when = datetime.datetime.strptime(expires.group(1), "%a, %d %b %Y %H:%M:%S GMT")
    assert when > datetime.datetime.now() + datetime.timedelta(days=30)
    assert site.keys() == set()


# -- Redis down --------------------------------------------------------------------------------


def test_an_anonymous_form_works_while_redis_is_down(
    build: Callable[..., Site], fresh_redis_server: RedisServer
) -> None:
    site = build(
        server=fresh_redis_server, FLASKSTACK_REDIS_TIMEOUT=0.3, FLASKSTACK_REDIS_BACKOFF=0.2
    )
    fresh_redis_server.stop()

    visitor = site.client()
    page = visitor.get("/auth/login", headers=BROWSER)
    token = csrf_from(page)
    assert (session_cookie(visitor) or "").startswith("~")
    assert visitor.get("/csrf-token").status_code == 200
    assert visitor.post("/subscribe", data={"csrf_token": token}).status_code == 302
    assert visitor.get("/thanks").get_json() == {"messages": ["Thanks, you are subscribed."]}
    refused = visitor.post("/subscribe", data={"csrf_token": "forged"}, headers=BROWSER)
    assert refused.status_code == 400

    # Signing in needs the session store: a clear 503, and the visitor's cookie is kept.
    before = session_cookie(visitor)
    signing_in = sign_in(visitor, token)
    assert signing_in.status_code == 503
    assert session_cookie(visitor) == before
