"""The signed-in devices as JSON: list them, sign one out, sign out everywhere.

Served by :data:`flaskstack.api` under ``FLASKSTACK_API_PREFIX`` and
``FLASKSTACK_AUTH_API_PATH`` (``/api/auth`` by default) at ``/sessions``
(``GET``), ``/sessions/<key>`` (``DELETE``) and ``/logout-everywhere``
(``POST``), on the apps where logins are tracked (:mod:`flaskstack.auth._logins`)
and the auth pages are on, and only there, so they appear in that app's
OpenAPI document, marked as needing authentication. An API token
or the session authenticates (the session with ``X-CSRFToken`` on the
unsafe methods); a key of another user's device is 404, as an unknown key.
"""

from __future__ import annotations

import typing as t

from flask_login import current_user

from flaskstack import rest
from flaskstack.database import db
from flaskstack.rest import api

from . import _logins, auth_required

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = ["PATHS", "register"]


class SignedInDevice(rest.Schema):
    """A signed-in device: one login of the user."""

    key = rest.String(description="The login's key: sign it out with DELETE /auth/sessions/{key}.")
    user_agent = rest.String(nullable=True, description="The browser's User-Agent at sign-in.")
    address = rest.String(nullable=True, description="The client address it last signed in from.")
    created_at = rest.DateTime(description="When it signed in.")
    last_used_at = rest.DateTime(description="When it last signed in or was last seen (hourly).")
    remembered = rest.Boolean(description="Whether it holds a remember-me cookie.")
    current = rest.Boolean(description="Whether it is the device making this request.")


class SignedInDevices(rest.Schema):
    """The user's signed-in devices, most recently used first."""

    sessions = rest.List(rest.Nested(SignedInDevice))


class SignOutEverywhere(rest.Schema):
    """What to revoke besides every signed-in device."""

    keep_current = rest.Boolean(
        default=False, description="Keep the device making this request signed in."
    )
    api_tokens = rest.Boolean(default=False, description="Revoke every API token as well.")


class SignedOut(rest.Schema):
    """How many signed-in devices were signed out."""

    revoked = rest.Integer()


def _device(login: t.Any, current: str | None) -> dict[str, t.Any]:
    return {
        "key": login.key,
        "user_agent": login.user_agent,
        "address": login.address,
        "created_at": login.created_at,
        "last_used_at": login.last_used_at,
        "remembered": login.remembered,
        "current": login.key == current,
    }


class FlaskstackSessions(rest.Resource):
    """The signed-in devices of the current user."""

    method_decorators: t.ClassVar[list[t.Any]] = [auth_required]

    @rest.marshal_with(SignedInDevices)
    def get(self) -> dict[str, t.Any]:
        """List the current user's signed-in devices; the one making the request is current."""
        current = _logins.current_key() if _session_request() else None
        logins = _logins.logins_of(current_user._get_current_object())
        return {"sessions": [_device(login, current) for login in logins]}


class FlaskstackSession(rest.Resource):
    """One signed-in device of the current user."""

    method_decorators: t.ClassVar[list[t.Any]] = [auth_required]

    def delete(self, key: str) -> tuple[str, int]:
        """Sign the device out: its session ends and its remember-me cookie is refused."""
        if not _logins.revoke_login(current_user._get_current_object(), key):
            rest.abort(404, "No signed-in device of yours has this key.")
        db.session.commit()
        return "", 204


class FlaskstackSessionsRevokeAll(rest.Resource):
    """Sign out everywhere."""

    method_decorators: t.ClassVar[list[t.Any]] = [auth_required]

    @rest.body(SignOutEverywhere)
    @rest.marshal_with(SignedOut)
    def post(self, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """Sign every device of the current user out; optionally keep this one, revoke API tokens.

        The body may be ``{}``.
        """
        revoked = _logins.revoke_logins(
            current_user._get_current_object(),
            keep_current=bool(body.get("keep_current")),
            api_tokens=bool(body.get("api_tokens")),
        )
        db.session.commit()
        return {"revoked": revoked}


def _session_request() -> bool:
    # A request authenticated by an API token is no device's: nothing is current.
    from flaskstack._credentials import request_api_token

    return request_api_token() is None


PATHS: tuple[tuple[type[rest.Resource], str, str], ...] = (
    (FlaskstackSessions, "/sessions", "flaskstack_auth_sessions"),
    (FlaskstackSession, "/sessions/<key>", "flaskstack_auth_session"),
    (FlaskstackSessionsRevokeAll, "/logout-everywhere", "flaskstack_auth_logout_everywhere"),
)
"""Each resource, its path under the auth API prefix and its endpoint."""


def register(app: Flask, prefix: str) -> None:
    """Serve the endpoints on ``app`` alone, under ``prefix`` (the API prefix and the auth path)."""
    for resource, path, endpoint in PATHS:
        api.add_app_resource(app, prefix, resource, path, endpoint=endpoint)
