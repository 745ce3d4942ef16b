"""The health package's pytest entry: the `check` marker of the health tests, and the host × check table.

Listed by the root conftest. The table acts only for tests that carry a health cell (suites/health).
"""

from __future__ import annotations

import pytest

from plugins.health.table import HealthTable


def pytest_configure(config: pytest.Config) -> None:
    """Declare the `check(name)` marker and register the session's table."""
    config.addinivalue_line("markers", "check(name): the plugins/health/registry.py check a health test asserts")
    if not config.pluginmanager.has_plugin("health-table"):
        config.pluginmanager.register(HealthTable(config), "health-table")
