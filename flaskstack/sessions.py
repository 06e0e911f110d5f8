"""Server-side sessions in Redis, loaded only when a request reads them.

The cookie carries a signed random id (256 bits); the data lives in Redis at
``<namespace>:session:<id>``, serialised with Flask's tagged JSON (never
pickle: whoever can write to Redis must not be able to run code).

Cost per request, in Redis commands:

- the session is never read: none, even when the request carries a cookie;
- read, not changed: one (``GETEX``, which also slides the expiry);
- changed: one more (``SET`` with the expiry);
- emptied (logout): the key is deleted and the cookie cleared.

A missing, malformed, forged or expired cookie starts a fresh, empty session
with a new id: an id the server did not issue is never adopted (no session
fixation). :func:`rotate` gives the session a new id and deletes the old key;
login calls it.

When Redis cannot be reached, reading or saving the session answers 503
(:class:`SessionUnavailable`); requests that do not touch the session are
unaffected. Without a Redis URL (development and testing only) Flask's
signed-cookie sessions are used, and :func:`rotate` and :func:`destroy` keep
working on them.

Adopting flaskstack in an app that used Flask's default signed-cookie
session signs nobody out: a cookie that is not shaped like flaskstack's
(``<id>.<signature>``, one dot; Flask's has two or more) is, the first time a
request reads the session, verified as Flask would verify it (same
``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``, same salt and serializer) and
its data moved into Redis under a new id, which replaces the cookie. A
cookie shaped like flaskstack's never goes through Flask's check, so the
move costs a request that carries flaskstack's cookie nothing. A forged
cookie is refused exactly as Flask refuses it, and a valid one grants what
Flask would have granted, under an id nobody has seen
(:setting:`FLASKSTACK_SESSION_ADOPT_SIGNED_COOKIES`).

Both session interfaces leave the session object they open in the request's
WSGI environment, so :func:`request_session` can hand it to code that must
not mark it accessed (the cache, the remember-me cookie) through Flask's
public API only.
"""

from __future__ import annotations

import logging
import secrets
import typing as t

from flask import current_app, has_request_context, request
from flask import session as current_session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import (
    SecureCookieSession,
    SecureCookieSessionInterface,
    SessionInterface,
    SessionMixin,
)
from itsdangerous import BadData, BadSignature, Signer

from .problems import _ServiceUnavailableProblem
from .redis import RedisUnavailable

if t.TYPE_CHECKING:
    from flask import Flask, Request, Response

    from .redis import RedisConnection

__all__ = [
    "CookieSessionInterface",
    "RedisSession",
    "RedisSessionInterface",
    "SessionUnavailable",
    "destroy",
    "rotate",
]

_logger = logging.getLogger("flaskstack.sessions")

_SESSION_ID_BYTES = 32
_serializer = TaggedJSONSerializer()


class SessionUnavailable(_ServiceUnavailableProblem):
    """503: the session store cannot be reached. Carries ``Retry-After``."""

    description = (
        "Your session cannot be loaded or saved right now because the session store is "
        "unreachable. Please try again in a few seconds."
    )


_SESSION_ENVIRON_KEY = "flaskstack.session"
"""Where flaskstack's session interfaces leave the session they open (``request.environ``).

The environment rather than :data:`flask.g`: ``g`` belongs to the app
context, which requests made inside an outer one (tests, CLI scripts) share.
"""


def _record(request: Request, session: SessionMixin) -> None:
    request.environ[_SESSION_ENVIRON_KEY] = session


def _request_session() -> SessionMixin | None:
    """The current request's session object, without marking it accessed.

    Flask marks the session accessed whenever the ``session`` proxy is
    touched, even to ask whether it was loaded; code that only wants to know
    (the cache, the remember-me cookie) looks here instead. ``None`` outside
    a request, and when no session was opened (Flask's null session, for an
    app without a secret key).

    flaskstack's session interfaces record the session they open for this.
    With a session interface of the app's own it cannot know without asking
    Flask, so it goes through the ``session`` proxy, which marks the session
    accessed: the cache then treats the session as used, which is the safe
    answer.
    """
    if not has_request_context():
        return None
    session: SessionMixin | None = request.environ.get(_SESSION_ENVIRON_KEY)
    if session is not None or isinstance(current_app.session_interface, _RECORDING):
        return session
    return current_session


def _is_untouched(session: SessionMixin | None) -> bool:
    """Whether ``session`` is a Redis session nobody read in this request."""
    return isinstance(session, RedisSession) and not session.loaded


class RedisSession(SessionMixin):
    """A session whose data is fetched from Redis on first access.

    Every way of reading or writing it (``session["k"]``, ``get``, ``in``,
    iteration, ``len``, ``pop``, ``clear``…) goes through the methods below,
    which load it.
    """

    def __init__(
        self,
        store: RedisSessionInterface,
        app: Flask,
        sid: str | None,
        had_cookie: bool = False,
        signed_cookie: str | None = None,
    ) -> None:
        self._store = store
        self.had_cookie = had_cookie
        self._signed_cookie = signed_cookie
        """A cookie that may be Flask's signed-cookie session, checked on first access."""
        self._app = app
        self.sid = sid
        self.new = sid is None
        self.modified = False
        self.accessed = False
        self._data: dict[str, t.Any] | None = None
        self._stored = False
        """Whether Redis holds a key for ``sid`` (known once loaded)."""
        self.rotated_from: str | None = None

    @property
    def loaded(self) -> bool:
        """Whether the data was fetched (or the session started empty) in this request."""
        return self._data is not None

    def _load(self) -> dict[str, t.Any]:
        if self._data is None:
            self.accessed = True
            data = None
            if self.sid is not None:
                # May raise SessionUnavailable: the session then stays unloaded,
                # so the response leaves the cookie (and the stored data) alone.
                data = self._store.read(self._app, self.sid)
                if data is None:
                    self.sid = None  # expired or unknown: a new id on the next write
                    self.new = True
                else:
                    self._stored = True
            elif self._signed_cookie is not None:
                data = self._store.read_signed_cookie(self._app, self._signed_cookie)
                self._signed_cookie = None
                if data:
                    # Stored under a new id (sid is None) when the response is
                    # saved, and the new cookie replaces the old one.
                    self.modified = True
            self._data = {} if data is None else data
        return self._data

    def __getitem__(self, key: str) -> t.Any:
        return self._load()[key]

    def __setitem__(self, key: str, value: t.Any) -> None:
        self._load()[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        del self._load()[key]
        self.modified = True

    def __iter__(self) -> t.Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    # The two reads Flask-Login and Flask-WTF make most, answered by the
    # dict itself rather than by Mapping's versions, which go through
    # __getitem__ and catch a KeyError for every missing key.
    def __contains__(self, key: object) -> bool:
        return key in self._load()

    def get(self, key: str, default: t.Any = None) -> t.Any:
        return self._load().get(key, default)

    def __repr__(self) -> str:
        state = "not loaded" if self._data is None else f"{len(self._data)} keys"
        return f"<{type(self).__name__} {state}>"


class RedisSessionInterface(SessionInterface):
    """Flask session interface storing sessions in the app's Redis.

    :param connection: The app's Redis connection.
    :param adopt_from: The signed-cookie session interface the app used
        before (Flask's by default): a valid cookie of it is moved into
        Redis the first time a request reads the session. ``None`` ignores
        such cookies.
    """

    def __init__(
        self,
        connection: RedisConnection,
        adopt_from: SecureCookieSessionInterface | None = None,
    ) -> None:
        self.connection = connection
        self.adopt_from = adopt_from
        self._signer_for: tuple[tuple[t.Any, ...], Signer] | None = None

    # -- Redis I/O ---------------------------------------------------------

    def _key(self, sid: str) -> str:
        return self.connection.key("session", sid)

    def _unavailable(self, exc: RedisUnavailable) -> SessionUnavailable:
        _logger.debug("session store unavailable: %s", exc)
        return SessionUnavailable(self.connection.breaker.backoff)

    def read(self, app: Flask, sid: str) -> dict[str, t.Any] | None:
        """Fetch the data of ``sid`` and slide its expiry (one ``GETEX``)."""
        ttl = int(app.permanent_session_lifetime.total_seconds())
        key = self._key(sid)
        try:
            raw = self.connection.run(lambda client: client.getex(key, ex=ttl))
        except RedisUnavailable as exc:
            raise self._unavailable(exc) from exc
        if raw is None:
            return None
        try:
            data = _serializer.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        except (ValueError, UnicodeDecodeError, TypeError):
            _logger.warning("discarding unreadable session data at %s", key)
            return None
        return data if isinstance(data, dict) else None

    def read_signed_cookie(self, app: Flask, cookie: str) -> dict[str, t.Any] | None:
        """The data of ``cookie`` if it is a valid cookie of :attr:`adopt_from`, else ``None``.

        Verified exactly as that interface verifies its own cookies (keys,
        fallbacks, salt, serializer, ``PERMANENT_SESSION_LIFETIME`` as the
        maximum age), through its public ``get_signing_serializer``.
        """
        legacy = self.adopt_from
        serializer = None if legacy is None else legacy.get_signing_serializer(app)
        if serializer is None:
            return None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data = serializer.loads(cookie, max_age=max_age)
        except BadData:  # forged, expired or not Flask's at all: ignored, as Flask does
            return None
        if not isinstance(data, dict) or not data:
            return None
        _logger.debug("moving a signed-cookie session into Redis")
        return data

    # -- cookie <-> id -------------------------------------------------------

    def _signer(self, app: Flask) -> Signer:
        # Built once per set of keys (they may be rotated at run time).
        keys = (*(app.config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key)
        cached = self._signer_for
        if cached is not None and cached[0] == keys:
            return cached[1]
        signer = _CachingSigner(list(keys), salt="flaskstack.session", key_derivation="hmac")
        self._signer_for = (keys, signer)
        return signer

    def open_session(self, app: Flask, request: Request) -> RedisSession:
        """Read the id from the cookie; touch nothing in Redis."""
        sid = None
        signed_cookie = None
        cookie = request.cookies.get(self.get_cookie_name(app))
        if cookie:
            if _looks_like_session_id(cookie):
                try:
                    sid = self._signer(app).unsign(cookie).decode("ascii")
                except (BadSignature, UnicodeDecodeError):
                    sid = None
            elif self.adopt_from is not None:
                signed_cookie = cookie
        session = RedisSession(self, app, sid, had_cookie=bool(cookie), signed_cookie=signed_cookie)
        _record(request, session)
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Write what changed; a session nobody read costs nothing."""
        if not isinstance(session, RedisSession) or not session.loaded:
            return
        response.vary.add("Cookie")
        try:
            self._save(app, session, response)
        except RedisUnavailable as exc:
            _replace_response(app, response, self._unavailable(exc))

    def _save(self, app: Flask, session: RedisSession, response: Response) -> None:
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        stale = [sid for sid in (session.rotated_from,) if sid is not None]

        if not session:
            if session._stored and session.sid is not None:
                stale.append(session.sid)
            if stale:
                keys = [self._key(sid) for sid in stale]
                self.connection.run(lambda client: client.delete(*keys))
            if session._stored or session.had_cookie:
                response.delete_cookie(
                    name,
                    domain=domain,
                    path=path,
                    secure=self.get_cookie_secure(app),
                    partitioned=self.get_cookie_partitioned(app),
                    httponly=self.get_cookie_httponly(app),
                    samesite=self.get_cookie_samesite(app),
                )
            return

        if session.modified or session.sid is None:
            if session.sid is None:
                session.sid = secrets.token_urlsafe(_SESSION_ID_BYTES)
            ttl = int(app.permanent_session_lifetime.total_seconds())
            data = _serializer.dumps(dict(session))
            key = self._key(session.sid)
            self.connection.run(lambda client: client.set(key, data, ex=ttl))
            if stale:
                # Separate commands: on a cluster the keys live in different slots.
                old = [self._key(sid) for sid in stale]
                self.connection.run(lambda client: client.delete(*old))
        elif not self.should_set_cookie(app, session):
            return

        response.set_cookie(
            name,
            self._signer(app).sign(session.sid).decode("ascii"),
            expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app),
            domain=domain,
            path=path,
            secure=self.get_cookie_secure(app),
            partitioned=self.get_cookie_partitioned(app),
            samesite=self.get_cookie_samesite(app),
        )


def _looks_like_session_id(cookie: str) -> bool:
    """Whether ``cookie`` has the shape of flaskstack's ``<id>.<signature>``.

    Flask's signed-cookie session is ``<data>.<timestamp>.<signature>``
    (and a compressed one starts with a dot): never a single dot.
    """
    return cookie.count(".") == 1


class _CachingSigner(Signer):
    """A :class:`~itsdangerous.Signer` that derives each key once, not on every call."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[str | bytes | None, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        try:
            return self._derived[secret_key]
        except KeyError:
            key = self._derived[secret_key] = super().derive_key(secret_key)
            return key


def _replace_response(app: Flask, response: Response, error: SessionUnavailable) -> None:
    """Turn ``response`` into the app's answer for ``error``, in place.

    ``save_session`` runs after the view and cannot return a new response;
    raising there would become a 500.
    """
    _logger.warning("the session could not be saved: %s", error.description)
    replacement = app.make_response(app.handle_http_exception(error))
    response.status_code = replacement.status_code
    response.headers.clear()
    response.headers.extend(replacement.headers)
    response.set_data(replacement.get_data())


def rotate() -> None:
    """Give the current session a new id and delete the old one, keeping the data.

    Call it whenever the privilege level changes (login), so an id an
    attacker planted or observed before is worthless afterwards.
    """
    session = current_session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(session, RedisSession):
        dict(session)  # load it: the data moves to the new id
        if session.sid is not None and session._stored:
            session.rotated_from = session.sid
        session.sid = None
        session._stored = False
    session.modified = True


def destroy() -> None:
    """Empty the current session: its key is deleted and the cookie cleared (logout)."""
    session = current_session._get_current_object()  # type: ignore[attr-defined]
    session.clear()
    session.modified = True


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, used without Redis (development and testing).

    Exactly :class:`~flask.sessions.SecureCookieSessionInterface`, except
    that the session it opens is left for :func:`request_session`.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """Flask's signed-cookie session, recorded in the request's environment."""
        session = super().open_session(app, request)
        if session is not None:
            _record(request, session)
        return session


_RECORDING = (RedisSessionInterface, CookieSessionInterface)


def _init_app(app: Flask, connection: RedisConnection | None) -> None:
    """Keep sessions in Redis when the app has it; otherwise in Flask's signed cookie.

    With Redis, cookies of the signed-cookie interface the app had (Flask's,
    or a subclass of it with its own salt) are moved into Redis unless
    :setting:`FLASKSTACK_SESSION_ADOPT_SIGNED_COOKIES` is off. Without Redis,
    a session interface the app installed itself stays.
    """
    if connection is not None:
        previous = app.session_interface
        adopt_from = None
        if app.config["FLASKSTACK_SESSION_ADOPT_SIGNED_COOKIES"]:
            adopt_from = (
                previous
                if isinstance(previous, SecureCookieSessionInterface)
                else SecureCookieSessionInterface()
            )
        app.session_interface = RedisSessionInterface(connection, adopt_from)
    elif type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = CookieSessionInterface()
