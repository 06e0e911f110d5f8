"""Production safety rules and the development secret key.

:func:`safety_problems` is the one list of what makes a configuration unfit
for production; ``init_app`` raises it in the ``production`` profile and
``flask stack check --deploy`` reports it in any profile. Outside
production a missing ``SECRET_KEY`` is generated once and kept in the
instance folder, so every worker and every restart share it.
"""

from __future__ import annotations

import os
import secrets
import time
import typing as t
import warnings

from ._cors import _safety_problems as _cors_safety_problems
from ._metrics_access import safety_problems as _metrics_safety_problems
from .config import _MIN_SECRET_KEY_LENGTH, _WELL_KNOWN_SECRETS, Entry, Resolution
from .errors import ConfigError, ConfigWarning, Problem

if t.TYPE_CHECKING:
    from flask import Flask

SECRET_KEY_FILE = "secret_key"


def safety_problems(resolution: Resolution, *, deploy: bool = False) -> list[Problem]:
    """Findings that make a configuration unfit for production.

    Returned for every profile; :func:`validate` raises them as errors in the
    ``production`` profile (and ``flask stack check --deploy`` treats them as
    errors in any profile). ``deploy`` also reports the defaults that only
    development and testing are allowed to rely on.
    """
    entries = resolution.entries
    strict = deploy or resolution.profile == "production"
    found: list[Problem] = []

    secret = entries["SECRET_KEY"]
    if secret.value is None or (strict and secret.source == "generated"):
        found.append(
            Problem(
                "config.E002",
                "SECRET_KEY",
                "not set" if secret.value is None else "generated in the instance folder",
                "a random secret shared by every worker and kept across restarts",
                "set the SECRET_KEY environment variable to the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`",
            )
        )
    else:
        text = (
            secret.value.decode("utf-8", "replace")
            if isinstance(secret.value, bytes)
            else secret.value
        )
        if text.strip().lower() in _WELL_KNOWN_SECRETS or len(text) < _MIN_SECRET_KEY_LENGTH:
            reason = (
                "a well-known value" if text.strip().lower() in _WELL_KNOWN_SECRETS else "too short"
            )
            found.append(
                Problem(
                    "config.E003",
                    "SECRET_KEY",
                    f"{secret.shown} ({reason})",
                    f"a random secret of at least {_MIN_SECRET_KEY_LENGTH} characters",
                    "generate one with `python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))'` and set it in the SECRET_KEY "
                    f"environment variable (it now comes from {secret.origin})",
                )
            )

    if entries["DEBUG"].value:
        found.append(
            Problem(
                "config.E004",
                "DEBUG",
                "True",
                "False in production",
                "unset FLASK_DEBUG and DEBUG; never serve the debugger to the internet "
                f"(it now comes from {entries['DEBUG'].origin})",
            )
        )
    if entries["TESTING"].value:
        found.append(
            Problem(
                "config.E005",
                "TESTING",
                "True",
                "False in production",
                f"remove TESTING from {entries['TESTING'].origin}",
            )
        )
    if entries["FLASKSTACK_REDIS_URL"].value is None:
        found.append(
            Problem(
                "config.E006",
                "FLASKSTACK_REDIS_URL",
                "not set",
                "a Redis URL: production keeps sessions and the cache in Redis",
                "set the REDIS_URL environment variable, e.g. REDIS_URL=redis://redis:6379/0",
            )
        )
    if entries["SQLALCHEMY_DATABASE_URI"].source == "default":
        found.append(
            Problem(
                "config.E007",
                "SQLALCHEMY_DATABASE_URI",
                "not set",
                "an explicit database URL (the SQLite default is for development and testing)",
                "set the DATABASE_URL environment variable, "
                "e.g. DATABASE_URL=postgresql://user:password@db/app",
            )
        )
    for key, safe in (
        ("SESSION_COOKIE_SECURE", True),
        ("SESSION_COOKIE_HTTPONLY", True),
        ("REMEMBER_COOKIE_SECURE", True),
        ("REMEMBER_COOKIE_HTTPONLY", True),
    ):
        entry = entries[key]
        if entry.value is not safe:
            found.append(
                Problem(
                    "config.E008",
                    key,
                    entry.shown,
                    f"{safe} in production",
                    _restore_default(entry, f"{key} = {safe}"),
                )
            )
    for key in ("SESSION_COOKIE_SAMESITE", "REMEMBER_COOKIE_SAMESITE"):
        samesite = entries[key]
        if samesite.value is None:
            found.append(
                Problem(
                    "config.E008",
                    key,
                    "None",
                    "'Lax' or 'Strict'",
                    _restore_default(samesite, f"{key} = 'Lax'"),
                )
            )
    found.extend(_cors_safety_problems(resolution))
    found.extend(_metrics_safety_problems(resolution))
    return found


def _restore_default(entry: Entry, safe: str) -> str:
    if entry.source in ("default", "profile"):
        return f"run with FLASKSTACK_PROFILE=production, whose default is {safe}"
    return f"remove {entry.key} from {entry.origin}; the production default is {safe}"


def validate(app: Flask, resolution: Resolution) -> None:
    """Apply the profile's rules to ``resolution``; raise on any problem.

    Outside production, a missing ``SECRET_KEY`` is generated once into the
    instance folder, so every worker process and every restart share it.

    :raises ConfigError: listing every problem found.
    """
    safety = safety_problems(resolution)
    if resolution.profile == "production":
        resolution.problems.extend(safety)
    elif resolution.profile == "development":
        # Only what the developer set explicitly is worth a warning here; the
        # embedded defaults (no Redis, plain-HTTP cookies) are the point of it.
        warned = ("config.E003", "cors.E001", "metrics.E001")
        resolution.warnings.extend(p for p in safety if p.id in warned)
    # The key file is written only for a configuration that is otherwise valid.
    unset = resolution["SECRET_KEY"] is None
    if unset and not resolution.problems and resolution.profile != "production":
        _use_instance_secret(app, resolution)
    if resolution.problems:
        raise ConfigError(resolution.problems, resolution)
    for problem in resolution.warnings:
        warnings.warn(str(problem), ConfigWarning, stacklevel=4)


def _use_instance_secret(app: Flask, resolution: Resolution) -> None:
    path = os.path.join(app.instance_path, SECRET_KEY_FILE)
    try:
        key = _read_or_create_secret(path)
    except OSError as exc:
        resolution.problems.append(
            Problem(
                "config.E009",
                "SECRET_KEY",
                "not set",
                f"a SECRET_KEY, or a writable instance folder to keep a generated one in ({path})",
                f"set the SECRET_KEY environment variable, or make {app.instance_path!r} "
                f"writable ({exc.strerror or exc})",
            )
        )
        return
    resolution.entries["SECRET_KEY"] = Entry("SECRET_KEY", key, "generated", path)


def _read_or_create_secret(path: str) -> str:
    """Read the key at ``path``, creating it first if no process has yet.

    ``O_EXCL`` makes creation atomic: when several workers start at once,
    exactly one writes the file and the others read what it wrote.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            with open(path, encoding="ascii") as fh:
                key = fh.read().strip()
            if key:
                return key
            # Another process created the file and is about to write it.
            time.sleep(0.01)
        raise OSError(f"{path} exists but is empty; delete it to generate a new key") from None
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key
