"""The firewall declared once: the inventory's data and its messages, the rules rendered from it, their way through
PVE's API (on the emulator, in-process) and the nftables table the emulator enforces them with."""

from __future__ import annotations

import copy

import pytest
from broken_inventory import lab_document
from pve_memdriver import MemHosts

from lab.config import LabPaths
from lab.pve.__main__ import lab_state_dir
from lab.pve.__main__ import main as serve_main
from lab.pve.app import Emulator
from lab.pve.auth import FULL_TOKEN_ID, load_tokens
from lab.pve.firewall import TABLE, TABLE_NAME, FirewallStore, compile_ruleset, table_for
from plugins.inventory import InventoryError, load_inventory
from plugins.inventory.loader import validate_document
from plugins.proxmox.firewall import changes, converge, read_state
from plugins.stack.firewall import MARK, desired_state, openings, zone_ports

pytestmark = pytest.mark.unit
SOURCE = "inventories/lab.yml"
BASE = "/api2/json"
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"


@pytest.fixture(scope="module")
def lab():
    return load_inventory(SOURCE)


def refused(rules: list[dict] | None = None, zones: dict | None = None) -> str:
    """The one line a lab inventory with these firewall rules/zones is refused with."""
    document = lab_document()
    if rules is not None:
        document["firewall"]["rules"] = rules
    if zones is not None:
        document["firewall"]["zones"] = zones
    with pytest.raises(InventoryError) as caught:
        validate_document(SOURCE, document)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)
    return str(caught.value)


def test_both_inventories_declare_a_firewall():
    """lab.yml and homelab.yml load with their firewall (homelab.yml is only loaded, never contacted)."""
    for path in ("inventories/lab.yml", "inventories/homelab.yml"):
        assert load_inventory(path).firewall.zones["lan"]


def test_an_unknown_host_is_refused_naming_file_key_and_hosts():
    assert refused([{"host": "nas", "zone": "lan", "ports": [445]}]) == (
        "inventories/lab.yml: firewall.rules[0].host: 'nas' is not a host of this inventory "
        "(expected one of: proxy, utilities, ci-runner, monitoring, app-demo)")


def test_an_unknown_zone_is_refused_naming_the_zones():
    assert refused([{"host": "utilities", "zone": "wan", "ports": [8080]}]) == (
        "inventories/lab.yml: firewall.rules[0].zone: 'wan' is not a zone "
        "(expected one of: hosts, lan, management, monitoring, proxy)")


def test_a_rule_cutting_the_runner_off_is_refused():
    line = refused([{"host": "utilities", "zone": "lan", "ports": [22], "action": "DROP"}])
    assert line.startswith("inventories/lab.yml: firewall.rules[0]: DROP of port 22 from zone lan would cut the "
                           "runner/management (198.18.0.210, 198.18.0.1) off utilities")


def test_a_rule_cutting_the_proxy_off_a_route_is_refused():
    line = refused([{"host": "utilities", "zone": "proxy", "ports": [8080], "action": "REJECT"}])
    assert "would cut the proxy (198.18.0.200) off utilities's routed services" in line


def test_a_refusing_rule_that_spares_the_suite_and_the_proxy_is_accepted():
    document = lab_document()
    document["firewall"]["zones"]["guests"] = ["198.19.0.0/16"]
    document["firewall"]["rules"] = [{"host": "utilities", "zone": "guests", "ports": [8080], "action": "DROP"}]
    assert validate_document(SOURCE, document).firewall.rules[0].action == "DROP"


def test_zones_derived_from_the_hosts_cannot_be_declared_and_lan_is_required():
    assert "firewall.zones.proxy: zone proxy is derived from the hosts" in refused(
        zones={"lan": ["198.18.0.0/15"], "proxy": ["198.18.0.9"]})
    assert "firewall.zones.lan: required key is missing" in refused(zones={"management": ["198.18.0.1"]})
    assert "firewall.zones.lan[0]: '198.18.0.300' is not an IPv4 address" in refused(zones={"lan": ["198.18.0.300"]})


def test_the_lan_reaches_only_the_proxys_entrypoints(lab):
    assert zone_ports(lab, "lan") == {"proxy": {80, 443}, "utilities": set(), "ci-runner": set(),
                                      "monitoring": set(), "app-demo": set()}


def test_the_proxy_reaches_routed_ports_and_monitoring_the_metrics(lab):
    assert zone_ports(lab, "proxy")["utilities"] == {8080, 8000, 8001}  # vaultwarden, snipeit, netbox
    assert zone_ports(lab, "monitoring")["utilities"] == {9100}
    assert zone_ports(lab, "monitoring")["proxy"] == {9100, 8082}
    assert zone_ports(lab, "hosts")["monitoring"] == {3100}  # every host's log shipper to Loki
    assert zone_ports(lab, "management")["app-demo"] is None  # the suite: every port


def test_the_inventorys_rules_come_first(lab):
    document = lab_document()
    document["firewall"]["rules"] = [{"host": "utilities", "zone": "lan", "ports": [8080], "comment": "owner asks"}]
    inventory = validate_document(SOURCE, document)
    first = next(o for o in openings(inventory) if o.host == "utilities")
    assert (first.zone, first.ports, first.why) == ("lan", (8080,), "owner asks")
    group = desired_state(inventory)["cluster"]["groups"]["hl-201"]["rules"][0]
    assert group == {"type": "in", "action": "ACCEPT", "source": "+lan", "proto": "tcp", "dport": "8080",
                     "enable": 1, "comment": f"{MARK}: owner asks"}


def test_the_rendered_state_names_zones_by_ip_set_and_hosts_by_alias(lab):
    state = desired_state(lab)
    cluster = state["cluster"]
    assert cluster["ipsets"]["management"]["entries"] == ["ci-runner", "198.18.0.1"]
    assert cluster["ipsets"]["proxy"]["entries"] == ["proxy"]
    assert cluster["aliases"]["proxy"]["cidr"] == "198.18.0.200"
    assert state["cts"][201] == {"options": {"enable": 1, "policy_in": "DROP", "policy_out": "ACCEPT"},
                                 "rules": [{"type": "group", "action": "hl-201", "enable": 1, "comment": MARK}]}
    assert cluster["options"] == {"enable": 1, "policy_in": "ACCEPT"}


class Api:
    """ProxmoxClient.api_call's signature, answered by the emulator in-process (failures raise)."""

    def __init__(self, app: Emulator):
        self.app = app
        self.auth = f"PVEAPIToken={FULL_TOKEN_ID}={load_tokens(app.state_dir)[FULL_TOKEN_ID]}"
        self.writes = self.firewall_reads = 0

    def __call__(self, what: str, method: str, path: str, /, **params):
        reply = self.app.handle(method, f"{BASE}/{path}", {k: str(v) for k, v in params.items()}, self.auth)
        assert reply.status == 200, (what, reply.status, reply.reason, reply.body)
        self.writes += method != "GET"
        self.firewall_reads += method == "GET" and path == "cluster/firewall/options"  # read_state's first call
        return reply.body["data"]


@pytest.fixture
def pve(tmp_path, lab):
    """An emulator holding the lab's containers, its enforced ruleset recorded instead of loaded."""
    loaded: list[str] = []
    app = Emulator(tmp_path / "pve", MemHosts(), node="homelab", verify_results=True)
    app.firewall.enforce = loaded.append
    api = Api(app)
    for host in lab.hosts:
        upid = api("create", "POST", "nodes/homelab/lxc", vmid=host.vmid, ostemplate=TEMPLATE,
                   hostname=host.hostname, net0=f"name=eth0,bridge=labbr0,ip={host.ip}/24,gw=198.18.0.1")
        app.tasks.wait(upid, 10)
    api.loaded = loaded
    return api


def test_converge_applies_the_state_then_changes_nothing(pve, lab):
    nodes = {h.vmid: "homelab" for h in lab.hosts}
    wanted = desired_state(lab)
    done = converge(pve, read_state(pve, nodes), wanted, MARK, nodes)
    assert "datacenter options: enable=1, policy_in=ACCEPT" in done and "security group hl-201: 5 rule(s)" in done
    assert changes(read_state(pve, nodes), wanted, MARK) == []
    writes = pve.writes
    assert converge(pve, read_state(pve, nodes), wanted, MARK, nodes) == [] and pve.writes == writes


def test_converge_restores_a_recorded_state_and_leaves_the_owners_objects(pve, lab):
    nodes = {h.vmid: "homelab" for h in lab.hosts}
    pve("owner's set", "POST", "cluster/firewall/ipset", name="owners", comment="mine")
    before = read_state(pve, nodes)
    converge(pve, before, desired_state(lab), MARK, nodes)
    undone = converge(pve, read_state(pve, nodes), before, MARK, nodes)
    assert "remove group hl-201" in undone and "remove IP set lan" in undone, undone
    assert read_state(pve, nodes) == before
    assert "owners" in read_state(pve, nodes)["cluster"]["ipsets"]


def test_the_emulator_enforces_what_the_api_holds(pve, lab):
    nodes = {h.vmid: "homelab" for h in lab.hosts}
    converge(pve, read_state(pve, nodes), desired_state(lab), MARK, nodes)
    table = pve.loaded[-1]
    chain = table.split("chain ct201_in {", 1)[1].split("\n  }", 1)[0]
    assert "ip saddr { 198.18.0.1, 198.18.0.210 } accept" in chain  # management: every port
    assert "ip saddr { 198.18.0.200 } tcp dport { 8080 } accept" in chain
    assert chain.rstrip().endswith("drop")
    assert 'oifname "vlab201" jump ct201_in' in table


def test_a_disabled_datacenter_firewall_filters_nothing():
    cts = {201: {"options": {"enable": 1}, "rules": [], "ipsets": {}}}
    off = {"options": {"enable": 0}, "aliases": {}, "ipsets": {}, "groups": {}}
    text = compile_ruleset(off, cts)
    assert "chain ct201_in" not in text and text.startswith(f"table bridge {TABLE} {{}}\ndelete table bridge {TABLE}")
    on = copy.deepcopy(off)
    on["options"]["enable"] = 1
    assert "chain ct201_in" in compile_ruleset(on, cts)


def test_an_emulator_with_a_table_of_its_own_loads_only_that_table(tmp_path, lab):
    """A second emulator on the machine (the lab's tests start some) owns its table: loading it replaces only it,
    never the lab's (a table is replaced whole)."""
    loaded: list[str] = []
    app = Emulator(tmp_path / "pve", MemHosts(), node="homelab", firewall_table="homelab_lab_pve_fw_t8123")
    app.firewall.enforce = loaded.append
    app.firewall.change_cluster(lambda cluster: cluster["options"].update(enable=1))
    assert loaded and loaded[-1].startswith("table bridge homelab_lab_pve_fw_t8123 {}\n"
                                            "delete table bridge homelab_lab_pve_fw_t8123\n")
    assert f"{TABLE} " not in loaded[-1]


def test_only_the_labs_state_dir_gets_the_labs_table(tmp_path):
    """The default table follows the state dir: the lab's (however it is spelled) loads TABLE, any other a table of
    its own, the same one every time, a name nftables takes."""
    lab = tmp_path / "lab" / "pve"
    lab.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "lab")
    assert table_for(lab, lab) == TABLE
    assert table_for(tmp_path / "link" / "pve", lab) == TABLE
    assert table_for(lab / ".." / "pve", lab) == TABLE
    others = {table_for(tmp_path / name, lab) for name in ("a", "b", "a/pve")}
    assert len(others) == 3 and TABLE not in others
    assert table_for(tmp_path / "a", lab) == table_for(tmp_path / "a", lab)
    assert all(TABLE_NAME.fullmatch(name) and name.startswith(f"{TABLE}_") for name in others)


@pytest.mark.parametrize(("value", "expected"), [(None, "/var/lib/homelab-lab/pve"), ("", "/var/lib/homelab-lab/pve"),
                                                 ("/srv/lab", "/srv/lab/pve")])
def test_the_labs_state_dir_is_the_one_lab_up_passes(monkeypatch, value, expected):
    """$LAB_DIR/pve, the default root when LAB_DIR is unset or empty: the lab's pve_dir (lab/config.py), which
    `lab up` passes as --state-dir."""
    if value is None:
        monkeypatch.delenv("LAB_DIR", raising=False)
    else:
        monkeypatch.setenv("LAB_DIR", value)
    assert str(lab_state_dir()) == expected
    assert lab_state_dir() == LabPaths.from_env().pve_dir


@pytest.mark.parametrize("name", ["1table", "lab-fw", "fw; flush ruleset", "t" * 65])
def test_the_emulator_refuses_a_table_name_nftables_would_not_take(name, capsys):
    """`--firewall-table` goes into nft's input: anything but a plain name is refused in one line, before the
    emulator starts (no state dir, no table)."""
    with pytest.raises(SystemExit) as stop:
        serve_main(["serve", "--firewall-table", name, "--state-dir", "/nonexistent/never-made"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --firewall-table" in err and "is no nftables table name" in err and "Traceback" not in err


def test_the_update_loop_loads_the_rules_again_when_the_table_was_removed_or_replaced(tmp_path):
    """pve-firewall's update: nothing happens while the kernel holds the table this store loaded; a table removed,
    or loaded by someone else (a new handle), gets this store's rules again."""
    kernel = {"handle": None, "next": 10}
    loads: list[str] = []

    def enforce(text: str) -> None:
        loads.append(text)
        kernel["handle"], kernel["next"] = kernel["next"], kernel["next"] + 1

    store = FirewallStore(tmp_path, enforce=enforce, table="homelab_lab_pve_fw_t1", loaded=lambda t: kernel["handle"])
    store.change_cluster(lambda cluster: cluster["options"].update(enable=1))
    assert len(loads) == 1 and store.handle == 10
    assert store.update() is False and len(loads) == 1  # still ours: nothing loaded
    kernel["handle"] = None  # removed (nft delete table, a flush)
    assert store.update() is True and len(loads) == 2 and store.handle == 11
    kernel["handle"] = 40  # replaced: loaded by another process
    assert store.update() is True and len(loads) == 3 and loads[-1] == loads[0]
    assert store.update() is False


def test_a_store_that_enforces_nothing_never_updates(tmp_path):
    """Unit tests' emulators keep the rules as files only: no loop loads anything."""
    assert FirewallStore(tmp_path).update() is False


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_the_emulator_refuses_a_firewall_update_period_that_is_not_positive(value, capsys):
    """`--firewall-update` 0 would spin: refused in one line before the emulator starts."""
    with pytest.raises(SystemExit) as stop:
        serve_main(["serve", "--firewall-update", value, "--state-dir", "/nonexistent/never-made"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --firewall-update" in err and "is not a positive number of seconds" in err


def test_pve_refuses_what_pve_firewall_refuses(pve):
    reply = pve.app.handle("POST", f"{BASE}/cluster/firewall/groups/hl-1", {"type": "in", "action": "ACCEPT"},
                           pve.auth)
    assert (reply.status, reply.reason) == (500, "no such security group 'hl-1'")
    pve("group", "POST", "cluster/firewall/groups", group="g1")
    pve("rule", "POST", "cluster/firewall/groups/g1", type="in", action="ACCEPT", dport="22", proto="tcp")
    reply = pve.app.handle("DELETE", f"{BASE}/cluster/firewall/groups/g1", {}, pve.auth)
    assert (reply.status, reply.reason) == (500, "Security group 'g1' is not empty")
    reply = pve.app.handle("POST", f"{BASE}/cluster/firewall/groups/g1",
                           {"type": "in", "action": "ACCEPT", "dport": "70000"}, pve.auth)
    assert reply.status == 400 and reply.body["errors"] == {"dport": "invalid format - invalid port '70000'\n"}


class FakeSession:
    """What the firewall stage reads and writes of a DeploySession."""

    def __init__(self, inventory, plan_only: bool = False):
        self.inventory, self.plan_only, self.firewall_before, self.firewall_seen = inventory, plan_only, None, None
        self.records: dict = {}
        self.left_out: dict[int, str] = {}

    def stage(self, name):
        from plugins.deploy.session import StageRecord

        return self.records.setdefault(name, StageRecord(name))


class FakeProxmox:
    """ProxmoxClient's api_call and containers, on the in-process emulator."""

    def __init__(self, api: Api):
        self.api_call = api

    def containers(self, node):
        return {int(row["vmid"]): row for row in self.api_call("list", "GET", f"nodes/{node}/lxc")}

    def placement(self):
        rows = self.api_call("list", "GET", "cluster/resources", type="vm")
        return {int(row["vmid"]): row["node"] for row in rows}

    def offline_nodes(self):
        rows = self.api_call("status", "GET", "cluster/status")
        return sorted(row["name"] for row in rows if row.get("type") == "node" and not row.get("online"))


def test_the_stage_plans_applies_and_the_rollback_restores_what_it_recorded(pve, lab):
    """A plan lists and changes nothing; a deploy records, applies, converges; the rollback restores the record."""
    from plugins.deploy.stages import firewall as stage

    proxmox = FakeProxmox(pve)
    planned, writes = FakeSession(lab, plan_only=True), pve.writes
    lines = stage.apply(planned, proxmox)
    assert lines and pve.writes == writes and planned.stage("firewall").summary.endswith("would change")
    deploy = FakeSession(lab)
    stage.record_previous(deploy, proxmox)
    before = deploy.firewall_before["state"]
    assert stage.apply(deploy, proxmox) == lines and stage.drift(deploy, proxmox) == []
    assert stage.restore(deploy, proxmox) and read_state(pve, deploy.firewall_before["nodes"]) == before


def test_the_stage_reads_the_firewall_again_only_after_writing_to_it(pve, lab):
    """Record, apply, second read: a first apply's writes are read back; a no-change run reads the firewall once."""
    from plugins.deploy.stages import firewall as stage

    proxmox = FakeProxmox(pve)
    first = FakeSession(lab)
    stage.record_previous(first, proxmox)
    assert stage.apply(first, proxmox) and pve.firewall_reads == 1
    assert stage.drift(first, proxmox) == [] and pve.firewall_reads == 2
    again, writes = FakeSession(lab), pve.writes
    stage.record_previous(again, proxmox)
    assert stage.apply(again, proxmox) == [] and stage.drift(again, proxmox) == []
    assert (pve.firewall_reads, pve.writes) == (3, writes)
    pve("drift behind the suite's back", "PUT", f"nodes/homelab/lxc/{lab.hosts[0].vmid}/firewall/options", enable=0)
    assert stage.drift(FakeSession(lab), proxmox), "a session that has not read the firewall must read it"


def test_a_zone_that_changes_network_is_converged_entry_by_entry(pve, lab):
    """The old network leaves the IP set by its own path (…/ipset/lan/198.18.0.0/15), the new one is added."""
    nodes = {h.vmid: "homelab" for h in lab.hosts}
    converge(pve, read_state(pve, nodes), desired_state(lab), MARK, nodes)
    document = lab_document()
    document["firewall"]["zones"]["lan"] = ["198.18.0.0/16"]
    moved = validate_document(SOURCE, document)
    assert converge(pve, read_state(pve, nodes), desired_state(moved), MARK, nodes) == ["IP set lan: 198.18.0.0/16"]
    assert read_state(pve, nodes)["cluster"]["ipsets"]["lan"]["entries"] == ["198.18.0.0/16"]


def cluster_emulator(tmp_path, cluster, **options) -> tuple[Emulator, Api]:
    """A 3-node in-process emulator (firewall not enforced) with each of the inventory's CTs on its node."""
    app = Emulator(tmp_path / "pve", MemHosts(), node="homelab", verify_results=True, nodes=3, **options)
    app.firewall.enforce = lambda ruleset: None
    api = Api(app)
    for host in cluster.hosts:
        rootfs = {"rootfs": f"{host.storage}:8"} if host.storage != "local" else {}
        upid = api("create", "POST", f"nodes/{host.node}/lxc", vmid=host.vmid, ostemplate=TEMPLATE,
                   hostname=host.hostname, net0=f"name=eth0,bridge=labbr0,ip={host.ip}/24,gw=198.18.0.1", **rootfs)
        app.tasks.wait(upid, 10)
    return app, api


def test_the_stage_follows_each_ct_to_the_node_it_runs_on_now(tmp_path):
    """lab-cluster.yml on a 3-node emulator, app-demo migrated off its inventory node: the stage records, applies
    and restores each CT's firewall where it runs now (its options are proxied to that node; PVE answers a CT's
    rules from the cluster file system on any node)."""
    from plugins.deploy.stages import firewall as stage

    cluster = load_inventory("inventories/lab-cluster.yml")
    app, api = cluster_emulator(tmp_path, cluster)
    app_demo = cluster.host("app-demo")
    app.tasks.wait(api("migrate", "POST", f"nodes/{app_demo.node}/lxc/{app_demo.vmid}/migrate", target="homelab-3"),
                   10)
    deploy = FakeSession(cluster)
    stage.record_previous(deploy, FakeProxmox(api))
    assert deploy.firewall_before["nodes"] == {**{h.vmid: h.node for h in cluster.hosts}, app_demo.vmid: "homelab-3"}
    assert stage.apply(deploy, FakeProxmox(api)) and stage.drift(deploy, FakeProxmox(api)) == []
    assert api("read", "GET", f"nodes/homelab/lxc/{app_demo.vmid}/firewall/rules") == \
        api("read", "GET", f"nodes/homelab-3/lxc/{app_demo.vmid}/firewall/rules")
    reply = app.handle("GET", f"{BASE}/nodes/homelab/lxc/{app_demo.vmid}/firewall/options", {}, api.auth)
    assert reply.status == 500 and "nodes/homelab/lxc/250.conf' does not exist" in reply.reason
    assert stage.restore(deploy, FakeProxmox(api))


def test_a_rollback_with_a_node_down_puts_back_every_firewall_it_can_reach_and_names_the_rest(tmp_path):
    """lab-cluster.yml on a 3-node emulator, homelab-3 (monitoring) down after the apply: the restore puts back the
    datacenter's firewall and every other CT's, names monitoring's as left (its calls would answer 595), and with the
    node back a second restore (the recovery's) puts back the rest."""
    from plugins.deploy.recorded_state import PartlyRestored
    from plugins.deploy.stages import firewall as stage

    cluster = load_inventory("inventories/lab-cluster.yml")
    app, api = cluster_emulator(tmp_path, cluster, fence_delay=3600)  # no HA recovery during the test
    monitoring = cluster.host("monitoring")
    assert monitoring.node == "homelab-3"
    deploy, proxmox = FakeSession(cluster), FakeProxmox(api)
    stage.record_previous(deploy, proxmox)
    before = deploy.firewall_before
    assert stage.apply(deploy, proxmox)
    app.cluster.set_online("homelab-3", False)
    with pytest.raises(PartlyRestored, match=r"^the firewall of CT 240 \(node homelab-3 down\) not put back") as partly:
        stage.restore(deploy, proxmox)
    assert partly.value.done, "nothing was put back"
    others = {vmid: node for vmid, node in before["nodes"].items() if vmid != monitoring.vmid}
    now = read_state(api, others)
    assert now["cluster"] == before["state"]["cluster"]
    assert now["cts"] == {vmid: ct for vmid, ct in before["state"]["cts"].items() if vmid in others}
    app.cluster.set_online("homelab-3", True)
    assert stage.restore(deploy, proxmox), "the recovery found monitoring's firewall already put back"
    assert read_state(api, before["nodes"]) == before["state"]


def test_destroying_a_ct_drops_its_firewall_file_and_its_rules(pve, lab):
    """pve-container's destroy_vm calls remove_vmfw_conf: a CT created again under the VMID starts with no rules."""
    nodes = {h.vmid: "homelab" for h in lab.hosts}
    converge(pve, read_state(pve, nodes), desired_state(lab), MARK, nodes)
    host = lab.hosts[0]
    assert pve("rules", "GET", f"nodes/homelab/lxc/{host.vmid}/firewall/rules")
    pve.app.tasks.wait(pve("destroy", "DELETE", f"nodes/homelab/lxc/{host.vmid}", force=1), 10)
    assert f"chain ct{host.vmid}_in" not in pve.loaded[-1]
    upid = pve("create", "POST", "nodes/homelab/lxc", vmid=host.vmid, ostemplate=TEMPLATE, hostname=host.hostname,
               net0=f"name=eth0,bridge=labbr0,ip={host.ip}/24,gw=198.18.0.1")
    pve.app.tasks.wait(upid, 10)
    assert pve("rules", "GET", f"nodes/homelab/lxc/{host.vmid}/firewall/rules") == []
    assert pve("options", "GET", f"nodes/homelab/lxc/{host.vmid}/firewall/options").get("enable") in (None, 0)
