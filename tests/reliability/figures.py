"""The figures the reliability and security suites report, and where they go.

Tests add to :data:`FIGURES` (faults survived, inputs tried, payloads
refused, requests served, 5xx seen, writes lost...). At the end of the run
the conftests print a summary and write everything as JSON to
``$FLASKSTACK_FIGURES`` (default: ``flaskstack-figures.json`` in the system's
temporary directory), outside the work tree.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    import pytest

__all__ = ["FIGURES", "Figures"]

# Read at import: the suite's autouse fixtures empty FLASKSTACK_* variables during tests.
_PATH = os.environ.get("FLASKSTACK_FIGURES")


class Figures:
    """Named counters plus free-form details, per test."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.details: dict[str, t.Any] = {}
        self._reported = False

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name``."""
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + amount

    def detail(self, name: str, value: t.Any) -> None:
        """Keep ``value`` (JSON-ready) under ``name``."""
        with self._lock:
            self.details[name] = value

    @property
    def path(self) -> Path:
        """Where the JSON goes."""
        default = Path(tempfile.gettempdir()) / "flaskstack-figures.json"
        return Path(_PATH) if _PATH else default

    def write(self) -> Path:
        """Write the figures as JSON; return the path."""
        document = {
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "counters": dict(sorted(self.counters.items())),
            "details": self.details,
        }
        self.path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        return self.path

    def report(self, terminal: pytest.TerminalReporter) -> None:
        """Print the counters once per run and write the JSON file."""
        if self._reported or not (self.counters or self.details):
            return
        self._reported = True
        path = self.write()
        terminal.section("flaskstack reliability and security figures")
        width = max(len(name) for name in self.counters) if self.counters else 0
        for name, value in sorted(self.counters.items()):
            terminal.line(f"{name:<{width}}  {value}")
        terminal.line(f"(details: {path})")


FIGURES = Figures()
"""The one collector of the run."""
