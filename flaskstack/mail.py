"""Mail: templated messages sent through Flask-Mailman, configured by one URL.

``MAIL_URL`` says where mail goes (``smtp://``, ``smtps://``, ``console://``,
``memory://``, ``file://``); :func:`send_mail` renders a pair of templates
and hands the message to the app's backend. The rules this module keeps:

- **Free until used.** ``init_app`` only fills Flask-Mailman's ``MAIL_*``
  keys (with ``setdefault``: what the app set wins); Flask-Mailman is
  imported and registered by the first message sent, never by a request
  that sends none.
- **Sending never fails the caller.** A message that cannot be delivered is
  logged on the ``flaskstack.mail`` logger (recipient masked, the error,
  what to check) and :func:`send_mail` returns ``False``; over SMTP it never
  takes longer than ``FLASKSTACK_MAIL_TIMEOUT``. A template that does not
  exist or does not render is a programming error and raises.
- **Production delivers.** ``console://``, ``memory://`` and ``file://`` are
  refused in production (``mail.E002``), and so is an SMTP URL without a
  sender (``mail.E003``). Without ``MAIL_URL`` production sends no mail, and
  a feature that needs mail refuses to start with
  :func:`missing_mail_problem`.
- **Guest, not owner.** An app that registered Flask-Mailman itself keeps
  it (flaskstack sends through it); one that registered Flask-Mail sends its
  own mail, and flaskstack sends none. Setting ``MAIL_URL`` as well is
  refused (``mail.E004``): two set-ups would disagree.
- **The app's templates win.** ``flaskstack/mail/<name>.txt`` and ``.html``
  are looked up in the app's template folders (and its blueprints') first,
  then in flaskstack's, whether or not flaskstack's auth pages are on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import typing as t

from flask import current_app

from ._mail_url import SMTP_BACKENDS, mailman_keys, parse_mail_url
from .config import Overridden, _mask
from .errors import Problem

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from flask import Flask
    from jinja2 import Environment

    from .config import Resolution

__all__ = ["mail_configured", "missing_mail_problem", "send_mail"]

_logger = logging.getLogger("flaskstack.mail")

_URL = "MAIL_URL"
_SENDER = "FLASKSTACK_MAIL_FROM"
_TIMEOUT = "FLASKSTACK_MAIL_TIMEOUT"

_STATE_KEY = "flaskstack.mail"
_TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")
_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
# A sender for mail that never leaves the process (console, memory, file).
_LOCAL_SENDER = "webmaster@localhost"

_Mode = t.Literal["flaskstack", "app", "flask-mail", "off"]


@dataclasses.dataclass
class _MailState:
    """How ``app`` sends mail, at ``app.extensions["flaskstack.mail"]``.

    :ivar mode: ``flaskstack`` (from ``MAIL_URL``), ``app`` (the app's own
        Flask-Mailman), ``flask-mail`` (the app's Flask-Mail: flaskstack
        sends nothing) or ``off`` (no ``MAIL_URL``).
    :ivar templates: The template environment, made at the first message.
    """

    mode: _Mode
    templates: Environment | None = None


def _state(app: Flask) -> _MailState:
    state: _MailState | None = app.extensions.get(_STATE_KEY)
    if state is None:
        raise LookupError(
            f"flaskstack is not set up on app {app.name!r}: call flaskstack.init_app(app) "
            "in the app factory"
        )
    return state


# -- public API -------------------------------------------------------------------------


def mail_configured(app: Flask | None = None) -> bool:
    """Whether :func:`send_mail` has somewhere to send mail for ``app`` (default: the current app).

    True with a ``MAIL_URL`` (in development and testing its default is
    ``console://`` and ``memory://``) or with the app's own Flask-Mailman.
    """
    state = _state(app if app is not None else current_app)
    return state.mode in ("flaskstack", "app")


def missing_mail_problem(needed_by: str) -> Problem:
    """The configuration problem of a feature that needs mail where none is configured.

    For features that cannot work without mail (password reset links, address
    confirmation) to refuse production at ``init_app``::

        if resolution.profile == "production" and resolution["MAIL_URL"] is None:
            problems.append(missing_mail_problem("password reset"))

    :param needed_by: The feature, as users know it (``"password reset"``).
    """
    return Problem(
        id="mail.E001",
        key=_URL,
        value="not set",
        expected=f"a mail URL: {needed_by} sends mail",
        fix=(
            "set the MAIL_URL environment variable to your SMTP server, e.g. "
            "MAIL_URL=smtp://user:password@smtp.example.com:587?starttls=1, and "
            f"FLASKSTACK_MAIL_FROM to the sender; or turn {needed_by} off"
        ),
    )


def send_mail(
    to: str | Sequence[str],
    template: str,
    *,
    reply_to: str | None = None,
    **context: t.Any,
) -> bool:
    """Render the ``template`` message and send it; ``False`` (and a warning) if it is not sent.

    The message is ``flaskstack/mail/<template>.txt`` (its ``{% block subject %}``
    is the subject), with ``flaskstack/mail/<template>.html`` as its HTML
    alternative when that template exists. The app's template folders are
    searched first, so a file of the same name there replaces flaskstack's.
    Templates see ``context``, ``subject`` and what Flask's templates see
    (``config``, ``url_for``, ``request`` in a request, context processors).

    A delivery failure never raises: it is logged on the ``flaskstack.mail``
    logger with the recipient masked, and the result is ``False``. Over
    SMTP, sending takes at most ``FLASKSTACK_MAIL_TIMEOUT`` seconds.

    Needs an app context.

    :param to: The recipient's address, or several.
    :param template: The template's name, without folder and extension (``"password_reset"``).
    :param reply_to: Where replies go, if not to the sender.
    :param context: Variables for the templates.
    :returns: Whether the backend accepted the message.
    :raises jinja2.TemplateNotFound: if ``flaskstack/mail/<template>.txt`` does not exist.
    :raises ValueError: for a template name that is not a plain name, or a text
        template without a subject block.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    recipients = [to] if isinstance(to, str) else list(to)
    shown = ", ".join(_mask_address(r) for r in recipients)
    state = _state(app)
    if state.mode not in ("flaskstack", "app"):
        reason = (
            "the app uses Flask-Mail, which flaskstack does not send through"
            if state.mode == "flask-mail"
            else "no MAIL_URL is set"
        )
        _logger.warning(
            "mail %r to %s was not sent: %s. Check: set MAIL_URL (and FLASKSTACK_MAIL_FROM).",
            template,
            shown,
            reason,
        )
        return False
    subject, text, html = _render(app, state, template, context)
    from . import _mail_backend as backend

    try:
        backend.deliver(app, subject, text, html, recipients, reply_to, _LOCAL_SENDER)
    except Exception as exc:  # a delivery failure of any kind is reported, never raised
        _logger.warning(
            "mail %r to %s was not sent: %s. Check: %s",
            template,
            shown,
            backend.describe(exc),
            _what_to_check(app),
        )
        return False
    _logger.info("mail %r sent to %s", template, shown)
    return True


# -- rendering --------------------------------------------------------------------------


def _environment(app: Flask, state: _MailState) -> Environment:
    """The app's Jinja environment, falling back to flaskstack's templates.

    An overlay shares the app's filters, globals and autoescaping (on for
    ``.html``, off for ``.txt``); its loader asks the app's loader (the app's
    folder, then its blueprints') before flaskstack's folder.
    """
    if state.templates is None:
        from jinja2 import ChoiceLoader, FileSystemLoader

        loader = ChoiceLoader([app.jinja_env.loader, FileSystemLoader(_TEMPLATES)])  # type: ignore[list-item]
        state.templates = app.jinja_env.overlay(loader=loader)
    return state.templates


def _render(
    app: Flask, state: _MailState, name: str, context: dict[str, t.Any]
) -> tuple[str, str, str | None]:
    """``(subject, text, html or None)`` of the ``name`` message."""
    from jinja2 import TemplateNotFound

    if not _TEMPLATE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"{name!r} is not a mail template name such as 'password_reset'")
    environment = _environment(app, state)
    variables = dict(context)
    app.update_template_context(variables)
    text_template = environment.get_template(f"flaskstack/mail/{name}.txt")
    block = text_template.blocks.get("subject")
    if block is None:
        raise ValueError(
            f"the mail template {text_template.filename or text_template.name!r} has no "
            "{% block subject %}: the subject of the message is written there"
        )
    subject = " ".join("".join(block(text_template.new_context(variables))).split())
    variables["subject"] = subject
    text = text_template.render(variables)
    try:
        html_template = environment.get_template(f"flaskstack/mail/{name}.html")
    except TemplateNotFound:
        return subject, text, None
    return subject, text, html_template.render(variables)


# -- failures ---------------------------------------------------------------------------


def _mask_address(address: str) -> str:
    """``j***@example.com``: enough to tell messages apart in a log, not to read the address."""
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def _what_to_check(app: Flask) -> str:
    url = app.config.get(_URL)
    if url is None:
        return "the app's own Flask-Mailman settings (MAIL_SERVER, MAIL_PORT ...)"
    return (
        f"MAIL_URL ({_mask(_URL, url)}): host, port, credentials, TLS; that the server accepts "
        f"connections from this host within FLASKSTACK_MAIL_TIMEOUT; and FLASKSTACK_MAIL_FROM. "
        "`flask stack check --deploy` tries the connection"
    )


# -- set-up (called by flaskstack.stack) ---------------------------------------------------


def _own_mail_extension(app: Flask) -> str | None:
    """The mail extension the app registered itself: ``"Flask-Mailman"``, ``"Flask-Mail"``."""
    if "mailman" in app.extensions:
        return "Flask-Mailman"
    if "mail" in app.extensions:
        return "Flask-Mail"
    return None


def _app_value(app: Flask, resolution: Resolution, key: str) -> t.Any:
    """What the app set for a key outside the settings table, or ``None``."""
    if key in resolution.extra:
        return resolution.extra[key]
    return app.config.get(key)


def _prepare(app: Flask, resolution: Resolution) -> list[Problem]:
    """Refuse a second mail set-up and undeliverable production mail; report overridden parts."""
    entry = resolution.entries[_URL]
    own = _own_mail_extension(app)
    if own is not None:
        if entry.source in ("default", "profile"):
            return []
        return [
            Problem(
                id="mail.E004",
                key=_URL,
                value=f"{entry.shown} (the app registered {own} itself)",
                expected="one mail set-up: the app's own or MAIL_URL",
                fix=(
                    f"remove {own}'s Mail(app) / mail.init_app(app) from the factory and "
                    f"configure MAIL_URL, or unset MAIL_URL (now from {entry.origin}) to keep "
                    f"the app's {own}"
                ),
            )
        ]
    if entry.value is None:
        return []
    target = parse_mail_url(entry.value)
    keys = mailman_keys(target, timeout=resolution[_TIMEOUT], sender=resolution[_SENDER])
    if entry.source in ("environment", "instance"):
        for key, derived in keys.items():
            theirs = _app_value(app, resolution, key)
            if theirs is not None and theirs != derived:
                secret = key == "MAIL_PASSWORD"
                resolution.overridden.append(
                    Overridden(
                        key=_URL,
                        origin=f"{entry.origin} ({key} from the URL)",
                        shown="'***'" if secret else repr(derived),
                        winner=f"{key} set by the app"
                        + ("" if secret else f" ({theirs!r}), which Flask-Mailman uses"),
                    )
                )
    if resolution.profile != "production":
        return []
    sender = resolution[_SENDER] or _app_value(app, resolution, "MAIL_DEFAULT_SENDER")
    return _production_problems(entry.value, sender)


def _production_problems(url: str, sender: str | None) -> list[Problem]:
    """``mail.E002`` (mail that is not delivered), ``mail.E003`` (SMTP without a sender)."""
    target = parse_mail_url(url)
    shown = _mask(_URL, url)
    if not target.smtp:
        return [
            Problem(
                id="mail.E002",
                key=_URL,
                value=shown,
                expected="an smtp:// or smtps:// URL in production (console://, memory:// and "
                "file:// deliver nothing)",
                fix="set MAIL_URL to your SMTP server, e.g. "
                "MAIL_URL=smtp://user:password@smtp.example.com:587?starttls=1, or unset it to "
                "send no mail",
            )
        ]
    if not sender:
        return [
            Problem(
                id="mail.E003",
                key=_SENDER,
                value="not set",
                expected=f"the sender's address when MAIL_URL names an SMTP server ({shown})",
                fix="set FLASKSTACK_MAIL_FROM to an address the SMTP server may send from, "
                "e.g. FLASKSTACK_MAIL_FROM='Example <no-reply@example.com>'",
            )
        ]
    return []


def _init_app(app: Flask) -> None:
    """Fill Flask-Mailman's ``MAIL_*`` keys from ``MAIL_URL`` (``setdefault``); import nothing."""
    own = _own_mail_extension(app)
    mode: _Mode
    if own == "Flask-Mailman":
        mode = "app"
    elif own == "Flask-Mail":
        mode = "flask-mail"
    elif app.config[_URL] is None:
        mode = "off"
    else:
        mode = "flaskstack"
        target = parse_mail_url(app.config[_URL])
        keys = mailman_keys(target, timeout=app.config[_TIMEOUT], sender=app.config[_SENDER])
        for key, value in keys.items():
            app.config.setdefault(key, value)
    app.extensions[_STATE_KEY] = _MailState(mode)


# -- checks (flask stack check --deploy) ------------------------------------------------


def _check_findings(app: Flask) -> list[tuple[str, str]]:
    """``(check id, message)``: production fitness, and the SMTP server answering."""
    state = _state(app)
    url: str | None = app.config.get(_URL)
    if state.mode == "flask-mail":
        return []
    if state.mode == "off":
        return [("mail.I001", "MAIL_URL is not set: the app sends no mail.")]
    found: list[tuple[str, str]] = []
    if state.mode == "flaskstack" and url is not None:
        sender = app.config.get(_SENDER) or app.config.get("MAIL_DEFAULT_SENDER")
        for problem in _production_problems(url, sender):
            found.append((problem.id, f"{problem.key!r} is {problem.value}: {problem.expected}."))
    from . import _mail_backend as backend

    mailman = backend.mailman_state(app)
    if mailman.backend not in SMTP_BACKENDS:
        return found
    where = f"{mailman.server}:{mailman.port}"
    error = backend.probe(app)
    if error is not None:
        found.append(
            (
                "mail.E005",
                f"The SMTP server at {where} (MAIL_URL = {_mask(_URL, url)}) could not be used "
                f"within {mailman.timeout or 10:g} seconds: {error}.",
            )
        )
    return found
