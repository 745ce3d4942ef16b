"""The security suite's summary: host × control (pass/FAIL), in the terminal and in the Allure results.

A test takes part by carrying the user property `security_cell` = (host, control), set at collection. The cell
folding and the text table are the health table's (plugins/health/table.py, plugins/report/tables.py).
"""

from __future__ import annotations

import time

import pytest

from plugins.health.table import cell_text, write_allure_summary
from plugins.report import allure_output
from plugins.report.tables import render
from plugins.security.findings import CONTROLS

CELL = "security_cell"


def table_rows(cells: dict[tuple[str, str], dict[str, str]]) -> tuple[list[str], list[list[str]]]:
    """(columns, rows): one row per host in first-seen order, one column per control that ran, in CONTROLS order."""
    hosts = list(dict.fromkeys(host for host, _ in cells))
    used = [c for c in CONTROLS if any(control == c for _, control in cells)]
    return ["host", *used], [[host] + [cell_text(list(cells.get((host, c), {}).values())) for c in used]
                             for host in hosts]


class SecurityTable:
    """Collects each security test's outcome per (host, control) and reports the table at the end."""

    def __init__(self, config: pytest.Config):
        """Start an empty table for this session."""
        self.config = config
        self.cells: dict[tuple[str, str], dict[str, str]] = {}
        self.started = time.time()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record a security test's outcome in its cell (setup skip = skip, any error = fail)."""
        cell = dict(report.user_properties).get(CELL)
        if cell and (report.when == "call" or report.skipped or report.failed):
            outcome = "skip" if report.skipped else "pass" if report.passed else "fail"
            self.cells.setdefault(tuple(cell), {})[report.nodeid] = outcome

    def pytest_terminal_summary(self, terminalreporter) -> None:
        """Print the host × control table after the run."""
        if not self.cells:
            return
        columns, rows = table_rows(self.cells)
        terminalreporter.write_sep("=", "security summary (host × control)")
        terminalreporter.write_line(render(columns, rows))
        terminalreporter.write_line("FAIL n/m = n of m routes failed (tls, headers: the proxy's routes)")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Attach the table to the Allure results when allure-pytest writes some."""
        directory = allure_output.alluredir(self.config)
        if not directory or not self.cells or hasattr(self.config, "workerinput"):
            return
        columns, rows = table_rows(self.cells)
        write_allure_summary(directory, columns, rows, self.started,
                             suite="security", axes="host × control", noun="security control")
