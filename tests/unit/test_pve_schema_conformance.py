"""The emulator held against PVE's own schema, method by method (in-process, on the in-memory driver).

For every served method: an unknown parameter is refused, each documented parameter is checked with a
value its schema refuses, each required one is named when missing, and the answer matches `returns`.
The expected texts are pve-common's (JSONSchema.pm), written here, not taken from the emulator.
"""

from __future__ import annotations

import re

import pytest
from pve_memdriver import MemHosts

from lab.pve import apischema
from lab.pve.app import Emulator
from lab.pve.auth import FULL_TOKEN_ID, load_tokens
from lab.pve.jsonschema import answer_errors
from lab.pve.routes import ROUTES, RouteError, route

BASE = "/api2/json"
NODE = "homelab"
CT, SPARE = 900, 901
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
NET = "name=eth0,bridge=labbr0,ip=198.18.0.{}/24,gw=198.18.0.1"
UNKNOWN = "property is not defined in schema and the schema does not allow additional properties"
MISSING = "property is missing and it is not optional"
# A value each named format refuses ("1 x%" for the others: no slash, so it can go in a path).
BAD_FORMAT = {"pve-lxc-mp-string": "/a/../b"}
# A value each pattern refuses ("\x01" for the others); Perl's \S matches a control character.
BAD_PATTERN = {r"\S+": " "}
# A call that succeeds for each served method, on a lab holding CT 900 (running, snapshot s1) and CT 901.
EXAMPLES: dict[str, dict[str, str]] = {
    "GET /version": {},
    "GET /nodes": {},
    "GET /nodes/{node}/status": {},
    "GET /cluster/resources": {},
    "GET /cluster/nextid": {},
    "GET /nodes/{node}/tasks/{upid}/status": {},
    "GET /nodes/{node}/tasks/{upid}/log": {},
    "GET /nodes/{node}/tasks": {},
    "POST /nodes/{node}/lxc": {"vmid": "902", "ostemplate": TEMPLATE, "net0": NET.format(102)},
    "GET /nodes/{node}/lxc": {},
    "GET /nodes/{node}/lxc/{vmid}/status/current": {},
    "POST /nodes/{node}/lxc/{vmid}/status/start": {"vmid": str(SPARE)},
    "POST /nodes/{node}/lxc/{vmid}/status/stop": {},
    "POST /nodes/{node}/lxc/{vmid}/status/shutdown": {},
    "POST /nodes/{node}/lxc/{vmid}/status/reboot": {},
    "GET /nodes/{node}/lxc/{vmid}/config": {},
    "PUT /nodes/{node}/lxc/{vmid}/config": {"memory": "512"},
    "DELETE /nodes/{node}/lxc/{vmid}": {"vmid": str(SPARE), "force": "1"},
    "GET /nodes/{node}/lxc/{vmid}/snapshot": {},
    "POST /nodes/{node}/lxc/{vmid}/snapshot": {"snapname": "s2"},
    "DELETE /nodes/{node}/lxc/{vmid}/snapshot/{snapname}": {},
    "GET /nodes/{node}/lxc/{vmid}/snapshot/{snapname}": {},
    "POST /nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback": {},
    "POST /nodes/{node}/startall": {"vms": "900"},
    "GET /storage": {},
    "GET /storage/{storage}": {},
    "GET /nodes/{node}/storage": {},
    "GET /nodes/{node}/storage/{storage}/status": {},
    "GET /nodes/{node}/storage/{storage}/content": {"content": "backup"},
    "GET /nodes/{node}/storage/{storage}/content/{volume}": {},
    "PUT /nodes/{node}/storage/{storage}/content/{volume}": {"notes": "kept"},
    "DELETE /nodes/{node}/storage/{storage}/content/{volume}": {},
    "GET /nodes/{node}/storage/{storage}/prunebackups": {"prune-backups": "keep-last=1"},
    "DELETE /nodes/{node}/storage/{storage}/prunebackups": {"prune-backups": "keep-last=1"},
    "POST /nodes/{node}/vzdump": {"vmid": "900", "storage": "backup"},
    "GET /cluster/backup": {},
    "POST /cluster/backup": {"id": "weekly", "schedule": "sun 02:00", "vmid": "900", "storage": "backup"},
    "GET /cluster/backup/{id}": {},
    "PUT /cluster/backup/{id}": {"enabled": "0"},
    "DELETE /cluster/backup/{id}": {},
    "GET /cluster/backup-info/not-backed-up": {},
    # the firewall: the lab holds group g1 (one rule) and g0 (empty), IP set n1 (one entry), alias n1, on CT 900
    # IP set n1 (one entry) and one rule
    "GET /cluster/firewall/options": {},
    "PUT /cluster/firewall/options": {"enable": "1", "policy_in": "ACCEPT"},
    "GET /cluster/firewall/groups": {},
    "POST /cluster/firewall/groups": {"group": "g2", "comment": "new"},
    "GET /cluster/firewall/groups/{group}": {},
    "POST /cluster/firewall/groups/{group}": {"type": "in", "action": "ACCEPT", "source": "+n1", "proto": "tcp",
                                              "dport": "22", "enable": "1"},
    "DELETE /cluster/firewall/groups/{group}": {"group": "g0"},
    "DELETE /cluster/firewall/groups/{group}/{pos}": {},
    "GET /cluster/firewall/ipset": {},
    "POST /cluster/firewall/ipset": {"name": "n2"},
    "GET /cluster/firewall/ipset/{name}": {},
    "POST /cluster/firewall/ipset/{name}": {"cidr": "198.18.0.10"},
    "DELETE /cluster/firewall/ipset/{name}": {"force": "1"},
    "DELETE /cluster/firewall/ipset/{name}/{cidr}": {},
    "GET /cluster/firewall/aliases": {},
    "POST /cluster/firewall/aliases": {"name": "a2", "cidr": "198.18.0.11"},
    "DELETE /cluster/firewall/aliases/{name}": {},
    "GET /nodes/{node}/lxc/{vmid}/firewall/options": {},
    "PUT /nodes/{node}/lxc/{vmid}/firewall/options": {"enable": "1", "policy_in": "DROP"},
    "GET /nodes/{node}/lxc/{vmid}/firewall/rules": {},
    "POST /nodes/{node}/lxc/{vmid}/firewall/rules": {"type": "group", "action": "g1", "enable": "1"},
    "DELETE /nodes/{node}/lxc/{vmid}/firewall/rules/{pos}": {},
    "GET /nodes/{node}/lxc/{vmid}/firewall/ipset": {},
    "POST /nodes/{node}/lxc/{vmid}/firewall/ipset": {"name": "n2"},
    "GET /nodes/{node}/lxc/{vmid}/firewall/ipset/{name}": {},
    "POST /nodes/{node}/lxc/{vmid}/firewall/ipset/{name}": {"cidr": "198.18.0.10"},
    "DELETE /nodes/{node}/lxc/{vmid}/firewall/ipset/{name}": {"force": "1"},
    "DELETE /nodes/{node}/lxc/{vmid}/firewall/ipset/{name}/{cidr}": {},
    # the cluster (three nodes): CT 900 HA-managed, rule r1 keeps it on this node
    "GET /cluster/status": {},
    "POST /nodes/{node}/lxc/{vmid}/migrate": {"target": "homelab-2", "restart": "1"},
    "GET /cluster/ha/resources": {},
    "POST /cluster/ha/resources": {"sid": "ct:901", "state": "stopped", "max_restart": "2"},
    "GET /cluster/ha/resources/{sid}": {},
    "PUT /cluster/ha/resources/{sid}": {"max_relocate": "2"},
    "DELETE /cluster/ha/resources/{sid}": {},
    "GET /cluster/ha/status/current": {},
    "GET /cluster/ha/status/manager_status": {},
    "POST /cluster/ha/resources/{sid}/migrate": {"node": "homelab-3"},
    "POST /cluster/ha/resources/{sid}/relocate": {"node": "homelab-2"},
    "GET /cluster/ha/rules": {},
    "POST /cluster/ha/rules": {"rule": "r2", "type": "node-affinity", "resources": "ct:900",
                               "nodes": "homelab:2,homelab-2"},
    "GET /cluster/ha/rules/{rule}": {},
    "PUT /cluster/ha/rules/{rule}": {"type": "node-affinity", "strict": "1"},
    "DELETE /cluster/ha/rules/{rule}": {},
}
FIREWALL_SETUP = [
    ("POST /cluster/firewall/groups", {"group": "g1"}),
    ("POST /cluster/firewall/groups", {"group": "g0"}),
    ("POST /cluster/firewall/groups/{group}", {"type": "in", "action": "DROP", "dport": "80", "proto": "tcp"}),
    ("POST /cluster/firewall/ipset", {"name": "n1"}),
    ("POST /cluster/firewall/ipset/{name}", {"cidr": "198.18.0.9"}),
    ("POST /cluster/firewall/aliases", {"name": "n1", "cidr": "198.18.0.9"}),
    ("POST /nodes/{node}/lxc/{vmid}/firewall/ipset", {"name": "n1"}),
    ("POST /nodes/{node}/lxc/{vmid}/firewall/ipset/{name}", {"cidr": "198.18.0.9"}),
    ("POST /nodes/{node}/lxc/{vmid}/firewall/rules", {"type": "in", "action": "ACCEPT", "source": "+n1"}),
    ("POST /cluster/ha/resources", {"sid": "ct:900"}),
    # disabled: a second enabled node-affinity rule for ct:900 (r2 below) would be refused, as PVE refuses it
    ("POST /cluster/ha/rules", {"rule": "r1", "type": "node-affinity", "resources": "ct:900", "nodes": "homelab",
                                "disable": "1"}),
]


class Lab:
    """A three-node cluster with CT 900 (running, HA-managed, snapshot s1, one backup, in job `nightly`) and CT 901,
    with the full token."""

    def __init__(self, tmp_path):
        self.app = Emulator(tmp_path / "pve", MemHosts(), node=NODE, verify_results=True, nodes=3)
        self.auth = f"PVEAPIToken={FULL_TOKEN_ID}={load_tokens(self.app.state_dir)[FULL_TOKEN_ID]}"
        self.upid, self.volume = "", ""
        for vmid in (CT, SPARE):
            self.task("POST /nodes/{node}/lxc", {"vmid": str(vmid), "ostemplate": TEMPLATE,
                                                 "net0": NET.format(vmid - 800)})
        self.task("POST /nodes/{node}/lxc/{vmid}/status/start", {})
        self.task("POST /nodes/{node}/vzdump", {"vmid": str(CT), "storage": "backup", "compress": "zstd"})
        self.volume = self.app.storages["backup"].dump_dir.glob("*.tar.zst").__next__().name
        self.call("POST /cluster/backup", {"id": "nightly", "schedule": "daily", "vmid": str(CT)})
        self.upid = self.task("POST /nodes/{node}/lxc/{vmid}/snapshot", {"snapname": "s1"})
        for name, params in FIREWALL_SETUP:
            reply = self.call(name, params)
            assert reply.status == 200, (name, reply.reason, reply.body)

    def path_values(self, params: dict[str, str]) -> dict[str, str]:
        """Values for a path's {placeholders}: this node, CT 900, snapshot s1, the last task, its backup, job nightly,
        group g1, set n1, HA resource ct:900, HA rule r1."""
        return {"node": NODE, "vmid": str(CT), "snapname": "s1", "upid": self.upid, "storage": "backup",
                "volume": f"backup:backup/{self.volume}", "id": "nightly", "group": "g1", "pos": "0",
                "name": "n1", "cidr": "198.18.0.9", "sid": "ct:900", "rule": "r1", **params}

    def call(self, name: str, params: dict[str, str]):
        """Call a method by its schema name; path placeholders filled from params or the defaults."""
        method, _, pattern = name.partition(" ")
        values = self.path_values(params)
        path = re.sub(r"\{([\w-]+)\}", lambda m: values[m.group(1)], pattern)
        body = {k: v for k, v in params.items() if f"{{{k}}}" not in pattern}
        return self.app.handle(method, BASE + path, body, self.auth)

    def task(self, name: str, params: dict[str, str]) -> str:
        """Call a task-starting method and wait for its OK."""
        reply = self.call(name, params)
        assert reply.status == 200, (name, reply.reason, reply.body)
        task = self.app.tasks.wait(reply.body["data"], 10)
        assert task.exitstatus == "OK", (name, task.exitstatus)
        return reply.body["data"]


def wrong_values(schema: dict) -> list[tuple[str, str]]:
    """(value, start of PVE's error) pairs this parameter's schema refuses (none for a free string)."""
    kind, out = schema.get("type"), []
    if kind == "boolean":
        out.append(("yes", "type check ('boolean') failed - got 'yes'"))
    elif kind == "integer":
        out.append(("1.5", "type check ('integer') failed - got '1.5'"))
    elif kind == "number":
        out.append(("abc", "type check ('number') failed - got 'abc'"))
    if kind in ("integer", "number") and schema.get("minimum") is not None and "format" not in schema:
        low = int(float(schema["minimum"])) - 1
        out.append((str(low), f"value must have a minimum value of {_bound(schema['minimum'])}"))
    if kind in ("integer", "number") and schema.get("maximum") is not None and "format" not in schema:
        high = int(float(schema["maximum"])) + 1
        out.append((str(high), f"value must have a maximum value of {_bound(schema['maximum'])}"))
    if kind == "string":
        if schema.get("enum"):
            enum = ", ".join(schema["enum"])
            out.append(("no-such-value", f"value 'no-such-value' does not have a value in the enumeration '{enum}'"))
        if isinstance(schema.get("format"), dict):
            out.append(("no-such-key=1", "invalid format - invalid key in comma-separated list property: no-such-key\n"))
        elif schema.get("format") and schema["format"] not in ("string", "string-list"):
            out.append((BAD_FORMAT.get(schema["format"], "1 x%"), "invalid format - "))
        if schema.get("pattern"):
            out.append((BAD_PATTERN.get(schema["pattern"], "\x01"), "value does not match the regex pattern"))
        if schema.get("maxLength") is not None and not schema.get("format"):
            out.append(("a" * (int(schema["maxLength"]) + 1),
                        f"value may only be {schema['maxLength']} characters long"))
    return out


def _bound(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def served() -> list[str]:
    """The names of the served methods."""
    return [r.name for r in ROUTES]


@pytest.fixture
def lab(tmp_path):
    return Lab(tmp_path)


def test_every_served_method_is_a_method_of_pve_with_an_example():
    """Each route is PVE's (in the schema, with its detail) and this walk has a call for it."""
    methods = apischema.methods()
    assert set(served()) <= {k for k, v in methods.items() if v}
    assert set(served()) == set(EXAMPLES), "EXAMPLES must hold one successful call for each served method"


def test_a_route_pve_does_not_have_is_refused():
    """Declaring a method PVE lacks (or one on a path it lacks) fails at once, naming it."""
    with pytest.raises(RouteError, match=r"GET /nodes/\{node\}/nope: PVE 9.1 has no such method"):
        route("GET /nodes/{node}/nope")
    with pytest.raises(RouteError, match="no such method"):
        route("PATCH /version")
    with pytest.raises(RouteError, match="names only"):
        route("GET /nodes/{node}/qemu")


@pytest.mark.parametrize("name", served())
def test_an_unknown_parameter_is_refused(lab, name):
    """A parameter the schema does not define is named in the 400."""
    reply = lab.call(name, {**EXAMPLES[name], "no-such-parameter": "1"})
    assert reply.status == 400, (reply.status, reply.reason)
    assert reply.body["errors"] == {"no-such-parameter": UNKNOWN}


@pytest.mark.parametrize("name", served())
def test_each_documented_parameter_is_checked(lab, name, record_property):
    """Every parameter with a type, enum, format, pattern, bound or length refuses a value outside it."""
    properties = apischema.methods()[name]["parameters"].get("properties", {})
    checked, checkable = 0, 0
    for param, schema in sorted(properties.items()):
        if param == "node" and apischema.methods()[name].get("proxyto"):
            continue  # a node name is proxied (and refused as an unknown host) before validation, as in PVE
        checkable += bool(wrong_values(schema))
        key = param.replace("[n]", "1")
        for value, expected in wrong_values(schema):
            reply = lab.call(name, {**EXAMPLES[name], key: value})
            assert reply.status == 400, (name, key, value, reply.status, reply.reason)
            assert reply.body["errors"].get(key, "").startswith(expected), (name, key, value, reply.body["errors"])
            checked += 1
    record_property("pve_wrong_values", checked)
    assert checked >= checkable


@pytest.mark.parametrize("name", served())
def test_each_required_parameter_is_named_when_missing(lab, name):
    """A required parameter outside the path is named when missing; the others still pass."""
    pattern = name.partition(" ")[2]
    properties = apischema.methods()[name]["parameters"].get("properties", {})
    required = [p for p, s in properties.items() if not s.get("optional") and f"{{{p}}}" not in pattern]
    for param in required:
        params = {k: v for k, v in EXAMPLES[name].items() if k != param}
        reply = lab.call(name, params)
        assert reply.status == 400 and reply.body["errors"] == {param: MISSING}, (name, param, reply.body)


@pytest.mark.parametrize("name", served())
def test_each_answer_matches_the_schema_returns(lab, name, record_property):
    """The answer of a successful call passes PVE's result verification against `returns`."""
    reply = lab.call(name, EXAMPLES[name])
    assert reply.status == 200, (name, reply.status, reply.reason, reply.body)
    returns = apischema.methods()[name].get("returns") or {}
    assert answer_errors(returns, reply.body["data"]) == {}, (name, reply.body["data"])
    record_property("pve_answers", 1)


def test_result_verification_refuses_an_answer_that_breaks_returns(tmp_path, monkeypatch):
    """With verify_results, a handler answering outside `returns` gives PVE's 400 Result verification failed."""
    app = Emulator(tmp_path / "pve", MemHosts(), node=NODE, verify_results=True)
    auth = f"PVEAPIToken={FULL_TOKEN_ID}={load_tokens(app.state_dir)[FULL_TOKEN_ID]}"
    assert app.handle("GET", BASE + "/version", {}, auth).status == 200
    monkeypatch.setattr(app, "version", {"version": "9.1.2"})
    reply = app.handle("GET", BASE + "/version", {}, auth)
    assert (reply.status, reply.reason) == (400, "Result verification failed")
    assert reply.body["errors"] == {"release": MISSING, "repoid": MISSING}


def test_the_walk_counts_the_served_methods(record_property):
    """Records how many methods the walk covers (printed at the end of the run)."""
    record_property("pve_served_methods", len(served()))
    assert len(served()) == len(EXAMPLES) > 0
