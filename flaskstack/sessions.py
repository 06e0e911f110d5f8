"""Server-side sessions in Redis, loaded only when a request reads them.

The cookie carries a signed random id (256 bits); the data lives in Redis at
``<namespace>:session:<id>``, serialised with Flask's tagged JSON (never
pickle: whoever can write to Redis must not be able to run code).

A visitor who is not signed in costs Redis nothing: as long as the session
holds only the keys listed in :setting:`FLASKSTACK_SESSION_COOKIE_KEYS`
(Flask-WTF's CSRF secret, flashed messages, Flask-Login's bookkeeping for
anonymous visitors; never ``_user_id``) and fits in a small cookie, it stays
in the cookie itself, signed with ``SECRET_KEY`` (and
``SECRET_KEY_FALLBACKS``), timestamped, with a salt of its own, valid for
``PERMANENT_SESSION_LIFETIME``, and marked by a leading ``~`` (neither
flaskstack's id cookie nor Flask's signed cookie can start with one). As soon
as it holds any other key, outgrows the cookie, or is rotated (sign-in), its
data moves into Redis under a new id and the id cookie replaces the other.
A session in Redis stays there until it is emptied. A cookie session holding
a key outside the list is refused (a fresh, empty session), so a cookie can
never carry a signed-in user. An empty list keeps every session in Redis.

Cost per request, in Redis commands:

- the session is never read: none, even when the request carries a cookie;
- the session is in the cookie: none, whether read or changed;
- read, not changed: one (``GETEX``, which also slides the expiry);
- changed: one more (``SET`` with the expiry);
- emptied (logout): the key is deleted and the cookie cleared.

A missing, malformed, forged or expired cookie starts a fresh, empty session
with a new id: an id the server did not issue is never adopted (no session
fixation). :func:`rotate` gives the session a new id in Redis and deletes the
old key; login calls it. :func:`destroy` empties the session and deletes its
key; what the request puts in the session afterwards (a flashed "signed out")
starts a new session.

When Redis cannot be reached, reading or saving a session held in Redis
answers 503 (:class:`SessionUnavailable`); requests that do not touch the
session, or whose session stays in the cookie (an anonymous visitor's form
page), are unaffected. Without a Redis URL (development and testing only)
Flask's signed-cookie sessions are used, and :func:`rotate` and
:func:`destroy` keep working on them.

Adopting flaskstack in an app that used Flask's default signed-cookie
session signs nobody out: a cookie that is not shaped like one of
flaskstack's (``<id>.<signature>``, one dot; or ``~`` and a cookie session)
is, the first time a request reads the session, verified as Flask would
verify it (same ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``, same salt and
serializer) and its data moved into Redis under a new id (or, if it holds
only the keys above, into flaskstack's cookie session), which replaces the
cookie. A cookie shaped like flaskstack's never goes through Flask's check,
so the move costs a request that carries flaskstack's cookie nothing. A
forged cookie is refused exactly as Flask refuses it, and a valid one grants
what Flask would have granted, under an id nobody has seen
(:setting:`FLASKSTACK_SESSION_ADOPT_SIGNED_COOKIES`).

Both session interfaces leave the session object they open in the request's
WSGI environment, so :func:`request_session` can hand it to code that must
not mark it accessed (the cache, the remember-me cookie) through Flask's
public API only.
"""

from __future__ import annotations

import copy
import hashlib
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
from itsdangerous import BadData, BadSignature, Signer, TimestampSigner, URLSafeTimedSerializer

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

_COOKIE_SESSION_PREFIX = "~"
"""Starts a cookie session; base64url and dots (both other formats) never include it."""

_COOKIE_SESSION_SALT = "flaskstack.cookie-session"

_COOKIE_SESSION_MAX_BYTES = 3072
"""Largest cookie session value; a bigger session goes to Redis.

Browsers keep at most 4096 bytes per cookie, name and attributes included.
"""

_NEVER_IN_COOKIE = frozenset({"_user_id"})
"""Session keys that never stay in a cookie session, whatever the allow-list says."""


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
        cookie_session: str | None = None,
    ) -> None:
        self._store = store
        self.had_cookie = had_cookie
        self._signed_cookie = signed_cookie
        """A cookie that may be Flask's signed-cookie session, checked on first access."""
        self._cookie_session = cookie_session
        """flaskstack's cookie session (without its prefix), checked on first access."""
        self._from_cookie: dict[str, t.Any] | None = None
        """A copy of what a valid cookie session held: an unchanged one is not sent again."""
        self.must_store = False
        """Whether the session goes to Redis whatever it holds (it was rotated)."""
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
            elif self._cookie_session is not None:
                data = self._store.read_cookie_session(self._app, self._cookie_session)
                self._cookie_session = None
                if data is not None:
                    self._from_cookie = copy.deepcopy(data)
            elif self._signed_cookie is not None:
                data = self._store.read_signed_cookie(self._app, self._signed_cookie)
                self._signed_cookie = None
                if data:
                    # Stored under a new id (sid is None), or in flaskstack's
                    # cookie session, when the response is saved; the new
                    # cookie replaces the old one.
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
    :param cookie_keys: The session keys that may stay in a signed cookie
        instead of Redis (:setting:`FLASKSTACK_SESSION_COOKIE_KEYS`); empty:
        every session is stored in Redis. ``_user_id`` never stays in a
        cookie.
    """

    def __init__(
        self,
        connection: RedisConnection,
        adopt_from: SecureCookieSessionInterface | None = None,
        cookie_keys: t.Iterable[str] = (),
    ) -> None:
        self.connection = connection
        self.adopt_from = adopt_from
        self.cookie_keys = frozenset(cookie_keys) - _NEVER_IN_COOKIE
        self._signer_for: tuple[tuple[t.Any, ...], Signer] | None = None
        self._cookie_serializer_for: tuple[tuple[t.Any, ...], URLSafeTimedSerializer] | None = None

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

    def read_cookie_session(self, app: Flask, cookie: str) -> dict[str, t.Any] | None:
        """The data of flaskstack's cookie session ``cookie`` (prefix removed), else ``None``.

        ``None`` for a cookie that does not verify, is older than
        ``PERMANENT_SESSION_LIFETIME``, or holds a key that may not stay in
        a cookie (the allow-list changed, or the cookie was not issued by
        this interface): the request then starts with an empty session.
        """
        if not self.cookie_keys:
            return None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data = self._cookie_serializer(app).loads(cookie, max_age=max_age)
        except BadData:
            return None
        if not isinstance(data, dict) or not data:
            return None
        if not self.cookie_keys.issuperset(data):
            _logger.info(
                "refusing a cookie session holding keys that must be stored in Redis: %s",
                sorted(set(data) - self.cookie_keys),
            )
            return None
        return data

    def _cookie_session_value(self, app: Flask, session: RedisSession) -> str | None:
        """The cookie that carries ``session``, or ``None`` if it must be stored in Redis."""
        data = dict(session)
        if session.must_store or not self.cookie_keys.issuperset(data):
            return None
        value = _COOKIE_SESSION_PREFIX + self._cookie_serializer(app).dumps(data)
        return value if len(value) <= _COOKIE_SESSION_MAX_BYTES else None

    # -- cookie <-> id -------------------------------------------------------

    def _cookie_serializer(self, app: Flask) -> URLSafeTimedSerializer:
        keys = (*(app.config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key)
        cached = self._cookie_serializer_for
        if cached is not None and cached[0] == keys:
            return cached[1]
        serializer = URLSafeTimedSerializer(
            list(keys),
            salt=_COOKIE_SESSION_SALT,
            serializer=_serializer,
            signer=_CachingTimestampSigner,
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
        )
        self._cookie_serializer_for = (keys, serializer)
        return serializer

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
        cookie_session = None
        cookie = request.cookies.get(self.get_cookie_name(app))
        if cookie:
            if cookie.startswith(_COOKIE_SESSION_PREFIX):
                cookie_session = cookie[len(_COOKIE_SESSION_PREFIX) :]
            elif _looks_like_session_id(cookie):
                try:
                    sid = self._signer(app).unsign(cookie).decode("ascii")
                except (BadSignature, UnicodeDecodeError):
                    sid = None
            elif self.adopt_from is not None:
                signed_cookie = cookie
        session = RedisSession(
            self,
            app,
            sid,
            had_cookie=bool(cookie),
            signed_cookie=signed_cookie,
            cookie_session=cookie_session,
        )
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

        if session.sid is None:
            value = self._cookie_session_value(app, session)
            if value is not None:
                self._save_in_cookie(app, session, response, value, stale)
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

        self._set_cookie(
            app, session, response, self._signer(app).sign(session.sid).decode("ascii")
        )

    def _save_in_cookie(
        self,
        app: Flask,
        session: RedisSession,
        response: Response,
        value: str,
        stale: list[str],
    ) -> None:
        """Keep ``session`` in its own cookie: no Redis, except to delete a key it replaces."""
        if stale:  # signed out, then something (a flash) was put in the new session
            keys = [self._key(sid) for sid in stale]
            self.connection.run(lambda client: client.delete(*keys))
        unchanged = session._from_cookie is not None and session._from_cookie == dict(session)
        if unchanged and not self.should_set_cookie(app, session):
            return
        self._set_cookie(app, session, response, value)

    def _set_cookie(
        self, app: Flask, session: RedisSession, response: Response, value: str
    ) -> None:
        response.set_cookie(
            self.get_cookie_name(app),
            value,
            expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
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


class _CachingTimestampSigner(TimestampSigner, _CachingSigner):
    """A :class:`~itsdangerous.TimestampSigner` that derives each key once."""


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
    A session held in a cookie moves into Redis under a new id.
    """
    session = current_session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(session, RedisSession):
        _forget_id(session)  # the data moves to the new id
        session.must_store = True
    session.modified = True


def destroy() -> None:
    """Empty the current session: its key is deleted and the cookie cleared (logout).

    What the request puts in the session afterwards starts a new, anonymous
    session (in a cookie, if it holds only :setting:`FLASKSTACK_SESSION_COOKIE_KEYS`).
    """
    session = current_session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(session, RedisSession):
        _forget_id(session)
        session.must_store = False
    session.clear()
    session.modified = True


def _forget_id(session: RedisSession) -> None:
    """Load ``session`` and detach it from its id; the old key is deleted when it is saved."""
    dict(session)
    if session.sid is not None and session._stored:
        session.rotated_from = session.sid
    session.sid = None
    session._stored = False


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
        app.session_interface = RedisSessionInterface(
            connection, adopt_from, app.config["FLASKSTACK_SESSION_COOKIE_KEYS"]
        )
    elif type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = CookieSessionInterface()
