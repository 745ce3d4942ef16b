"""The fault matrix's fixtures: a deployed, healthy lab, the runner's fingerprint, and one row's record.

Every deploy is the Makefile's own command (lab.scenarios); every fault comes from lab.faults.LabFaults and
is undone when the row ends, passed or failed. Each row writes reports/faults/<row>.json, which
bench/faults.py prints as the table.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import requests
from lab_driving import deployed_lab, running_lab
from matrix import MARKER, RUNNER

from lab import scenarios
from lab.faults import LabFaults

ROWS_DIR = scenarios.ROOT / "reports" / "faults"


def pytest_collection_modifyitems(items):
    """Every test here is a fault row on the lab (the hook sees the whole session's items: only ours)."""
    for item in items:
        if "tests/faults/" in item.nodeid:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab_status() -> dict:
    """The running lab's status; skip with one line when there is no lab or no root."""
    st = running_lab("the fault matrix's rows")
    os.environ["PYTHONUNBUFFERED"] = "1"  # the deploy's output reaches its file as it runs: rows wait on it
    with LabFaults() as probe:
        probe.api_error("GET", "/lab-fault-probe", status=418)
        answer = requests.get(f"{st['api_url']}/lab-fault-probe", verify=st["ca_file"], timeout=10)
    if answer.status_code != 418:
        pytest.fail(f"the lab's emulator (pid {st['pids']['pve']}) ignores injected faults: it runs older code; "
                    "restart it: python -m lab down && python -m lab up")
    return st


@pytest.fixture(scope="module")
def deployed(request, lab_status):
    """A deployed, healthy lab before the rows: the last deploy's when the tests before left it deployed and
    healthy, else a deploy (tests/lab_driving.deployed_lab)."""
    return deployed_lab(request, "the fault matrix")


@pytest.fixture(scope="module")
def runner_fingerprint(deployed) -> dict:
    """A marker file on the runner and its PID 1 start time, taken once: every row checks both are unchanged."""
    made = scenarios.ssh_root(RUNNER.ip, f"test -f {MARKER} || date +%s%N > {MARKER}; cat {MARKER}; "
                                         "cut -d' ' -f22 /proc/1/stat")
    assert made.returncode == 0, f"runner {RUNNER.ip}: {made.stderr.strip()}"
    marker, pid1 = made.stdout.split()
    return {"marker": marker, "pid1_start": pid1}


@pytest.fixture
def faults(lab_status):
    """The lab's fault control; every fault it injected is undone when the row ends, passed or failed."""
    control = LabFaults()
    yield control
    problems = control.undo()
    assert not problems, "; ".join(problems)


@pytest.fixture
def record(request):
    """The row's record, written to reports/faults/<row>.json when the row ends (with the test's outcome)."""
    row: dict = {"row": request.node.callspec.id if hasattr(request.node, "callspec") else request.node.name}
    started = time.time()
    yield row
    report = getattr(request.node, "rep_call", None)
    row["verdict"] = "as expected" if report is not None and report.passed else (
        "NOT as expected" if report is not None else "not run")
    if report is not None and report.failed:
        row["error"] = str(report.longrepr).splitlines()[-1][:300]
    row["row_seconds"] = round(time.time() - started, 1)
    ROWS_DIR.mkdir(parents=True, exist_ok=True)
    (ROWS_DIR / f"{row['row']}.json").write_text(json.dumps(row, indent=2, sort_keys=True))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the call phase's report on the item, for the row's verdict."""
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
