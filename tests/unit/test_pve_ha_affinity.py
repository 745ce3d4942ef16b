"""Resource-affinity rules (`type resource-affinity`, `affinity positive|negative`): the emulated CRM keeps services
together or apart in recovery, in its every-round placement and in requested migrations, together with node-affinity
rules; rules PVE finds infeasible are refused with its texts.

Expected texts and choices are pve-ha-manager's (Rules.pm, Rules/ResourceAffinity.pm, Manager.pm's
select_service_node and queue_resource_motion, API2/HA/Rules.pm, CLI/ha_manager.pm), written here.
"""

from __future__ import annotations

import pytest
from clocks import AheadClock
from pve_inprocess import EmulatorCalls
from pve_memdriver import MemHosts

from lab.pve.app import Emulator
from lab.pve.ha_placement import select_service_node
from lab.pve.ha_rules import affinitive_resources, effective_rules, feasibility_errors

pytestmark = pytest.mark.unit
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
NET = "name=eth0,bridge=labbr0,ip=198.18.0.{}/24,gw=198.18.0.1"
DELAY = 30.0
NODES = ["homelab", "homelab-2", "homelab-3"]


def ra(resources: str, affinity: str) -> dict:
    return {"type": "resource-affinity", "resources": resources, "affinity": affinity}


# --- the rules' compilation and selection --------------------------------------------------------------------


def test_connected_positive_rules_merge_and_imply_negative_ones():
    """A+B together, B+C together: one set; A apart from D makes B and C apart from D too (implicit rules)."""
    rules = {"p1": ra("ct:1,ct:2", "positive"), "p2": ra("ct:2,ct:3", "positive"), "n1": ra("ct:1,ct:4", "negative")}
    kept = effective_rules(rules, NODES)
    assert "_merged-p1-p2" in kept and "p1" not in kept
    assert affinitive_resources(kept, "ct:3") == ({"ct:1", "ct:2"}, {"ct:4"})
    assert affinitive_resources(kept, "ct:4") == (set(), {"ct:1", "ct:2", "ct:3"})


def test_a_positive_rule_brings_its_resources_into_the_node_affinity_rule_of_one_of_them():
    """Rules.pm's create_implicit_positive_resource_affinity_node_affinity_rules."""
    rules = {"na": {"type": "node-affinity", "resources": "ct:1", "nodes": "homelab-3"},
             "p": ra("ct:1,ct:2", "positive")}
    assert effective_rules(rules, NODES)["na"]["resources"] == "ct:1,ct:2"


def test_select_service_node_avoids_the_nodes_of_services_kept_apart_and_joins_those_kept_together():
    """apply_negative_resource_affinity removes nodes; apply_positive_resource_affinity keeps the majority node."""
    load = {"homelab": 0, "homelab-2": 1, "homelab-3": 2}
    assert select_service_node(None, NODES, load, "homelab-2", "best-score", separate={"homelab"}) == "homelab-2"
    assert select_service_node(None, NODES, load, "homelab", "best-score",
                               together={"homelab-3": 2, "homelab-2": 1}) == "homelab-3"
    # `none` with failback off still leaves a node a service kept apart uses
    assert select_service_node(None, NODES, load, "homelab", "none", failback=False, separate={"homelab"}) \
        == "homelab-2"


def test_pves_feasibility_texts():
    """ResourceAffinity.pm's and Rules.pm's checks, each on the option `resources`."""
    two = ["homelab", "homelab-2"]
    assert feasibility_errors({"r": ra("ct:1", "negative")}, NODES) == {
        "r": {"resources": ["rule is ineffective as there are less than two resources"]}}
    assert feasibility_errors({"r": ra("ct:1,ct:2,ct:3", "negative")}, two) == {
        "r": {"resources": ["rule defines more resources than available nodes"]}}
    errors = feasibility_errors({"p": ra("ct:1,ct:2", "positive"), "n": ra("ct:1,ct:2", "negative")}, NODES)
    assert errors == {"p": {"resources": ["rule shares two or more resources with a negative resource affinity rule"]},
                      "n": {"resources": ["rule shares two or more resources with a positive resource affinity rule"]}}
    na = {"type": "node-affinity", "resources": "ct:1", "nodes": "homelab:2,homelab-2"}
    assert feasibility_errors({"na": na, "p": ra("ct:1,ct:2", "positive")}, NODES)["p"] == {
        "resources": ["resources are in node affinity rules with multiple priorities"]}
    one = {"type": "node-affinity", "resources": "ct:1,ct:2", "nodes": "homelab"}
    assert feasibility_errors({"na": one, "n": ra("ct:1,ct:2", "negative")}, NODES)["n"] == {
        "resources": ["two or more resources are restricted to less nodes than available to the resources"]}
    assert feasibility_errors({"r": {**ra("ct:1", "negative"), "disable": 1}}, NODES) == {}


# --- the emulator --------------------------------------------------------------------------------------------


class Api(EmulatorCalls):
    """Calls the emulator in-process."""

    def create(self, node: str, vmid: int):
        upid = self.ok("POST", f"/nodes/{node}/lxc", vmid=vmid, ostemplate=TEMPLATE, net0=NET.format(vmid - 800),
                       rootfs="shared:8", start=1)
        assert self.app.tasks.wait(upid, 10).exitstatus == "OK"
        self.ok("POST", "/cluster/ha/resources", sid=f"ct:{vmid}")

    def node(self, vmid: int) -> str:
        return self.app.node_of(vmid)

    def rounds(self, count: int = 1, seconds: float = 1) -> None:
        for _ in range(count):
            self.app.crm.clock.ahead += seconds
            self.app.crm.round()


@pytest.fixture
def api(tmp_path):
    """A 3-node emulator: HA CTs 900 on homelab-2, 902 on homelab-3, 903 on homelab (one service per node)."""
    app = Emulator(tmp_path / "pve", MemHosts(), node="homelab", verify_results=True, nodes=3, fence_delay=DELAY)
    app.crm.clock = AheadClock()
    api = Api(app)
    for node, vmid in (("homelab-2", 900), ("homelab-3", 902), ("homelab", 903)):
        api.create(node, vmid)
    app.crm.round()
    return api


def fence(api, node: str) -> None:
    api.app.cluster.set_online(node, False)
    api.app.crm.round()
    api.rounds(1, DELAY)


def test_recovery_keeps_services_apart(api):
    """ct:902 fenced with homelab-3: homelab and homelab-2 tie (one service each), homelab first by name; kept
    apart from ct:903, it goes to homelab-2."""
    api.ok("POST", "/cluster/ha/rules", rule="apart", type="resource-affinity", resources="ct:902,ct:903",
           affinity="negative")
    fence(api, "homelab-3")
    assert "recover service 'ct:902' from fenced node 'homelab-3' to node 'homelab-2'" in api.app.crm.log
    api.rounds(1)
    assert api.node(902) == "homelab-2" and api.app.running(902)


def test_without_the_rule_the_same_recovery_takes_the_first_node_by_name(api):
    """The control of the test above: the basic scheduler alone picks homelab."""
    fence(api, "homelab-3")
    assert "recover service 'ct:902' from fenced node 'homelab-3' to node 'homelab'" in api.app.crm.log


def test_a_positive_rule_brings_services_together_and_recovers_them_together(api):
    """ct:900 joins ct:902 on homelab-3 on the next round; homelab-3 fenced, both go to one node."""
    api.ok("POST", "/cluster/ha/rules", rule="together", type="resource-affinity", resources="ct:900,ct:902",
           affinity="positive")
    api.rounds(2)
    assert "relocate service 'ct:900' to node 'homelab-3'" in api.app.crm.log
    assert api.node(900) == api.node(902) == "homelab-3" and api.app.running(900) and api.app.running(902)
    fence(api, "homelab-3")
    api.rounds(1)
    assert api.node(900) == api.node(902) != "homelab-3"
    assert api.app.running(900) and api.app.running(902)


def test_node_affinity_places_the_services_kept_together(api):
    """A node-affinity rule on ct:900 alone takes ct:902 along (the positive rule's implicit node affinity)."""
    api.ok("POST", "/cluster/ha/rules", rule="together", type="resource-affinity", resources="ct:900,ct:902",
           affinity="positive")
    api.ok("POST", "/cluster/ha/rules", rule="on-homelab", type="node-affinity", resources="ct:900", nodes="homelab")
    api.rounds(3)
    assert api.node(900) == api.node(902) == "homelab" and api.app.running(900) and api.app.running(902)


def test_a_migration_takes_the_services_kept_together_along(api):
    """The answer names them (comigrated-resources); the CRM moves both."""
    api.ok("POST", "/cluster/ha/rules", rule="together", type="resource-affinity", resources="ct:900,ct:903",
           affinity="positive")
    api.app.crm.round()  # ct:900 joins ct:903 on homelab
    answer = api.ok("POST", "/cluster/ha/resources/ct:900/migrate", node="homelab-2")
    assert answer == {"sid": "ct:900", "requested-node": "homelab-2", "comigrated-resources": ["ct:903"]}
    api.rounds(2)
    assert "crm command 'migrate ct:900 homelab-2' - migrate service 'ct:903' to node 'homelab-2' (service " \
           "'ct:903' in positive affinity with service 'ct:900')" in api.app.crm.log
    assert api.node(900) == api.node(903) == "homelab-2"


def test_a_migration_onto_a_service_kept_apart_is_refused_by_the_crm(api):
    """The answer names the service in the way; the CRM logs its error and the service stays."""
    api.ok("POST", "/cluster/ha/rules", rule="apart", type="resource-affinity", resources="ct:900,ct:902",
           affinity="negative")
    answer = api.ok("POST", "/cluster/ha/resources/ct:900/migrate", node="homelab-3")
    assert answer["blocking-resources"] == [{"sid": "ct:902", "cause": "resource-affinity"}]
    api.rounds(2)
    assert "crm command 'migrate ct:900 homelab-3' error - service 'ct:902' on node 'homelab-3' in negative " \
           "affinity with service 'ct:900'" in api.app.crm.log
    assert api.node(900) == "homelab-2"


def test_a_cts_migrate_onto_a_service_kept_apart_fails_as_ha_manager_does(api):
    """`ha-manager migrate` dies on the blocking resources (after the request was queued, as PVE's CLI does)."""
    api.ok("POST", "/cluster/ha/rules", rule="apart", type="resource-affinity", resources="ct:900,ct:902",
           affinity="negative")
    upid = api.ok("POST", "/nodes/homelab-2/lxc/900/migrate", target="homelab-3", restart=1)
    task = api.app.tasks.wait(upid, 10)
    assert task.exitstatus == "command 'ha-manager migrate ct:900 homelab-3' failed: exit code 255"
    assert task.lines[1:4] == ["cannot migrate resource 'ct:900' to node 'homelab-3':", "",
                               ("- resource 'ct:902' on target node 'homelab-3' in negative affinity with "
                                "resource 'ct:900'")]


def test_the_api_refuses_an_infeasible_or_incomplete_resource_affinity_rule(api):
    """400 `Rule '<id>' is invalid.` with the reasons on `resources`; SectionConfig's texts for the options."""
    reply = api("POST", "/cluster/ha/rules", rule="lonely", type="resource-affinity", resources="ct:900",
                affinity="negative")
    assert (reply.status, reply.reason) == (400, "Rule 'lonely' is invalid."), reply.body
    assert reply.body["errors"] == {"resources": "rule is ineffective as there are less than two resources"}
    api.ok("POST", "/cluster/ha/rules", rule="together", type="resource-affinity", resources="ct:900,ct:902",
           affinity="positive")
    reply = api("POST", "/cluster/ha/rules", rule="apart", type="resource-affinity", resources="ct:900,ct:902,ct:903",
                affinity="negative")
    assert reply.body["errors"] == {
        "resources": "rule shares two or more resources with a positive resource affinity rule"}
    reply = api("POST", "/cluster/ha/rules", rule="prio", type="node-affinity", resources="ct:902",
                nodes="homelab:2,homelab-2")
    assert reply.body["errors"] == {"resources": "resources are in a resource affinity rule and cannot be in a node "
                                                 "affinity rule with multiple priorities"}
    reply = api("POST", "/cluster/ha/rules", rule="r9", type="resource-affinity", resources="ct:900,ct:903")
    assert (reply.status, reply.reason) == (500, "missing value for required option 'affinity'")
    reply = api("POST", "/cluster/ha/rules", rule="r9", type="resource-affinity", resources="ct:900,ct:903",
                affinity="negative", nodes="homelab")
    assert (reply.status, reply.reason) == (500, "unexpected property 'nodes'")
    assert sorted(api.app.ha.rules()) == ["together"]


def test_the_crm_drops_a_rule_that_became_infeasible_and_says_why(api):
    """A rule written behind the API (PVE's rules.cfg edited by hand): Rules.pm's transform drops it, logged once."""
    api.app.ha.save_rule("lonely", ra("ct:900", "negative"))
    api.rounds(2)
    line = "Drop rule 'lonely', because rule is ineffective as there are less than two resources."
    assert api.app.crm.log.count(line) == 1


def test_a_negative_rule_separates_services_that_share_a_node(api):
    """ct:900 moved onto ct:903's node first; a negative rule then moves one of them off on the next round."""
    api.ok("POST", "/cluster/ha/resources/ct:900/relocate", node="homelab")
    api.rounds(2)
    assert api.node(900) == api.node(903) == "homelab"
    api.ok("POST", "/cluster/ha/rules", rule="apart", type="resource-affinity", resources="ct:900,ct:903",
           affinity="negative")
    api.rounds(2)
    assert "relocate service 'ct:900' to node 'homelab-2'" in api.app.crm.log
    assert api.node(900) != api.node(903) and api.app.running(900) and api.app.running(903)
