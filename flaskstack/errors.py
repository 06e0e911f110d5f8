"""The exception hierarchy of flaskstack.

Every error flaskstack raises on purpose derives from :class:`FlaskStackError`
and also from the built-in exception that fits it, so code that already
catches ``ValueError`` or ``ImportError`` keeps working.

A configuration problem is never raised alone: validation collects every
:class:`Problem` and raises one :class:`ConfigError` that lists them all.
"""

from __future__ import annotations

import dataclasses
import typing as t

if t.TYPE_CHECKING:
    from .config import Resolution

__all__ = [
    "AlreadyInitialisedError",
    "ConfigError",
    "ConfigWarning",
    "FlaskStackError",
    "FlaskStackWarning",
    "MissingDependencyError",
    "Problem",
]


class FlaskStackError(Exception):
    """Base class of every exception raised by flaskstack."""


class FlaskStackWarning(UserWarning):
    """Base class of every warning emitted by flaskstack."""


class ConfigWarning(FlaskStackWarning):
    """A setting is accepted but questionable (outside production).

    The same finding is an error in the ``production`` profile and in
    ``flask stack check --deploy``.
    """


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration.

    :param id: Stable identifier, the same one ``flask stack check`` reports
        (for example ``config.E001``).
    :param key: The config key at fault.
    :param value: The offending value, already masked if it is a secret.
    :param expected: What a valid value looks like.
    :param fix: What to do about it.
    """

    id: str
    key: str
    value: str
    expected: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.id}] {self.key!r} = {self.value}: expected {self.expected}. Fix: {self.fix}"


class ConfigError(FlaskStackError, ValueError):
    """The configuration is invalid.

    Raised once by :func:`flaskstack.init_app` with every problem found, never
    at the first one. ``problems`` lists them; ``resolution`` (when known)
    holds the effective settings and where each came from, which lets
    ``flask stack config`` and ``flask stack check`` report on an app that
    could not start.
    """

    def __init__(self, problems: t.Sequence[Problem], resolution: Resolution | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.resolution = resolution
        super().__init__(self._format())

    def _format(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"flaskstack configuration has {count} {noun}:"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)


class AlreadyInitialisedError(FlaskStackError, RuntimeError):
    """``init_app`` was called a second time for the same app, or after an
    extension flaskstack registers was registered on the app by hand."""


class MissingDependencyError(FlaskStackError, ImportError):
    """An optional dependency needed by the configuration is not installed."""
