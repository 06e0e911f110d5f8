"""URL rules flaskstack adds, and the rule that the app's own always win.

flaskstack adds a few endpoints (auth pages, ``/healthz``, ``/readyz``,
``/csrf-token``, the OpenAPI document). Each comes from a setting that moves
it or turns it off. flaskstack never shadows a rule of the app's: when the
app already has a rule for the same path and method, :func:`flaskstack.init_app`
refuses with a :class:`~flaskstack.ConfigError` naming that setting; a
clashing rule the app adds *after* ``init_app`` (a blueprint registered later
in the factory) is refused the same way at the app's first request and by
``flask stack check`` (``urls.E001``).

Nothing here keeps per-app state: each of flaskstack's view functions carries
the name of the setting that placed it (:func:`own`), so the app's URL map
says everything.

This module is a leaf: it imports nothing from the rest of the package at
run time.
"""

from __future__ import annotations

import typing as t

from .errors import Problem

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from flask import Flask
    from werkzeug.routing import Rule

__all__ = ["CLASH_ID", "add_own_rule", "clashes_with_existing", "later_clashes", "own"]

CLASH_ID = "urls.E001"
"""The id of a clash between one of flaskstack's URL rules and one of the app's."""

_SETTING_ATTRIBUTE = "_flaskstack_setting"

_F = t.TypeVar("_F", bound=t.Callable[..., t.Any])


def own(view: _F, setting: str) -> _F:
    """Mark ``view`` as flaskstack's, placed by ``setting`` (which moves or disables it)."""
    setattr(view, _SETTING_ATTRIBUTE, setting)
    return view


def _setting_of(app: Flask, rule: Rule) -> str | None:
    view = app.view_functions.get(rule.endpoint)
    setting = getattr(view, _SETTING_ATTRIBUTE, None)
    return setting if isinstance(setting, str) else None


def _methods(methods: Iterable[str] | None) -> set[str]:
    found = {m.upper() for m in methods or ("GET",)}
    if "GET" in found:
        found.add("HEAD")
    return found - {"OPTIONS"}


def _problem(path: str, setting: str, app_endpoint: str) -> Problem:
    return Problem(
        id=CLASH_ID,
        key=setting,
        value=f"{path!r} (the app's endpoint {app_endpoint!r} has this URL)",
        expected="a URL that none of the app's own rules uses",
        fix=(
            f"set {setting} to another path for flaskstack's endpoint, or to None to turn "
            "it off; the app's own view keeps the URL"
        ),
    )


def clashes_with_existing(
    app: Flask, setting: str, path: str, methods: Iterable[str] | None = None
) -> list[Problem]:
    """Problems for each of the app's rules already at ``path`` with a method in common.

    Call it while preparing (nothing written to the app yet), so a clash
    stops ``init_app`` before anything is registered.
    """
    wanted = _methods(methods)
    problems = []
    for rule in app.url_map.iter_rules():
        if rule.rule != path or _setting_of(app, rule) is not None:
            continue
        if wanted & _methods(rule.methods):
            problems.append(_problem(path, setting, rule.endpoint))
    return problems


def add_own_rule(
    app: Flask,
    path: str,
    endpoint: str,
    view_func: t.Callable[..., t.Any],
    setting: str,
    methods: Iterable[str] | None = None,
) -> None:
    """``app.add_url_rule`` for one of flaskstack's endpoints, marked with its ``setting``."""
    app.add_url_rule(
        path, endpoint=endpoint, view_func=own(view_func, setting), methods=list(methods or ["GET"])
    )


def later_clashes(app: Flask) -> list[Problem]:
    """Clashes between flaskstack's rules and rules of the app's added after them."""
    ours: list[tuple[Rule, str]] = []
    theirs: list[Rule] = []
    for rule in app.url_map.iter_rules():
        setting = _setting_of(app, rule)
        if setting is None:
            theirs.append(rule)
        else:
            ours.append((rule, setting))
    problems = []
    for rule, setting in ours:
        for other in theirs:
            if other.rule == rule.rule and _methods(rule.methods) & _methods(other.methods):
                problems.append(_problem(rule.rule, setting, other.endpoint))
    return problems
