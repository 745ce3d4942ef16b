"""The rollback's targets: only this run's snapshots, never the runner, never this machine (incident #7).

The Proxmox client is a recorder and the wait for health is replaced (no lab, no root); what is rolled
back, to which snapshot and on which node, is the product's code path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.deploy.finish import rollback
from plugins.deploy.finish import timeline as tl
from plugins.deploy.session import DeploySession
from plugins.health.results import FAIL, PASS, CheckResult
from plugins.inventory import load_inventory
from plugins.shared import this_machine

pytestmark = pytest.mark.unit

LAB = load_inventory(Path(__file__).resolve().parents[2] / "inventories" / "lab.yml")
RUN = "deploy_unit4"


class RecordingClient:
    """A ProxmoxClient stand-in: records each rollback_many call and answers that every task ended OK."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[int, str], bool]] = []

    def rollback_many(self, node, targets, start=True, *, timeout=None, on_log=None):
        """Record the call; every container's task succeeds."""
        self.calls.append((node, dict(targets), start))
        return {vmid: f"UPID:{node}:{vmid}" for vmid in targets}


@pytest.fixture
def healthy(monkeypatch) -> list[list[str]]:
    """The hosts each wait for health was asked about (they all answer at once)."""
    asked: list[list[str]] = []

    def wait_healthy(hosts, inventory, judgements, timeline=None):
        asked.append([h.hostname for h in hosts])
        return {h.hostname: "" for h in hosts}

    monkeypatch.setattr(rollback, "wait_healthy", wait_healthy)
    monkeypatch.setattr(rollback, "read_records", lambda inventory, hosts, on_answer=None: {h.hostname: None for h in hosts})
    return asked


def _deploy(snapshots: dict[int, str], inventory=LAB) -> DeploySession:
    deploy = DeploySession(run_id="unit4", inventory=inventory, snapshot_name=RUN)
    deploy.snapshots.update(snapshots)
    return deploy


def test_only_the_containers_this_run_snapshotted_go_back_to_this_runs_snapshot(healthy):
    """Snapshots of 200 and 250 in this run: those two, to deploy_unit4, started, waited for; nothing else."""
    client = RecordingClient()
    outcome = rollback.roll_back(_deploy({200: RUN, 250: RUN}), client)
    assert client.calls == [("homelab", {200: RUN, 250: RUN}, True)]
    assert outcome["ok"] and outcome["rolled_back"] == {"proxy": RUN, "app-demo": RUN}
    assert healthy == [["proxy", "app-demo"]]


def test_a_run_that_took_no_snapshot_rolls_nothing_back(healthy):
    """No snapshot in this run (older deploy_* ones may exist on the node): no rollback call at all."""
    client = RecordingClient()
    outcome = rollback.roll_back(_deploy({}), client)
    assert client.calls == [] and outcome["rolled_back"] == {} and outcome["ok"]


def test_the_runner_is_never_rolled_back_even_with_a_snapshot(healthy):
    """A snapshot of the runner (210) in the session is left out, saying why; the others still go back."""
    client = RecordingClient()
    outcome = rollback.roll_back(_deploy({210: RUN, 250: RUN}), client)
    assert client.calls == [("homelab", {250: RUN}, True)]
    why = f"ci-runner is the runner the suite runs on ({LAB.where('runner.host')}): not rolled back"
    assert outcome["excluded"] == [why]


def test_this_machine_is_never_rolled_back_even_when_the_inventory_does_not_say_so(healthy, monkeypatch):
    """A host whose name is this machine's (the inventory forgot to flag it): left out, by name and address."""
    monkeypatch.setattr(this_machine.socket, "gethostname", lambda: "utilities.lab")
    client = RecordingClient()
    outcome = rollback.roll_back(_deploy({200: RUN, 201: RUN}), client)
    assert client.calls == [("homelab", {200: RUN}, True)]
    assert outcome["excluded"] == ["utilities (198.18.0.201) is the machine the suite runs on: not rolled back"]


def test_a_host_with_rollback_false_is_left_out_saying_so(healthy):
    """rollback: false in the inventory keeps a host out of the rollback, whatever the session holds."""
    hosts = [h.model_copy(update={"rollback": False}) if h.hostname == "monitoring" else h for h in LAB.hosts]
    inventory = LAB.model_copy(update={"hosts": hosts})
    client = RecordingClient()
    outcome = rollback.roll_back(_deploy({240: RUN, 250: RUN}, inventory), client)
    assert client.calls == [("homelab", {250: RUN}, True)]
    assert outcome["excluded"] == ["monitoring has rollback: false: not rolled back"]


class LoggingClient(RecordingClient):
    """A client whose rollback tasks log their steps as PVE's do."""

    def rollback_many(self, node, targets, start=True, *, timeout=None, on_log=None):
        """Give each task's log lines to on_log, then succeed."""
        for vmid in targets:
            on_log(vmid, f"stopping CT {vmid} before rollback")
            on_log(vmid, f"starting CT {vmid}")
        return super().rollback_many(node, targets, start, timeout=timeout)


def test_the_outcome_has_each_hosts_timeline_from_the_task_to_ssh(monkeypatch, healthy):
    """Task sent, the task's log lines, task done, SSH answering: each host's steps in order, in result.json."""
    def read_records(inventory, hosts, on_answer=None):
        for host in hosts:
            on_answer(host.hostname)
        return {h.hostname: None for h in hosts}

    monkeypatch.setattr(rollback, "read_records", read_records)
    outcome = rollback.roll_back(_deploy({200: RUN, 250: RUN}), LoggingClient())
    assert [entry["step"] for entry in outcome["timeline"]["proxy"]] == [
        "rollback task sent", "task: stopping CT 200 before rollback", "task: starting CT 200",
        "rollback task done", "ssh answers"]
    assert set(outcome["timeline"]) == {"proxy", "app-demo"}
    assert all(entry["at"] >= 0 for steps in outcome["timeline"].values() for entry in steps)


def test_a_round_of_host_checks_marks_docker_each_healthy_container_and_the_hosts_that_passed():
    timeline = tl.Timeline()
    rollback.mark_checks(timeline, {
        ("utilities", "docker_running", None): CheckResult("utilities", "docker_running", PASS, "up"),
        ("utilities", "container_running", "netbox-db"): CheckResult("utilities", "container_running", PASS, "ok",
                                                                      "netbox-db"),
        ("utilities", "container_running", "netbox"): CheckResult("utilities", "container_running", FAIL,
                                                                   "starting", "netbox"),
        ("proxy", "ssh_reachable", None): CheckResult("proxy", "ssh_reachable", PASS, "ok"),
    })
    steps = {host: [e["step"] for e in entries] for host, entries in timeline.as_dict().items()}
    assert sorted(steps["utilities"]) == ["container netbox-db", "docker answers"]
    assert steps["proxy"] == ["host checks pass"]
