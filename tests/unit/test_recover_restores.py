"""A SIGKILLed run's firewall and HA resources: the lock's record keeps them, `recover rollback` puts them back."""

from __future__ import annotations

import copy

import pytest
from deploy_suite import LAB

from plugins.deploy import recover
from plugins.deploy.run_lock import STATE_DIR_ENV, RunLock, read_record
from plugins.deploy.session import DeploySession
from plugins.deploy.start import note_progress
from plugins.inventory import load_inventory

pytestmark = pytest.mark.unit

FIREWALL = {"state": {"cluster": {"options": {"enable": 1}, "aliases": {}, "ipsets": {}, "groups": {}},
                      "cts": {200: {"options": {"enable": 1}, "rules": [{"type": "in", "action": "ACCEPT"}]},
                              250: {"options": {}, "rules": []}}},
            "nodes": {200: "homelab", 250: "homelab"}}
HA = {240: {"state": "started", "max_restart": 1, "max_relocate": 1}}


def test_recover_rollback_restores_the_firewall_and_ha_resources_the_killed_run_found(tmp_path, monkeypatch):
    """The run records them after its stages read them; the recovery's rollback gets them as the run had them
    (VMIDs as integers again, after the record's JSON), not only the snapshots."""
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    inventory = load_inventory(LAB)
    run = DeploySession(run_id="killed9", inventory=inventory, reports_dir=tmp_path / "reports")
    lock = RunLock(inventory.environment)
    lock.acquire(run.run_id, inventory=str(LAB))
    run.snapshots[200] = "deploy_killed9"
    note_progress(lock, run)
    assert read_record(lock.path).restores == {}, "recorded before the stages read anything"
    run.firewall_before, run.ha_before = copy.deepcopy(FIREWALL), copy.deepcopy(HA)
    note_progress(lock, run)
    lock.abandon()  # the SIGKILL: the flock goes with the process, the record stays

    seen = {}

    def rollback(deploy, write):
        seen.update(snapshots=deploy.snapshots, firewall=deploy.firewall_before, ha=deploy.ha_before)
        return {"ok": True, "rolled_back": {"proxy": "deploy_killed9"}, "task_errors": {}, "unhealthy": {},
                "excluded": [], "seconds": 0.1}

    monkeypatch.setattr(recover, "roll_back_session", rollback)
    assert recover.main(["rollback", "--inventory", str(LAB)]) == 0
    assert seen == {"snapshots": {200: "deploy_killed9"}, "firewall": FIREWALL, "ha": HA}
    assert read_record(lock.path) is None
