"""How flaskstack reads what a client identifies itself with: one rule each, here only.

A leaf module (it imports Flask and nothing of flaskstack), so the auth
layer, the CSRF check and the problem responses all import it at the top
and agree by construction:

- :func:`request_api_token`: whether a request authenticates with an API
  token, and which. It does when its ``Authorization`` header uses one of
  ``FLASKSTACK_API_TOKEN_SCHEMES`` (``Bearer`` by default, case-insensitive)
  followed by a credential. Such a request is authenticated by that token
  alone (a wrong one authenticates nobody; the session cookie is not
  consulted), needs no CSRF token (a browser never attaches such a header by
  itself) and gets JSON errors. A scheme with nothing after it (``Bearer``)
  is no token: the request is treated as any other. ``Basic`` and ``Digest``
  are no API token schemes: browsers resend cached HTTP credentials on their
  own.
- :func:`normalise_email`: the form an email address is stored, looked up
  and throttled in.
"""

from __future__ import annotations

from flask import current_app, request

__all__ = ["has_api_token", "normalise_email", "request_api_token"]


def request_api_token() -> str | None:
    """The API token the request authenticates with, or ``None`` when it sends none.

    The credential after the ``Authorization`` header's scheme, stripped,
    when the scheme is one of ``FLASKSTACK_API_TOKEN_SCHEMES`` and the
    credential is not empty. Whether it is a valid token is for the token
    lookup to say (a wrong token authenticates nobody). Needs a request
    context.
    """
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, credential = header.strip().partition(" ")
    accepted = current_app.config.get("FLASKSTACK_API_TOKEN_SCHEMES", ())
    scheme = scheme.lower()
    if not any(scheme == name.lower() for name in accepted):
        return None
    return credential.strip() or None


def has_api_token() -> bool:
    """Whether the request authenticates with an API token (see :func:`request_api_token`)."""
    return request_api_token() is not None


def normalise_email(email: str) -> str:
    """The form emails are stored, looked up and throttled in: stripped and lower-cased.

    The whole address is lower-cased, not only the domain (which is
    case-insensitive by definition): no mail provider hands out mailboxes
    that differ only by case, users type their address in any case, and
    every address stored so far was normalised this way, so lookups keep
    matching. ``str.lower`` rather than ``casefold``: case folding also maps
    different characters together (``ß`` and ``ss``), which would let two
    distinct internationalised addresses share one account or one throttle.
    """
    return email.strip().lower()
