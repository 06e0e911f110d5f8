"""The quickstart page, executed as a new user would follow it.

Its project (``docs/quickstart/``, which the page includes file by file) is
copied into a temporary directory, and every ``console`` block of
``docs/quickstart.rst`` runs there in one shell session, from the first
command on: a new virtual environment, the page's ``pip install``, the
migrations, the development server, the API calls and the project's own
tests. Each command's output is checked against the lines the page shows.

The shell starts with a bare Python and nothing else on ``PATH``: ``flask``
and ``pytest`` exist only if the page's own install command brought them.
That command installs flaskstack from this working tree (a copy of the files
a wheel is built from) instead of the released package; pip finds the other
requirements where it is configured to (PyPI, its cache), at the versions of
the project's lock (``PIP_CONSTRAINT``), as every other install of the suite.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from loopback import free_port

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART_PAGE = ROOT / "docs" / "quickstart.rst"
QUICKSTART_PROJECT = ROOT / "docs" / "quickstart"
# The suite's installs take their versions from the lock, and so does the page's own
# `pip install` here: a new upstream release must not fail this test (`make test-latest`
# is where the newest releases are tried).
LOCK = ROOT / "requirements" / "lock.txt"
# What building flaskstack's wheel reads from the working tree.
DISTRIBUTION_FILES = ("pyproject.toml", "README.md")

# The port the quickstart page shows; the test serves on a free one instead.
SHOWN_ADDRESS = "127.0.0.1:5000"
# Environment variables that would change what the quickstart does or which
# flaskstack it imports.
_FOREIGN = (
    *("FLASK_", "FLASKSTACK_", "PYTEST_", "COV_", "COVERAGE_", "VIRTUAL_ENV", "PYTHON"),
    *("SECRET_KEY", "DATABASE_URL", "REDIS_URL"),
)


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


def is_install(line: str) -> bool:
    """Whether ``line`` is a ``pip install`` command."""
    words = shlex.split(line)
    return "pip" in words and "install" in words[words.index("pip") :]


def from_working_tree(line: str, source: Path) -> str:
    """``line`` with the requirement ``flaskstack`` (extras kept) pointing at ``source``."""
    words = shlex.split(line)
    replaced = [
        re.sub(r"\Aflaskstack(?=\[|\Z)", str(source), word) if not word.startswith("-") else word
        for word in words
    ]
    return shlex.join(replaced)


def _script(commands: list[Command], port: int, source: Path) -> str:
    """One bash session running ``commands``, with a marker before each output."""
    address = f"127.0.0.1:{port}"
    parts = ["trap 'kill $SERVER 2>/dev/null' EXIT"]
    for number, command in enumerate(commands):
        line = command.line.replace(SHOWN_ADDRESS, address)
        if is_install(line):
            line = from_working_tree(line, source)
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
            # Braces, not a subshell: `. .venv/bin/activate` must last.
            parts.append(f"{{ {line} ; }} 2>&1")
        parts.append('printf "\\n@@@ status $?\\n"')
    return "\n".join(parts) + "\n"


def _bare_path(directory: Path) -> str:
    """A ``PATH`` whose ``python`` is a bare interpreter and that finds no ``flask`` or ``pytest``.

    The system's tools (``bash``, ``curl``) stay; directories of Python
    environments and of other installs of flask or pytest go.
    """
    directory.mkdir()
    # The interpreter itself, not this environment's: a venv made from it
    # starts empty.
    (directory / "python").symlink_to(os.path.realpath(sys.executable))
    kept = [
        entry
        for entry in os.environ.get("PATH", os.defpath).split(os.pathsep)
        if entry
        and not any((Path(entry) / name).exists() for name in ("activate", "flask", "pytest"))
    ]
    return os.pathsep.join([str(directory), *kept])


def _working_tree_copy(target: Path) -> Path:
    """The files flaskstack's wheel is built from, copied so the build writes nothing here."""
    target.mkdir()
    for name in DISTRIBUTION_FILES:
        shutil.copy2(ROOT / name, target / name)
    shutil.copytree(
        ROOT / "flaskstack", target / "flaskstack", ignore=shutil.ignore_patterns("__pycache__")
    )
    return target


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Command]]:
    """The quickstart project after every command of the page ran in it."""
    base = tmp_path_factory.mktemp("quickstart")
    source = _working_tree_copy(base / "flaskstack-source")
    project = base / "project"
    shutil.copytree(
        QUICKSTART_PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", "instance")
    )
    commands = console_commands(QUICKSTART_PAGE.read_text(encoding="utf-8"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env["PATH"] = _bare_path(base / "bin")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_CONSTRAINT"] = str(LOCK)
    result = subprocess.run(
        ["bash", "-c", _script(commands, port, source)],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    chunks = re.split(r"^@@@ (\d+)$", result.stdout, flags=re.MULTILINE)
    for number, chunk in zip(chunks[1::2], chunks[2::2], strict=True):
        output, _, status = chunk.rpartition("\n@@@ status ")
        commands[int(number)].output = output.strip("\n").replace(str(port), "5000")
        commands[int(number)].status = int(status.split()[0]) if status.strip() else None
    return project, commands


def test_the_page_installs_what_it_uses_in_a_new_environment(
    quickstart: tuple[Path, list[Command]],
) -> None:
    project, commands = quickstart
    lines = [command.line for command in commands]
    (install,) = [line for line in lines if is_install(line)]
    first_use = min(
        index for index, line in enumerate(lines) if line.startswith(("flask ", "pytest"))
    )
    assert lines.index(install) < first_use, "the page uses flaskstack before installing it"
    assert lines[: lines.index(install)] == ["python -m venv .venv", ". .venv/bin/activate"]
    # pytest comes from the page's install, into the page's environment: a
    # pytest from elsewhere does not load flaskstack's plugin and stops at
    # the project's `flaskstack_app` setting.
    assert "pytest" in shlex.split(install)
    for script in ("flask", "pytest"):
        assert (project / ".venv" / "bin" / script).is_file(), script


def test_the_page_runs_commands_that_exist(quickstart: tuple[Path, list[Command]]) -> None:
    _, commands = quickstart
    lines = [command.line for command in commands]
    assert any(line.startswith("flask --app myapp db migrate") for line in lines)
    assert any(line.startswith("flask --app myapp run") for line in lines)
    assert any("/api/notes" in line for line in lines)
    assert any(line.startswith("pytest") for line in lines)


def test_every_command_prints_what_the_page_shows(
    quickstart: tuple[Path, list[Command]],
) -> None:
    _, commands = quickstart
    for command in commands:
        assert command.status == 0, f"$ {command.line}\n{command.output}"
        missing = missing_lines(command.expected, command.output)
        assert not missing, f"$ {command.line}\nmissing {missing} in:\n{command.output}"


def test_the_project_tests_ran_and_passed(quickstart: tuple[Path, list[Command]]) -> None:
    _, commands = quickstart
    (run,) = [command for command in commands if command.line.startswith("pytest")]
    assert "INTERNALERROR" not in run.output, run.output
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


def test_the_app_served_the_note_it_was_given(quickstart: tuple[Path, list[Command]]) -> None:
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


def test_the_install_command_takes_flaskstack_from_the_working_tree() -> None:
    source = Path("/tmp/src")
    assert is_install("python -m pip install flaskstack pytest")
    assert not is_install("pip --version")
    assert from_working_tree("python -m pip install flaskstack pytest", source) == (
        "python -m pip install /tmp/src pytest"
    )
    assert from_working_tree("pip install 'flaskstack[postgres]' pytest", source) == (
        "pip install '/tmp/src[postgres]' pytest"
    )
    assert from_working_tree("pip install flaskstack-extra", source) == (
        "pip install flaskstack-extra"
    )
