"""Users and authenticated clients for tests, through flaskstack's real machinery.

This module owns the helpers behind the ``make_user``, ``login``,
``api_client`` and ``csrf_token`` fixtures. The rule it keeps: **nothing is
faked**. A user is a row of the app's user model with a password set by
:meth:`~flaskstack.auth.UserMixin.set_password`; logging in runs
:func:`flaskstack.auth.login_user` (session rotation, Flask-Login's keys) and
saves the session through the app's own session interface (a real
server-side session in Redis when the app has Redis); an API client carries a
token made by :func:`flaskstack.auth.create_token`; a CSRF token comes from
the app's token endpoint, so CSRF protection stays on in tests.
"""

from __future__ import annotations

import typing as t
import uuid

import sqlalchemy as sa

from flaskstack._credentials import normalise_email
from flaskstack.auth._models import user_key, user_model
from flaskstack.auth._protocols import set_user_password

from ._apps import SetupError

if t.TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from sqlalchemy.orm import Session

__all__ = [
    "DEFAULT_PASSWORD",
    "FAST_PASSWORD_METHOD",
    "ApiClientFactory",
    "CsrfToken",
    "Login",
    "MakeUser",
    "api_client",
    "csrf_token",
    "login",
    "make_user",
]

DEFAULT_PASSWORD = "pytest-password-0123456789"
"""The password :func:`make_user` gives a user when the test names none."""

FAST_PASSWORD_METHOD = "pbkdf2:sha256:1"
"""The password hashing the plugin configures for test apps (``FLASKSTACK_PASSWORD_METHOD``).

One PBKDF2 round instead of scrypt: creating or signing in a user costs
microseconds instead of tens of milliseconds. Only ever for tests.
"""


class MakeUser(t.Protocol):
    """The ``make_user`` fixture: ``make_user(email=None, password=None, roles=(), **fields)``."""

    def __call__(
        self,
        email: str | None = None,
        password: str | None = None,
        roles: t.Iterable[str] = (),
        **fields: t.Any,
    ) -> t.Any: ...


class MakeRole(t.Protocol):
    """The ``make_role`` fixture: ``make_role(name, permissions=(), description="")``."""

    def __call__(
        self, name: str, permissions: t.Iterable[str] = (), description: str = ""
    ) -> t.Any: ...


class Login(t.Protocol):
    """The ``login`` fixture: ``login(client, user)``."""

    def __call__(self, client: FlaskClient, user: t.Any) -> FlaskClient: ...


class ApiClientFactory(t.Protocol):
    """The ``api_client`` fixture: ``api_client(user=None)``."""

    def __call__(self, user: t.Any | None = None) -> FlaskClient: ...


class CsrfToken(t.Protocol):
    """The ``csrf_token`` fixture: ``csrf_token(client)``."""

    def __call__(self, client: FlaskClient) -> str: ...


def make_user(
    app: Flask,
    session: Session,
    email: str | None = None,
    password: str | None = None,
    roles: t.Iterable[str] = (),
    **fields: t.Any,
) -> t.Any:
    """Create and commit a user of ``app``'s user model through ``session``.

    :param email: Default: a new ``user-<hex>@example.com``. Stored normalised.
    :param password: Default: :data:`DEFAULT_PASSWORD`. Set with the model's
        ``set_password`` (or into its ``password_hash``), so the app's password
        policy and hashing apply.
    :param roles: Roles of flaskstack's (``FLASKSTACK_ROLES``) to grant; a
        role that does not exist yet is created, granting no permission.
    :param fields: Other columns of the model (``active=False``, ``name=...``).
    """

    with app.app_context():  # the model and the hashing are the app's
        user = user_model()(**fields)
        address = email if email is not None else f"user-{uuid.uuid4().hex[:8]}@example.com"
        user.email = normalise_email(address)
        set_user_password(user, password if password is not None else DEFAULT_PASSWORD)
    session.add(user)
    session.commit()
    wanted = [roles] if isinstance(roles, str) else list(roles)
    if wanted:
        models = _role_models(app)
        key = user_key(user)
        for name in wanted:
            role = session.execute(
                sa.select(models.role).where(models.role.name == name)
            ).scalar_one_or_none()
            if role is None:
                role = make_role(app, session, name)
            session.add(models.grant(user_id=key, role_id=role.id))
        session.commit()
    return user


def _role_models(app: Flask) -> t.Any:
    from flaskstack._state import get_state

    models = get_state(app).auth.role_models
    if models is None:
        raise LookupError(
            "make_user(roles=...) and make_role need flaskstack's roles: set "
            "FLASKSTACK_ROLES = True in the app factory"
        )
    return models


def make_role(
    app: Flask,
    session: Session,
    name: str,
    permissions: t.Iterable[str] = (),
    description: str = "",
) -> t.Any:
    """Create and commit the role ``name`` of flaskstack's roles, granting ``permissions``."""
    from flaskstack.auth._roles import check_name

    models = _role_models(app)
    role = models.role(name=check_name("role", name), description=description)
    role.permissions = [
        models.permission(name=check_name("permission", permission)) for permission in permissions
    ]
    session.add(role)
    session.commit()
    return role


def _cookie_host(app: Flask, environ_base: t.Mapping[str, t.Any]) -> str:
    """The host the test client files ``app``'s cookies under (``localhost`` by default)."""
    request = app.test_request_context(environ_base=dict(environ_base)).request
    return request.host.partition(":")[0]


def _store_cookies(client: FlaskClient, host: str, headers: list[str]) -> None:
    """Give ``client`` the cookies ``Set-Cookie`` headers set, as a browser would."""
    from werkzeug.http import parse_cookie

    for header in headers:
        pair, *attributes = (part.strip() for part in header.split(";"))
        ((name, value),) = parse_cookie(pair).items()
        options = {}
        for attribute in attributes:
            key, _, option = attribute.partition("=")
            options[key.lower()] = option
        path = options.get("path") or "/"
        if options.get("max-age") == "0" or "1970" in options.get("expires", ""):
            client.delete_cookie(name, domain=host, path=path)
        else:
            client.set_cookie(name, value, domain=host, path=path)


def login(client: FlaskClient, user: t.Any) -> FlaskClient:
    """Log ``client`` in as ``user``, exactly as a successful sign-in would.

    Runs :func:`flaskstack.auth.login_user` in a request made from the
    client's cookies and environment (so Flask-Login's session identifier
    matches the client's later requests), then saves the session with the
    app's session interface and hands the client the resulting cookie. With
    Redis, the session lives in Redis under a new id; a session the client
    had is rotated. Where the app tracks signed-in devices, the sign-in is
    recorded (and committed, in the test's transaction) as a device of the
    user, exactly as the sign-in page records it.

    :returns: ``client``.
    :raises SetupError: if the user is inactive (``login_user`` refuses).
    """
    from flaskstack.auth import login_user
    from flaskstack.sessions import _request_session

    app: Flask = client.application
    interface = app.session_interface
    name = interface.get_cookie_name(app)
    host = _cookie_host(app, client.environ_base)
    cookie = client.get_cookie(name, domain=host, path=interface.get_cookie_path(app))
    headers = {"Cookie": f"{name}={cookie.value}"} if cookie is not None else {}
    response = app.response_class()
    with app.test_request_context(environ_base=dict(client.environ_base), headers=headers):
        if not login_user(user):
            raise SetupError(f"cannot log in {user!r}: the user is inactive")
        session = _request_session()
        assert session is not None  # login_user wrote to it
        interface.save_session(app, session, response)
    _store_cookies(client, host, response.headers.getlist("Set-Cookie"))
    return client


def csrf_token(client: FlaskClient) -> str:
    """A valid CSRF token for ``client``'s session, from ``FLASKSTACK_CSRF_TOKEN_PATH``.

    Send it as the ``csrf_token`` form field or the ``X-CSRFToken`` header.
    The request creates the session if the client has none.

    :raises SetupError: if the app has no token endpoint or it does not answer 200.
    """
    app: Flask = client.application
    path = app.config.get("FLASKSTACK_CSRF_TOKEN_PATH")
    if not path:
        raise SetupError(
            f"app {app.name!r} has no CSRF token endpoint (FLASKSTACK_CSRF_TOKEN_PATH is unset)"
        )
    response = client.get(path)
    if response.status_code != 200:
        raise SetupError(f"GET {path} answered {response.status}, not 200 with a CSRF token")
    token: str = response.get_json()["csrf_token"]
    return token


def api_client(app: Flask, user: t.Any, name: str = "pytest") -> FlaskClient:
    """A test client of ``app`` whose every request carries a new API token of ``user``.

    The token is made by :func:`flaskstack.auth.create_token` and committed
    (in the test's transaction); the header is ``Authorization: <scheme>
    <token>`` with the first of ``FLASKSTACK_API_TOKEN_SCHEMES`` (``Bearer``).

    :raises SetupError: if ``user`` has not been saved.
    """
    import sqlalchemy as sa

    from flaskstack.auth import create_token
    from flaskstack.database import db

    state = sa.inspect(user)
    if state.session is not None:
        state.session.flush()
    if state.identity is None:
        raise SetupError(f"cannot make an API token for {user!r}: the user is not saved")
    with app.app_context():
        owner = db.session.get(type(user), state.identity)
        token, _record = create_token(owner, name)
        db.session.commit()
    client = app.test_client()
    scheme = app.config["FLASKSTACK_API_TOKEN_SCHEMES"][0]
    client.environ_base["HTTP_AUTHORIZATION"] = f"{scheme} {token}"
    return client
