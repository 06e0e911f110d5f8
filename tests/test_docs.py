"""The documentation says what the code does.

The documentation is built once (Sphinx, warnings as errors), and its
inventory must hold every public name (``__all__`` of :mod:`flaskstack` and
of each of its modules), every setting of the settings table and every check
id of the catalogue. The samples of ``flask stack check`` and ``flask stack
config`` are made by running the commands during the build; here the built
pages must show that real output. The quickstart page is executed by
``tests/test_quickstart.py``.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import pkgutil
import re
import subprocess
import sys
import typing as t
import zlib
from pathlib import Path

import pytest

import flaskstack
from flaskstack.checks import CATALOGUE
from flaskstack.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


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


def _console_samples(page: str) -> list[str]:
    """The text of each generated console sample of a built page, markup removed."""
    blocks = re.findall(
        r'<div class="highlight-console notranslate"><div class="highlight"><pre>(.*?)</pre>',
        page,
        flags=re.DOTALL,
    )
    return [html.unescape(re.sub(r"<[^>]+>", "", block)) for block in blocks]


def test_the_check_samples_are_the_commands_real_output(built: Built) -> None:
    page = (built.html / "checks.html").read_text(encoding="utf-8")
    pending, deploy = _console_samples(page)
    assert pending.startswith("$ flask --app myapp stack check\n"), pending
    assert "migrations.E001: " in pending
    assert re.search(r"^System check identified \d+ issue\(s\) \(0 silenced\)\.$", pending, re.M)
    assert deploy.startswith("$ flask --app myapp stack check --deploy\n"), deploy
    found = set(re.findall(r"^  ([a-z]+\.[A-Z]\d{3}): ", deploy, flags=re.MULTILINE))
    assert {"config.E002", "config.E006", "database.W001"} <= found, deploy
    assert found <= set(CATALOGUE), found - set(CATALOGUE)
    # The build's temporary directory is shown as the reader's project.
    assert "/home/me/myapp/instance/myapp.sqlite3" in deploy
    assert "Traceback" not in pending + deploy


def test_the_config_sample_is_the_commands_real_output(built: Built) -> None:
    page = (built.html / "config.html").read_text(encoding="utf-8")
    (sample,) = _console_samples(page)
    lines = sample.splitlines()
    assert lines[:2] == ["$ flask --app myapp stack config", "profile: development"], sample
    assert lines[-1] == "...", sample
    keys = {line.split()[0] for line in lines[2:-1]}
    assert "FLASKSTACK_PROFILE" in keys, sample
    assert keys <= {setting.key for setting in SETTINGS}, sample
    assert "generated (/home/me/myapp/instance/secret_key)" in sample
