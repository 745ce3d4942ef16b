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
Requests to move a service (`migrate`/`relocate`: the HA API, or a CT's own migrate when HA manages it) are queued
in STATE_DIR/state/crm_commands, as Config.pm's queue_crm_commands writes /etc/pve/ha/crm_commands, and played on
the next round as Manager.pm's update_crm_commands and next_state_started/stopped play them (a CT's migrate is a
relocate: stop, move, start).
The manager's state (nodes' and services' states, failure counts) is kept in STATE_DIR/state/manager_status.json
after each round, as the CRM master writes /etc/pve/ha/manager_status: a restarted emulator goes on from it (a
service in `error` stays there, a fenced node stays fenced); node downtime comes from cluster.json, so a restarted
emulator fences on time.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .api_lxc import start_ct, stop_ct
from .crm_commands import command_target, read_commands
from .ha import requested_state
from .ha_placement import node_affinity, resource_affinity, select_service_node
from .ha_rules import affinitive_resources, effective_rules, feasibility_errors
from .manager_status import load_status, save_status, served_status
from .node_power import boot_node, power_off

# NodeStatus.pm's $fence_delay; PVE then waits for the node's agent lock too (up to 120 s). The lab sets less.
FENCE_DELAY = 60.0
# the CRM's and LRM's loop period (pve-ha-crm / pve-ha-lrm work every 10 s)
ROUND = 10.0
STATUS_FILE = "manager_status.json"  # beside ha.json: PVE's /etc/pve/ha/manager_status
COMMANDS_FILE = "crm_commands"  # PVE's /etc/pve/ha/crm_commands
_uids = itertools.count(1)


def _vmid(sid: str) -> int:
    return int(sid.split(":")[1])


def _new_uid(state: str) -> str:
    """Manager.pm's compute_new_uuid: a fresh id for each state a service enters (md5, base64, no padding)."""
    seed = f"{state}{os.getpid()}{int(time.time())}{next(_uids)}".encode()
    return base64.b64encode(hashlib.md5(seed, usedforsecurity=False).digest()).decode().rstrip("=")


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
        self.commands_path = Path(app.ha.path).parent / COMMANDS_FILE
        self.master = ""
        self.timestamp = 0
        self._saved = ""
        self._rule_messages: list[str] = []
        load_status(self)

    def say(self, line: str) -> None:
        """Log one of the manager's lines (kept in `log`, and on stderr as pve-ha's syslog would have it)."""
        self.log.append(line)
        print(f"pve-ha: {line}", file=sys.stderr, flush=True)

    def node_state(self, name: str) -> str:
        """The node's state in the manager (online, unknown, fence)."""
        return self.nodes.get(name, "online")

    def service(self, sid: str) -> dict:
        """The manager's record of a service: state, the LRM's restart tries, the nodes its start failed on, a
        queued command."""
        return self.services.setdefault(sid, {"state": "started", "tries": 0, "failed_nodes": [],
                                              "uid": _new_uid("started")})

    def status(self) -> dict:
        """The manager status as PVE's CRM master writes it (master_node, node_status, service_status, timestamp)."""
        return served_status(self)

    def _set_node(self, name: str, state: str) -> None:
        old = self.node_state(name)
        if old != state:
            self.say(f"node '{name}': state changed from '{old}' => '{state}'")
            self.nodes[name] = state

    def _set_service(self, sid: str, state: str, node: str | None = None) -> None:
        svc = self.service(sid)
        if svc["state"] != state:
            extra = f"  (node = {node})" if node else ""
            self.say(f"service '{sid}': state changed from '{svc['state']}' to '{state}'{extra}")
            svc["state"] = state
            svc["uid"] = _new_uid(state)
            svc.pop("cmd", None)  # change_service_state keeps only state, node and failed nodes

    # --- one round ----------------------------------------------------------------------
    def round(self) -> None:
        """One CRM + LRM round over the whole cluster; the manager status saved after it (also after a failure)."""
        with self.lock:
            try:
                self._round()
            finally:
                save_status(self)

    def _round(self) -> None:
        app = self.app
        app.cluster.refresh()
        self.timestamp = int(self.clock())
        online = [n.name for n in app.cluster.nodes if n.online]
        self.master = self.master if self.master in online else (online[0] if online else self.master)
        resources = {sid: o for sid, o in app.ha.resources().items() if o.get("state") != "ignored"}
        for sid in list(self.services):
            if sid not in resources:
                del self.services[sid]  # `ignored` or removed: out of the manager status (Manager.pm)
        for sid, options in resources.items():
            if sid not in self.services:  # a new service: as it is (Manager.pm: not relocated when added)
                state = "started" if requested_state(options.get("state", "started")) == "started" else "stopped"
                self.services[sid] = {"state": state, "tries": 0, "failed_nodes": [], "uid": _new_uid(state)}
        for node in app.cluster.nodes:
            if node.online:
                self._node_up(node.name)
            else:
                self._node_down(node, resources)
        self._check_rules()
        read_commands(self, resources)
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
            self.say(f"fencing: acknowledged - got agent lock for node '{node.name}'")
            self._set_node(node.name, "unknown")
            for sid in to_fence:
                self._set_service(sid, "recovery")
        for sid in on_it:
            if self.service(sid)["state"] == "recovery":  # a service no node could take yet is retried each round
                self._recover(sid, node.name, resources)

    def _check_rules(self) -> None:
        """Rules.pm's transform as the CRM runs it: an infeasible rule is dropped, saying why (once per change)."""
        errors = feasibility_errors(self.app.ha.rules(), [n.name for n in self.app.cluster.nodes])
        messages = [f"Drop rule '{rid}', because {message}." for rid in sorted(errors)
                    for opt in sorted(errors[rid]) for message in errors[rid][opt]]
        if messages != self._rule_messages:
            for line in messages:
                self.say(line)
            self._rule_messages = messages

    def _place(self, sid: str, resources: dict, current: str, preference: str) -> str | None:
        """select_service_node for this service on the cluster as it is now (its node and resource affinity)."""
        app = self.app
        names = [n.name for n in app.cluster.nodes]
        online = [n.name for n in app.cluster.nodes if n.online]
        rules = effective_rules(app.ha.rules(), names)
        affinity = node_affinity(rules, sid, names)
        together, separate = affinitive_resources(rules, sid)
        services = {s: (rec["state"], app.node_of(_vmid(s)), None) for s, rec in self.services.items()
                    if s in resources}
        with_it, apart = resource_affinity(together, separate, services, online)
        options = resources.get(sid, {})
        return select_service_node(affinity, online, ha_load(app, resources), current, preference,
                                   self.service(sid)["failed_nodes"], failback=bool(int(options.get("failback", 1))),
                                   together=with_it, separate=apart)

    def _recover(self, sid: str, fenced: str, resources: dict) -> None:
        app, vmid = self.app, _vmid(sid)
        target = self._place(sid, resources, fenced, "best-score")
        if target is None:
            self.say(f"recovering service '{sid}' from fenced node '{fenced}' failed, no recovery node found")
            return
        volume = str((app.store.load(vmid) or {}).get("config", {}).get("rootfs", "")).split(",")[0]
        store = app.storages.get(volume.split(":")[0])
        if store is None or not store.shared:
            # its volume stayed on the fenced node's disk: the start on another node cannot find it
            self.say(f"service '{sid}' got unrecoverable error: volume '{volume}' is not on shared storage")
            self._set_service(sid, "error")
            return
        if target == fenced:  # a strict rule's only node came back before any other could take the service
            self.say(f"recover service '{sid}' to previous failed and fenced node '{fenced}' again")
        else:
            self.say(f"recover service '{sid}' from fenced node '{fenced}' to node '{target}'")
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
            if svc.get("cmd"):
                task = svc["cmd"][0]
                target = command_target(self, sid, node)
                if target is not None:
                    self.say(f"{task} service '{sid}' to node '{target}'")
                    self._relocate(sid, vmid, node, target, state=task)
                return
            target = self._place(sid, self._resources(), node, "none")
            if target is not None and target != node:
                self.say(f"relocate service '{sid}' to node '{target}'")  # failback to the node its rule prefers
                self._relocate(sid, vmid, node, target)
                return
            if app.running(vmid):
                svc["tries"] = 0
                return
            self._start(sid, vmid, options)
        elif app.running(vmid):
            self.say(f"stopping service {sid}")
            stop_ct(app, vmid, 10)
            self.say(f"service status {sid} stopped")
            self._set_service(sid, "stopped")
        elif svc["state"] != "stopped" or not svc.get("cmd"):
            self._set_service(sid, "stopped")
        else:
            task = svc["cmd"][0]
            target = command_target(self, sid, node)
            if target is not None:  # a stopped service moves its config only (next_state_stopped)
                self._set_service(sid, task, node=f"{node}, target = {target}")
                app.place(vmid, target)
                self._set_service(sid, "request_stop", node=target)

    def _resources(self) -> dict:
        return {sid: o for sid, o in self.app.ha.resources().items() if o.get("state") != "ignored"}

    def _start(self, sid: str, vmid: int, options: dict) -> None:
        """The LRM's start; a failure is retried max_restart times here (LRM.pm's handle_service_exitcode), then
        the CRM relocates the service to the next node, up to max_relocate nodes (Manager.pm's relocate policy)."""
        app, svc, node = self.app, self.service(sid), self.app.node_of(vmid)
        self.say(f"starting service {sid}")
        why = start_failure(app, vmid)
        if why is None:
            svc["tries"] = 0
            self.say(f"service status {sid} started")
            if svc["failed_nodes"]:
                self.say(f"relocation policy successful for '{sid}' on node '{node}', failed nodes: "
                          + ", ".join(svc["failed_nodes"]))
                svc["failed_nodes"] = []
            return
        self.say(f"unable to start service {sid}: {why}")
        if svc["tries"] < int(options.get("max_restart", 1)):
            svc["tries"] += 1
            self.say(f"restart policy: retry number {svc['tries']} for service '{sid}'")
            return
        self.say(f"unable to start service {sid} on local node after {svc['tries']} retries")
        svc["tries"] = 0
        svc["failed_nodes"].append(node)
        failed = ", ".join(svc["failed_nodes"])
        if len(svc["failed_nodes"]) > int(options.get("max_relocate", 1)):
            self.say(f"recovery policy for service {sid} failed, entering error state. Failed nodes: {failed}")
            self._set_service(sid, "error")
            return
        self.say(f"starting service {sid} on node '{node}' failed, relocating service.")
        target = self._place(sid, self._resources(), node, "try-next")
        if target is None or target == node:
            self.say(f"Start Error Recovery: Tried all available nodes for service '{sid}', retry start on "
                      f"current node. Tried nodes: {failed}")
            return
        self.say(f"relocate service '{sid}' to node '{target}'")
        self._relocate(sid, vmid, node, target)

    def _relocate(self, sid: str, vmid: int, source: str, target: str, state: str = "relocate") -> None:
        """PVECT.pm's migrate (a CT is always relocated): shut down, its config moved to the target, where the
        target's LRM starts it on its next round; a locked CT's migration fails and it stays where it is."""
        app = self.app
        self._set_service(sid, state, node=f"{source}, target = {target}")
        lock = (app.store.load(vmid) or {}).get("config", {}).get("lock")
        if app.running(vmid) and not lock:
            stop_ct(app, vmid, 10)
        if lock:
            self.say(f"service '{sid}' - migration failed (exit code 1)")
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

