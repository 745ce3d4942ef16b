"""HA endpoints that move a service or show the manager, as pve-ha-manager's API2/HA/Resources.pm and Status.pm
answer them: a resource's migrate/relocate only queues a CRM command (crm.py plays it on its next round), as
Resources.pm's queue_crm_commands does; manager_status is the CRM's own state."""

from __future__ import annotations

from .api_ha import parse_sid
from .crm_commands import queue_command
from .errors import fail
from .ha_rules import affinitive_resources, effective_rules
from .routes import Call, route


def motion_sid(app, sid: str) -> str:
    """parse_sid for a migrate/relocate: `<type>:<name>` as given, a bare vmid resolved to its CT."""
    if sid.isdigit():
        return parse_sid(app, sid)[0]
    kind, _, name = sid.partition(":")
    if not kind or not name or any(c.isspace() for c in sid):
        raise fail(f"unable to parse service id '{sid}'")
    return sid


def request_motion(app, task: str, sid: str, node: str) -> dict:
    """Resources.pm's migrate/relocate: the service must be HA-managed and not in `error`; the command is queued
    for the CRM; the answer names the services moved along and those in the way on the target."""
    options = app.ha.resources().get(sid)
    if options is None or options.get("state") == "ignored":
        raise fail(f"resource '{sid}' is not HA managed")  # service_is_ha_managed
    svc = app.crm.services.get(sid)
    if svc is not None and svc["state"] == "error":  # check_service_state
        raise fail(f"service '{sid}' in error state, must be disabled and fixed first")
    queue_command(app.crm, f"{task} {sid} {node}")
    result: dict = {"sid": sid, "requested-node": node}
    comigrated, blocking = motion_info(app, sid, node)
    if comigrated:
        result["comigrated-resources"] = comigrated
    if blocking:
        result["blocking-resources"] = blocking
    return result


def motion_info(app, sid: str, node: str) -> tuple[list[str], list[dict]]:
    """Config.pm's get_resource_motion_info for one target node: the services kept together with sid (moved along),
    and those kept apart from it that are on that node (in the way)."""
    rules = effective_rules(app.ha.rules(), [n.name for n in app.cluster.nodes])
    together, separate = affinitive_resources(rules, sid)
    managed = app.crm.services
    comigrated = sorted(csid for csid in together if csid in managed)
    blocking = []
    if app.crm.node_state(node) == "online" and app.cluster.get(node) is not None:
        blocking = [{"sid": csid, "cause": "resource-affinity"} for csid in sorted(separate)
                    if csid in managed and app.node_of(int(csid.split(":")[1])) == node]
    return comigrated, blocking


@route("POST /cluster/ha/resources/{sid}/migrate")
def resource_migrate(call: Call):
    """POST …/migrate: a `migrate <sid> <node>` command for the CRM (a CT's migrate is a relocate)."""
    sid = motion_sid(call.app, call.params["sid"])
    return request_motion(call.app, "migrate", sid, call.params["node"])


@route("POST /cluster/ha/resources/{sid}/relocate")
def resource_relocate(call: Call):
    """POST …/relocate: a `relocate <sid> <node>` command for the CRM (stop, move, start)."""
    sid = motion_sid(call.app, call.params["sid"])
    return request_motion(call.app, "relocate", sid, call.params["node"])


@route("GET /cluster/ha/status/manager_status")
def status_manager(call: Call):
    """GET …/manager_status: the CRM master's manager status, the quorum, each node's LRM status."""
    app = call.app
    status = app.crm.status() if app.crm.timestamp else {}  # no round played yet: no master wrote it
    lrm = {}
    for name in sorted(status.get("node_status", {})):
        node = app.cluster.get(name)
        active = any(app.node_of(int(sid.split(":")[1])) == name for sid in app.crm.services)
        lrm[name] = {"mode": "active", "results": {},
                     "state": "active" if active else "wait_for_agent_lock",
                     "timestamp": app.crm.timestamp if node is None or node.online else int(node.since)}
    out = {"manager_status": status, "quorum": {"node": app.node, "quorate": int(app.cluster.quorate())}}
    if lrm:
        out["lrm_status"] = lrm
    return out
