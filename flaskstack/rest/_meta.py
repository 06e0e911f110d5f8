"""What the decorators of :mod:`flaskstack.rest` record for the OpenAPI document.

Each decorator leaves a note on the function it returns; ``functools.wraps``
carries the notes outward through further decorators, and every decorator
adds to a copy, so a note never leaks onto the function it wrapped.
"""

from __future__ import annotations

import typing as t

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

_ATTRIBUTE = "__flaskstack_rest__"


def describe(function: F, **notes: t.Any) -> F:
    """Add ``notes`` to what ``function`` says about itself; returns ``function``."""
    merged = {**getattr(function, _ATTRIBUTE, {}), **notes}
    setattr(function, _ATTRIBUTE, merged)
    return function


def description(function: object) -> dict[str, t.Any]:
    """The notes recorded on ``function`` (empty if none)."""
    notes: dict[str, t.Any] = getattr(function, _ATTRIBUTE, {})
    return notes
