"""Deployment stages: record each stage's outcome and never run a stage after an earlier one failed.

A stage is a module of suites/deploy marked `pytest.mark.stage("name", ...)`:
- `sequential=True` (default): inside the stage, a failure skips the stage's remaining tests
  (no apply after a failed plan, no second plan after a failed apply);
- `plan_only=False`: the stage is skipped under --plan-only (snapshot, apply, health);
- `always=True`: runs even after a failure (notify reports the failure).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from plugins.deploy_session import get_session


def _stage(item: pytest.Item) -> pytest.Mark | None:
    return item.get_closest_marker("stage")


def pytest_configure(config: pytest.Config) -> None:
    """Declare the stage marker."""
    config.addinivalue_line("markers", "stage(name, sequential=True, plan_only=True, always=False): deploy stage")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a stage's test when an earlier stage (or an earlier test of a sequential stage) failed."""
    mark = _stage(item)
    session = get_session(item.config)
    if mark is None or session is None:
        return
    name = mark.args[0]
    record = session.stage(name)
    if record.outcome == "not run":
        record.outcome = "running"
        record.started = time.monotonic()
    if session.plan_only and not mark.kwargs.get("plan_only", True):
        pytest.skip(f"--plan-only: stage '{name}' is not part of a plan (nothing is changed or checked live)")
    if mark.kwargs.get("always", False):
        return
    failed = [r.name for r in session.stages.values() if r.outcome == "failed" and r.name != name]
    if failed:
        pytest.skip(f"stage '{failed[0]}' failed earlier: '{name}' is not run against a half-deployed lab")
    if record.outcome == "failed" and mark.kwargs.get("sequential", True):
        pytest.skip(f"an earlier step of stage '{name}' failed: {record.summary or 'see above'}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Record each stage's outcome on the deploy session."""
    report = yield
    mark = _stage(item)
    session = get_session(item.config)
    if mark is None or session is None:
        return report
    record = session.stage(mark.args[0])
    if report.when == "teardown":
        record.ended = time.monotonic()
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(AssertionError):
        report.longrepr = _diagnosis(item, call.excinfo)
    if report.failed:
        if record.outcome != "failed":
            record.summary = _first_line(report)
        record.outcome = "failed"
        session.failures.append(f"{mark.args[0]}: {item.name}: {_first_line(report)}")
    elif report.when == "call" and report.passed and record.outcome == "running":
        record.outcome = "passed"
    elif report.skipped and record.outcome == "running":
        record.outcome = "skipped"
    return report


@dataclass
class StageDiagnosis:
    """A stage's failed promise: its message and where it is, not the repr of every fixture it used."""

    path: str
    lineno: int
    message: str

    @property
    def reprcrash(self) -> StageDiagnosis:
        """What pytest's short summary reads (a message, a path and a line)."""
        return self

    def toterminal(self, tw) -> None:
        """The message in red, then the place of the promise."""
        for line in self.message.splitlines():
            tw.line(f"E   {line}", red=True, bold=True)
        tw.line(f"{self.path}:{self.lineno}")

    def __str__(self) -> str:
        return f"{self.message}\n{self.path}:{self.lineno}"


def _diagnosis(item: pytest.Item, excinfo: pytest.ExceptionInfo) -> StageDiagnosis:
    """The assertion's own message (pytest's 'assert … where …' explanation left out) and its place."""
    message = str(excinfo.value).split("\nassert ", 1)[0].strip() or "assertion failed"
    entry = excinfo.traceback[-1]
    return StageDiagnosis(str(entry.path), entry.lineno + 1, message)


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash else str(report.longrepr or "")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("assert "):
            return line.removeprefix("AssertionError: ").removeprefix("Failed: ")
    return text.strip()[:300]
