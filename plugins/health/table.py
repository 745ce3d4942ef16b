"""Summary table of a health run (host × check: pass/FAIL/skip) in the terminal and in the Allure results.

A test takes part by carrying the user property `health_cell` = (host, column), set at collection; the
columns are the check registry's (plugins/health/registry.py). Works under pytest-xdist: the controller
sees every worker's reports (user properties travel with them).
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest

from plugins.health.registry import COLUMNS
from plugins.report import allure_output
from plugins.report.tables import render

CELL = "health_cell"
STATE = "health_state"  # (host, what PVE says of it): the table's state column
NODE = "health_node"  # (host, the node it runs on now): the table's node column


class HealthTable:
    """Collects the outcome of every health test per (host, column) and reports the table at the end."""

    def __init__(self, config: pytest.Config):
        """Start an empty table for this session."""
        self.config = config
        self.cells: dict[tuple[str, str], dict[str, str]] = {}
        self.states: dict[str, str] = {}
        self.nodes: dict[str, str] = {}
        self.started = time.time()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record a health test's outcome in its cell (setup skip = skip, any error = fail)."""
        properties = dict(report.user_properties)
        cell = properties.get(CELL)
        if properties.get(STATE):
            host, word = properties[STATE]
            self.states[host] = word
        if properties.get(NODE):
            host, node = properties[NODE]
            self.nodes[host] = node
        if cell and (report.when == "call" or report.skipped or report.failed):
            outcome = "skip" if report.skipped else "pass" if report.passed else "fail"
            self.cells.setdefault(tuple(cell), {})[report.nodeid] = outcome

    def pytest_terminal_summary(self, terminalreporter) -> None:
        """Print the host × check table after the run."""
        if not self.cells:
            return
        columns, rows = table_rows(self.cells, self.states, self.nodes)
        terminalreporter.write_sep("=", "health summary (host × check)")
        terminalreporter.write_line(render(columns, rows))
        terminalreporter.write_line("pass* = passed, some items skipped; FAIL n/m = n of m containers/packages failed")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Attach the table to the Allure results when allure-pytest writes some (controller only under xdist)."""
        directory = allure_output.alluredir(self.config)
        if directory and self.cells and not hasattr(self.config, "workerinput"):
            columns, rows = table_rows(self.cells, self.states, self.nodes)
            write_allure_summary(directory, columns, rows, self.started)


def cell_text(outcomes: list[str]) -> str:
    """Fold the outcomes of one cell: `pass`, `skip`, `FAIL`, `FAIL 1/3` (several containers/packages)."""
    if not outcomes:
        return "-"
    failed = outcomes.count("fail")
    if failed:
        return "FAIL" if len(outcomes) == 1 else f"FAIL {failed}/{len(outcomes)}"
    if "pass" in outcomes:
        return "pass" if "skip" not in outcomes else "pass*"
    return "skip"


def table_rows(cells: dict, states: dict[str, str] | None = None,
               nodes: dict[str, str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Give (columns, rows): one row per host in first-seen order, one column per check that ran; with the hosts'
    states from PVE, a `state` column after the host (in capitals when the host is not running), and with their
    nodes a `node` column before it (the node each runs on now; one node is still shown)."""
    hosts = list(dict.fromkeys(host for host, _ in cells))
    used = [c for c in COLUMNS if any(column == c for _, column in cells)]
    used += sorted({column for _, column in cells} - set(used))
    rows = [[host] + [cell_text(list(cells.get((host, c), {}).values())) for c in used] for host in hosts]
    lead = ["host"]
    if nodes:
        for row in rows:
            row.insert(1, nodes.get(row[0], "-"))
        lead.append("node")
    if states:
        for row in rows:
            word = states.get(row[0], "-")
            row.insert(len(lead), word if word in ("running", "-") else word.upper())
        lead.append("state")
    return [*lead, *used], rows


def write_allure_summary(directory: Path, columns: list[str], rows: list[list[str]], started: float,
                         suite: str = "health", axes: str = "host × check", noun: str = "health check") -> None:
    """Write one Allure result `<suite> summary` carrying the table as text and CSV attachments."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows([columns, *rows])
    failed = any(value.startswith("FAIL") for row in rows for value in row[1:])
    allure_output.write_result(
        directory, name=f"{suite} summary ({axes})", full_name=f"suites.{suite}#summary",
        status="failed" if failed else "passed",
        message=f"some {noun}s failed" if failed else f"every {noun} passed",
        labels={"suite": suite, "feature": "summary"},
        attachments={f"{suite} summary": render(columns, rows) + "\n",
                     f"{suite} summary (CSV)": (buffer.getvalue(), "text/csv")},
        started=started, stopped=time.time())
