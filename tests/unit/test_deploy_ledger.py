"""The ledger the end-to-end modules share a deployed lab by (lab/scenarios.py): only a plain deploy that passed
hands the lab on; any other deploy, a started one whose end is the caller's, an emptied lab or a power cut do not."""

from __future__ import annotations

import pytest

from lab import scenarios

pytestmark = pytest.mark.unit

PASSED = scenarios.DeployRun(0, 1.0, "", {"run_id": "20261206_120000", "stages": {}})


def test_a_plain_deploy_that_passed_hands_the_lab_on():
    """A plain deploy with its result, exit 0: the lab is deployed."""
    ledger = scenarios.DeployLedger()
    ledger.record(PASSED, plain=True)
    assert ledger.plain and ledger.last is PASSED


@pytest.mark.parametrize("run, plain", [
    (scenarios.DeployRun(1, 1.0, "", {"run_id": "x", "stages": {}}), True),  # failed (rolled back or not)
    (scenarios.DeployRun(0, 1.0, "", None), True),  # wrote no result of its own
    (PASSED, False),  # an inventory variant or an option that changes what is deployed
    (None, False),  # something else changed the lab
])
def test_anything_else_after_a_plain_deploy_takes_the_lab_back(run, plain):
    """Whatever ran after a plain deploy, unless it is one too, the next module deploys."""
    ledger = scenarios.DeployLedger()
    ledger.record(PASSED, plain=True)
    ledger.record(run, plain=plain)
    assert not ledger.plain


@pytest.fixture
def handed_on(monkeypatch):
    """A fresh ledger after a plain deploy that passed; starting a suite launches nothing."""
    monkeypatch.setattr(scenarios, "LEDGER", scenarios.DeployLedger())
    scenarios.LEDGER.record(PASSED, plain=True)
    monkeypatch.setattr(scenarios.subprocess, "Popen", lambda *a, **k: None)
    monkeypatch.setattr(scenarios, "suite_command", lambda *a, **k: ["true"])
    monkeypatch.setattr(scenarios, "suite_env", dict)


def test_a_started_deploy_takes_the_lab_back(handed_on, tmp_path):
    """A deploy started in the background ends as its caller lets it: the next module deploys."""
    scenarios.start_suite("deploy", inventory=scenarios.LAB_INVENTORY, output=tmp_path / "out")
    assert not scenarios.LEDGER.plain


def test_plan_only_runs_leave_the_ledger(handed_on, tmp_path):
    """A plan changes nothing: the lab stays handed on."""
    scenarios.start_suite("deploy", "--plan-only", output=tmp_path / "out")
    assert scenarios.LEDGER.plain
