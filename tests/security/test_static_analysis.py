"""bandit over the package; the dependency set the vulnerability audit covers."""

from __future__ import annotations

import json
import subprocess
import sys

from reliability.figures import FIGURES
from reliability.stackrun import REPOSITORY

from .dependency_audit import runtime_dependencies


def test_bandit_finds_no_unresolved_high_severity_issue() -> None:
    """High-severity findings must be fixed, or marked ``# nosec <id>`` with the reason."""
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-r", "flaskstack", "-f", "json", "-q"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: issues found (any severity)
    report = json.loads(result.stdout)
    assert report["errors"] == [], report["errors"]
    high = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
        for r in report["results"]
        if r["issue_severity"] == "HIGH"
    ]
    totals = report["metrics"]["_totals"]
    FIGURES.detail(
        "bandit",
        {
            "lines": totals["loc"],
            "high": len(high),
            "medium": totals["SEVERITY.MEDIUM"],
            "low": totals["SEVERITY.LOW"],
            "nosec": totals["nosec"],
        },
    )
    assert high == [], "\n".join(high)


def test_the_audited_set_is_the_runtime_dependency_closure() -> None:
    """What ``dependency_audit.py`` audits: flaskstack[postgres] and everything it pulls in.

    The audit itself asks PyPI and runs as its own CI step (see the module), on the
    default interpreter, whose dependency set is the newest one.
    """
    dependencies = runtime_dependencies()
    assert {"flask", "werkzeug", "sqlalchemy", "psycopg", "redis", "flask-wtf"} <= set(dependencies)
    assert not {"pytest", "hypothesis", "gunicorn", "bandit"} & set(dependencies)
    FIGURES.detail("dependency_audit_set", dependencies)
