"""The suite end to end on a 3-node emulated cluster (`python -m lab up --nodes 3`), as a user runs it.

The inventory is inventories/lab-cluster.yml with fewer services per host (the cluster's behaviour, not the
stack's, is under test here; the whole stack on one node is tests/e2e's): every host on the node the file gives,
`utilities` and `monitoring` HA-managed on the shared storage, at least one host per node. The tests run in file
order on one deployed cluster (seven deploys in all, one of them losing a node, and a refused one): a failed
deploy rolled back, a migration followed, a node of HA hosts lost and recovered under a deploy that proceeds, a
node with a plain host lost named by the health suite, refused by a deploy whose policy is refuse and left out by
one whose policy is proceed, then deployed again once its node is back; last, that node lost while a deploy runs,
and the recovery after it.

Too slow for CI (`make test` leaves the `cluster` marker out): `sudo make test-cluster` runs it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from lab_driving import ansible_running, running_lab, wait_for

from lab import config, orchestrate, scenarios
from plugins.inventory import load_inventory
from plugins.proxmox.client import ProxmoxClient

NODES = ("homelab", "homelab-2", "homelab-3")
RECOVERY_START = 90  # seconds a recovered CT may take to run again after the fence delay (its boot)


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict[str, Path]:
    """The module's inventories: the cluster's, one with short deadlines (a failure on purpose), one refusing."""
    directory = tmp_path_factory.mktemp("cluster-inventories")
    return {
        "cluster": scenarios.cluster_light_variant(directory, "lab-cluster"),
        "short": scenarios.cluster_light_variant(directory, "lab-cluster-short", max_health_wait=scenarios.SHORT_HEALTH_WAIT),
        "refuse": scenarios.cluster_light_variant(directory, "lab-cluster-refuse", node_down="refuse"),
    }


@pytest.fixture(scope="module")
def inventory(variants):
    """The cluster inventory the tests deploy."""
    return load_inventory(variants["cluster"])


@pytest.fixture(scope="module")
def proxmox(inventory):
    """A Proxmox client on the 3-node lab; skip with one line when the lab is not one."""
    running_lab("the cluster end-to-end tests")
    client = ProxmoxClient.from_inventory(inventory, env=scenarios.suite_env())
    if not set(NODES) <= set(client.nodes()):
        pytest.skip(f"the lab is not a cluster of {', '.join(NODES)}: sudo python -m lab up --nodes 3")
    return client


@pytest.fixture(scope="module")
def first_deploy(proxmox, variants):
    """The cluster deployed from an empty lab; every node brought back up after the module, whatever happened."""
    scenarios.empty_lab(variants["cluster"])
    try:
        run = scenarios.run_suite("deploy", inventory=variants["cluster"])
        print(f"first deploy on 3 nodes: {run.seconds:.1f} s")
        assert run.rc == 0, f"first deploy on the cluster failed (rc {run.rc}):\n{run.tail()}"
        yield run
    finally:
        for node in NODES[1:]:
            orchestrate.set_node_online(node, True)


def ha_resources(proxmox) -> dict[int, str]:
    """{vmid: requested state} of the HA resources."""
    return proxmox.ha_states()


def ha_services(proxmox) -> dict[str, dict]:
    """{sid: the HA manager's entry (node, state)} from /cluster/ha/status/current."""
    rows = proxmox.api_call("read the HA status", "GET", "cluster/ha/status/current")
    return {row["sid"]: row for row in rows if row.get("type") == "service"}


def health(variants) -> scenarios.DeployRun:
    """The Makefile's health suite on the cluster inventory."""
    run = scenarios.run_suite("health", inventory=variants["cluster"])
    print(f"health on 3 nodes: {run.seconds:.1f} s (rc {run.rc})")
    return run


def node_down_until_recovered(proxmox, node: str, ha_vmid: int) -> tuple[str, float]:
    """Take node down (`lab node down`); wait until its HA CT runs on another node: (that node, seconds taken)."""
    went_down = time.monotonic()
    orchestrate.set_node_online(node, False)

    def recovered() -> bool:
        row = proxmox.guests().get(ha_vmid, {})
        return row.get("node") not in (None, node) and row.get("status") == "running"

    wait_for(recovered, f"CT {ha_vmid} running on another node than {node}",
             timeout=config.HA_FENCE_DELAY + RECOVERY_START)
    seconds = time.monotonic() - went_down
    print(f"{node} down: CT {ha_vmid} running again on another node after {seconds:.1f} s "
          f"(fence delay {config.HA_FENCE_DELAY:g} s)")
    return proxmox.placement()[ha_vmid], seconds


def environment(results: Path) -> str:
    """The Allure environment a run wrote (the preflight's facts)."""
    return (results / "environment.properties").read_text()


def test_the_first_deploy_places_each_host_on_its_node_and_health_passes(first_deploy, proxmox, inventory,
                                                                          variants):
    """Each host on its inventory node, the HA ones on shared storage and started by HA; health passes, per node."""
    placement = proxmox.placement()
    assert {h.hostname: placement.get(h.vmid) for h in inventory.hosts} == {h.hostname: h.node for h in inventory.hosts}
    assert {h.node for h in inventory.hosts} == set(NODES), "a node holds no host"
    ha_hosts = [h for h in inventory.hosts if h.ha]
    assert {h.hostname for h in ha_hosts} == {"utilities", "monitoring"}
    assert ha_resources(proxmox) == {h.vmid: "started" for h in ha_hosts}
    # each HA host's ha.nodes as the suite's own node-affinity rule (PVE writes the nodes by name)
    rules = {r["rule"]: r for r in proxmox.api_call("read the HA rules", "GET", "cluster/ha/rules")}
    for host in ha_hosts:
        assert rules[f"homelab-suite-{host.hostname}"]["resources"] == f"ct:{host.vmid}"
        assert rules[f"homelab-suite-{host.hostname}"]["nodes"] == host.ha.rule_nodes()
    for host in ha_hosts:
        config_ = proxmox.api_call("read a CT's config", "GET", f"nodes/{host.node}/lxc/{host.vmid}/config")
        assert config_["rootfs"].startswith("shared:"), f"{host.hostname}: {config_['rootfs']}"
    run = health(variants)
    assert run.rc == 0, f"suites/health on the cluster:\n{run.tail()}"


def test_a_failed_deploy_rolls_back_every_host_on_its_node_and_ha_does_not_fight_it(first_deploy, proxmox,
                                                                                     inventory, variants, tmp_path):
    """A bad app change fails health: every host of the rollback set rolled back where it runs, the HA ones
    `ignored` for it and put back, none restarted by the HA manager (no service in error), the app answering."""
    source = scenarios.broken_app_copy(tmp_path)
    run = scenarios.run_suite("deploy", "--ansible-var", f"app_demo_src={source}/", inventory=variants["short"])
    print(f"failed deploy with its rollback on 3 nodes: {run.seconds:.1f} s")
    assert run.rc != 0, f"a deploy whose health failed exited 0:\n{run.tail()}"
    rollback = run.result["rollback"]
    assert rollback and rollback["ok"], f"rollback did not succeed: {rollback}\n{run.tail()}"
    print(f"rollback: {rollback['seconds']} s")
    assert set(rollback["rolled_back"]) == {h.hostname for h in inventory.rollback_set}
    timeline = json.dumps(rollback["timeline"])
    for host in (h for h in inventory.hosts if h.ha):
        for line in (f"HA resource ct:{host.vmid} set to 'ignored' for the rollback (was 'started')",
                     f"HA resource ct:{host.vmid} set back to 'started'"):
            assert line in timeline, f"{host.hostname}: no '{line}' in the rollback's timeline"
    assert ha_resources(proxmox) == {h.vmid: "started" for h in inventory.hosts if h.ha}
    services = ha_services(proxmox)
    for host in (h for h in inventory.hosts if h.ha):
        service = services[f"ct:{host.vmid}"]
        assert (service["state"], service["node"]) == ("started", host.node), f"{host.hostname}: {service}"
    guests = proxmox.guests()
    assert {h.hostname: (guests[h.vmid]["node"], guests[h.vmid]["status"]) for h in inventory.hosts} == \
        {h.hostname: (h.node, "running") for h in inventory.hosts}
    app = inventory.host("app-demo")
    service = app.endpoints[0]
    answer = scenarios.ssh_root(app.ip, f"curl -s -o /dev/null -w '%{{http_code}}' {service.url}").stdout
    assert answer == "200", f"{service.url} answers {answer} after the rollback"


def test_a_migrated_host_is_followed_by_the_deploy_and_health(first_deploy, proxmox, inventory, variants, tmp_path):
    """app-demo migrated homelab-2 → homelab-3 (restart mode): a deploy snapshots it there and passes, the
    preflight records the move, health passes and its node column says where it is."""
    app = inventory.host("app-demo")
    proxmox.migrate(app.node, app.vmid, "homelab-3", restart=True, timeout=180)
    assert proxmox.placement()[app.vmid] == "homelab-3"
    results = tmp_path / "allure-results"
    run = scenarios.run_suite("deploy", inventory=variants["cluster"], alluredir=results)
    print(f"deploy after the migration on 3 nodes: {run.seconds:.1f} s")
    assert run.rc == 0, f"deploy after migrating app-demo failed:\n{run.tail()}"
    assert "app-demo" in environment(results).partition("moved_hosts")[2].splitlines()[0]
    snapshots = [s["name"] for s in proxmox.snapshots(app.node, app.vmid)]
    assert run.result["snapshot_name"] in snapshots, f"no {run.result['snapshot_name']} on app-demo: {snapshots}"
    run = health(variants)
    assert run.rc == 0, f"suites/health after the migration:\n{run.tail()}"
    assert "homelab-3 (inventory: homelab-2)" in run.output, run.tail()


def test_a_node_of_ha_hosts_down_they_come_back_and_a_deploy_proceeds(first_deploy, proxmox, inventory, variants,
                                                                      tmp_path):
    """homelab-2 (utilities, HA, alone since the migration) down: utilities runs again within the fence delay plus
    its start on homelab-3, its node-affinity rule's next node (homelab, with no HA host, is the least loaded: the
    rule, not the load, chose); a deploy says the node is down in its preflight and proceeds (deploy.node_down:
    proceed); health passes, naming where utilities runs now. homelab-2 back: utilities fails back to it."""
    utilities = inventory.host("utilities")
    assert proxmox.placement()[utilities.vmid] == "homelab-2"
    now_on, _ = node_down_until_recovered(proxmox, "homelab-2", utilities.vmid)
    assert now_on == "homelab-3", f"utilities recovered on {now_on}, not its rule's next node homelab-3"
    try:
        results = tmp_path / "allure-results"
        run = scenarios.run_suite("deploy", inventory=variants["cluster"], alluredir=results)
        print(f"deploy with homelab-2 down: {run.seconds:.1f} s")
        assert run.rc == 0, f"deploy with homelab-2 down (policy proceed) failed:\n{run.tail()}"
        facts = environment(results)
        assert "node_down_policy=proceed: node homelab-2 is down" in facts, facts
        assert "the cluster is quorate (2 of 3 nodes online)" in facts, facts
        run = health(variants)
        assert run.rc == 0, f"suites/health with homelab-2 down:\n{run.tail()}"
        assert f"{now_on} (inventory: homelab-2)" in run.output, run.tail()
        orchestrate.set_node_online("homelab-2", True)
        wait_for(lambda: proxmox.guests().get(utilities.vmid, {}).get("node") == "homelab-2"
                 and proxmox.guests()[utilities.vmid].get("status") == "running",
                 "utilities relocated back to homelab-2, its rule's first node", RECOVERY_START)
    finally:
        orchestrate.set_node_online("homelab-2", True)


def test_a_node_down_with_a_plain_host_health_names_it_refuse_refuses_and_proceed_leaves_it_out(
        first_deploy, proxmox, inventory, variants):
    """homelab-3 (monitoring, HA; app-demo, migrated there) down: monitoring recovered elsewhere, app-demo down with
    the node; health fails naming both; a deploy whose policy is refuse stops in preflight saying so, nothing
    changed; one whose policy is proceed passes on the rest, app-demo left out (no snapshot, no Ansible, not judged)
    and named in preflight and in its result. The node back: app-demo boots with it (onboot), monitoring fails back,
    and the next deploy includes app-demo again."""
    monitoring, app = inventory.host("monitoring"), inventory.host("app-demo")
    assert proxmox.placement()[app.vmid] == "homelab-3"
    now_on, _ = node_down_until_recovered(proxmox, "homelab-3", monitoring.vmid)
    assert now_on == "homelab", f"monitoring recovered on {now_on}, not its rule's next node homelab"
    left_out = f"app-demo (CT {app.vmid}): left out: node homelab-3 down"
    try:
        assert proxmox.guests()[app.vmid]["status"] == "stopped"
        run = health(variants)
        assert run.rc != 0, f"suites/health passed with app-demo's node down:\n{run.tail()}"
        assert f"app-demo (CT {app.vmid}) is stopped: its node 'homelab-3' is down" in run.output, run.tail(60)
        assert "homelab-3 DOWN (inventory: homelab-2)" in run.output, run.tail(60)
        assert f"{now_on} (inventory: homelab-3)" in run.output, run.tail(60)
        refused = scenarios.run_suite("deploy", inventory=variants["refuse"])
        print(f"deploy refused with homelab-3 down: {refused.seconds:.1f} s")
        assert refused.rc != 0, f"a deploy with a node down and policy refuse passed:\n{refused.tail()}"
        assert "node homelab-3 is down (app-demo down with it)" in refused.output, refused.tail(60)
        assert "deploy.node_down is refuse: nothing deployed" in refused.output, refused.tail(60)
        assert scenarios.refused_before_any_change(refused.result), refused.result
        run = scenarios.run_suite("deploy", inventory=variants["cluster"])
        print(f"deploy proceeding with homelab-3 down (app-demo left out): {run.seconds:.1f} s")
        assert run.rc == 0, f"deploy with homelab-3 down (policy proceed) failed:\n{run.tail(80)}"
        preflight_part, _, end_part = run.output.partition("end of the deploy run")
        assert left_out in preflight_part and left_out in end_part, run.tail(80)
        assert run.result["left_out"] == {"app-demo": "node homelab-3 down"}, run.result
        assert str(app.vmid) not in run.result["snapshots"], run.result["snapshots"]
        assert app.hostname not in run.result["ansible"]["site"]["stats"], run.result["ansible"]["site"]["stats"]
        assert {h.hostname for h in inventory.rollback_set} - {app.hostname} <= \
            {inventory.host(int(v)).hostname for v in run.result["snapshots"]}, run.result["snapshots"]
        assert proxmox.guests()[app.vmid]["status"] == "stopped"
    finally:
        orchestrate.set_node_online("homelab-3", True)
    wait_for(lambda: proxmox.guests()[app.vmid]["status"] == "running", "app-demo booted with homelab-3", 60)
    wait_for(lambda: proxmox.guests().get(monitoring.vmid, {}).get("node") == "homelab-3"
             and proxmox.guests()[monitoring.vmid].get("status") == "running",
             "monitoring relocated back to homelab-3, its rule's first node", RECOVERY_START)
    run = scenarios.run_suite("deploy", inventory=variants["cluster"])
    print(f"deploy with homelab-3 back: {run.seconds:.1f} s")
    assert run.rc == 0, f"deploy with homelab-3 back failed:\n{run.tail(80)}"
    assert run.result["left_out"] == {} and "left out" not in run.output, run.tail(80)
    assert str(app.vmid) in run.result["snapshots"], run.result["snapshots"]
    assert run.result["ansible"]["site"]["stats"][app.hostname]["failures"] == 0, run.result["ansible"]["site"]


def recover(variants, command: str = "rollback") -> subprocess.CompletedProcess:
    """The documented recovery of an unfinished run (`python -m plugins.deploy.recover`), as a person runs it."""
    return subprocess.run([".venv/bin/python", "-m", "plugins.deploy.recover", command, "--inventory",
                           str(variants["cluster"])], cwd=scenarios.ROOT, env=scenarios.suite_env(),
                          capture_output=True, text=True, timeout=600, check=False)


def test_a_node_lost_during_a_deploy_rolls_back_the_rest_and_recover_finishes_only_what_is_left(
        first_deploy, proxmox, inventory, variants, tmp_path):
    """homelab-3 (monitoring, HA; app-demo, migrated there) lost while a deploy's Ansible runs: the run fails, rolls
    back the hosts it can reach, names app-demo's node as unreachable, ends INCOMPLETE naming the recovery, and its
    record keeps only what is left. The recovery with the node still down fails again without touching a host
    already back; with the node back it rolls back only what is left, and health passes."""
    monitoring, app = inventory.host("monitoring"), inventory.host("app-demo")
    assert {proxmox.placement()[h.vmid] for h in (monitoring, app)} == {"homelab-3"}
    output = tmp_path / "deploy.log"
    proc = scenarios.start_suite("deploy", inventory=variants["cluster"], output=output)
    try:
        wait_for(lambda: ansible_running(proc.pid) or proc.poll() is not None, "the deploy's ansible-playbook")
        assert proc.poll() is None, f"the deploy ended before its Ansible stage:\n{output.read_text()[-2000:]}"
        orchestrate.set_node_online("homelab-3", False)
        proc.wait(timeout=900)
        out = output.read_text()
        print(f"deploy losing homelab-3 during Ansible: exit {proc.returncode}")
        assert proc.returncode != 0, f"a deploy that lost a node exited 0:\n{out[-3000:]}"
        rollback = (scenarios.latest_result() or {}).get("rollback") or {}
        assert rollback and not rollback["ok"], f"the rollback was not reported incomplete: {rollback}\n{out[-3000:]}"
        assert "cannot reach that node" in rollback["task_errors"].get("app-demo", ""), rollback["task_errors"]
        # the firewall put back everywhere it can be reached, app-demo's left to the recovery
        assert f"CT {app.vmid} (node homelab-3 down)" in rollback["firewall_error"], rollback["firewall_error"]
        done = set(rollback["rolled_back"]) - set(rollback["unhealthy"])
        assert {h.hostname for h in inventory.rollback_set} - {monitoring.hostname, app.hostname} <= \
            set(rollback["rolled_back"]), rollback
        assert done, f"no host was rolled back healthy: {rollback}"
        assert rollback["recovery"] in out, out[-2000:]
        status = recover(variants, "status")
        assert status.returncode == 3, status.stdout + status.stderr
        for host in inventory.rollback_set:
            assert (f"CT {host.vmid}:" in status.stdout) == (host.hostname not in done), \
                f"{host.hostname} (rolled back healthy: {host.hostname in done}): {status.stdout}"

        still_down = recover(variants)
        print(f"recover with homelab-3 down: exit {still_down.returncode}")
        assert still_down.returncode == 1, still_down.stdout + still_down.stderr
        assert not any(f"rolled back {name} " in still_down.stdout for name in done), still_down.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
        orchestrate.set_node_online("homelab-3", True)
    wait_for(lambda: proxmox.guests()[app.vmid]["status"] == "running", "app-demo booted with homelab-3", 60)
    wait_for(lambda: proxmox.guests().get(monitoring.vmid, {}).get("node") == "homelab-3"
             and proxmox.guests()[monitoring.vmid].get("status") == "running",
             "monitoring relocated back to homelab-3, its rule's first node", RECOVERY_START)
    finished = recover(variants)
    print(f"recover with homelab-3 back: exit {finished.returncode}")
    if finished.returncode != 0:
        recover(variants, "forget")  # the next module must not find a blocked environment
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "rolled back app-demo " in finished.stdout, finished.stdout
    assert not any(f"rolled back {name} " in finished.stdout for name in done), finished.stdout
    run = health(variants)
    assert run.rc == 0, f"suites/health after the recovery:\n{run.tail()}"
