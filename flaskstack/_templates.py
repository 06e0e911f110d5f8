"""Where the app's Jinja environment finds flaskstack's templates.

flaskstack's pages (sign-in, the account flows, error pages) render
templates under ``flaskstack/`` that the app overrides by shipping a file of
the same name in its own templates folder. The rules kept here:

- **The app's templates win.** flaskstack's folder is registered as the
  template folder of a blueprint without routes, and Flask looks in the
  app's folder before any blueprint's.
- **Found whatever is on.** Error pages and mail need flaskstack's
  templates with the auth pages off too, so the folder does not depend on
  the auth blueprint.
- **The original stays reachable.** Every template is also found as
  ``flaskstack-original/<path below flaskstack/>``, which nothing of the
  app's can shadow: an override extends the original under that name and
  replaces only some blocks, without extending itself::

      {# templates/flaskstack/auth/login.html in the app #}
      {% extends "flaskstack-original/auth/login.html" %}
      {% block intro %}<p>Welcome back.</p>{% endblock %}

Through Flask's documented ``Blueprint.jinja_loader``.
"""

from __future__ import annotations

import functools
import os
import typing as t

from flask import Blueprint
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader

if t.TYPE_CHECKING:
    from flask import Flask
    from jinja2 import BaseLoader

__all__ = ["ORIGINAL_PREFIX", "init_app"]

ORIGINAL_PREFIX = "flaskstack-original"
"""The name under which flaskstack's own ``flaskstack/`` templates are always found."""

_FOLDER = os.path.join(os.path.dirname(__file__), "templates")
_NAME = "flaskstack_templates"


class _TemplatesBlueprint(Blueprint):
    """A blueprint that only lends flaskstack's templates to the app."""

    @functools.cached_property
    def jinja_loader(self) -> BaseLoader | None:
        """flaskstack's folder; its ``flaskstack/`` again under :data:`ORIGINAL_PREFIX`."""
        return ChoiceLoader(
            [
                FileSystemLoader(_FOLDER),
                PrefixLoader(
                    {ORIGINAL_PREFIX: FileSystemLoader(os.path.join(_FOLDER, "flaskstack"))}
                ),
            ]
        )


def init_app(app: Flask) -> None:
    """Let ``app`` find flaskstack's templates after its own."""
    if _NAME not in app.blueprints:
        app.register_blueprint(_TemplatesBlueprint(_NAME, __name__))
