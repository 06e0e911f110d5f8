"""The distributions: what ``pip install flaskstack`` gets.

The sdist and the wheel are built once with ``python -m build`` (the wheel
from the sdist, as a package index would), so a file missing from either
shows up here rather than in a user's ``flask db init``.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MIGRATION_TEMPLATE = ("README", "alembic.ini.mako", "env.py", "script.py.mako")


def _single(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {directory}, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the freshly built sdist and wheel."""
    outdir = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"python -m build exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return outdir


@pytest.fixture(scope="module")
def wheel_names(dist: Path) -> set[str]:
    with zipfile.ZipFile(_single(dist, "flaskstack-*.whl")) as wheel:
        return set(wheel.namelist())


@pytest.fixture(scope="module")
def sdist_names(dist: Path) -> set[str]:
    with tarfile.open(_single(dist, "flaskstack-*.tar.gz")) as sdist:
        # Drop the leading "flaskstack-<version>/".
        return {name.partition("/")[2] for name in sdist.getnames()}


def test_wheel_ships_type_information(wheel_names: set[str]) -> None:
    assert "flaskstack/py.typed" in wheel_names


@pytest.mark.parametrize("name", MIGRATION_TEMPLATE)
def test_wheel_ships_the_migration_template(wheel_names: set[str], name: str) -> None:
    assert f"flaskstack/templates/migrations/flask/{name}" in wheel_names


@pytest.mark.parametrize("name", MIGRATION_TEMPLATE)
def test_sdist_ships_the_migration_template(sdist_names: set[str], name: str) -> None:
    assert f"flaskstack/templates/migrations/flask/{name}" in sdist_names


def test_wheel_holds_only_the_flaskstack_package(wheel_names: set[str]) -> None:
    top_level = {name.split("/", 1)[0] for name in wheel_names}
    metadata = {name for name in top_level if name.endswith(".dist-info")}
    assert top_level - metadata == {"flaskstack"}


def test_wheel_registers_the_flask_stack_command(dist: Path) -> None:
    with zipfile.ZipFile(_single(dist, "flaskstack-*.whl")) as wheel:
        info = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
        entry_points = wheel.read(info).decode()
    assert "[flask.commands]" in entry_points
    assert "stack = flaskstack.cli:stack" in entry_points


SCRIPTS = (
    "flaskstack/rest/static/api-docs.js",
    "flaskstack/auth/static/passkeys.js",
    "flaskstack/admin/static/admin.js",
)
"""The scripts the package serves itself (no inline script, so a strict CSP applies)."""


def test_wheel_ships_the_scripts(wheel_names: set[str]) -> None:
    assert set(SCRIPTS) <= wheel_names


def test_sdist_ships_the_scripts(sdist_names: set[str]) -> None:
    assert set(SCRIPTS) <= sdist_names
