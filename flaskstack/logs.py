"""Request ids and the app's log lines.

Every request has an id: the one a proxy in front put in
``FLASKSTACK_REQUEST_ID_HEADER`` (``X-Request-ID``) when it is well formed,
a new random one otherwise. The response returns it in the same header, and
every line the app logs while serving the request carries it, so a user's
error report ("request id 3f2a…") leads straight to the log lines and the
traceback.

The process's log lines go to stderr in one format per profile
(``FLASKSTACK_LOG_FORMAT``): readable text in development and testing, one
JSON object per line in production, where log collectors parse them. That is
the app's logger (``app.logger``) and every other logger of the process:
flaskstack's own (``flaskstack.redis``, ``flaskstack.sessions``, ...), the
wrapped libraries' (``werkzeug``, ``sqlalchemy``, ``rq``, ``flask_limiter``,
...) and, in the JSON format, Python's warnings (``py.warnings``), through
one handler on the root logger (and on ``app.logger``, each line written
once). ``none`` leaves Flask's logging untouched.
The format and the handler belong to the process: with several apps in one
process, the last one set up chooses.

An app that configured logging of its own keeps it: when
``FLASKSTACK_LOG_FORMAT`` is not set explicitly (it comes from flaskstack's
default or the profile's) and, at :func:`flaskstack.init_app`,

- the root logger has a handler (``logging.basicConfig``,
  ``logging.config.dictConfig``; the capture handlers a test runner adds
  there do not count), or
- ``app.logger`` has a handler other than Flask's default one, or a level
  the app set,

flaskstack does not touch ``app.logger`` (``FLASKSTACK_LOG_LEVEL``, when set
explicitly, still sets its level), adds no handler of its own anywhere (it
removes the one an earlier set-up put on the root logger, so no line is
written twice) and ``flask stack check`` says so
(``logging.I001``). Setting ``FLASKSTACK_LOG_FORMAT`` explicitly (to
``text`` or ``json``) hands the app's logger to flaskstack after all.
Responses carry the request id either way; to have it in the app's own log
lines, add the filter to the app's handlers and ``%(request_id)s`` to their
format::

    handler.addFilter(flaskstack.logs.RequestIdFilter())
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import re
import sys
import typing as t

from flask import current_app, has_request_context, request
from flask.logging import default_handler

from ._hooks import after_response

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

    from .config import Resolution

__all__ = ["JSONFormatter", "RequestIdFilter", "TextFormatter", "request_id"]

# Printable ASCII without spaces or quotes: ids from proxies and tracing
# systems (UUIDs, "Root=1-5759e988-bd862e3fe1be46a994272793") fit, while
# nothing that could forge or split a log line does.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:;=+/@-]{1,200}", re.ASCII)
# Where the id is kept for the rest of the request.
_ENVIRON_KEY = "flaskstack.request_id"


# Outside a request: the id of the request a running background job was enqueued by.
_carried_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "flaskstack_carried_request_id", default="-"
)


def request_id() -> str:
    """The id of the current request; ``"-"`` outside a request.

    Computed once per request: taken from the request's
    ``FLASKSTACK_REQUEST_ID_HEADER`` when it is well formed, otherwise a
    new random hexadecimal id. In a background job it is the id of the
    request that enqueued the job, so the job's log lines lead back to it.
    """
    if not has_request_context():
        return _carried_request_id.get()
    environ = request.environ
    value: str | None = environ.get(_ENVIRON_KEY)
    if value is None:
        header = current_app.config.get("FLASKSTACK_REQUEST_ID_HEADER") or "X-Request-ID"
        given = request.headers.get(header, "")
        value = given if _WELL_FORMED.fullmatch(given) else os.urandom(16).hex()
        environ[_ENVIRON_KEY] = value
    return value


@contextlib.contextmanager
def _carrying_request_id(value: str) -> t.Iterator[None]:
    """Make ``value`` the request id outside a request, for the block (a job's run)."""
    token = _carried_request_id.set(value)
    try:
        yield
    finally:
        _carried_request_id.reset(token)


class _ReturnRequestId:
    """The response hook that sends the request id back in the app's header."""

    def __init__(self, header: str) -> None:
        self.header = header

    def __call__(self, response: Response) -> Response:
        headers = response.headers
        if self.header in headers:
            headers[self.header] = request_id()
        else:
            headers.add(self.header, request_id())
        return response


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (and ``method``, ``path``) to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            in_request = has_request_context()
            record.request_id = request_id()
            record.method = request.method if in_request else None
            record.path = request.path if in_request else None
        return True


class TextFormatter(logging.Formatter):
    """``2026-11-22 10:00:00,123 ERROR [<request id>] myapp: message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")


def _trace_id() -> str | None:
    """The id of the trace the current code runs in, for the log lines; ``None`` without one.

    Tracing's module is in the process only when an app turned tracing on:
    otherwise nothing is imported to find out there is no trace.
    """
    tracing = sys.modules.get("flaskstack._tracing")
    if tracing is None:
        return None
    found: str | None = tracing.current_trace_id()
    return found


class JSONFormatter(logging.Formatter):
    """One JSON object per line.

    Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, ``request_id`` (``"-"`` outside a request) and ``pid``; lines
    written while serving a request add ``method`` and ``path``, lines of a
    background job add ``job``, lines inside a trace add ``trace_id``, and
    lines with a traceback add ``exception``.
    """

    def format(self, record: logging.LogRecord) -> str:
        data = self.fields(record)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str)

    def fields(self, record: logging.LogRecord) -> dict[str, t.Any]:
        """The line's fields but the traceback; subclasses add their own."""
        data: dict[str, t.Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "pid": record.process,
        }
        trace_id = _trace_id()
        if trace_id is not None:
            data["trace_id"] = trace_id
        for key in ("method", "path", "job"):
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        return data


_WRITTEN = "_flaskstack_written"
"""Attribute set on a record once flaskstack's handler wrote it."""


class _StackHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """flaskstack's handler, on the root logger and ``app.logger``, recognised so it is added once.

    Writes to whatever ``sys.stderr`` is at the time of the call, so a
    process that swaps it (a test runner capturing output) never leaves the
    handler writing to a closed stream. It adds the request id to every
    line it writes. :mod:`flaskstack.gunicorn` creates one too, before the
    app exists, so that the lines of gunicorn's master are in the app's format.
    """

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestIdFilter())

    def handle(self, record: logging.LogRecord) -> bool:
        # The handler is on the root logger and on app.logger, whose lines
        # propagate to the root: each record is written once.
        if getattr(record, _WRITTEN, False):
            return False
        setattr(record, _WRITTEN, True)
        return super().handle(record)

    @property
    def stream(self) -> t.TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: t.TextIO) -> None:
        pass


# Levels flaskstack set on a logger, by logger name: apps created with the
# same import name share one logger, and a level flaskstack set for an
# earlier app is not the app's own.
_LEVELS_SET: dict[str, int] = {}

_LEFT_TO_THE_APP_KEY = "flaskstack.logging_left_to_the_app"
"""``app.extensions`` key, true when flaskstack left ``app.logger`` as the app configured it."""


def _is_test_runner_handler(handler: logging.Handler) -> bool:
    # pytest puts capture handlers on the root logger around every test; they
    # are no logging set-up of the app's.
    return type(handler).__module__.split(".")[0] == "_pytest"


def _app_configured_logging(app: Flask) -> bool:
    """Whether the app (or the process) configured logging before ``init_app``."""
    if any(
        not _is_test_runner_handler(h) and not isinstance(h, _StackHandler)
        for h in logging.getLogger().handlers
    ):
        return True
    logger = app.logger
    if any(h is not default_handler and not isinstance(h, _StackHandler) for h in logger.handlers):
        return True
    level = logger.level
    if level == logging.NOTSET or _LEVELS_SET.get(logger.name) == level:
        return False
    # Flask gives a new app's logger DEBUG in debug mode; that is no choice of the app's.
    return not (app.debug and level == logging.DEBUG)


def _set_level(logger: logging.Logger, level: str | int) -> None:
    logger.setLevel(level)
    _LEVELS_SET[logger.name] = logger.level


def _stack_handlers(logger: logging.Logger) -> list[_StackHandler]:
    return [h for h in logger.handlers if isinstance(h, _StackHandler)]


def _install_handler(app: Flask, resolution: Resolution) -> None:
    log_format = app.config["FLASKSTACK_LOG_FORMAT"]
    logger = app.logger
    root = logging.getLogger()
    explicit_format = resolution.entries["FLASKSTACK_LOG_FORMAT"].source not in _DEFAULTS
    if log_format == "none" or (not explicit_format and _app_configured_logging(app)):
        # The process's logging is the app's: a handler of flaskstack's on the
        # root logger (an earlier app's, the gunicorn config's) would write the
        # app's lines a second time, in another format.
        for owner in (root, logger):
            for handler in _stack_handlers(owner):
                owner.removeHandler(handler)
        if log_format != "none":
            app.extensions[_LEFT_TO_THE_APP_KEY] = True
            if resolution.entries["FLASKSTACK_LOG_LEVEL"].source not in _DEFAULTS:
                _set_level(logger, app.config["FLASKSTACK_LOG_LEVEL"])
            return
    _set_level(logger, app.config["FLASKSTACK_LOG_LEVEL"])
    if log_format == "none":
        return
    # One handler for every logger of the process, on the root logger, where
    # flaskstack's and the libraries' lines reach it. It is on app.logger too,
    # where code that configures logging after init_app looks for the app's
    # handler ("if not app.logger.handlers"); the app's lines, which also
    # propagate to the root, are written once. Apps set up one after the
    # other (a test suite creates many) reuse it rather than stacking up copies.
    found = _stack_handlers(root)
    handler = found[0] if found else _StackHandler()
    if not found:
        root.addHandler(handler)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    logger.removeHandler(default_handler)
    for own in _stack_handlers(logger):
        if own is not handler:
            logger.removeHandler(own)
    if handler not in logger.handlers:
        logger.addHandler(handler)
    if log_format == "json":
        # Python prints warnings as bare text on stderr; log collectors get them
        # as lines of the logger ``py.warnings`` instead. (The text format keeps
        # Python's own display, which is readable as it is.)
        logging.captureWarnings(True)


_DEFAULTS = ("default", "profile")
"""Sources of a value nobody chose for this app."""


def _init_app(app: Flask, resolution: Resolution) -> None:
    """Return the request id on every response and set up ``app.logger``.

    ``app.logger`` is left alone when the app configured logging of its own
    and did not set ``FLASKSTACK_LOG_FORMAT`` (see the module's documentation).
    """
    after_response(app, _ReturnRequestId(app.config["FLASKSTACK_REQUEST_ID_HEADER"]))
    _install_handler(app, resolution)
