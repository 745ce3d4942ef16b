"""The ledger the end-to-end modules share a deployed lab by (lab/scenarios.py): only a plain deploy that passed
hands the lab on; any other deploy, a started one whose end is the caller's, an emptied lab or a power cut do not;
a deploy refused before any changing stage leaves it as it was."""

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


def _stages(**outcomes: str) -> dict:
    names = ("preflight", "plan", *scenarios.CHANGING_STAGES, "health", "notify")
    return {name: {"outcome": outcomes.get(name, "skipped"), "seconds": 0.0, "summary": ""} for name in names}


REFUSED = {"run_id": "r", "stages": _stages(preflight="passed", plan="failed"), "snapshots": {}, "applied": False}


@pytest.mark.parametrize("result, refused", [
    (REFUSED, True),  # the guard refused the plan: no changing stage ran
    ({**REFUSED, "stages": _stages(preflight="failed")}, True),  # the preflight refused
    ({**REFUSED, "stages": _stages(preflight="passed", plan="passed", start="passed")}, False),  # a host started
    ({**REFUSED, "snapshots": {"250": "deploy_x"}}, False),  # a snapshot taken
    ({**REFUSED, "applied": True}, False),
    (None, False),  # no result: unknown
    ({"run_id": "r"}, False),  # no stages: unknown
])
def test_a_deploy_refused_before_any_changing_stage_is_told_apart(result, refused):
    """Only a result whose changing stages were all skipped, with no snapshot and nothing applied, is a refusal."""
    assert scenarios.refused_before_any_change(result) is refused


def test_a_refused_deploy_leaves_the_lab_handed_on(handed_on, monkeypatch):
    """A deploy the guard refused changed nothing: the next module reuses the lab; a failed one takes it back."""
    snapshotted = {**REFUSED, "stages": _stages(plan="passed", start="passed", snapshot="passed"),
                   "snapshots": {"250": "deploy_y"}}
    latest = iter([None, REFUSED, None, snapshotted])  # latest.json before and after each run
    monkeypatch.setattr(scenarios, "_read_json", lambda path: next(latest))
    monkeypatch.setattr(scenarios.subprocess, "run", lambda *a, **k: scenarios.subprocess.CompletedProcess(a, 1, "", ""))
    scenarios.run_suite("deploy")
    assert scenarios.LEDGER.plain, "a refusal took the lab back"
    scenarios.run_suite("deploy")
    assert not scenarios.LEDGER.plain, "a deploy that snapshotted left the lab handed on"
