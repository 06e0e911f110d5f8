"""The declared lower bounds, requirements/minimums.txt and the lock agree.

``pyproject.toml`` declares a lower bound for every runtime dependency (and the
postgres extra); ``requirements/minimums.txt`` pins each of them to exactly that
version for ``make test-minimums``; ``requirements/lock.txt`` (``make lock``)
pins what ``make test`` installs. A bound raised in one place and not the other,
or a requirement added to pyproject.toml without refreshing the lock, fails here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself requires tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
MINIMUMS = ROOT / "requirements" / "minimums.txt"
LOCK = ROOT / "requirements" / "lock.txt"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")

# Pins in minimums.txt that no requirement names, each with the package whose version it
# must match: the ``binary`` extra of psycopg requires ``psycopg-binary`` at psycopg's own
# version. OpenTelemetry's packages move in lock-step: the SDK requires the semantic
# conventions of its own release, and each instrumentation the instrumentation base (and,
# for Flask, the WSGI instrumentation and HTTP utilities) of its own.
IMPLIED = {
    "psycopg-binary": "psycopg",
    "opentelemetry-proto": "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-common": "opentelemetry-sdk",
    "opentelemetry-semantic-conventions": "opentelemetry-instrumentation-flask",
    "opentelemetry-instrumentation": "opentelemetry-instrumentation-flask",
    "opentelemetry-instrumentation-wsgi": "opentelemetry-instrumentation-flask",
    "opentelemetry-util-http": "opentelemetry-instrumentation-flask",
}


def _project() -> dict[str, object]:
    with PYPROJECT.open("rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


def _requirements(extras: tuple[str, ...] | None = None) -> list[Requirement]:
    """The runtime requirements, plus those of ``extras`` (every extra when None)."""
    project = _project()
    optional: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    texts = list(project["dependencies"])  # type: ignore[call-overload]
    for extra in optional if extras is None else extras:
        texts += optional[extra]
    return [
        requirement
        for requirement in map(Requirement, texts)
        if canonicalize_name(requirement.name) != "flaskstack"  # the extras' own extras
    ]


def _lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def _lower_bound(requirement: Requirement) -> Version:
    bounds = [spec.version for spec in requirement.specifier if spec.operator in (">=", "==")]
    assert len(bounds) == 1, f"{requirement}: declare exactly one lower bound (>=)"
    return Version(bounds[0])


def _minimums() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in _lines(MINIMUMS):
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"{MINIMUMS.name}: {line!r} is not a plain `name==version` pin"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{MINIMUMS.name} pins {name} twice"
        pins[name] = Version(match.group(2))
    return pins


def test_every_runtime_dependency_is_pinned_at_its_lower_bound() -> None:
    declared = {
        canonicalize_name(requirement.name): _lower_bound(requirement)
        for requirement in _requirements(
            extras=("postgres", "two-factor", "passkeys", "oidc", "metrics", "otel", "admin")
        )
    }
    pinned = _minimums()
    expected = dict(declared)
    expected.update(
        {name: declared[IMPLIED[name]] for name in IMPLIED if IMPLIED[name] in declared}
    )

    assert pinned == expected, (
        f"pyproject.toml's lower bounds and {MINIMUMS.relative_to(ROOT)} disagree: "
        f"only in pyproject: {sorted(expected.items() - pinned.items())}, "
        f"only in minimums: {sorted(pinned.items() - expected.items())}"
    )


def _locked(python: str) -> dict[str, Version]:
    environment: dict[str, str] = dict(default_environment())
    environment.update(python_version=python, python_full_version=f"{python}.0")
    locked: dict[str, Version] = {}
    for line in _lines(LOCK):
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{LOCK.name}: {line!r} is not pinned"
            name = canonicalize_name(requirement.name)
            assert name not in locked, f"{LOCK.name} pins {name} twice for Python {python}"
            locked[name] = Version(spec.version)
    return locked


@pytest.mark.parametrize("python", PYTHONS)
def test_the_lock_satisfies_every_declared_requirement(python: str) -> None:
    locked = _locked(python)
    environment = {"python_version": python, "python_full_version": f"{python}.0", "extra": ""}
    stale = []
    for requirement in _requirements():
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        version = locked.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            stale.append(f"{requirement} (locked: {version})")

    assert not stale, f"{LOCK.relative_to(ROOT)} is stale, run `make lock`: {stale}"
