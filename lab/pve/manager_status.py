"""The HA manager's status, as the CRM master keeps /etc/pve/ha/manager_status: written after each round, read back by
a restarted emulator (it goes on from it), served by GET /cluster/ha/status/manager_status."""

from __future__ import annotations

import json
import os


def _vmid(sid: str) -> int:
    return int(sid.split(":")[1])


def load_status(crm) -> None:
    """The manager status a previous emulator left (none: a fresh cluster, every node online)."""
    try:
        text = crm.status_path.read_text()
        status = json.loads(text)
        nodes, services = dict(status["node_status"]), dict(status["service_status"])
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # a torn or foreign file: start as a new master would, and say so
        crm.say(f"ignoring {crm.status_path}: {type(exc).__name__}: {exc}")
        return
    crm.nodes = {str(k): str(v) for k, v in nodes.items()}
    crm.services = {}
    for sid, rec in services.items():
        svc = {"state": str(rec.get("state", "started")), "tries": int(rec.get("tries", 0)),
               "failed_nodes": [str(n) for n in rec.get("failed_nodes", [])]}
        svc.update({k: rec[k] for k in ("node", "uid", "cmd", "running") if k in rec})
        crm.services[str(sid)] = svc
    crm.master = str(status.get("master_node", ""))
    crm.timestamp = int(status.get("timestamp", 0))
    crm._saved = text


def save_status(crm) -> None:
    """Write the manager status when it changed (atomically: a crash leaves the old or the new one)."""
    for sid, svc in crm.services.items():
        svc["node"] = crm.app.node_of(_vmid(sid))
    status = {"master_node": crm.master, "node_status": crm.nodes, "service_status": crm.services,
              "timestamp": crm.timestamp}
    text = json.dumps(status, indent=1, sort_keys=True)
    if text == crm._saved:
        return
    crm.status_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = crm.status_path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, crm.status_path)
    crm._saved = text


def served_status(crm) -> dict:
    """The manager status as PVE's CRM master writes it (master_node, node_status, service_status, timestamp)."""
    with crm.lock:
        services = {}
        for sid, svc in sorted(crm.services.items()):
            entry = {k: svc[k] for k in ("state", "uid", "cmd") if k in svc}
            entry["node"] = crm.app.node_of(_vmid(sid))
            if svc["failed_nodes"]:
                entry["failed_nodes"] = list(svc["failed_nodes"])
            if svc["state"] == "started" and crm.app.running(_vmid(sid)):
                entry["running"] = 1  # Manager.pm: a successful start, valid while `started`
            services[sid] = entry
        nodes = {n.name: crm.node_state(n.name) for n in crm.app.cluster.nodes}
        return {"master_node": crm.master, "node_status": nodes, "service_status": services,
                "timestamp": crm.timestamp}
