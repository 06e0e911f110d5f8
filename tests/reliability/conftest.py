"""The reliability suite's fixtures live in :mod:`reliability.stackfixtures`, shared with
the security suite and registered once per run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reliability import stackfixtures

if TYPE_CHECKING:
    import pytest

_PLUGIN = "flaskstack-stack-fixtures"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(_PLUGIN):
        config.pluginmanager.register(stackfixtures, _PLUGIN)
