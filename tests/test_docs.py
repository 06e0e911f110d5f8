"""The documentation says what the code does.

- The quickstart page is executed: its project (``docs/quickstart/``, which
  the page includes file by file) is copied into a temporary directory, and
  every ``console`` block of ``docs/quickstart.rst`` runs there in one shell
  session (the development server included), each command's output checked
  against the lines the page shows. One of those commands runs the project's
  own tests with the pytest plugin.
- The documentation is built once (Sphinx, warnings as errors), and its
  inventory must hold every public name (``__all__`` of :mod:`flaskstack` and
  of each of its modules), every setting of the settings table and every
  check id of the catalogue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import pkgutil
import re
import shutil
import sqlite3
import subprocess
import sys
import typing as t
import zlib
from pathlib import Path

import pytest
from loopback import free_port

import flaskstack
from flaskstack.checks import CATALOGUE
from flaskstack.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
QUICKSTART_PAGE = DOCS / "quickstart.rst"
QUICKSTART_PROJECT = DOCS / "quickstart"
BIN = Path(sys.executable).parent

# The port the quickstart page shows; the test serves on a free one instead.
SHOWN_ADDRESS = "127.0.0.1:5000"
# Environment variables that would change what the quickstart does.
_FOREIGN = ("FLASK_", "FLASKSTACK_", "PYTEST_", "SECRET_KEY", "DATABASE_URL", "REDIS_URL")


# -- the quickstart, executed ---------------------------------------------------------------


@dataclasses.dataclass
class Command:
    """A ``$`` line of a console block and the output lines the page shows under it."""

    line: str
    expected: list[str]
    output: str = ""
    status: int | None = None


def console_commands(page: str) -> list[Command]:
    """Every command of every ``.. code-block:: console`` of ``page``, in order."""
    commands: list[Command] = []
    lines = page.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != ".. code-block:: console":
            index += 1
            continue
        index += 1
        block: list[str] = []
        while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
            block.append(lines[index])
            index += 1
        body = [line for line in block if line.strip() and not line.strip().startswith(":")]
        indent = min(len(line) - len(line.lstrip()) for line in body)
        for line in (line[indent:].rstrip() for line in body):
            if line.startswith("$ "):
                commands.append(Command(line[2:], []))
            else:
                assert commands, f"output before any command in a console block: {line!r}"
                commands[-1].expected.append(line)
    return commands


def _line_pattern(expected: str) -> re.Pattern[str]:
    """``...`` in a shown line stands for any text, as in doctest."""
    return re.compile(".*".join(re.escape(part) for part in expected.split("...")))


def missing_lines(expected: list[str], output: str) -> list[str]:
    """The shown lines that ``output`` lacks (they must appear in this order)."""
    actual = [line.rstrip() for line in output.splitlines()]
    position = 0
    missing = []
    for line in expected:
        pattern = _line_pattern(line)
        for offset, candidate in enumerate(actual[position:]):
            if pattern.fullmatch(candidate):
                position += offset + 1
                break
        else:
            missing.append(line)
    return missing


def _script(commands: list[Command], port: int) -> str:
    """One bash session running ``commands``, with a marker before each output."""
    address = f"127.0.0.1:{port}"
    parts = ["trap 'kill $SERVER 2>/dev/null' EXIT"]
    for number, command in enumerate(commands):
        line = command.line.replace(SHOWN_ADDRESS, address)
        parts.append(f"printf '\\n@@@ {number}\\n'")
        if re.fullmatch(r"flask --app \w+ run", line):
            # The page starts the server in one terminal and uses it from
            # another; here it runs in the background until the session ends.
            parts.append(f"{line} --port {port} > server.log 2>&1 & SERVER=$!")
            parts.append(
                f"for _ in $(seq 300); do curl -s -o /dev/null http://{address}/healthz && break; "
                "sleep 0.1; done; cat server.log; true"
            )
        else:
            parts.append(f"{{ {line} ; }} 2>&1")
        parts.append('printf "\\n@@@ status $?\\n"')
    return "\n".join(parts) + "\n"


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Command]]:
    """The quickstart project after every command of the page ran in it."""
    project = tmp_path_factory.mktemp("quickstart") / "project"
    shutil.copytree(
        QUICKSTART_PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", "instance")
    )
    commands = console_commands(QUICKSTART_PAGE.read_text(encoding="utf-8"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run(
        ["bash", "-c", _script(commands, port)],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    chunks = re.split(r"^@@@ (\d+)$", result.stdout, flags=re.MULTILINE)
    for number, chunk in zip(chunks[1::2], chunks[2::2], strict=True):
        output, _, status = chunk.rpartition("\n@@@ status ")
        commands[int(number)].output = output.strip("\n").replace(str(port), "5000")
        commands[int(number)].status = int(status.split()[0]) if status.strip() else None
    return project, commands


def test_the_quickstart_page_runs_commands_that_exist(
    quickstart: tuple[Path, list[Command]],
) -> None:
    _, commands = quickstart
    lines = [command.line for command in commands]
    assert any(line.startswith("flask --app myapp db migrate") for line in lines)
    assert any(line.startswith("flask --app myapp run") for line in lines)
    assert any("/api/notes" in line for line in lines)
    assert any(line.startswith("pytest") for line in lines)


def test_every_quickstart_command_prints_what_the_page_shows(
    quickstart: tuple[Path, list[Command]],
) -> None:
    _, commands = quickstart
    for command in commands:
        assert command.status == 0, f"$ {command.line}\n{command.output}"
        missing = missing_lines(command.expected, command.output)
        assert not missing, f"$ {command.line}\nmissing {missing} in:\n{command.output}"


def test_the_quickstart_project_tests_ran_and_passed(
    quickstart: tuple[Path, list[Command]],
) -> None:
    _, commands = quickstart
    (run,) = [command for command in commands if command.line.startswith("pytest")]
    assert re.search(r"^(\d+) passed in ", run.output, flags=re.MULTILINE), run.output
    tests = (QUICKSTART_PROJECT / "tests" / "test_notes.py").read_text(encoding="utf-8")
    count = len(re.findall(r"^def test_", tests, flags=re.MULTILINE))
    assert f"{count} passed in " in run.output


def test_the_first_migration_names_constraints_by_the_convention(
    quickstart: tuple[Path, list[Command]],
) -> None:
    # docs/guides/models.rst quotes these names.
    project, _ = quickstart
    (migration,) = (project / "migrations" / "versions").glob("*_users_and_notes.py")
    text = migration.read_text(encoding="utf-8")
    for name in ("pk_note", "uq_users_email", "fk_note_author_id_users", "ix_api_tokens_user_id"):
        assert f"'{name}'" in text or f'"{name}"' in text, name


def test_the_quickstart_app_served_the_note_it_was_given(
    quickstart: tuple[Path, list[Command]],
) -> None:
    project, _ = quickstart
    database = project / "instance" / "myapp.sqlite3"
    assert database.is_file()
    with contextlib.closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(
            "SELECT note.title, users.email FROM note JOIN users ON users.id = note.author_id"
        ).fetchall()
    assert rows == [("Hello", "ann@example.com")]


def test_console_blocks_are_read_and_matched_as_documented() -> None:
    page = """
Text.

.. code-block:: console

    $ echo one
    one
    $ printf 'a\\nb 42\\n'
    b ...

.. code-block:: text

    $ not run
"""
    commands = console_commands(page)
    assert [(c.line, c.expected) for c in commands] == [
        ("echo one", ["one"]),
        ("printf 'a\\nb 42\\n'", ["b ..."]),
    ]
    assert missing_lines(["b ..."], "a\nb 42\n") == []
    assert missing_lines(["b ...", "a"], "a\nb 42\n") == ["a"]
    assert missing_lines(["one"], "one two") == ["one"]


# -- the reference pages, built ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Built:
    html: Path
    inventory: dict[str, set[str]]
    """Object names by Sphinx role (``py:class``, ``std:setting``…)."""


def read_inventory(path: Path) -> dict[str, set[str]]:
    """Parse a Sphinx ``objects.inv`` (version 2)."""
    data = path.read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = data.index(b"\n", header_end) + 1
    assert data.startswith(b"# Sphinx inventory version 2"), data[:40]
    names: dict[str, set[str]] = {}
    for line in zlib.decompress(data[header_end:]).decode("utf-8").splitlines():
        match = re.match(r"(.+?)\s+(\S+:\S+)\s+-?\d+\s", line)
        if match:
            names.setdefault(match.group(2), set()).add(match.group(1))
    return names


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The documentation, built as ``make docs`` builds it (warnings are errors)."""
    out = tmp_path_factory.mktemp("docs")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"),
            *("-d", str(out / "doctrees"), str(DOCS), str(out / "html")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return Built(out / "html", read_inventory(out / "html" / "objects.inv"))


def public_modules() -> list[t.Any]:
    """:mod:`flaskstack` and each of its modules whose name has no part starting with ``_``."""
    modules = [flaskstack]
    for info in pkgutil.walk_packages(flaskstack.__path__, "flaskstack."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            modules.append(importlib.import_module(info.name))
    return modules


def _resolve(name: str) -> t.Any:
    """The object a documented dotted name stands for, or ``None``."""
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value: t.Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                value = getattr(value, attribute)
        except AttributeError:
            return None
        return value
    return None


def test_every_public_name_is_in_the_api_reference(built: Built) -> None:
    documented_names = set().union(
        *(names for role, names in built.inventory.items() if role.startswith("py:"))
    )
    resolved = (_resolve(name) for name in documented_names)
    documented_objects = {id(value) for value in resolved if value is not None}
    missing = []
    for module in public_modules():
        for name in getattr(module, "__all__", ()):
            if name == "__version__":
                continue
            qualified = f"{module.__name__}.{name}"
            if qualified in documented_names:
                continue
            if id(getattr(module, name)) not in documented_objects:
                missing.append(qualified)
    assert not missing, f"not in docs/api.rst: {missing}"


def test_every_setting_is_in_the_config_reference(built: Built) -> None:
    assert built.inventory["std:setting"] == {setting.key for setting in SETTINGS}
    page = (built.html / "config.html").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f'id="setting-{setting.key}"' in page, setting.key
        for variable in setting.env:
            assert variable in page, (setting.key, variable)


def test_every_check_is_in_the_check_reference(built: Built) -> None:
    assert built.inventory["std:check"] == set(CATALOGUE)
    page = (built.html / "checks.html").read_text(encoding="utf-8")
    for check_id in CATALOGUE:
        assert f'id="check-{check_id}"' in page, check_id
