"""Zabbix's database rolls back with its host (issue 13 item 4, Zabbix half), end to end on a deployed lab.

A host group written before a deploy survives it; one Zabbix writes while a deploy runs (after the deploy's
snapshot, before its rollback) is gone once the failed deploy is rolled back, and the API answers again.
The deploy fails on purpose the way tests/e2e/test_deploy_e2e.py makes it fail (a broken app copy, short
health deadlines).
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from lab import scenarios
from plugins.inventory import load_inventory
from plugins.proxmox.client import ProxmoxClient

INVENTORY = load_inventory(scenarios.LAB_INVENTORY)
MONITORING = INVENTORY.host("monitoring")
API = next(p.url for p in MONITORING.probes if p.kind == "zabbix_api" and not p.connect_to)
# The schema's own first user (data.sql): the lab's Zabbix is a fresh install.
LOGIN = {"username": "Admin", "password": "zabbix"}


def call(method: str, params: dict, token: str | None = None) -> object:
    """One JSON-RPC call to the lab's Zabbix API; the result, or a one-line failure."""
    headers = {"Content-Type": "application/json-rpc", **({"Authorization": f"Bearer {token}"} if token else {})}
    answer = requests.post(API, json={"jsonrpc": "2.0", "method": method, "params": params, "id": 1},
                           headers=headers, timeout=15).json()
    if "error" in answer:
        pytest.fail(f"{API} {method}: {answer['error']}", pytrace=False)
    return answer["result"]


def group_names(token: str) -> set[str]:
    """The names of every host group."""
    return {g["name"] for g in call("hostgroup.get", {"output": ["name"]}, token)}


@pytest.fixture(scope="module")
def deployed(lab_status):
    """The lab as this branch deploys it (a no-change deploy when it is already there)."""
    run = scenarios.run_suite("deploy")
    assert run.rc == 0, f"deploy failed (rc {run.rc}):\n{run.tail()}"
    return run


def _short_deadlines(document: dict) -> None:
    document.setdefault("deploy", {})["max_health_wait"] = 20


def test_a_failed_deploy_brings_zabbix_database_back_to_its_snapshot(deployed, tmp_path):
    """A group written before the deploy is kept; one written after its snapshot is gone after the rollback."""
    token = call("user.login", LOGIN)
    kept, lost = f"e2e-kept-{tmp_path.name}", f"e2e-lost-{tmp_path.name}"
    call("hostgroup.create", {"name": kept}, token)
    proxmox = ProxmoxClient.from_inventory(INVENTORY, env=scenarios.suite_env())
    before = {s["name"] for s in proxmox.snapshots(MONITORING.node, MONITORING.vmid)}
    written: list[str] = []

    def write_after_the_snapshot() -> None:
        """Wait for the deploy's new snapshot of the monitoring host, then let Zabbix write a row."""
        for _ in range(600):
            now = {s["name"] for s in proxmox.snapshots(MONITORING.node, MONITORING.vmid)}
            if now - before:
                time.sleep(3)  # the host is started again after its snapshot
                for _ in range(60):
                    try:
                        call("hostgroup.create", {"name": lost}, call("user.login", LOGIN))
                        written.append(lost)
                        return
                    except (requests.RequestException, ValueError):
                        time.sleep(1)
                return
            time.sleep(0.5)

    writer = threading.Thread(target=write_after_the_snapshot, daemon=True)
    writer.start()
    source = scenarios.broken_app_copy(tmp_path)
    inventory = scenarios.inventory_variant(tmp_path, "short-deadlines", _short_deadlines)
    run = scenarios.run_suite("deploy", "--ansible-var", f"app_demo_src={source}/", inventory=inventory)
    writer.join(timeout=30)

    assert written == [lost], f"the group was not written during the deploy (after its snapshot):\n{run.tail()}"
    assert run.rc != 0, f"a deploy whose health failed exited 0:\n{run.tail()}"
    rollback = run.result["rollback"]
    assert rollback and rollback["ok"], f"rollback did not succeed: {rollback}\n{run.tail()}"
    assert MONITORING.hostname in rollback["rolled_back"], rollback
    token = call("user.login", LOGIN)  # sessions are rows too: the one made after the snapshot is gone
    groups = group_names(token)
    assert kept in groups, f"{kept}, written before the deploy, is gone after its rollback"
    assert lost not in groups, f"{lost}, written after the deploy's snapshot, survived the rollback"
    assert call("apiinfo.version", {}).startswith("7.0."), "the API's version after the rollback"
