"""Known vulnerabilities in the installed runtime dependencies of ``flaskstack[postgres]``.

What pip-audit's default service does, on what this machine can reach: PyPI's
JSON API lists the known vulnerabilities (from the OSV database) of a
release. The per-release document (``/pypi/<name>/<version>/json``) is
used when PyPI serves it; where only the project document
(``/pypi/<name>/json``) is reachable, its list covers the **latest** release
only, so a dependency is audited that way only if the installed version *is*
the latest. Anything else is reported as not audited, never as clean.

Run it with ``python tests/security/dependency_audit.py`` (exit status 1 on a
known vulnerability or a dependency it could not audit): CI runs it once, on
the default interpreter. On an older Python some dependencies are held back to
releases that are not the latest (SQLAlchemy 2.0 and Flask-Caching 2.4 on
Python 3.10), which this machine cannot audit; that is reported, not hidden.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib.metadata
import json
import sys
import typing as t
import urllib.error
import urllib.request

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if t.TYPE_CHECKING:
    from packaging.markers import Marker

__all__ = ["Audit", "audit", "runtime_dependencies"]

PYPI = "https://pypi.org/pypi"
TIMEOUT = 20.0


def runtime_dependencies(
    root: str = "flaskstack", extras: t.Sequence[str] = ("postgres",)
) -> dict[str, str]:
    """``{name: installed version}`` of everything ``root[extras]`` needs at run time."""
    found: dict[str, str] = {}
    pending: list[tuple[str, tuple[str, ...]]] = [(root, tuple(extras))]
    while pending:
        name, wanted = pending.pop()
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a dependency for another platform or Python
        key = canonicalize_name(distribution.metadata["Name"])
        if key in found and not wanted:
            continue
        found[key] = distribution.version
        for text in distribution.requires or ():
            requirement = Requirement(text)
            if requirement.marker is not None and not _applies(requirement.marker, wanted):
                continue
            pending.append((requirement.name, tuple(requirement.extras)))
    found.pop(canonicalize_name(root), None)
    return dict(sorted(found.items()))


def _applies(marker: Marker, extras: tuple[str, ...]) -> bool:
    return any(marker.evaluate({"extra": extra}) for extra in (*extras, ""))


@dataclasses.dataclass
class Audit:
    """The outcome for every dependency."""

    vulnerable: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    clean: list[str] = dataclasses.field(default_factory=list)
    not_audited: dict[str, str] = dataclasses.field(default_factory=dict)
    how: dict[str, str] = dataclasses.field(default_factory=dict)


def _get(url: str) -> dict[str, t.Any] | None:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return t.cast("dict[str, t.Any]", json.load(response))
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _ids(vulnerabilities: list[dict[str, t.Any]]) -> list[str]:
    return sorted(
        f"{v.get('id')} (fixed in {', '.join(v.get('fixed_in') or []) or 'no release'})"
        for v in vulnerabilities
        if not v.get("withdrawn")
    )


def _audit_one(name: str, version: str) -> tuple[str, list[str] | None, str]:
    """``(name, vulnerability ids or None when not audited, how or why not)``."""
    release = _get(f"{PYPI}/{name}/{version}/json")
    if release is not None:
        return name, _ids(release.get("vulnerabilities") or []), "release document"
    project = _get(f"{PYPI}/{name}/json")
    if project is None:
        return name, None, "not on PyPI"
    latest = project["info"]["version"]
    if latest != version:
        return name, None, f"{version} installed, {latest} is the latest (no release document)"
    return name, _ids(project.get("vulnerabilities") or []), "project document (latest release)"


def audit(dependencies: t.Mapping[str, str]) -> Audit:
    """Ask PyPI about every dependency (in parallel, each call bounded)."""
    result = Audit()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(_audit_one, n, v) for n, v in dependencies.items()]
        for future in concurrent.futures.as_completed(futures):
            name, vulnerabilities, how = future.result()
            label = f"{name}=={dependencies[name]}"
            result.how[label] = how
            if vulnerabilities is None:
                result.not_audited[label] = how
            elif vulnerabilities:
                result.vulnerable[label] = vulnerabilities
            else:
                result.clean.append(label)
    result.clean.sort()
    return result


def main(argv: t.Sequence[str] = ()) -> int:
    """Print the audit; exit 1 on a vulnerability or an unaudited dependency.

    With ``--allow-unaudited``, a dependency that could not be audited (PyPI
    unreachable, a release that is not the latest) is reported but does not
    fail the run; a known vulnerability always does.
    """
    allow_unaudited = "--allow-unaudited" in argv
    dependencies = runtime_dependencies()
    outcome = audit(dependencies)
    for label, how in sorted(outcome.how.items()):
        state = (
            "VULNERABLE"
            if label in outcome.vulnerable
            else ("not audited" if label in outcome.not_audited else "clean")
        )
        print(f"{label:40} {state:12} {how}")
        for vulnerability in outcome.vulnerable.get(label, []):
            print(f"    {vulnerability}")
    if outcome.not_audited:
        print(f"{len(outcome.not_audited)} dependency(ies) could not be audited from here.")
    if outcome.vulnerable:
        return 1
    return 1 if outcome.not_audited and not allow_unaudited else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
