"""PVE's validation texts (pve-common JSONSchema.pm), the schema file's build, and answers against `returns`."""

from __future__ import annotations

import json

import pytest

from lab.pve import apischema, schema_build
from lab.pve.errors import ApiError
from lab.pve.jsonschema import answer_errors, validate_params

pytestmark = pytest.mark.unit
CREATE = apischema.methods()["POST /nodes/{node}/lxc"]["parameters"]
CONFIG = apischema.methods()["PUT /nodes/{node}/lxc/{vmid}/config"]["parameters"]
BASE = {"node": "homelab", "vmid": "250"}


def errors(parameters: dict, params: dict) -> dict:
    """The per-parameter errors of a call (empty when it validates)."""
    try:
        validate_params(parameters, params)
    except ApiError as exc:
        assert (exc.status, exc.message) == (400, "Parameter verification failed.")
        return exc.errors
    return {}


def test_all_errors_of_a_call_come_in_one_answer():
    """Enum, number type, unknown and missing: one 400 naming each parameter with PVE's text."""
    found = errors(CREATE, {"node": "homelab", "vmid": "250", "ostype": "beos", "arch": "sparc",
                            "cpulimit": "abc", "bogus": "1"})
    assert found == {
        "ostemplate": "property is missing and it is not optional",
        "ostype": "value 'beos' does not have a value in the enumeration "
                  "'debian, devuan, ubuntu, centos, fedora, opensuse, archlinux, alpine, gentoo, nixos, unmanaged'",
        "arch": "value 'sparc' does not have a value in the enumeration 'amd64, i386, arm64, armhf, riscv32, riscv64'",
        "cpulimit": "type check ('number') failed - got 'abc'",
        "bogus": "property is not defined in schema and the schema does not allow additional properties"}


def test_pve9_create_parameters_are_known():
    """unique, bwlimit, ignore-unpack-errors, template, lock, debug and 9.x's ha-managed, entrypoint, env."""
    params = {**BASE, "ostemplate": "local:vztmpl/x.tar.zst", "restore": "1", "unique": "1", "bwlimit": "100",
              "ignore-unpack-errors": "1", "template": "0", "lock": "create", "debug": "1", "ha-managed": "0",
              "entrypoint": "/sbin/init", "env": "A=1"}
    assert errors(CREATE, params) == {}
    del params["restore"]
    assert errors(CREATE, params) == {"restore": "missing property required by 'unique'"}


def test_property_strings_and_indexed_keys():
    """net[n] is net0..net31; a bad key, a bad address and a bad startup order are PVE's nested texts."""
    assert errors(CONFIG, {**BASE, "net31": "name=eth1,bridge=labbr0,ip=dhcp"}) == {}
    assert errors(CONFIG, {**BASE, "net32": "name=eth1"}) == {
        "net32": "property is not defined in schema and the schema does not allow additional properties"}
    assert errors(CONFIG, {**BASE, "net0": "name=eth0,colour=red"}) == {
        "net0": "invalid format - invalid key in comma-separated list property: colour\n"}
    assert errors(CONFIG, {**BASE, "net0": "name=eth0,ip=198.18.0.300/24"}) == {
        "net0": "invalid format - format error\nnet0.ip: invalid format - value does not look like a valid ipv4 "
                "network configuration\n\n"}
    assert errors(CONFIG, {**BASE, "net0": "bridge=labbr0"}) == {
        "net0": "invalid format - format error\nnet0.name: property is missing and it is not optional\n"}
    assert errors(CONFIG, {**BASE, "startup": "order=1,up=x"}) == {
        "startup": "invalid format - unable to parse startup options\n"}
    assert errors(CONFIG, {**BASE, "startup": "order=2,up=30", "onboot": "1"}) == {}
    assert errors(CONFIG, {**BASE, "onboot": "true"}) == {"onboot": "type check ('boolean') failed - got 'true'"}
    assert errors(CONFIG, {**BASE, "features": "nesting=1,keyctl=yes"}) == {}
    assert errors(CONFIG, {**BASE, "mp0": "local:8,mp=/srv/../etc"})["mp0"].startswith(
        "invalid format - format error\nmp0.mp: invalid format - /srv/../etc contains illegal character sequences")
    assert errors(CONFIG, {**BASE, "rootfs": "local:8,size=8G"}) == {}


def test_formats_of_ids():
    """pve-vmid, pve-node, pve-storage-id and pve-volume-id refuse with their own texts."""
    tasks = apischema.methods()["GET /nodes/{node}/tasks"]["parameters"]
    assert errors(tasks, {"node": "-bad", "vmid": "099"}) == {
        "node": "invalid format - value does not look like a valid node name\n",
        "vmid": "invalid format - value does not look like a valid VM ID\n"}
    assert errors(tasks, {"node": "homelab", "source": "old", "since": "x"}) == {
        "source": "value 'old' does not have a value in the enumeration 'archive, active, all'",
        "since": "type check ('integer') failed - got 'x'"}
    assert errors(CREATE, {**BASE, "ostemplate": "x", "storage": "l"})["storage"] == (
        "invalid format - storage ID 'l' cannot be shorter than 2 characters\n")
    assert errors(CONFIG, {**BASE, "unused0": "novolume"})["unused0"].endswith(
        "unused0.volume: invalid format - unable to parse volume ID 'novolume'\n\n")


def test_answers_are_held_against_returns():
    """A missing required property, a wrong type and an unknown enum value are found in an answer."""
    returns = apischema.methods()["GET /version"]["returns"]
    assert answer_errors(returns, {"version": "9.1.2", "release": "9.1", "repoid": "b2aa7e0b"}) == {}
    assert answer_errors(returns, {"version": "9.1.2", "repoid": "zz", "console": "vnc"}) == {
        "release": "property is missing and it is not optional",
        "repoid": "value does not match the regex pattern",
        "console": "value 'vnc' does not have a value in the enumeration 'applet, vv, html5, xtermjs'"}
    listed = apischema.methods()["GET /nodes/{node}/lxc"]["returns"]
    assert answer_errors(listed, [{"vmid": "x", "status": "running"}])["[0].vmid"] == (
        "type check ('integer') failed - got 'x'")


def test_schema_build_from_apidoc_js(tmp_path):
    """apidoc.js's apiSchema becomes one method per line, prose dropped, indexed keys counted."""
    tree = [{"path": "/nodes", "text": "nodes", "leaf": 0, "info": {"GET": {
        "method": "GET", "name": "index", "description": "Cluster node index.", "allowtoken": 1,
        "permissions": {"user": "all", "description": "prose"},
        "parameters": {"additionalProperties": 0, "properties": {
            "description": {"type": "string", "description": "a parameter named description stays"},
            "net[n]": {"type": "string", "typetext": "<x>", "format": {"name": {"type": "string"}}}}},
        "returns": {"type": "array"}}}, "children": []}]
    apidoc = tmp_path / "apidoc.js"
    apidoc.write_text(f"const apiSchema = {json.dumps(tree)};\n\nlet method2cmd = {{}};\n")
    out = tmp_path / "schema.json"
    assert schema_build.main([str(apidoc), "--pve-version", "9.1", "--source", "test", "--out", str(out)]) == 0
    built = json.loads(out.read_text())
    assert built["pve_version"] == "9.1" and "AGPL-3.0" in built["notice"]
    method = built["methods"]["GET /nodes"]
    assert method["permissions"] == {"user": "all"} and "description" not in json.dumps(method["returns"])
    props = method["parameters"]["properties"]
    assert props["description"] == {"type": "string"} and props["net[n]"]["x-count"] == 32
    tree[0]["info"]["GET"]["parameters"]["properties"]["foo[n]"] = {"type": "string"}
    apidoc.write_text(json.dumps(tree))
    assert schema_build.main([str(apidoc), "--out", str(out)]) == 1


def test_backup_formats_for_the_endpoints_to_come():
    """vzdump's prune-backups (a property string) and a backup job's schedule (pve-calendar-event)."""
    vzdump = apischema.methods()["POST /nodes/{node}/vzdump"]["parameters"]
    assert errors(vzdump, {"node": "homelab", "vmid": "250", "prune-backups": "keep-last=3,keep-daily=7"}) == {}
    assert errors(vzdump, {"node": "homelab", "prune-backups": "keep-last=3,keep-daily=x"}) == {
        "prune-backups": "invalid format - format error\nprune-backups.keep-daily: type check ('integer') failed - "
                         "got 'x'\n"}
    assert errors(vzdump, {"node": "homelab", "prune-backups": "keep-all=1,keep-last=2"}) == {
        "prune-backups": "invalid format - keep-all cannot be set together with other options.\n"}
    job = apischema.methods()["POST /cluster/backup"]["parameters"]
    assert errors(job, {"schedule": "mon..fri 02:00", "all": "1"}) == {}
    assert errors(job, {"schedule": "every day", "all": "1"}) == {
        "schedule": "invalid format - invalid calendar event 'every day' - unable to parse calendar event\n"}


def test_array_parameters_and_repeated_values():
    """A one-value array parameter is wrapped (RESTHandler's normalization); a repeated scalar is refused."""
    job = apischema.methods()["POST /cluster/backup"]["parameters"]
    assert errors(job, {"schedule": "daily", "all": "1", "exclude-path": "/tmp"}) == {}
    assert errors(job, {"schedule": "daily", "all": "1", "exclude-path": ["/tmp", "/var/tmp"]}) == {}
    assert errors(job, {"schedule": ["daily", "weekly"], "all": "1"}) == {
        "schedule": "type check ('string') failed - got ARRAY"}
