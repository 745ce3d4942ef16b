"""End-to-end tests: the deploy suite on the real lab, as a user runs it (root, `python -m lab up` done).

They check state — containers, files on hosts, snapshots, Terraform plans — not just exit codes.
"""

from __future__ import annotations

import pytest
from lab_driving import running_lab

from lab import scenarios


def pytest_collection_modifyitems(items):
    """Every test here is slow and needs the lab (the hook sees the whole session's items: only ours)."""
    for item in items:
        if "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab_status() -> dict:
    """The running lab's status; skip with one line when there is no lab or no root."""
    return running_lab("end-to-end tests")


@pytest.fixture(scope="module")
def deployed(request, lab_status):
    """A deployed, healthy lab before the module's tests (a no-change deploy when the previous tests left one)."""
    run = scenarios.run_suite("deploy")
    assert run.rc == 0, f"deploy before the {request.module.__name__} tests failed (rc {run.rc}):\n{run.tail()}"
    return run
