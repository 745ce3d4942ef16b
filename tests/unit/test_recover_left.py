"""An incomplete rollback's record keeps only what is left: the hosts rolled back and healthy are never rolled
back a second time by `recover rollback` (they serve again; a second rollback would take away what they wrote)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from deploy_suite import LAB

from plugins.deploy import recover
from plugins.deploy.finish import end, rollback
from plugins.deploy.finish.rollback import left_to_recover, recovery_lines
from plugins.deploy.run_lock import STATE_DIR_ENV, RunLock, read_record
from plugins.deploy.session import DeploySession
from plugins.inventory import load_inventory

pytestmark = pytest.mark.unit

INVENTORY = load_inventory(LAB)
TAKEN = {200: "deploy_part1", 201: "deploy_part1", 210: "deploy_part1", 250: "deploy_part1"}
RESTORES = {"firewall": {"state": {}, "nodes": {}}, "ha": {"240": {"state": "started"}}}


def outcome(**changes) -> dict:
    """A rollback outcome: proxy back and healthy, utilities back but unhealthy, app-demo's node unreachable."""
    base = {"ok": False, "rolled_back": {"proxy": "deploy_part1", "utilities": "deploy_part1"},
            "task_errors": {"app-demo": "roll back CT 250: cannot reach that node (595)"},
            "unhealthy": {"utilities": "vaultwarden answers 502"}, "excluded": [], "seconds": 4.0,
            "firewall": [], "firewall_error": "", "ha": [], "ha_error": ""}
    return {**base, **changes}


def test_left_are_the_hosts_not_back_and_what_was_not_put_back():
    """utilities (unhealthy) and app-demo (not rolled back) are left, proxy is not, nor the runner (never rolled
    back); a firewall restored is not restored again, HA resources that failed are."""
    left, kept = left_to_recover(outcome(ha_error="ProxmoxError: 595"), TAKEN, RESTORES, INVENTORY)
    assert left == {201: "deploy_part1", 250: "deploy_part1"}
    assert kept == {"ha": RESTORES["ha"]}
    assert recovery_lines(outcome(), TAKEN, INVENTORY) == [
        "  the recovery rolls back utilities, app-demo",
        "  rolled back and healthy, not rolled back again: proxy"]


def test_a_rollback_that_broke_before_it_began_leaves_everything():
    """No Proxmox client at all: every snapshot and every record is left (nothing says it was put back)."""
    broke = {"ok": False, "rolled_back": {}, "task_errors": {"*": "ProxmoxError: unreachable"}, "unhealthy": {},
             "excluded": [], "seconds": 0}
    left, kept = left_to_recover(broke, TAKEN, RESTORES, INVENTORY)
    assert left == {200: "deploy_part1", 201: "deploy_part1", 250: "deploy_part1"} and kept == RESTORES


def test_the_run_keeps_only_what_is_left_and_recover_rolls_back_only_that(tmp_path, monkeypatch):
    """The run's end narrows its lock's record; `recover rollback` then rolls back utilities and app-demo, not
    proxy; a recovery that is itself incomplete narrows the record again, and the one after it only app-demo."""
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    deploy = DeploySession(run_id="part1", inventory=INVENTORY, reports_dir=tmp_path / "reports")
    deploy.stage("snapshot").outcome = "passed"
    deploy.stage("ansible").outcome = "failed"
    deploy.snapshots.update(TAKEN)
    deploy.firewall_before = {"state": {"cluster": {}, "cts": {}}, "nodes": {}}
    lock = RunLock(INVENTORY.environment)
    lock.acquire(deploy.run_id, inventory=str(LAB))
    lock.note_snapshots(deploy.snapshots, applied=True)
    monkeypatch.setattr(end, "roll_back_session", lambda deploy, write: outcome())
    monkeypatch.setattr(end.run_result, "send", lambda deploy: end.run_result.NotifyOutcome(True, "written"))
    monkeypatch.setattr(end.allure_output, "alluredir", lambda config: None)
    session = SimpleNamespace(config=None, exitstatus=pytest.ExitCode.TESTS_FAILED)
    finished = end.end_session(session, deploy, exitstatus=1, lock=lock)
    assert "  the recovery rolls back utilities, app-demo" in finished.lines, finished.lines
    record = read_record(lock.path)
    assert record.snapshots == {"201": "deploy_part1", "250": "deploy_part1"} and record.restores == {}

    asked = []

    def recovery(deploy, write):
        asked.append(dict(deploy.snapshots))
        if len(asked) == 1:  # utilities comes back healthy this time, app-demo's node is still down
            return outcome(rolled_back={"utilities": "deploy_part1"}, unhealthy={})
        return outcome(rolled_back={"app-demo": "deploy_part1"}, unhealthy={}, task_errors={}, ok=True)

    monkeypatch.setattr(recover, "roll_back_session", recovery)
    monkeypatch.setattr(rollback, "roll_back_session", recovery)
    assert recover.main(["rollback", "--inventory", str(LAB)]) == 1
    assert read_record(lock.path).snapshots == {"250": "deploy_part1"}
    assert recover.main(["rollback", "--inventory", str(LAB)]) == 0
    assert asked == [{201: "deploy_part1", 250: "deploy_part1"}, {250: "deploy_part1"}]
    assert read_record(lock.path) is None
