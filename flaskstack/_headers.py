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

- **A Content-Security-Policy with a nonce, made only when asked for.**
  ``FLASKSTACK_CSP`` is the policy; each ``{nonce}`` in it is replaced by a
  fresh random value per response, which templates get from
  ``csp_nonce()`` for their inline ``<script nonce="...">``. The value is
  made once per request, the first time a template asks or the header is
  built; a policy without ``{nonce}`` is one constant string.
  ``FLASKSTACK_CSP_REPORT_ONLY`` sends it as
  ``Content-Security-Policy-Report-Only`` instead; a response that already
  has either header keeps its own.
- **Responses that depend on the signed-in user are not stored by caches.**
  They get ``FLASKSTACK_PRIVATE_CACHE_CONTROL`` (``private, no-store``)
  unless the view set a ``Cache-Control`` of its own. A response depends on
  the user when the request carries an API token, or when it used a session
  that holds data or changed it (a signed-in user, a CSRF token, flashed
  messages): the same session the view cache treats as per-user. A page
  served to a visitor with an empty or no session, and a cached page served
  without reading the session, are left to the app.

Cookie flags (``HttpOnly``, ``SameSite=Lax``, ``Secure`` in production) are
plain settings (``SESSION_COOKIE_*``, ``REMEMBER_COOKIE_*``) and need no code
here.
"""

from __future__ import annotations

import secrets
import typing as t

from flask import request
from werkzeug.middleware.proxy_fix import ProxyFix

from ._credentials import has_api_token
from ._hooks import after_response
from .sessions import RedisSession, _request_session

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

__all__ = ["csp_nonce", "init_app"]

_NONCE_KEY = "flaskstack.csp_nonce"
_NONCE_PLACEHOLDER = "{nonce}"
_CSP = "Content-Security-Policy"
_CSP_REPORT_ONLY = "Content-Security-Policy-Report-Only"


def csp_nonce() -> str:
    """The current request's Content-Security-Policy nonce, made on first use.

    Templates call it as ``csp_nonce()`` for an inline script or style
    (``<script nonce="{{ csp_nonce() }}">``); every call in one request
    returns the same value, the one the policy's ``{nonce}`` is replaced
    with. 16 random bytes, URL-safe base64.
    """
    environ = request.environ
    nonce: str | None = environ.get(_NONCE_KEY)
    if nonce is None:
        nonce = environ[_NONCE_KEY] = secrets.token_urlsafe(16)
    return nonce


def _depends_on_user() -> bool:
    """Whether the current response is for one user or client only.

    True when the request carries an API token, or used a session that
    holds data or that it changed. Asks the session without loading it.
    """
    # The header's presence first: most requests carry none.
    if "HTTP_AUTHORIZATION" in request.environ and has_api_token():
        return True
    session = _request_session()
    if session is None:
        return False
    if isinstance(session, RedisSession):
        if not session.accessed:
            return False
        # A session that failed to load (Redis down) counts: nobody knows.
        return session.modified or not session.loaded or len(session) > 0
    # Flask's cookie session is decoded for every request; only one the
    # request read (or wrote) counts. Before Flask 3.1.3 it does not record
    # ``in``, but a read that found something to show pops or gets it.
    return bool(session.modified or (session.accessed and len(session) > 0))


# How far down a chain of middleware to look for a ProxyFix the app installed.
_MAX_MIDDLEWARE_DEPTH = 32


class _SecurityHeaders:
    """The ``after_request`` hook that adds the security headers of one app.

    Built once from the app's settings by :func:`init_app`; holds values,
    never the app.

    :param frame_options: The ``X-Frame-Options`` value, or ``None`` to send none.
    :param referrer_policy: The ``Referrer-Policy`` value, or ``None`` to send none.
    :param hsts_seconds: ``max-age`` of ``Strict-Transport-Security``; 0 sends none.
    :param csp: The Content-Security-Policy, ``{nonce}`` standing for the
        request's nonce; ``None`` sends none.
    :param csp_report_only: Send the policy as ``Content-Security-Policy-Report-Only``.
    :param permissions_policy: The ``Permissions-Policy`` value, or ``None``.
    :param private_cache_control: The ``Cache-Control`` of responses that
        depend on the user, or ``None`` to send none.
    """

    def __init__(
        self,
        frame_options: str | None,
        referrer_policy: str | None,
        hsts_seconds: int,
        csp: str | None = None,
        csp_report_only: bool = False,
        permissions_policy: str | None = None,
        private_cache_control: str | None = None,
    ) -> None:
        always = {
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": frame_options,
            "Referrer-Policy": referrer_policy,
            "Permissions-Policy": permissions_policy,
        }
        self.headers: tuple[tuple[str, str, str], ...] = tuple(
            (name, value, name.lower()) for name, value in always.items() if value is not None
        )
        self.hsts: str | None = (
            f"max-age={hsts_seconds}; includeSubDomains" if hsts_seconds > 0 else None
        )
        self.csp_header = _CSP_REPORT_ONLY if csp_report_only else _CSP
        # The policy split at each {nonce}: one part is a constant policy.
        self.csp_parts: tuple[str, ...] | None = (
            tuple(csp.split(_NONCE_PLACEHOLDER)) if csp is not None else None
        )
        self.private_cache_control = private_cache_control

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
        parts = self.csp_parts
        if (
            parts is not None
            and "content-security-policy" not in present
            and "content-security-policy-report-only" not in present
        ):
            headers.add(self.csp_header, parts[0] if len(parts) == 1 else csp_nonce().join(parts))
        if (
            self.private_cache_control is not None
            and "cache-control" not in present
            and _depends_on_user()
        ):
            headers.add("Cache-Control", self.private_cache_control)
        return response


def init_app(app: Flask) -> None:
    """Add the security headers to every response of ``app``; trust its proxies.

    Reads ``FLASKSTACK_FRAME_OPTIONS``, ``FLASKSTACK_REFERRER_POLICY``,
    ``FLASKSTACK_HSTS_SECONDS``, ``FLASKSTACK_CSP``,
    ``FLASKSTACK_CSP_REPORT_ONLY``, ``FLASKSTACK_PERMISSIONS_POLICY``,
    ``FLASKSTACK_PRIVATE_CACHE_CONTROL`` and ``FLASKSTACK_PROXY_FIX`` from
    ``app.config``, once; makes ``csp_nonce()`` a template global. When
    ``FLASKSTACK_PROXY_FIX`` is above 0 and the app has no
    :class:`~werkzeug.middleware.proxy_fix.ProxyFix` yet, wraps
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
            csp=config["FLASKSTACK_CSP"],
            csp_report_only=config["FLASKSTACK_CSP_REPORT_ONLY"],
            permissions_policy=config["FLASKSTACK_PERMISSIONS_POLICY"],
            private_cache_control=config["FLASKSTACK_PRIVATE_CACHE_CONTROL"],
        ),
    )
    # Always there, so a template written for a policy with a nonce still
    # renders when the app turns the policy off.
    app.add_template_global(csp_nonce, "csp_nonce")
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


def _csp_directives(policy: str) -> dict[str, list[str]]:
    """A policy's directives and their sources; the first of a repeated directive counts."""
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        if not part.strip():
            continue
        name, *sources = part.split()
        directives.setdefault(name.lower(), [source.lower() for source in sources])
    return directives


def _allows_inline_scripts(policy: str) -> bool:
    """Whether ``policy`` lets any inline script run ('unsafe-inline' without nonce or hash).

    Browsers ignore 'unsafe-inline' in a directive that also has a nonce or
    a hash; without script-src, default-src decides.
    """
    directives = _csp_directives(policy)
    sources = directives.get("script-src", directives.get("default-src"))
    if sources is None:
        return True  # neither directive: scripts are not restricted at all
    return "'unsafe-inline'" in sources and not any(
        source.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for source in sources
    )


def _check_findings(config: t.Mapping[str, t.Any]) -> list[tuple[str, str]]:
    """``(check id, message)`` for each weak header setting, for ``flask stack check --deploy``."""
    findings: list[tuple[str, str]] = []
    policy: str | None = config.get("FLASKSTACK_CSP")
    if policy is None:
        findings.append(("headers.W001", "FLASKSTACK_CSP is None."))
    else:
        if _allows_inline_scripts(policy):
            findings.append(
                ("headers.W002", f"FLASKSTACK_CSP = {policy!r} lets inline scripts run.")
            )
        if config.get("FLASKSTACK_CSP_REPORT_ONLY"):
            findings.append(("headers.W003", "FLASKSTACK_CSP_REPORT_ONLY is True."))
    if config.get("FLASKSTACK_PERMISSIONS_POLICY") is None:
        findings.append(("headers.W004", "FLASKSTACK_PERMISSIONS_POLICY is None."))
    private: str | None = config.get("FLASKSTACK_PRIVATE_CACHE_CONTROL")
    directives = {d.strip().lower() for d in (private or "").split(",")}
    if not directives & {"private", "no-store"}:
        findings.append(("headers.W005", f"FLASKSTACK_PRIVATE_CACHE_CONTROL = {private!r}."))
    return findings


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
