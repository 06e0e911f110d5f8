"""The reference app: Conduit, the RealWorld Medium clone, built on flaskstack's public API.

- ``/api/…``: the RealWorld REST API (:mod:`example.api`), with
  ``Authorization: Token …`` served by flaskstack's API tokens.
- ``/``, ``/article/<slug>``, ``/editor``, ``/profile/<username>``,
  ``/settings``: pages for people (:mod:`example.views`); signing in and up
  are flaskstack's auth pages under ``/auth``.

Run it with ``make run`` from the repository root, or by hand::

    flask --app example:create_app db upgrade
    flask --app example:create_app example seed
    flask --app example:create_app run

Without ``DATABASE_URL`` and ``REDIS_URL`` it uses the embedded defaults: a
SQLite database in the instance folder, signed-cookie sessions and an
in-process cache. With them (as in ``docker compose up``), PostgreSQL and
Redis.
"""

from __future__ import annotations

import typing as t

from flask import Flask

import flaskstack

__all__ = ["create_app"]

DEFAULTS: dict[str, t.Any] = {
    "FLASKSTACK_USER_MODEL": "example.models:User",
    # Conduit clients send "Authorization: Token <token>"; Bearer works too.
    "FLASKSTACK_API_TOKEN_SCHEMES": ["Token", "Bearer"],
    # Conduit's clients and test suite use 8-character passwords.
    "FLASKSTACK_PASSWORD_MIN_LENGTH": 8,
    "FLASKSTACK_API_TITLE": "Conduit",
    # Roles with permissions (flask stack role ...) and two-factor sign-in for who wants it.
    "FLASKSTACK_ROLES": True,
    "FLASKSTACK_TWO_FACTOR": True,
    # The admin at /admin (example/admin.py), for users whose roles grant admin.access.
    "FLASKSTACK_ADMIN": True,
}
"""The app's own settings: they beat the instance folder and the environment; ``config``
overrides them."""


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Create the Conduit app; ``config`` overrides every other settings source."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    flaskstack.init_app(app, config)

    # The models are imported by init_app (FLASKSTACK_USER_MODEL); the API
    # module adds its resources to flaskstack.api, which serves them on this app.
    from . import admin, api, cli, views  # noqa: F401

    app.register_blueprint(views.bp)
    app.cli.add_command(cli.example)
    return app
