"""Where the emulator's HA manager puts a service: node-affinity rules (highest-priority online nodes first, then
the least loaded; `strict` keeps it on the rule's nodes, a non-strict rule falls back to any online node), the
failback to the preferred node, and the relocate policy of a failed start (max_restart on its node, then
max_relocate other nodes, then `error`).

Expected texts are pve-ha-manager's (Manager.pm, LRM.pm); the selection is its select_service_node.
"""

from __future__ import annotations

import pytest
from clocks import AheadClock
from pve_inprocess import EmulatorCalls
from pve_memdriver import MemHosts

from lab.hosts import HostError
from lab.pve.app import Emulator
from lab.pve.ha_placement import node_affinity, select_service_node

pytestmark = pytest.mark.unit
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
NET = "name=eth0,bridge=labbr0,ip=198.18.0.{}/24,gw=198.18.0.1"
DELAY = 30.0
NODES = ["homelab", "homelab-2", "homelab-3"]


# --- select_service_node itself ---------------------------------------------------------------------------


def rule(nodes: str, strict: int = 0, sid: str = "ct:900") -> dict:
    return {"r": {"type": "node-affinity", "resources": sid, "nodes": nodes, "strict": strict}}


def test_the_highest_priority_online_node_wins_over_a_less_loaded_one():
    affinity = node_affinity(rule("homelab-2:2,homelab-3:1"), "ct:900", NODES)
    load = {"homelab": 0, "homelab-2": 5, "homelab-3": 0}
    assert select_service_node(affinity, NODES, load, "homelab", "best-score") == "homelab-2"
    # homelab-2 offline: the next priority class, not the least loaded node of the cluster
    online = ["homelab", "homelab-3"]
    assert select_service_node(affinity, online, {"homelab": 0, "homelab-3": 3}, "homelab-2", "best-score") \
        == "homelab-3"


def test_within_one_priority_the_least_loaded_node_then_the_name():
    affinity = node_affinity(rule("homelab-2,homelab-3"), "ct:900", NODES)
    assert select_service_node(affinity, NODES, {"homelab-2": 2, "homelab-3": 1}, "homelab", "best-score") \
        == "homelab-3"
    assert select_service_node(affinity, NODES, {"homelab-2": 1, "homelab-3": 1}, "homelab", "best-score") \
        == "homelab-2"


def test_a_non_strict_rule_falls_back_to_any_online_node_a_strict_one_does_not():
    online = ["homelab", "homelab-3"]
    loose = node_affinity(rule("homelab-2"), "ct:900", NODES)
    assert loose == {"homelab-2": 0, "homelab": -1, "homelab-3": -1}
    assert select_service_node(loose, online, {"homelab": 1, "homelab-3": 0}, "homelab-2", "best-score") \
        == "homelab-3"
    strict = node_affinity(rule("homelab-2", strict=1), "ct:900", NODES)
    assert select_service_node(strict, online, {}, "homelab-2", "best-score") is None


def test_without_a_rule_every_online_node_and_none_keeps_the_current_one():
    assert node_affinity(rule("homelab-2", sid="ct:901"), "ct:900", NODES) is None
    assert select_service_node(None, NODES, {"homelab": 0, "homelab-3": 1}, "homelab-3", "none") == "homelab-3"
    assert select_service_node(None, NODES, {"homelab": 0, "homelab-3": 1}, "homelab-3", "best-score") == "homelab"


def test_none_moves_a_service_off_a_node_its_rule_does_not_prefer_unless_failback_is_off():
    affinity = node_affinity(rule("homelab-2:2,homelab:1"), "ct:900", NODES)
    assert select_service_node(affinity, NODES, {}, "homelab", "none") == "homelab-2"
    assert select_service_node(affinity, NODES, {}, "homelab", "none", failback=False) == "homelab"


def test_try_next_leaves_out_the_nodes_the_start_failed_on():
    assert select_service_node(None, NODES, {}, "homelab-2", "try-next", ["homelab-2"]) == "homelab"
    assert select_service_node(None, NODES, {}, "homelab", "try-next", ["homelab-2", "homelab"]) == "homelab-3"
    assert select_service_node(None, NODES, {}, "homelab", "try-next", NODES) is None


def test_a_disabled_rule_does_not_place():
    rules = {"r": {"type": "node-affinity", "resources": "ct:900", "nodes": "homelab-2", "disable": 1}}
    assert node_affinity(rules, "ct:900", NODES) is None


# --- the emulator's rounds --------------------------------------------------------------------------------


class FailingOn(MemHosts):
    """In-memory hosts whose start fails while the CT is on one of `nodes` (lxc-start failing there)."""

    app: Emulator | None = None
    nodes: frozenset[str] = frozenset()

    def start(self, vmid):
        """Fail on the listed nodes, start elsewhere."""
        if self.app is not None and self.app.node_of(vmid) in self.nodes:
            raise HostError(f"startup for container '{vmid}' failed")
        return super().start(vmid)


class Api(EmulatorCalls):
    """Calls the emulator in-process."""

    def create(self, node: str, vmid: int, **extra):
        upid = self.ok("POST", f"/nodes/{node}/lxc", vmid=vmid, ostemplate=TEMPLATE, net0=NET.format(vmid - 800),
                       rootfs="shared:8", start=1, **extra)
        assert self.app.tasks.wait(upid, 10).exitstatus == "OK"

    def node(self, vmid: int) -> str:
        return next(r for r in self.ok("GET", "/cluster/resources", type="vm") if r["vmid"] == vmid)["node"]

    def service(self, vmid: int) -> dict:
        return next(s for s in self.ok("GET", "/cluster/ha/status/current") if s["id"] == f"service:ct:{vmid}")


@pytest.fixture
def api(tmp_path):
    """A 3-node emulator: CT 900 (HA, shared) on homelab-2; CT 902 (HA) on homelab-3 as a load there."""
    driver = FailingOn()
    app = Emulator(tmp_path / "pve", driver, node="homelab", verify_results=True, nodes=3, fence_delay=DELAY)
    driver.app = app
    app.crm.clock = AheadClock()
    api = Api(app)
    api.create("homelab-2", 900)
    api.ok("POST", "/cluster/ha/resources", sid="ct:900")
    api.create("homelab-3", 902)
    api.ok("POST", "/cluster/ha/resources", sid="ct:902")
    app.crm.round()
    return api


def later(api, seconds: float) -> None:
    """Move the manager's clock on and play a round."""
    api.app.crm.clock.ahead += seconds
    api.app.crm.round()


def fence(api, node: str) -> None:
    """Take a node down and play rounds past the fence delay."""
    api.app.cluster.set_online(node, False)
    api.app.crm.round()
    later(api, DELAY)


def test_recovery_follows_the_rules_priorities_not_the_least_loaded_node(api):
    """homelab-2:2, homelab-3:1: homelab-2 fenced, ct:900 goes to homelab-3 (it has ct:902; homelab has none)."""
    api.ok("POST", "/cluster/ha/rules", rule="ct900-pref", type="node-affinity", resources="ct:900",
           nodes="homelab-2:2,homelab-3:1")
    fence(api, "homelab-2")
    assert api.node(900) == "homelab-3" and api.app.running(900)
    assert "recover service 'ct:900' from fenced node 'homelab-2' to node 'homelab-3'" in api.app.crm.log


def test_a_non_strict_rule_recovers_on_another_node_and_fails_back_when_its_node_returns(api):
    """Its only node down: recovered on the least loaded other node; back online: relocated home (failback)."""
    api.ok("POST", "/cluster/ha/rules", rule="ct900-home", type="node-affinity", resources="ct:900",
           nodes="homelab-2")
    fence(api, "homelab-2")
    assert api.node(900) == "homelab" and api.app.running(900)
    api.app.cluster.set_online("homelab-2", True)
    later(api, 1)
    assert "relocate service 'ct:900' to node 'homelab-2'" in api.app.crm.log
    assert "service 'ct:900': state changed from 'started' to 'relocate'  (node = homelab, target = homelab-2)" \
        in api.app.crm.log
    later(api, 1)  # the target's LRM starts it on its next round
    assert api.node(900) == "homelab-2" and api.app.running(900)
    assert api.service(900)["state"] == "started"


def test_a_strict_rule_waits_in_recovery_until_its_node_returns(api):
    """strict, homelab-2 only: no other node may take it; it stays down in `recovery`, then starts back home."""
    api.ok("POST", "/cluster/ha/rules", rule="ct900-only", type="node-affinity", resources="ct:900",
           nodes="homelab-2", strict=1)
    fence(api, "homelab-2")
    later(api, 1)
    assert api.node(900) == "homelab-2" and not api.app.running(900)
    assert api.service(900)["state"] == "recovery"
    assert "recovering service 'ct:900' from fenced node 'homelab-2' failed, no recovery node found" \
        in api.app.crm.log
    api.app.cluster.set_online("homelab-2", True)
    later(api, 1)
    later(api, 1)
    assert "recover service 'ct:900' to previous failed and fenced node 'homelab-2' again" in api.app.crm.log
    assert api.app.running(900) and api.service(900)["state"] == "started"


def test_a_new_rule_moves_a_running_service_to_its_preferred_node(api):
    """Placement, not only recovery: a rule preferring homelab relocates ct:900 there on the next round."""
    api.ok("POST", "/cluster/ha/rules", rule="ct900-homelab", type="node-affinity", resources="ct:900",
           nodes="homelab:1,homelab-2:0")
    later(api, 1)
    later(api, 1)
    assert api.node(900) == "homelab" and api.app.running(900)


def test_a_failed_start_is_retried_then_relocated_to_another_node(api):
    """Starts fail on homelab-2: max_restart 1 retry there, then relocated to the next node, where it starts."""
    api.app.driver.nodes = frozenset({"homelab-2"})
    api.app.driver.kill(900)
    for _ in range(3):
        later(api, 1)
    log = api.app.crm.log
    for line in ("unable to start service ct:900: startup for container '900' failed",
                 "restart policy: retry number 1 for service 'ct:900'",
                 "unable to start service ct:900 on local node after 1 retries",
                 "starting service ct:900 on node 'homelab-2' failed, relocating service.",
                 "relocate service 'ct:900' to node 'homelab'",
                 "relocation policy successful for 'ct:900' on node 'homelab', failed nodes: homelab-2"):
        assert line in log, line
    assert api.node(900) == "homelab" and api.app.running(900)


def test_after_max_relocate_nodes_failed_the_service_is_in_error(api):
    """Starts fail everywhere: max_relocate 1 other node tried, then `error` naming the failed nodes."""
    api.app.driver.nodes = frozenset(NODES)
    api.app.driver.kill(900)
    for _ in range(6):
        later(api, 1)
    assert "recovery policy for service ct:900 failed, entering error state. Failed nodes: homelab-2, homelab" \
        in api.app.crm.log
    assert api.service(900)["state"] == "error" and not api.app.running(900)
    starts = [line for line in api.app.crm.log if line == "starting service ct:900"]
    assert len(starts) == 4  # (max_restart + 1) starts on each of (max_relocate + 1) nodes


def test_a_resource_in_two_node_affinity_rules_is_refused(api):
    """NodeAffinity.pm's check: one node-affinity rule per resource (400, the rule's error on `resources`)."""
    api.ok("POST", "/cluster/ha/rules", rule="first", type="node-affinity", resources="ct:900", nodes="homelab")
    reply = api("POST", "/cluster/ha/rules", rule="second", type="node-affinity", resources="ct:900,ct:902",
                nodes="homelab-3")
    assert (reply.status, reply.reason) == (400, "Rule 'second' is invalid."), reply.body
    assert reply.body["errors"] == {"resources": "resource 'ct:900' is already used in another node affinity rule"}
    assert "second" not in api.app.ha.rules()
