"""POST /nodes/{node}/lxc: create a CT (vzcreate) through the host driver."""

from __future__ import annotations

import re

from . import apischema
from .errors import TaskFailure, fail
from .jsonschema import property_schema
from .netconf import decode_keys, default_mac, parse_net, with_mac
from .routes import Call, route

LAB_TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
# What a create writes into the CT's config: every option PUT config knows (PVE's confdesc), except the
# ones this handler derives itself (net0, rootfs) and what is a property of the call, not of the CT.
NOT_STORED = ("node", "vmid", "net0", "rootfs", "delete", "digest", "revert", "lock")


def is_stored(key: str) -> bool:
    """Tell whether a create parameter is a CT option (a property of PUT .../config, net1 and mp0 included)."""
    config = apischema.methods()["PUT /nodes/{node}/lxc/{vmid}/config"]["parameters"]["properties"]
    return key not in NOT_STORED and property_schema(config, key) is not None


def _rootfs(value: str | None, vmid: int) -> str:
    storage, size = "local", "8"
    if value:
        m = re.match(r"^([\w-]+):(\d+)", value)
        if m:
            storage, size = m.groups()
    return f"{storage}:{vmid}/vm-{vmid}-disk-0.raw,size={size}G"


def _driver_mac(app, vmid: int) -> str:
    try:
        return app.driver.meta(vmid)["mac"]
    except Exception:  # noqa: BLE001 - a driver without meta: PVE-style derived MAC
        return default_mac(vmid)


@route("POST /nodes/{node}/lxc", perm=("/vms/{vmid}", ["VM.Allocate"], False))
def lxc_create(call: Call):
    """Create a CT (config recorded with lock=create, driver creates, starts with start=1), or restore one."""
    from .api_lxc import start_ct

    app, p = call.app, call.params
    vmid = call.vmid
    if p.get("restore"):
        from .restore import restore

        return restore(call)
    net_text, net = parse_net(p["net0"], vmid) if "net0" in p else (None, None)
    if net is None:
        raise fail("the lab needs net0 with a static ip=198.18.x.y/nn")
    hostname = p.get("hostname", f"CT{vmid}")
    config = {"arch": p.get("arch", "amd64"), "ostype": p.get("ostype", "debian"),
              "hostname": hostname, "memory": p.get("memory", 512), "swap": p.get("swap", 512),
              "cores": p.get("cores", 1), "net0": net_text, "rootfs": _rootfs(p.get("rootfs"), vmid),
              "lock": "create"}
    config.update({k: v for k, v in p.items() if is_stored(k)})
    if vmid in app.vmids() or app.driver.exists(vmid) or not app.store.create(vmid, config):
        raise fail(f"CT {vmid} already exists on node '{app.node_of(vmid) or app.node}'")
    if app.request_node() != app.node:
        app.place(vmid, app.request_node())
    keys = decode_keys(p.get("ssh-public-keys", ""))

    def worker(task):
        try:
            if p["ostemplate"] != LAB_TEMPLATE:
                raise TaskFailure(f"volume '{p['ostemplate']}' does not exist")
            task.log(f"extracting archive '{p['ostemplate']}' (lab: overlay clone of the base)")
            app.driver.create(vmid, hostname, net["ip"], net["prefix"], net["gateway"], net["mac"], keys,
                              memory=config["memory"], cores=config["cores"])
        except Exception:
            app.store.delete(vmid)
            if app.driver.exists(vmid):
                app.driver.destroy(vmid)
            raise
        rec = app.store.load(vmid)
        rec["config"].pop("lock", None)
        if not net["mac"]:
            rec["config"]["net0"] = with_mac(net_text, _driver_mac(app, vmid))
        app.store.save(vmid, rec)
        task.log(f"Architecture detected: {config['arch']}")
        if p.get("start"):
            start_ct(app, vmid)
            task.log(f"started CT {vmid}")

    return app.run_task(call, "vzcreate", vmid, worker)
