"""Helpers for the pinned requirement files in this folder (used by the Makefile).

``python requirements/pins.py constraints LOCK MINIMUMS``
    Print LOCK with every package that MINIMUMS pins replaced by MINIMUMS' pin:
    the constraints of ``make test-minimums`` (runtime dependencies at their
    declared lower bounds, everything else, test tools included, as locked).
    Standard library only: it runs before anything is installed.

``python requirements/pins.py diff LOCK``
    List the installed distributions whose version is not the one LOCK pins for
    this interpreter, or that LOCK does not pin at all (``make test-latest``).
    Needs ``packaging`` to evaluate the lock's environment markers.
"""

from __future__ import annotations

import re
import sys

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(text: str) -> list[str]:
    """The requirement lines of a requirements file: no comments, no options."""
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def name_of(line: str) -> str:
    match = _NAME.match(line)
    if match is None:
        raise ValueError(f"not a requirement: {line!r}")
    return canonical(match.group(1))


def constraints(lock_path: str, minimums_path: str) -> str:
    with open(minimums_path, encoding="utf-8") as file:
        minimums = requirement_lines(file.read())
    pinned = {name_of(line) for line in minimums}
    with open(lock_path, encoding="utf-8") as file:
        locked = [line for line in requirement_lines(file.read()) if name_of(line) not in pinned]
    header = [f"# {lock_path} with the pins of {minimums_path} in their place"]
    return "\n".join([*header, *minimums, *locked]) + "\n"


def diff(lock_path: str) -> str:
    import importlib.metadata

    from packaging.requirements import Requirement

    with open(lock_path, encoding="utf-8") as file:
        locked: dict[str, str] = {}
        for line in requirement_lines(file.read()):
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate():
                locked[canonical(requirement.name)] = str(requirement.specifier).lstrip("=")
    rows = []
    for distribution in importlib.metadata.distributions():
        name = canonical(distribution.metadata["Name"])
        if name in {"pip", "setuptools", "wheel", "flaskstack"} and name not in locked:
            continue
        version = distribution.version
        if locked.get(name) != version:
            rows.append(f"  {name:32} {locked.get(name, '(not locked)'):>16} -> {version}")
    if not rows:
        return f"every installed distribution is at the version {lock_path} pins\n"
    title = f"installed versions that differ from {lock_path} (package, locked -> installed):"
    return "\n".join([title, *sorted(set(rows))]) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "constraints":
        sys.stdout.write(constraints(argv[1], argv[2]))
    elif len(argv) == 2 and argv[0] == "diff":
        sys.stdout.write(diff(argv[1]))
    else:
        sys.stderr.write(__doc__ or "")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
