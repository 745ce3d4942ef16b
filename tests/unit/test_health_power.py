"""The health suite with a host stopped or missing: answered at once from PVE's state, shown in the table."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from plugins.health.power import down_host_results, http_blocked_by, read_states
from plugins.health.registry import host_wanted, services_of
from plugins.health.run import HealthRun
from plugins.health.table import table_rows
from plugins.inventory import load_inventory
from plugins.proxmox.power import HostState

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAB = load_inventory(ROOT / "inventories" / "lab.yml")
HOSTS = {h.hostname: h for h in LAB.hosts}


def state(hostname: str, status: str, lock: str = "") -> HostState:
    return HostState(hostname, HOSTS[hostname].vmid, "homelab", status, lock, hostname)


def all_running(**changed: str) -> dict[str, HostState]:
    states = {name: state(name, "running") for name in HOSTS}
    states.update({name.replace("_", "-"): state(name.replace("_", "-"), s) for name, s in changed.items()})
    return states


def test_a_stopped_host_fails_ssh_naming_its_state_and_skips_the_rest():
    """ssh_reachable fails with `ci-runner (CT 210) is stopped`; the other checks are not run, with that reason."""
    host = HOSTS["ci-runner"]
    results = down_host_results(host, host_wanted(host), state("ci-runner", "stopped"))
    ssh = [r for r in results if r.check == "ssh_reachable"]
    assert len(ssh) == 1 and ssh[0].outcome == "fail"
    assert ssh[0].message.startswith("ci-runner (CT 210) is stopped, nothing answers on 198.18.0.210")
    assert all(r.outcome == "skip" and "is stopped" in r.message for r in results if r.check != "ssh_reachable")


def test_a_missing_host_says_missing():
    """A VMID PVE does not have: `missing`, naming the node."""
    host = HOSTS["app-demo"]
    results = down_host_results(host, [("ssh_reachable", None)], state("app-demo", "missing"))
    assert results[0].message.startswith("app-demo (CT 250) is missing: node 'homelab' has no CT 250")


def test_http_checks_that_go_to_a_down_host_are_blocked_the_others_are_not():
    """Its own services, the routes through the stopped proxy, and Prometheus's every-target probe."""
    states = all_running(proxy="stopped")
    own = services_of([HOSTS["proxy"]])[0]
    assert "proxy (CT 200) is stopped" in http_blocked_by(own[0], own[1], states, HOSTS)
    routed = [(h, s) for h, s in services_of(LAB.hosts) if getattr(s, "connect_to", None) == HOSTS["proxy"].ip
              and h.hostname != "proxy"]
    assert routed, "lab.yml routes services through the proxy"
    assert http_blocked_by(*routed[0], states, HOSTS).startswith("through proxy (CT 200) is stopped")
    direct = [(h, s) for h, s in services_of(LAB.hosts) if h.hostname == "monitoring"
              and not getattr(s, "connect_to", None)]
    assert http_blocked_by(*direct[0], states, HOSTS) == ""
    targets = next(p for p in HOSTS["monitoring"].probes if p.kind == "prometheus_targets")
    assert "it watches every host, and proxy (CT 200) is stopped" in http_blocked_by(HOSTS["monitoring"], targets,
                                                                                     states, HOSTS)
    assert http_blocked_by(HOSTS["monitoring"], targets, all_running(), HOSTS) == ""


def test_a_run_with_a_stopped_host_answers_its_checks_without_waiting():
    """Every host down: no SSH is opened, no deadline waited; results are there at once."""
    states = {name: state(name, "stopped") for name in HOSTS}
    run = HealthRun(LAB, list(LAB.hosts), "/nonexistent/known_hosts", states)
    needs = [(h, c, s) for h in LAB.hosts for c, s in host_wanted(h)]
    needs += [(h, "http", s) for h, s in services_of(LAB.hosts)]
    started = time.monotonic()
    try:
        run.start(needs)
        results = [run.result(*need) for need in needs]
    finally:
        run.close()
    assert time.monotonic() - started < 5
    ssh = [r for r in results if getattr(r, "check", "") == "ssh_reachable"]
    assert len(ssh) == len(HOSTS) and all(r.outcome == "fail" and "is stopped" in r.message for r in ssh)
    http = [r for r in results if hasattr(r, "ok")]
    assert http and all(not r.ok and "not checked:" in r.message for r in http)
    assert run.state_word(HOSTS["proxy"]) == "stopped"


def test_the_table_has_a_state_column_in_capitals_for_a_host_not_running():
    """host | state | ssh …: STOPPED stands out; without states the table is as before."""
    cells = {("proxy", "ssh"): {"a": "fail"}, ("utilities", "ssh"): {"b": "pass"}}
    columns, rows = table_rows(cells, {"proxy": "stopped", "utilities": "running"})
    assert columns == ["host", "state", "ssh"]
    assert rows == [["proxy", "STOPPED", "FAIL"], ["utilities", "running", "pass"]]
    assert table_rows(cells) == (["host", "ssh"], [["proxy", "FAIL"], ["utilities", "pass"]])


def test_the_table_has_a_node_column_where_each_host_runs_now():
    """host | node | state | ssh …: each host's current node; one node is still shown; a host HA moved says so."""
    cells = {("proxy", "ssh"): {"a": "pass"}, ("monitoring", "ssh"): {"b": "pass"}}
    columns, rows = table_rows(cells, {"proxy": "running", "monitoring": "running"},
                               {"proxy": "homelab", "monitoring": "homelab (inventory: homelab-2)"})
    assert columns == ["host", "node", "state", "ssh"]
    assert rows == [["proxy", "homelab", "running", "pass"],
                    ["monitoring", "homelab (inventory: homelab-2)", "running", "pass"]]


def test_the_run_names_each_hosts_node_and_a_move_off_its_inventory_node():
    """node_word: the node from PVE's list; when HA recovered the host elsewhere, the inventory's node beside it."""
    states = all_running()
    moved = HOSTS["monitoring"]
    states["monitoring"] = HostState("monitoring", moved.vmid, "homelab-3", "running", "", "monitoring")
    run = HealthRun(LAB, list(LAB.hosts), "/nonexistent/known_hosts", states)
    try:
        assert run.node_word(HOSTS["proxy"]) == "homelab"
        assert run.node_word(moved) == f"homelab-3 (inventory: {moved.node})"
    finally:
        run.close()
    unread = HealthRun(LAB, list(LAB.hosts), "/nonexistent/known_hosts", {})
    try:
        assert unread.node_word(HOSTS["proxy"]) is None
    finally:
        unread.close()


def test_without_a_token_the_states_are_not_read_and_the_run_says_why():
    """No Proxmox client: one line, and the checks go by SSH and HTTP alone."""
    states, why = read_states(LAB, list(LAB.hosts), env={})
    assert states == {}
    assert why.startswith("hosts' states not read from Proxmox VE (environment variable PVE_TOKEN_SECRET is unset")
    assert why.endswith("the checks go by SSH and HTTP alone") and "\n" not in why
