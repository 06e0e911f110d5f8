"""The signed-in user's linked identity providers as JSON: list them, unlink one.

Served by :data:`flaskstack.api` under ``FLASKSTACK_API_PREFIX`` and
``FLASKSTACK_AUTH_API_PATH`` (``/api/auth`` by default) at ``/identities``
(``GET``) and ``/identities/<id>`` (``DELETE``), on the apps with
``FLASKSTACK_OIDC_PROVIDERS`` set, and only there, so they appear in that
app's OpenAPI document, marked as needing authentication. An API token or
the session authenticates (the session with ``X-CSRFToken`` on ``DELETE``).

The rules are :mod:`._oidc`'s, as on the pages: an identity of another user
is 404, as an unknown one; unlinking the last way to sign in of a user
without a password is 409. The provider's tokens never appear here. Linking
is a trip through the provider in a browser: the page's
``POST /auth/account/identities/<provider>/link``.
"""

from __future__ import annotations

import functools
import typing as t

from flask_login import current_user

from flaskstack import rest
from flaskstack.database import db
from flaskstack.rest import api
from flaskstack.rest._meta import describe

from . import _oidc, auth_required

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = ["PATHS", "register"]


class LinkedIdentity(rest.Schema):
    """An account at an identity provider, linked to the user: it signs them in."""

    id = rest.Integer(description="Unlink it with DELETE /auth/identities/{id}.")
    provider = rest.String(description="The provider's name in FLASKSTACK_OIDC_PROVIDERS.")
    label = rest.String(description="The provider's name for people.")
    email = rest.String(
        nullable=True, description="The address the provider gave at the last sign-in."
    )
    linked_at = rest.DateTime(description="When it was linked.")
    last_used_at = rest.DateTime(nullable=True, description="When it last signed in.")


class LinkedIdentities(rest.Schema):
    """The user's linked providers, oldest first, and whether they have a password."""

    identities = rest.List(rest.Nested(LinkedIdentity))
    has_password = rest.Boolean(
        description="Whether the user can sign in with a password: without one, the last "
        "provider cannot be unlinked."
    )


def _identity(identity: t.Any) -> dict[str, t.Any]:
    return {
        "id": identity.id,
        "provider": identity.provider,
        "label": _oidc.label_of(identity),
        "email": identity.email,
        "linked_at": identity.created_at,
        "last_used_at": identity.last_used_at,
    }


class FlaskstackIdentities(rest.Resource):
    """The current user's linked identity providers."""

    method_decorators: t.ClassVar[list[t.Any]] = [auth_required]

    @rest.marshal_with(LinkedIdentities)
    def get(self) -> dict[str, t.Any]:
        """List the identity providers linked to the current user (never their tokens)."""
        user = current_user._get_current_object()
        return {
            "identities": [_identity(identity) for identity in _oidc.identities_of(user)],
            "has_password": _oidc.has_password(user),
        }


class FlaskstackIdentity(rest.Resource):
    """One linked identity provider of the current user."""

    method_decorators: t.ClassVar[list[t.Any]] = [auth_required]

    @functools.partial(describe, statuses=("409",))
    def delete(self, identity_id: int) -> tuple[str, int]:
        """Unlink the provider: it signs nobody in to this account any more.

        404 for an identity that is not the user's; 409 for the last way to
        sign in of a user without a password (set a password, or link
        another provider, first). The user is told by mail.
        """
        user = current_user._get_current_object()
        try:
            identity = _oidc.unlink(user, identity_id)
        except _oidc.OidcRefusal as refusal:
            db.session.rollback()
            rest.abort(refusal.status, refusal.message)
        db.session.commit()
        _oidc.notify(user, "identity_unlinked", identity)
        return "", 204


PATHS: tuple[tuple[type[rest.Resource], str, str], ...] = (
    (FlaskstackIdentities, "/identities", "flaskstack_auth_identities"),
    (FlaskstackIdentity, "/identities/<int:identity_id>", "flaskstack_auth_identity"),
)
"""Each resource, its path under the auth API prefix and its endpoint."""


def register(app: Flask, prefix: str) -> None:
    """Serve the endpoints on ``app`` alone, under ``prefix`` (the API prefix and the auth path)."""
    for resource, path, endpoint in PATHS:
        api.add_app_resource(app, prefix, resource, path, endpoint=endpoint)
