"""HA endpoints as pve-ha-manager's PVE/API2/HA/{Resources,Rules,Status}.pm answer them (PVE 9: groups are
migrated to rules; `group` is refused as PVE refuses it once migrated). A resource's migrate/relocate and the
manager status are api_ha_motion.py's."""

from __future__ import annotations

import time

from .api_lxc import start_ct, stop_ct
from .errors import ApiError, fail
from .formats import split_list
from .ha import RESOURCE_DEFAULTS, requested_state, sid_of
from .ha_rules import feasibility_errors
from .routes import Call, route

RESOURCE_KEYS = ("state", "max_restart", "max_relocate", "failback", "comment")
RULE_KEYS = ("type", "resources", "nodes", "strict", "affinity", "comment", "disable")


def parse_sid(app, sid: str) -> tuple[str, int]:
    """PVE::HA::Config::parse_sid: `ct:<vmid>` or a bare vmid, as (sid, vmid)."""
    if sid.isdigit():
        if app.store.load(int(sid)) is None:
            raise fail(f"unable to detect SID from VMID - VM/CT {sid} does not exist")
        return f"ct:{sid}", int(sid)
    kind, _, name = sid.partition(":")
    if kind == "vm":
        raise fail(f"resource '{sid}' does not exist in cluster")  # the lab has no VMs
    if kind != "ct" or not name.isdigit():
        raise fail(f"unable to parse service id '{sid}'")
    return sid, int(name)


def crm_act(app, vmid: int, state: str) -> None:
    """What the CRM does for a requested state (at once here, on its next round in PVE); a service in `error`
    stays there until it is disabled (Manager.pm's next_state_error)."""
    state = requested_state(state)
    with app.crm.lock:
        svc = app.crm.services.get(sid_of(vmid))
        if svc is not None and svc["state"] == "error":
            if state == "disabled":
                app.crm.round()
            return
    if state == "started" and not app.running(vmid):
        start_ct(app, vmid)
    elif state in ("stopped", "disabled") and app.running(vmid):
        stop_ct(app, vmid, 10)


def _resource(app, sid: str) -> dict:
    options = app.ha.resources().get(sid)
    if options is None:
        raise fail(f"no such resource '{sid}'")
    return {**options, "sid": sid, "type": sid.split(":")[0], "digest": app.ha.digest()}


@route("GET /cluster/ha/resources")
def resources_index(call: Call):
    """GET /cluster/ha/resources: every resource (of a type, when asked)."""
    kind = call.params.get("type")
    return [_resource(call.app, sid) for sid in sorted(call.app.ha.resources())
            if kind in (None, sid.split(":")[0])]


@route("GET /cluster/ha/resources/{sid}")
def resource_read(call: Call):
    """GET /cluster/ha/resources/{sid}."""
    sid, _ = parse_sid(call.app, call.params["sid"])
    return _resource(call.app, sid)


@route("POST /cluster/ha/resources")
def resource_create(call: Call):
    """POST /cluster/ha/resources: put a CT under HA (the CRM then brings it to the requested state)."""
    app, p = call.app, call.params
    sid, vmid = parse_sid(app, p["sid"])
    if p.get("type") and p["type"] != "ct":
        raise fail("types does not match")
    if p.get("group") is not None:
        raise fail("invalid parameter 'group': ha groups have been migrated to rules")
    if app.store.load(vmid) is None:
        raise fail(f"resource '{sid}' does not exist in cluster")
    with app.ha.lock:
        if sid in app.ha.resources():
            raise fail(f"resource ID '{sid}' already defined")
        options = {k: p[k] for k in RESOURCE_KEYS if k in p}
        options["state"] = requested_state(options.get("state", RESOURCE_DEFAULTS["state"]))
        app.ha.save_resource(sid, options)
    crm_act(app, vmid, options["state"])


@route("PUT /cluster/ha/resources/{sid}")
def resource_update(call: Call):
    """PUT /cluster/ha/resources/{sid}: change options, `delete` some, refuse a stale digest."""
    app, p = call.app, call.params
    sid, vmid = parse_sid(app, p["sid"])
    if p.get("group") is not None:
        raise fail("invalid parameter 'group': ha groups have been migrated to rules")
    with app.ha.lock:
        options = app.ha.resources().get(sid)
        if options is None:
            raise fail(f"no such resource '{sid}'")
        if p.get("digest") and p["digest"] != app.ha.digest():
            raise fail("detected modified configuration - file changed by other user? Try again.")
        for key in split_list(p.get("delete", "")):
            if key not in RESOURCE_KEYS:
                raise fail(f"no such option '{key}'")
            options.pop(key, None)
        options.update({k: p[k] for k in RESOURCE_KEYS if k in p})
        if "state" in options:
            options["state"] = requested_state(options["state"])
        app.ha.save_resource(sid, options)
    crm_act(app, vmid, options.get("state", RESOURCE_DEFAULTS["state"]))


@route("DELETE /cluster/ha/resources/{sid}")
def resource_delete(call: Call):
    """DELETE /cluster/ha/resources/{sid}: the CT leaves HA (it keeps running as it is); purge drops it from rules."""
    app = call.app
    sid, _ = parse_sid(app, call.params["sid"])
    with app.ha.lock:
        if sid not in app.ha.resources():
            raise fail(f"cannot delete service '{sid}', not HA managed!")
        remove_resource(app, sid, purge=bool(call.params.get("purge", 1)))


def remove_resource(app, sid: str, purge: bool = True) -> None:
    """PVE::HA::Config::delete_service_from_config: the resource gone, and with purge from every rule (the caller
    holds app.ha.lock)."""
    app.ha.save_resource(sid, None)
    if purge:
        for rule, options in app.ha.rules().items():
            left = [r for r in split_list(options.get("resources", "")) if r != sid]
            app.ha.save_rule(rule, {**options, "resources": ",".join(left)} if left else None)


@route("GET /cluster/ha/status/current")
def status_current(call: Call):
    """GET /cluster/ha/status/current: quorum, the CRM master, each node's LRM, each service."""
    app = call.app
    now = int(time.time())
    quorate = app.cluster.quorate()
    out = [{"id": "quorum", "type": "quorum", "node": app.node, "quorate": int(quorate),
            "status": "OK" if quorate else f"No quorum on node '{app.node}'!"}]
    resources = app.ha.resources()
    online = [n.name for n in app.cluster.nodes if n.online]
    if resources:
        master = online[0]
        out.append({"id": "master", "type": "master", "node": master, "timestamp": now,
                    "status": f"{master} (active, {time.ctime(now)})"})
        for node in app.cluster.nodes:
            active = any(app.node_of(int(sid.split(":")[1])) == node.name for sid in resources)
            state = ("active" if active else "idle") if node.online else "old timestamp - dead?"
            if app.crm.node_state(node.name) == "fence":
                state = "fence"
            wd = "watchdog active" if node.online and active else "watchdog standby"
            out.append({"id": f"lrm:{node.name}", "type": "lrm", "node": node.name, "timestamp": now,
                        "status": f"{node.name} ({state}, {wd}, {time.ctime(now)})"})
    for sid in sorted(resources):
        options = resources[sid]
        vmid = int(sid.split(":")[1])
        node = app.node_of(vmid) or app.node
        request = options.get("state", "started")
        svc = app.crm.services.get(sid)
        if request == "ignored":
            crm = "ignored"
        elif svc is not None and svc["state"] not in ("started", "stopped"):
            crm = svc["state"]  # fence, recovery, error, request_stop: the manager's own state
        else:
            crm = "started" if app.running(vmid) else "stopped"
        entry = {"id": f"service:{sid}", "type": "service", "sid": sid, "node": node, "crm_state": crm,
                 "state": crm, "request_state": request, "status": f"{sid} ({node}, {crm})"}
        entry.update({k: options[k] for k in ("max_restart", "max_relocate", "failback", "comment") if k in options})
        out.append(entry)
    return out


# the options each rule type takes (NodeAffinity.pm's and ResourceAffinity.pm's options): required, optional
RULE_OPTIONS = {"node-affinity": (("resources", "nodes"), ("strict", "disable", "comment")),
                "resource-affinity": (("resources", "affinity"), ("disable", "comment"))}


def _check_options(options: dict, create: bool) -> None:
    """SectionConfig's check_config: no option the rule's type does not take; on create, every required one."""
    required, optional = RULE_OPTIONS[options["type"]]
    for key in sorted(options):
        if key != "type" and key not in required + optional:
            raise fail(f"unexpected property '{key}'")
    for key in required if create else ():
        if key not in options:
            raise fail(f"missing value for required option '{key}'")


def _check_rule(app, rule: str, options: dict) -> None:
    """Rules.pm's checks: resources HA-managed, nodes of the cluster, then the rule set's feasibility with this
    rule in it (Rules.pm's check_feasibility, refused as API2/HA/Rules.pm's assert_feasibility: 400, the rule's
    reasons per option)."""
    resources = split_list(options.get("resources", ""))
    if not resources:
        raise fail("no resources were specified")
    unmanaged = [r for r in resources if r not in app.ha.resources()]
    if unmanaged:
        raise fail(f"cannot use unmanaged resource(s) {', '.join(unmanaged)}.")
    if options.get("type") == "node-affinity":
        nodes = [n.split(":")[0] for n in split_list(options.get("nodes", ""))]
        if not nodes:
            raise fail("no nodes were specified")
        missing = [n for n in nodes if app.cluster.get(n) is None]
        if missing:
            raise fail(f"cannot use non-existent node(s) {', '.join(missing)}.")
    errors = feasibility_errors({**app.ha.rules(), rule: options}, [n.name for n in app.cluster.nodes]).get(rule)
    if errors:
        raise ApiError(400, f"Rule '{rule}' is invalid.", {k: ", ".join(v) for k, v in errors.items()})


def _rule(app, rule: str) -> dict:
    options = app.ha.rules().get(rule)
    if options is None:
        raise fail(f"no such ha rule '{rule}'")
    return {**options, "rule": rule, "digest": app.ha.digest()}


@route("GET /cluster/ha/rules")
def rules_index(call: Call):
    """GET /cluster/ha/rules: every rule (of a type, or naming a resource, when asked)."""
    p = call.params
    out = []
    for rule in sorted(call.app.ha.rules()):
        entry = _rule(call.app, rule)
        if p.get("type") and entry["type"] != p["type"]:
            continue
        if p.get("resource") and p["resource"] not in split_list(entry.get("resources", "")):
            continue
        out.append(entry)
    return out


@route("GET /cluster/ha/rules/{rule}")
def rule_read(call: Call):
    """GET /cluster/ha/rules/{rule}."""
    return _rule(call.app, call.params["rule"])


@route("POST /cluster/ha/rules")
def rule_create(call: Call):
    """POST /cluster/ha/rules: a node-affinity or resource-affinity rule."""
    app, p = call.app, call.params
    options = {k: p[k] for k in RULE_KEYS if k in p}
    if not int(options.get("disable") or 0):
        options.pop("disable", None)  # Rules.pm's create: a false `disable` is not written
    _check_options(options, create=True)
    _check_rule(app, p["rule"], options)
    with app.ha.lock:
        if p["rule"] in app.ha.rules():
            raise fail(f"HA rule '{p['rule']}' already defined")
        app.ha.save_rule(p["rule"], options)


@route("PUT /cluster/ha/rules/{rule}")
def rule_update(call: Call):
    """PUT /cluster/ha/rules/{rule}: change options (the type stays), `delete` some."""
    app, p = call.app, call.params
    with app.ha.lock:
        options = app.ha.rules().get(p["rule"])
        if options is None:
            raise fail(f"HA rule '{p['rule']}' does not exist")
        if p.get("digest") and p["digest"] != app.ha.digest():
            raise fail("detected modified configuration - file changed by other user? Try again.")
        if p["type"] != options["type"]:
            raise fail("types does not match")
        for key in split_list(p.get("delete", "")):
            options.pop(key, None)
        options.update({k: p[k] for k in RULE_KEYS if k in p})
        _check_options(options, create=False)
        _check_rule(app, p["rule"], options)
        app.ha.save_rule(p["rule"], options)


@route("DELETE /cluster/ha/rules/{rule}")
def rule_delete(call: Call):
    """DELETE /cluster/ha/rules/{rule}."""
    with call.app.ha.lock:
        if call.params["rule"] not in call.app.ha.rules():
            raise fail(f"no such ha rule '{call.params['rule']}'")
        call.app.ha.save_rule(call.params["rule"], None)
