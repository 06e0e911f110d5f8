"""Reading the deployment files as Docker and Compose would, without either.

- :func:`parse_dockerfile`: the stages of a Dockerfile and their instructions
  (continuation lines joined, comments and parser directives dropped, exec
  forms decoded);
- :func:`load_compose`: a compose file as YAML (anchors and merge keys
  resolved), and :func:`interpolate` for its ``${VAR}`` forms with Compose's
  rules (``:-``, ``-``, ``:?``, ``?``, ``$$``);
- :func:`read_env_file`: the ``KEY=value`` lines of a ``.env`` file;
- :func:`check_compose_file`: validation against the Compose Specification's
  JSON schema with ``check-jsonschema``, which ships that schema.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

__all__ = [
    "Instruction",
    "Stage",
    "UnsetVariable",
    "check_compose_file",
    "interpolate",
    "load_compose",
    "parse_dockerfile",
    "read_env_file",
    "referenced_variables",
]


@dataclasses.dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: ``keyword`` upper-cased, ``arguments`` as written."""

    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form ``CMD``/``ENTRYPOINT``/``RUN``."""
        value = json.loads(self.arguments)
        assert isinstance(value, list), f"{self.keyword} is not in exec form: {self.arguments}"
        assert all(isinstance(item, str) for item in value)
        return value

    def flags(self) -> dict[str, str]:
        """The ``--name=value`` flags in front of the arguments (``COPY --from=build``)."""
        found = {}
        for word in shlex.split(self.arguments):
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            found[name] = value
        return found

    def words(self) -> list[str]:
        """The arguments split as a shell would, flags removed."""
        return [word for word in shlex.split(self.arguments) if not word.startswith("--")]


@dataclasses.dataclass
class Stage:
    """A build stage: its base image, its name, its instructions after ``FROM``."""

    base: str
    name: str | None
    instructions: list[Instruction] = dataclasses.field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The variables the stage's ``ENV`` instructions set (``KEY=value`` forms)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.arguments):
                key, sep, value = word.partition("=")
                assert sep, f"ENV uses the legacy 'ENV key value' form: {instruction.arguments}"
                values[key] = value
        return values


def _logical_lines(text: str) -> t.Iterator[str]:
    buffered: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue  # comments (and parser directives) may sit inside a continued instruction
        if line.endswith("\\"):
            buffered.append(line[:-1].strip())
            continue
        buffered.append(line)
        joined = " ".join(part for part in buffered if part)
        buffered = []
        if joined:
            yield joined
    if buffered:
        raise ValueError("the Dockerfile ends inside a continued instruction")


def parse_dockerfile(path: Path) -> list[Stage]:
    """The build stages of the Dockerfile at ``path``, in order."""
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        arguments = arguments.strip()
        if keyword == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, arguments))
        elif keyword != "ARG":
            raise ValueError(f"{keyword} before the first FROM in {path}")
    return stages


def load_compose(path: Path) -> dict[str, t.Any]:
    """The compose file at ``path`` as plain data (before interpolation)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def read_env_file(path: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of a ``.env`` file; comments and blank lines skipped."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}:{number}: not KEY=value: {raw!r}"
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), f"{path}:{number}: {raw!r}"
        values[key] = value
    return values


class UnsetVariable(LookupError):
    """A ``${VAR:?message}`` met an unset (or empty) variable; ``str()`` is Compose's message."""


_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<operator>:?[-?])(?P<argument>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str, variables: t.Mapping[str, str]) -> str:
    """``value`` with its variable references replaced as Compose replaces them.

    :raises UnsetVariable: for a required variable that ``variables`` lacks.
    """

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        operator = match["operator"]
        current = variables.get(name)
        missing = not current if operator in (":-", ":?") else current is None
        if operator and operator.endswith("?") and missing:
            raise UnsetVariable(f"required variable {name} is missing a value: {match['argument']}")
        if operator and operator.endswith("-") and missing:
            return match["argument"]
        return current or ""

    return _REFERENCE.sub(replace, value)


def referenced_variables(data: t.Any) -> dict[str, str | None]:
    """Every variable referenced in ``data`` (strings anywhere in it), with its operator."""
    found: dict[str, str | None] = {}
    if isinstance(data, str):
        for match in _REFERENCE.finditer(data):
            name = match["braced"] or match["bare"]
            if name:
                found.setdefault(name, match["operator"])
    elif isinstance(data, dict):
        for key, value in data.items():
            found.update((k, v) for k, v in referenced_variables(value).items() if k not in found)
            found.update((k, v) for k, v in referenced_variables(key).items() if k not in found)
    elif isinstance(data, list):
        for item in data:
            found.update((k, v) for k, v in referenced_variables(item).items() if k not in found)
    return found


def check_compose_file(path: Path) -> subprocess.CompletedProcess[str]:
    """Validate ``path`` against the Compose Specification schema that check-jsonschema ships."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
