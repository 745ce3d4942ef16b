"""Stage gating: the stages' tests run in the pipeline's order, and never after an earlier stage failed.

Each stage's flags are its declaration in plugins/deploy/pipeline.py (the stage marker only names it):
- `sequential`: inside the stage, a failure skips the stage's remaining tests
  (no apply after a failed plan, no second plan after a failed apply);
- `plan_only=False`: the stage is skipped under --plan-only (snapshot, apply, health);
- `always`: runs even after a failure (notify reports the failure).
plugins/deploy/plugin.py calls these from pytest's hooks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from plugins.deploy.pipeline import STAGES, Stage
from plugins.deploy.session import DeploySession


def stage_of(item: pytest.Item) -> Stage | None:
    """The pipeline stage a test belongs to (its `stage` marker), or None."""
    mark = item.get_closest_marker("stage")
    return None if mark is None else STAGES[mark.args[0]]


def order_stages(items: list[pytest.Item]) -> None:
    """Give each stage's tests the pipeline's order (pytest-order sorts by it); refuse a second source of order."""
    for item in items:
        mark = item.get_closest_marker("stage")
        if mark is None:
            continue
        if len(mark.args) != 1 or mark.kwargs:
            raise pytest.UsageError(f"{item.nodeid}: a stage is marked pytest.mark.stage(\"<name>\") only; its "
                                    "flags are declared in plugins/deploy/pipeline.py")
        if mark.args[0] not in STAGES:
            raise pytest.UsageError(f"{item.nodeid}: no deploy stage '{mark.args[0]}' in plugins/deploy/pipeline.py; "
                                    f"stages: {', '.join(STAGES)}")
        if item.get_closest_marker("order") is not None:
            raise pytest.UsageError(f"{item.nodeid}: a stage's order is its place in plugins/deploy/pipeline.py, "
                                    "not a pytest.mark.order")
        item.add_marker(pytest.mark.order(STAGES[mark.args[0]].order))


def gate(item: pytest.Item, session: DeploySession) -> None:
    """Skip a stage's test when an earlier stage (or an earlier test of a sequential stage) failed."""
    stage = stage_of(item)
    if stage is None:
        return
    record = session.stage(stage.name)
    if record.outcome == "not run":
        record.outcome = "running"
        record.started = time.monotonic()
    if session.plan_only and not stage.plan_only:
        pytest.skip(f"--plan-only: stage '{stage.name}' is not part of a plan (nothing is changed or checked live)")
    if stage.always:
        return
    failed = [r.name for r in session.stages.values() if r.outcome == "failed" and r.name != stage.name]
    if failed:
        pytest.skip(f"stage '{failed[0]}' failed earlier: '{stage.name}' is not run against a half-deployed lab")
    if record.outcome == "failed" and stage.sequential:
        pytest.skip(f"an earlier step of stage '{stage.name}' failed: {record.summary or 'see above'}")


def record_outcome(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport,
                   session: DeploySession) -> None:
    """Record a stage test's outcome on the deploy session; an assertion's report is its own message."""
    stage = stage_of(item)
    if stage is None:
        return
    record = session.stage(stage.name)
    if report.when == "teardown":
        record.ended = time.monotonic()
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(AssertionError):
        report.longrepr = _diagnosis(item, call.excinfo)
    if report.failed or report.skipped or (report.when == "call" and report.passed):
        word = "failed" if report.failed else "skipped" if report.skipped else "passed"
        record.counts[word] = record.counts.get(word, 0) + 1
    if report.failed:
        if record.outcome != "failed":
            record.summary = _first_line(report)
        record.outcome = "failed"
        record.failed_tests.append(item.name)
        session.failures.append(f"{stage.name}: {item.name}: {_first_line(report)}")
    elif report.when == "call" and report.passed and record.outcome == "running":
        record.outcome = "passed"
    elif report.skipped and record.outcome == "running":
        record.outcome = "skipped"
    if report.skipped and not record.summary and record.outcome == "skipped":
        record.summary = _skip_reason(report)  # why the whole stage did not run: --plan-only, an earlier failure


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


def _skip_reason(report: pytest.TestReport) -> str:
    """The reason a skipped test gives (pytest keeps it as (path, line, 'Skipped: reason'))."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
    return reason.removeprefix("Skipped: ")
