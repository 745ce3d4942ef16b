"""End-to-end tests: the deploy suite on the real lab, as a user runs it (root, `python -m lab up` done).

They check state — containers, files on hosts, snapshots, Terraform plans — not just exit codes.
"""

from __future__ import annotations

import pytest
from lab_driving import deployed_lab, running_lab

FIRST = "tests/e2e/test_deploy_e2e.py"  # the first deploy from an empty lab: on the lab `lab up` left empty


def pytest_collection_modifyitems(items):
    """Every test here is slow and needs the lab (the hook sees the whole session's items: only ours); the
    first-deploy module runs first, so that the lab is deployed from nothing once, not twice."""
    for item in items:
        if "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.lab)
    items.sort(key=lambda item: FIRST not in item.nodeid)


@pytest.fixture(scope="session")
def lab_status() -> dict:
    """The running lab's status; skip with one line when there is no lab or no root."""
    return running_lab("end-to-end tests")


@pytest.fixture(scope="module")
def deployed(request, lab_status):
    """A deployed, healthy lab before the module's tests: the last deploy's when the tests before left it deployed
    and healthy, else a deploy (tests/lab_driving.deployed_lab)."""
    return deployed_lab(request, f"the {request.module.__name__} tests")
