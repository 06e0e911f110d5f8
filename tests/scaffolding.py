"""Projects made by ``flaskstack new``, for the tests that build and run one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["clean_environment", "generate_project"]


def clean_environment() -> dict[str, str]:
    """This process's environment without anything that configures an app or a test run."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FLASK_", "FLASKSTACK_", "PYTEST_", "COV_CORE_", "COVERAGE_"))
        and name not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MAIL_URL", "PYTHONPATH")
    }


def generate_project(name: str, root: Path) -> str:
    """Run ``flaskstack new NAME --directory ROOT``; return what it printed."""
    script = shutil.which("flaskstack", path=str(Path(sys.executable).parent))
    assert script is not None, "no flaskstack console script: reinstall (pip install -e .)"
    created = subprocess.run(
        [script, "new", name, "--directory", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_environment(),
        check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    return created.stdout
