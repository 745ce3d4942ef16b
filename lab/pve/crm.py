"""The HA manager's rounds (pve-ha-manager's CRM and each node's LRM, played in one pass) and a node's power.

One round, as PVE's Manager.pm / NodeStatus.pm / LRM.pm order it:
- a node that is down loses power: its running containers stop at once (the lab's nodes share one machine,
  so the emulator stops them for it); its node state goes `online` -> `unknown`;
- after the fence delay since it went down, the node is fenced (`fence`, then `fencing: acknowledged`, back to
  `unknown`) and each HA service on it goes `fence` -> `recovery` -> `started` on the node select_service_node
  picks (ha_placement.py: its node-affinity rule's highest-priority online nodes, then the fewest HA services),
  its config stolen to that node; with no allowed node online (a strict rule) it waits in `recovery`;
- a node that comes back goes `online` again and boots: its non-HA containers with `onboot: 1` start;
- each `started` service not on the node its rule prefers is relocated there (failback, Manager.pm's
  next_state_started); each LRM brings its HA services to their requested state: a `started` CT that does not run
  is started (a locked config makes the start fail: the LRM retries max_restart times on its node, then the CRM
  relocates it to the next allowed node, up to max_relocate nodes, then the service is in `error`, where only
  `disabled` gets it out), a `stopped`/`disabled` one that runs is stopped; `ignored` ones are left alone.
The manager's state (nodes' and services' states, failure counts) is kept in STATE_DIR/state/manager_status.json
after each round, as the CRM master writes /etc/pve/ha/manager_status: a restarted emulator goes on from it (a
service in `error` stays there, a fenced node stays fenced); node downtime comes from cluster.json, so a restarted
emulator fences on time.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .api_lxc import kill_ct, start_ct, stop_ct
from .ha import requested_state
from .ha_placement import node_affinity, select_service_node

# NodeStatus.pm's $fence_delay; PVE then waits for the node's agent lock too (up to 120 s). The lab sets less.
FENCE_DELAY = 60.0
# the CRM's and LRM's loop period (pve-ha-crm / pve-ha-lrm work every 10 s)
ROUND = 10.0
STATUS_FILE = "manager_status.json"  # beside ha.json: PVE's /etc/pve/ha/manager_status


def _vmid(sid: str) -> int:
    return int(sid.split(":")[1])


class HaManager:
    """The CRM master and the LRMs of the emulated cluster."""

    def __init__(self, app, fence_delay: float = FENCE_DELAY, clock: Callable[[], float] = time.time):
        self.app = app
        self.fence_delay = fence_delay
        self.clock = clock
        self.nodes: dict[str, str] = {}
        self.services: dict[str, dict] = {}
        self.log: list[str] = []
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self.status_path = Path(app.ha.path).parent / STATUS_FILE
        self._saved = ""
        self._load()

    def _load(self) -> None:
        """The manager status a previous emulator left (none: a fresh cluster, every node online)."""
        try:
            text = self.status_path.read_text()
            status = json.loads(text)
            nodes, services = dict(status["node_status"]), dict(status["service_status"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # a torn or foreign file: start as a new master would, and say so
            self._say(f"ignoring {self.status_path}: {type(exc).__name__}: {exc}")
            return
        self.nodes = {str(k): str(v) for k, v in nodes.items()}
        self.services = {str(k): {"state": str(v.get("state", "started")), "tries": int(v.get("tries", 0)),
                                  "failed_nodes": [str(n) for n in v.get("failed_nodes", [])]}
                         for k, v in services.items()}
        self._saved = text

    def _save(self) -> None:
        """Write the manager status when it changed (atomically: a crash leaves the old or the new one)."""
        text = json.dumps({"node_status": self.nodes, "service_status": self.services}, indent=1, sort_keys=True)
        if text == self._saved:
            return
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.status_path)
        self._saved = text

    def _say(self, line: str) -> None:
        self.log.append(line)
        print(f"pve-ha: {line}", file=sys.stderr, flush=True)

    def node_state(self, name: str) -> str:
        """The node's state in the manager (online, unknown, fence)."""
        return self.nodes.get(name, "online")

    def service(self, sid: str) -> dict:
        """The manager's record of a service: state, the LRM's restart tries, the nodes its start failed on."""
        return self.services.setdefault(sid, {"state": "started", "tries": 0, "failed_nodes": []})

    def _set_node(self, name: str, state: str) -> None:
        old = self.node_state(name)
        if old != state:
            self._say(f"node '{name}': state changed from '{old}' => '{state}'")
            self.nodes[name] = state

    def _set_service(self, sid: str, state: str, node: str | None = None) -> None:
        svc = self.service(sid)
        if svc["state"] != state:
            extra = f"  (node = {node})" if node else ""
            self._say(f"service '{sid}': state changed from '{svc['state']}' to '{state}'{extra}")
            svc["state"] = state

    # --- one round ----------------------------------------------------------------------
    def round(self) -> None:
        """One CRM + LRM round over the whole cluster; the manager status saved after it (also after a failure)."""
        with self.lock:
            try:
                self._round()
            finally:
                self._save()

    def _round(self) -> None:
        app = self.app
        app.cluster.refresh()
        resources = {sid: o for sid, o in app.ha.resources().items() if o.get("state") != "ignored"}
        for sid in list(self.services):
            if sid not in resources:
                del self.services[sid]  # `ignored` or removed: out of the manager status (Manager.pm)
        for node in app.cluster.nodes:
            if node.online:
                self._node_up(node.name)
            else:
                self._node_down(node, resources)
        for sid, options in sorted(resources.items()):
            self._lrm(sid, requested_state(options.get("state", "started")), options)

    def _node_down(self, node, resources: dict) -> None:
        power_off(self.app, node.name)
        if self.node_state(node.name) == "online":
            self._set_node(node.name, "unknown")
        on_it = [sid for sid in sorted(resources) if self.app.node_of(_vmid(sid)) == node.name]
        if not on_it or self.clock() - node.since < self.fence_delay:
            return
        to_fence = [sid for sid in on_it if self.service(sid)["state"] not in ("recovery", "error")]
        if to_fence:
            self._set_node(node.name, "fence")
            for sid in to_fence:
                self._set_service(sid, "fence")
            self._say(f"fencing: acknowledged - got agent lock for node '{node.name}'")
            self._set_node(node.name, "unknown")
            for sid in to_fence:
                self._set_service(sid, "recovery")
        for sid in on_it:
            if self.service(sid)["state"] == "recovery":  # a service no node could take yet is retried each round
                self._recover(sid, node.name, resources)

    def _place(self, sid: str, resources: dict, current: str, preference: str) -> str | None:
        """select_service_node for this service on the cluster as it is now."""
        app = self.app
        online = [n.name for n in app.cluster.nodes if n.online]
        affinity = node_affinity(app.ha.rules(), sid, [n.name for n in app.cluster.nodes])
        options = resources.get(sid, {})
        return select_service_node(affinity, online, ha_load(app, resources), current, preference,
                                   self.service(sid)["failed_nodes"], failback=bool(int(options.get("failback", 1))))

    def _recover(self, sid: str, fenced: str, resources: dict) -> None:
        app, vmid = self.app, _vmid(sid)
        target = self._place(sid, resources, fenced, "best-score")
        if target is None:
            self._say(f"recovering service '{sid}' from fenced node '{fenced}' failed, no recovery node found")
            return
        volume = str((app.store.load(vmid) or {}).get("config", {}).get("rootfs", "")).split(",")[0]
        store = app.storages.get(volume.split(":")[0])
        if store is None or not store.shared:
            # its volume stayed on the fenced node's disk: the start on another node cannot find it
            self._say(f"service '{sid}' got unrecoverable error: volume '{volume}' is not on shared storage")
            self._set_service(sid, "error")
            return
        if target == fenced:  # a strict rule's only node came back before any other could take the service
            self._say(f"recover service '{sid}' to previous failed and fenced node '{fenced}' again")
        else:
            self._say(f"recover service '{sid}' from fenced node '{fenced}' to node '{target}'")
        app.place(vmid, target)
        state = requested_state(resources[sid].get("state", "started"))
        self._set_service(sid, "started" if state == "started" else "request_stop", node=target)

    def _node_up(self, name: str) -> None:
        if self.node_state(name) == "online":
            return
        self._set_node(name, "online")
        boot_node(self.app, name)

    def _lrm(self, sid: str, request: str, options: dict) -> None:
        app, vmid = self.app, _vmid(sid)
        svc = self.service(sid)
        node = app.node_of(vmid)
        if node is None or not app.cluster.online(node):
            return
        if svc["state"] == "recovery":
            self._recover(sid, node, self._resources())  # its node came back while no other could take it
            return
        if svc["state"] == "error":
            if request == "disabled":
                self._set_service(sid, "stopped")  # Manager.pm: an admin disables a service to clear its error
            return
        if request == "started":
            if svc["state"] in ("stopped", "request_stop"):
                self._set_service(sid, "started", node=node)
            target = self._place(sid, self._resources(), node, "none")
            if target is not None and target != node:
                self._say(f"relocate service '{sid}' to node '{target}'")  # failback to the node its rule prefers
                self._relocate(sid, vmid, node, target)
                return
            if app.running(vmid):
                svc["tries"] = 0
                return
            self._start(sid, vmid, options)
        elif app.running(vmid):
            self._say(f"stopping service {sid}")
            stop_ct(app, vmid, 10)
            self._say(f"service status {sid} stopped")
            self._set_service(sid, "stopped")
        else:
            self._set_service(sid, "stopped")

    def _resources(self) -> dict:
        return {sid: o for sid, o in self.app.ha.resources().items() if o.get("state") != "ignored"}

    def _start(self, sid: str, vmid: int, options: dict) -> None:
        """The LRM's start; a failure is retried max_restart times here (LRM.pm's handle_service_exitcode), then
        the CRM relocates the service to the next node, up to max_relocate nodes (Manager.pm's relocate policy)."""
        app, svc, node = self.app, self.service(sid), self.app.node_of(vmid)
        self._say(f"starting service {sid}")
        why = start_failure(app, vmid)
        if why is None:
            svc["tries"] = 0
            self._say(f"service status {sid} started")
            if svc["failed_nodes"]:
                self._say(f"relocation policy successful for '{sid}' on node '{node}', failed nodes: "
                          + ", ".join(svc["failed_nodes"]))
                svc["failed_nodes"] = []
            return
        self._say(f"unable to start service {sid}: {why}")
        if svc["tries"] < int(options.get("max_restart", 1)):
            svc["tries"] += 1
            self._say(f"restart policy: retry number {svc['tries']} for service '{sid}'")
            return
        self._say(f"unable to start service {sid} on local node after {svc['tries']} retries")
        svc["tries"] = 0
        svc["failed_nodes"].append(node)
        failed = ", ".join(svc["failed_nodes"])
        if len(svc["failed_nodes"]) > int(options.get("max_relocate", 1)):
            self._say(f"recovery policy for service {sid} failed, entering error state. Failed nodes: {failed}")
            self._set_service(sid, "error")
            return
        self._say(f"starting service {sid} on node '{node}' failed, relocating service.")
        target = self._place(sid, self._resources(), node, "try-next")
        if target is None or target == node:
            self._say(f"Start Error Recovery: Tried all available nodes for service '{sid}', retry start on "
                      f"current node. Tried nodes: {failed}")
            return
        self._say(f"relocate service '{sid}' to node '{target}'")
        self._relocate(sid, vmid, node, target)

    def _relocate(self, sid: str, vmid: int, source: str, target: str) -> None:
        """PVECT.pm's migrate (a CT is always relocated): shut down, its config moved to the target, where the
        target's LRM starts it on its next round; a locked CT's migration fails and it stays where it is."""
        app = self.app
        self._set_service(sid, "relocate", node=f"{source}, target = {target}")
        lock = (app.store.load(vmid) or {}).get("config", {}).get("lock")
        if app.running(vmid) and not lock:
            stop_ct(app, vmid, 10)
        if lock:
            self._say(f"service '{sid}' - migration failed (exit code 1)")
            self._set_service(sid, "started", node=source)
            return
        app.place(vmid, target)
        self._set_service(sid, "started", node=target)

    # --- the loop -----------------------------------------------------------------------
    def run(self, period: float = ROUND) -> threading.Thread:
        """Play a round every `period` seconds in a daemon thread (the lab's server), until stop()."""

        def loop() -> None:
            while not self._stop.wait(period):
                try:
                    self.round()
                except Exception as exc:  # noqa: BLE001 - one failed round must not end the manager
                    print(f"pve-ha: round failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

        thread = threading.Thread(target=loop, name="pve-ha", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """End the loop started by run()."""
        self._stop.set()


def ha_load(app, resources: dict) -> dict[str, int]:
    """The HA services on each online node (Usage/Basic.pm's count, the basic scheduler's score)."""
    count = {n.name: 0 for n in app.cluster.nodes if n.online}
    for sid in resources:
        node = app.node_of(_vmid(sid))
        if node in count:
            count[node] += 1
    return count


def start_failure(app, vmid: int) -> str | None:
    """Start a CT as the LRM's resource agent does; why it failed (a locked config, the driver's error) or None."""
    lock = (app.store.load(vmid) or {}).get("config", {}).get("lock")
    if lock:
        return f"CT is locked ({lock})"
    try:
        start_ct(app, vmid)
    except RuntimeError as exc:  # the host driver's error (lab.hosts.HostError): lxc-start failed
        return str(exc)
    return None


def power_off(app, node: str) -> list[int]:
    """A node that lost power: its running containers stop at once. The vmids it stopped."""
    stopped = []
    for vmid in app.store.vmids():
        if app.node_of(vmid) == node and app.running(vmid):
            kill_ct(app, vmid)
            stopped.append(vmid)
    return stopped


def boot_node(app, node: str) -> list[int]:
    """A node that comes back boots: its non-HA containers with `onboot: 1` start (pve-guests' startall);
    its HA ones are the LRM's. The vmids it started."""
    started = []
    for vmid in app.store.vmids():
        rec = app.store.load(vmid)
        if rec is None or app.node_of(vmid) != node or app.ha.managed(vmid):
            continue
        if int(rec["config"].get("onboot") or 0) and not app.running(vmid):
            start_ct(app, vmid)
            started.append(vmid)
    return started
