"""Security response headers, and trusting the proxies in front of the app.

This module owns the headers every response gets and the switch that makes
the app believe ``X-Forwarded-*`` headers. The rules it keeps:

- **The app wins.** Each header is added only when the response does not
  have it yet, so a view (or an ``after_request`` hook of the app) that sets
  its own ``X-Frame-Options`` or ``Referrer-Policy`` keeps it.
- **HSTS only over HTTPS.** ``Strict-Transport-Security`` is sent when
  ``FLASKSTACK_HSTS_SECONDS`` is above 0 (one year in production) *and* the
  request arrived over HTTPS as the app sees it: browsers ignore the header
  over plain HTTP, and sending it there only confuses local development.
- **Forwarded headers are ignored unless trusted.** With
  ``FLASKSTACK_PROXY_FIX = N`` the WSGI app is wrapped once in Werkzeug's
  :class:`~werkzeug.middleware.proxy_fix.ProxyFix`, trusting the last ``N``
  values of ``X-Forwarded-For``, ``-Proto``, ``-Host``, ``-Port`` and
  ``-Prefix``; with 0 (the default) a client cannot spoof its address or
  scheme with them.

Cookie flags (``HttpOnly``, ``SameSite=Lax``, ``Secure`` in production) are
plain settings (``SESSION_COOKIE_*``, ``REMEMBER_COOKIE_*``) and need no code
here.
"""

from __future__ import annotations

import typing as t

from flask import request
from werkzeug.middleware.proxy_fix import ProxyFix

from ._hooks import after_response

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

__all__ = ["init_app"]

# How far down a chain of middleware to look for a ProxyFix the app installed.
_MAX_MIDDLEWARE_DEPTH = 32


class _SecurityHeaders:
    """The ``after_request`` hook that adds the security headers of one app.

    Built once from the app's settings by :func:`init_app`; holds values,
    never the app.

    :param frame_options: The ``X-Frame-Options`` value, or ``None`` to send none.
    :param referrer_policy: The ``Referrer-Policy`` value, or ``None`` to send none.
    :param hsts_seconds: ``max-age`` of ``Strict-Transport-Security``; 0 sends none.
    """

    def __init__(
        self,
        frame_options: str | None,
        referrer_policy: str | None,
        hsts_seconds: int,
    ) -> None:
        always = {
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": frame_options,
            "Referrer-Policy": referrer_policy,
        }
        self.headers: tuple[tuple[str, str, str], ...] = tuple(
            (name, value, name.lower()) for name, value in always.items() if value is not None
        )
        self.hsts: str | None = (
            f"max-age={hsts_seconds}; includeSubDomains" if hsts_seconds > 0 else None
        )

    def __call__(self, response: Response) -> Response:
        """Add each header the response does not already carry."""
        # Not Headers.setdefault: it raises and catches an exception for every
        # header that is missing, which is most of them.
        headers = response.headers
        # One pass over the response's headers, instead of a case-insensitive
        # scan of them for each header to add.
        present = {name.lower() for name, _value in headers}
        for name, value, lowered in self.headers:
            if lowered not in present:
                headers.add(name, value)
        if (
            self.hsts is not None
            and "strict-transport-security" not in present
            and request.is_secure
        ):
            headers.add("Strict-Transport-Security", self.hsts)
        return response


def init_app(app: Flask) -> None:
    """Add the security headers to every response of ``app``; trust its proxies.

    Reads ``FLASKSTACK_FRAME_OPTIONS``, ``FLASKSTACK_REFERRER_POLICY``,
    ``FLASKSTACK_HSTS_SECONDS`` and ``FLASKSTACK_PROXY_FIX`` from
    ``app.config``, once. When ``FLASKSTACK_PROXY_FIX`` is above 0 and the app
    has no :class:`~werkzeug.middleware.proxy_fix.ProxyFix` yet, wraps
    ``app.wsgi_app`` in one; a ProxyFix the app installed itself is kept as
    it is, never doubled.
    """
    config = app.config
    after_response(
        app,
        _SecurityHeaders(
            frame_options=config["FLASKSTACK_FRAME_OPTIONS"],
            referrer_policy=config["FLASKSTACK_REFERRER_POLICY"],
            hsts_seconds=config["FLASKSTACK_HSTS_SECONDS"],
        ),
    )
    proxies: int = config["FLASKSTACK_PROXY_FIX"]
    if proxies > 0 and not _has_proxy_fix(app):
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=proxies,
            x_proto=proxies,
            x_host=proxies,
            x_port=proxies,
            x_prefix=proxies,
        )


def _has_proxy_fix(app: Flask) -> bool:
    """Whether a ProxyFix already wraps the app, directly or under other middleware."""
    layer: object = app.wsgi_app
    for _ in range(_MAX_MIDDLEWARE_DEPTH):
        if isinstance(layer, ProxyFix):
            return True
        # Middleware by convention keeps the app it wraps as ``.app``; Flask's
        # own ``wsgi_app`` is a bound method and ends the chain.
        layer = getattr(layer, "app", None)
        if layer is None:
            return False
    return False
