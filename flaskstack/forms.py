"""CSRF protection and the base form, on Flask-WTF.

The rule this module keeps: **every unsafe request (POST, PUT, PATCH,
DELETE) carries a CSRF token, unless it authenticates in a way a browser
never does on its own.** Exemption depends on how the request
authenticates, not on where it goes: exempting a whole API blueprint opens a
hole as soon as that API also accepts the session cookie. So:

- a request whose ``Authorization`` header uses one of
  ``FLASKSTACK_API_TOKEN_SCHEMES`` (``Bearer`` by default) with a credential
  is exempt: a browser never attaches such a header to a cross-site request,
  and the auth layer authenticates it by that token alone, never by the
  session cookie (a bad token is nobody). One rule decides both
  (``flaskstack._credentials``);
- a request with HTTP ``Basic`` or ``Digest`` credentials (an API of the
  app's own, with Flask-HTTPAuth say) is exempt when it carries neither the
  session cookie (``SESSION_COOKIE_NAME``) nor Flask-Login's remember-me
  cookie (``REMEMBER_COOKIE_NAME``), and no browser marks it as coming from
  another site (an ``Origin`` header or ``Sec-Fetch-Site`` other than
  ``same-origin``/``none``). Such a request cannot be riding the browser's
  session; one that carries those cookies, or that a browser sent from
  another site with HTTP credentials it cached (browsers do resend them
  cross-site), needs a token like any other;
- views marked with :func:`flaskstack.health.public` are exempt;
- whatever the app exempts with ``csrf.exempt(view_or_blueprint)`` is exempt;
- nothing else. A JavaScript client that authenticates with the session
  cookie sends the token in the ``X-CSRFToken`` header; it gets one from
  ``FLASKSTACK_CSRF_TOKEN_PATH`` (``GET /csrf-token`` →
  ``{"csrf_token": "..."}``).

Checking costs nothing on safe methods: a GET, HEAD or OPTIONS request never
loads the session (no session-store round trip). A failed check is a 400
naming the reason Flask-WTF gives ("The CSRF token is missing.", "The CSRF
token has expired.", "The CSRF tokens do not match.", "The referrer header is
missing."…): an HTML page for browsers, an RFC 9457
``application/problem+json`` document for clients that send JSON or prefer
it. An app that wants its own page registers its own handler for
:class:`CSRFError`, before or after :func:`flaskstack.init_app`; its handlers
for ``400``, ``BadRequest``, ``HTTPException`` or ``Exception`` (app-wide or
on the request's blueprint) answer before flaskstack's page too. With
``FLASKSTACK_API_PROBLEMS = False``, a failure under the API prefix is left
to the app's handlers or Flask's default page.

:data:`csrf` is registered by :func:`flaskstack.init_app`, once: calling
``csrf.init_app(app)`` again, or registering another ``CSRFProtect`` on the
same app, is refused (the app's first request fails naming the line to
remove); a second CSRF extension would check every request twice with
different exemptions.

Two Flask-WTF settings cause most complaints; flaskstack only sets defaults
for them, so a value the app sets always wins:

``WTF_CSRF_TIME_LIMIT``
    Seconds a token stays valid. flaskstack's default, ``None``, keeps a
    token valid as long as the session it is bound to, which is rotated at
    login and deleted at logout; Flask-WTF's own default (one hour) rejects
    a long form ("The CSRF token has expired.") after the user spent an hour
    on it. Set a number of seconds if your threat model wants tokens that
    expire on their own; then keep pages that stay open for long (editors,
    dashboards) refreshing their token from ``FLASKSTACK_CSRF_TOKEN_PATH``.

``WTF_CSRF_SSL_STRICT``
    On HTTPS requests, also require a ``Referer`` header from this very
    host (scheme, host and port). It stops a man in the middle of a plain
    HTTP page of your site from posting to its HTTPS side, but:

    - behind a reverse proxy or load balancer that terminates TLS, the app
      sees ``http`` and its internal host unless ``FLASKSTACK_PROXY_FIX``
      is the number of trusted proxies, and then rejects every form with
      "The referrer does not match the host.";
    - a ``Referrer-Policy`` of ``no-referrer`` (page, header or
      ``FLASKSTACK_REFERRER_POLICY``), or a browser extension stripping
      the header, gives "The referrer header is missing." on every form.
      flaskstack's default policy, ``strict-origin-when-cross-origin``, keeps
      the same-origin ``Referer`` the check needs.

    A page on another origin that the app lets send cookies
    (``FLASKSTACK_CORS_ORIGINS`` with ``FLASKSTACK_CORS_CREDENTIALS``)
    passes with its own origin in the host's place: its ``Origin`` header
    must be in that list, and its ``Referer``, when sent, from that origin.

    Turn it off only if you cannot fix those, and then serve HSTS.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

from flask import Blueprint as FlaskBlueprint
from flask import current_app, g, jsonify, request
from flask_wtf import FlaskForm  # type: ignore[import-untyped]
from flask_wtf.csrf import (  # type: ignore[import-untyped]
    CSRFError,
    generate_csrf,
    validate_csrf,
)
from flask_wtf.csrf import (
    CSRFProtect as _FlaskWTFCSRFProtect,
)
from markupsafe import escape
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import ValidationError

from ._credentials import has_api_token
from ._hooks import on_first_request
from ._routes import add_own_rule, clashes_with_existing
from ._state import EXTENSION_KEY
from .errors import AlreadyInitialisedError
from .health import _is_public
from .problems import (
    _answer_with_app_handler,
    _own_handler,
    _prefers_json,
    is_api_request,
    problem,
)

if t.TYPE_CHECKING:
    from flask import Blueprint, Flask
    from flask.typing import ResponseReturnValue

    from .config import Resolution
    from .errors import Problem

_Exempt = t.TypeVar("_Exempt", bound="t.Callable[..., t.Any] | Blueprint | str | type")

__all__ = ["CSRFError", "CSRFProtect", "Form", "csrf"]

_TOKEN_ENDPOINT = "flaskstack.csrf_token"
"""Endpoint name of the view at ``FLASKSTACK_CSRF_TOKEN_PATH``."""


class CSRFProtect(_FlaskWTFCSRFProtect):  # type: ignore[misc]
    """Flask-WTF's :class:`~flask_wtf.csrf.CSRFProtect` with flaskstack's exemptions.

    Behaves exactly like its base (``WTF_CSRF_*`` settings, ``exempt()``,
    ``protect()``, the ``csrf_token()`` template function), and also
    exempts, where Flask-WTF applies exemptions, requests that authenticate
    with an API token (an ``Authorization`` header with a scheme from
    ``FLASKSTACK_API_TOKEN_SCHEMES``) and views marked
    :func:`~flaskstack.health.public`. Use the module-level :data:`csrf`;
    :func:`flaskstack.init_app` registers it.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self._exempt_classes: set[type] = set()
        # What the app exempted, for requests from trusted origins (_check).
        self._exempt_views_seen: set[str] = set()
        self._exempt_blueprints_seen: set[Blueprint] = set()
        super().__init__(app)

    def init_app(self, app: Flask) -> None:
        """Refused: :func:`flaskstack.init_app` registers :data:`csrf` itself.

        :raises AlreadyInitialisedError: if ``app`` already has a CSRF
            extension (flaskstack's or another), naming the line to remove.
            On an app flaskstack has not set up yet, registers as Flask-WTF
            does (and :func:`flaskstack.init_app` then refuses the app).
        """
        if "csrf" in app.extensions or EXTENSION_KEY in app.extensions:
            raise AlreadyInitialisedError(_REGISTERED_TWICE.format(app=app.name))
        self._register(app)

    def _register(self, app: Flask) -> None:
        """Flask-WTF's registration; flaskstack's own call."""
        super().init_app(app)

    def protect(self, apply_exemptions: bool = False) -> None:
        """Validate the CSRF token of the current request, raising :class:`CSRFError`.

        :param apply_exemptions: Skip exempt requests, as the automatic
            check before every request does. ``False`` (a manual call)
            checks every unsafe request.
        """
        if request.method not in current_app.config["WTF_CSRF_METHODS"]:
            return  # safe methods are never checked, exempt or not
        if apply_exemptions:
            view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
            if self._exempt_by_flaskstack(view):
                return
            if getattr(getattr(view, "view_class", None), "checks_csrf_in_dispatch", False):
                return  # flaskstack.rest.Resource checks after authenticating
        self._check(apply_exemptions)

    def protect_in_dispatch(self) -> None:
        """The automatic check, run by :class:`flaskstack.rest.Resource` after its decorators."""
        config = current_app.config
        if (
            not config["WTF_CSRF_ENABLED"]
            or not config["WTF_CSRF_CHECK_DEFAULT"]
            or request.method not in config["WTF_CSRF_METHODS"]
        ):
            return
        view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
        if not self._exempt_by_flaskstack(view):
            self._check(apply_exemptions=True)

    def _check(self, apply_exemptions: bool) -> None:
        """Flask-WTF's check, or the same check with a trusted origin as the referrer."""
        if not _from_a_trusted_origin():
            super().protect(apply_exemptions)
            return
        if apply_exemptions and self._exempted_by_the_app():
            return
        field = current_app.config["WTF_CSRF_FIELD_NAME"]
        token = request.form.get(field) or next(
            filter(None, map(request.headers.get, current_app.config["WTF_CSRF_HEADERS"])), None
        )
        try:
            validate_csrf(token)
        except ValidationError as error:
            raise CSRFError(error.args[0]) from None
        g.csrf_valid = True

    def _exempted_by_the_app(self) -> bool:
        """Whether the app exempted this request's view or blueprint with :meth:`exempt`."""
        if current_app.blueprints.get(request.blueprint or "") in self._exempt_blueprints_seen:
            return True
        view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
        return view is not None and f"{view.__module__}.{view.__name__}" in self._exempt_views_seen

    def _exempt_by_flaskstack(self, view: t.Callable[..., t.Any] | None) -> bool:
        if view is not None and _is_public(view):
            return True
        view_class = getattr(view, "view_class", None)
        if view_class is not None and any(issubclass(view_class, c) for c in self._exempt_classes):
            return True
        # The auth layer's own rule (one function for both), so what is exempt
        # here is exactly what it authenticates by token alone.
        if has_api_token() or _http_credentials_without_browser_session():
            # CSRF does not apply to this request at all, so a Form in
            # the view must not ask for a token either.
            g.csrf_valid = True
            return True
        return False

    def exempt(self, view: _Exempt) -> _Exempt:
        """Exclude a view (function or ``"module.name"``), a blueprint or a resource class.

        Usable as a decorator, also on a class-based view (a
        :class:`flaskstack.rest.Resource`, a ``MethodView``) and its
        subclasses; returns its argument unchanged.
        """
        if isinstance(view, type):
            self._exempt_classes.add(view)
            return view
        if isinstance(view, FlaskBlueprint):
            self._exempt_blueprints_seen.add(view)
        else:
            self._exempt_views_seen.add(
                view if isinstance(view, str) else f"{view.__module__}.{view.__name__}"
            )
        return t.cast("_Exempt", super().exempt(view))


_REGISTERED_TWICE = (
    "app {app!r} already has a CSRF extension: flaskstack.init_app(app) registers "
    "flaskstack.csrf itself. Remove csrf.init_app(app) (or CSRFProtect(app)) from the factory."
)

_HTTP_CREDENTIAL_SCHEMES = frozenset({"basic", "digest"})
_SAME_SITE_FETCHES = frozenset({"same-origin", "none"})


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _from_a_trusted_origin() -> bool:
    """Whether an HTTPS request comes from a page on an origin CORS grants credentials.

    Flask-WTF's ``WTF_CSRF_SSL_STRICT`` check wants a ``Referer`` from the
    app's own host, which a front end on another origin never sends. An
    origin in ``FLASKSTACK_CORS_ORIGINS`` with ``FLASKSTACK_CORS_CREDENTIALS``
    on is one the app trusts with its users' cookies already: its requests
    pass with their own ``Origin`` (and a ``Referer``, when sent, from that
    same origin) in place of the app's host. The token is checked as always.
    """
    config = current_app.config
    if not (request.is_secure and config["WTF_CSRF_SSL_STRICT"]):
        return False
    if not config.get("FLASKSTACK_CORS_CREDENTIALS"):
        return False
    origin = (request.headers.get("Origin") or "").lower()
    if not origin or origin == "*" or origin not in config.get("FLASKSTACK_CORS_ORIGINS", ()):
        return False
    referrer = request.referrer
    return referrer is None or _origin_of(referrer) == origin


def _http_credentials_without_browser_session() -> bool:
    """Whether the request sends HTTP credentials and cannot be riding a browser session.

    True for ``Authorization: Basic``/``Digest`` with neither the session
    cookie nor the remember-me cookie, and nothing saying a browser sent it
    from another site (a browser adds ``Origin`` to every cross-origin
    unsafe request, and ``Sec-Fetch-Site`` to every request).
    """
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() not in _HTTP_CREDENTIAL_SCHEMES or not credential.strip():
        return False
    config = current_app.config
    for name in (config.get("SESSION_COOKIE_NAME"), config.get("REMEMBER_COOKIE_NAME")):
        if name and name in request.cookies:
            return False
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in _SAME_SITE_FETCHES:
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin == request.host_url.rstrip("/")


csrf = CSRFProtect()
"""The app-independent CSRF extension, also exported as ``flaskstack.csrf``.

Exempt a view or blueprint that authenticates some other way (a webhook
checking a signature, say) with ``@csrf.exempt``.
"""


def _unstorable(text: str) -> bool:
    """Whether ``text`` holds characters no database column can store.

    NUL (PostgreSQL refuses it in text) and lone surrogates (they have no
    UTF-8 form) only reach an app from a client probing it.
    """
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(text: str) -> str:
    return "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)


_UNSTORABLE_MESSAGE = "Contains characters that are not allowed (NUL or invalid Unicode)."
_NOT_TEXT_MESSAGE = "Must be a string."


class Form(FlaskForm):  # type: ignore[misc]
    """The base class for every form of a flaskstack app; derive your forms from it.

    A Flask-WTF :class:`~flask_wtf.FlaskForm`: it reads ``request.form`` (or
    a JSON body) on POST, PUT, PATCH and DELETE, and renders and checks the
    hidden ``csrf_token`` field. Put ``{{ form.csrf_token }}`` (or
    ``{{ form.hidden_tag() }}``) inside the ``<form>``; the check itself has
    already run before the view, so :meth:`validate_on_submit` only
    validates your fields. Forms of requests made with an API token need no
    CSRF token.

    A JSON body must be an object (anything else is a 400); a text field
    given a JSON value that is not a string (``true``, ``3``, a list) fails
    validation with "Must be a string."; and a text value holding NUL or
    invalid Unicode fails validation instead of reaching the database.
    """

    class Meta(FlaskForm.Meta):  # type: ignore[misc]
        def wrap_formdata(self, form: t.Any, formdata: t.Any) -> t.Any:
            """Flask-WTF's, refusing a JSON body that is not an object with 400."""
            if request.is_json and request.method in ("POST", "PUT", "PATCH", "DELETE"):
                try:
                    data = request.get_json()
                except RecursionError:
                    raise BadRequest("The JSON body is nested too deeply.") from None
                if not isinstance(data, dict):
                    raise BadRequest("A form sent as JSON must be a JSON object.")
            return super().wrap_formdata(form, formdata)

    def validate(self, extra_validators: t.Mapping[str, t.Any] | None = None) -> bool:
        """Validate every field; text with NUL or invalid Unicode is an error too."""
        # A JSON body hands a text field whatever JSON value it holds; WTForms'
        # validators expect a string (Length calls len() on it).
        not_text = [
            field
            for field in self
            if isinstance(field, StringField)
            and field.data is not None
            and not isinstance(field.data, str)
        ]
        for field in not_text:
            field.data = ""
            field.raw_data = []
        valid = bool(super().validate(extra_validators)) and not not_text
        for field in not_text:
            field.errors = [_NOT_TEXT_MESSAGE]
        for field in self:
            if isinstance(field.data, str) and _unstorable(field.data):
                field.errors = [*field.errors, _UNSTORABLE_MESSAGE]
                # The page showing the error renders the value back: make it printable.
                field.data = _printable(field.data)
                field.raw_data = [_printable(str(value)) for value in field.raw_data or ()]
                valid = False
        return valid


_PAGE = """\
<!doctype html>
<html lang=en>
<title>400 Bad Request</title>
<h1>Bad Request</h1>
<p>The request was refused because its CSRF protection failed: {reason}</p>
<p>Go back, reload the page and send the form again.</p>
"""


@_own_handler
def _handle_csrf_error(error: CSRFError) -> ResponseReturnValue:
    """Answer a failed CSRF check: 400, as HTML or as ``application/problem+json``.

    The app's own handler for the error, if it has one, answers instead.
    """
    answer = _answer_with_app_handler(error)
    if answer is not None:
        return answer
    if is_api_request() and not current_app.config["FLASKSTACK_API_PROBLEMS"]:
        refused: BadRequest = error
        return refused  # the app turned problem documents off: Flask's own page
    reason = str(error.description)
    response: Response
    if _prefers_json():
        response = problem(400, reason)
    elif current_app.config["FLASKSTACK_ERROR_PAGES"]:
        from ._error_pages import render_error_page  # the page in the app's layout

        response = render_error_page(error, csrf=True)
    else:
        response = Response(_PAGE.format(reason=escape(reason)), 400, mimetype="text/html")
    response.vary.add("Accept")
    return response


def _csrf_token_view() -> Response:
    """``GET FLASKSTACK_CSRF_TOKEN_PATH``: ``{"csrf_token": "..."}``, never cached.

    Creates the session if there is none: the token is bound to it.
    """
    response = jsonify(csrf_token=generate_csrf())
    response.headers["Cache-Control"] = "no-store"
    return response


_TOKEN_SETTING = "FLASKSTACK_CSRF_TOKEN_PATH"


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Refuse a token path where the app already has a rule of its own."""
    path = resolution[_TOKEN_SETTING]
    return clashes_with_existing(app, _TOKEN_SETTING, path) if path else []


def _refuse_another_csrf(app: Flask) -> None:
    """Refuse a CSRF extension the app registered after :func:`flaskstack.init_app`."""
    if app.extensions.get("csrf") is not csrf:
        raise AlreadyInitialisedError(_REGISTERED_TWICE.format(app=app.name))


def _init_app(app: Flask) -> None:
    """Protect ``app``: register :data:`csrf`, its error page and the token endpoint."""
    csrf._register(app)
    on_first_request(app, _refuse_another_csrf)
    # Flask keeps one handler per class: never replace one the app registered.
    if app.error_handler_spec.get(None, {}).get(400, {}).get(CSRFError) is None:
        app.register_error_handler(CSRFError, _handle_csrf_error)
    path = app.config[_TOKEN_SETTING]
    if path:
        add_own_rule(app, path, _TOKEN_ENDPOINT, _csrf_token_view, _TOKEN_SETTING)
