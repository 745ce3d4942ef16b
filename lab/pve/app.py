"""The emulator: dispatch (auth, permission, node, parameters, handler) and shared CT helpers."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import (  # noqa: F401 - registers the routes
    api_backup_jobs,
    api_cluster,
    api_create,
    api_firewall,
    api_ha,
    api_ha_motion,
    api_lxc,
    api_migrate,
    api_snapshot,
    api_storage,
    api_vzdump,
    boot,
)
from .api_cluster import reported_version
from .auth import TokenStore, check
from .cluster import Cluster
from .crm import FENCE_DELAY, HaManager
from .driver import HostDriver, listed_running, listed_vmids
from .errors import (
    ApiError,
    TaskFailure,
    fail,
    forbidden_text,
    missing_config,
    no_quorum,
    node_unreachable,
    not_implemented,
    param_error,
    unknown_node,
)
from .faults import FaultPlan, Rule
from .firewall import TABLE, FirewallStore, nft_enforce, nft_table_handle
from .ha import HaStore
from .jsonschema import answer_errors, validate_params
from .routes import Call, WithTotal, find
from .state import CTStore
from .storage import node_storages
from .tasks import Task, TaskRegistry

API_PREFIX = "/api2/json"


@dataclass
class Reply:
    """What the HTTP layer sends: status, reason phrase and JSON body (None = empty body)."""

    status: int
    reason: str
    body: dict | None
    drop: bool = False  # an injected fault: close the connection unanswered


class Emulator:
    """The PVE API of one node (the local one) and, through it, of the cluster it belongs to."""

    def __init__(self, state_dir: str | os.PathLike, driver: HostDriver, node: str = "homelab",
                 version: str | None = None, verify_results: bool = False,
                 backup_dir: str | os.PathLike | None = None, enforce_firewall: bool = False,
                 nodes: int | None = None, fence_delay: float = FENCE_DELAY, firewall_table: str = TABLE):
        self.node = node
        self.version = reported_version(version)
        # RESTHandler's result_verification, off in PVE's daemons: on, an answer that does not match the
        # schema's `returns` is refused (400 "Result verification failed") instead of reaching the client.
        self.verify_results = verify_results
        self.driver = driver
        self.state_dir = Path(state_dir)
        self.store = CTStore(self.state_dir / "state")
        # nodes=None: the cluster the state directory already holds (one node when it holds none)
        self.cluster = Cluster(self.state_dir / "state", node, nodes)
        self.ha = HaStore(self.state_dir / "state")
        self.crm = HaManager(self, fence_delay)  # its rounds run only when the server (or a test) plays them
        self._request = threading.local()
        # storage.cfg: `backup` lives beside the lab's state (LAB_DIR/backup), apart from the CTs' disks
        self.backup_dir = Path(backup_dir) if backup_dir else self.state_dir.parent / "backup"
        self.storages = node_storages(self.state_dir.parent / "local", self.backup_dir,
                                      self.state_dir.parent / "shared" if self.cluster.is_cluster else None)
        self.jobs_file = self.state_dir / "state" / "jobs.json"
        # The node's firewall; enforced (nftables, root) by the lab's server, kept as files only in unit tests.
        self.firewall = FirewallStore(self.state_dir / "state", enforce=nft_enforce if enforce_firewall else None,
                                      table=firewall_table, loaded=nft_table_handle if enforce_firewall else None)
        if enforce_firewall:
            self.firewall.apply()  # a node's boot: pve-firewall loads the saved rules before anything else
        self.tokens = TokenStore(self.state_dir)
        self.tasks = TaskRegistry(node)
        self.faults = FaultPlan(self.state_dir)
        self._task_fault = threading.local()
        self.started: dict[int, float] = {}
        self.boot = time.time()
        self._adopt_lock = threading.Lock()

    # --- dispatch -------------------------------------------------------------------------
    def handle(self, method: str, path: str, params: dict[str, str], authorization: str | None) -> Reply:
        """Answer one request the way pve-http-server orders its checks."""
        rel = path[len(API_PREFIX):].rstrip("/") or "/"
        rule = self.faults.match(method, rel, params)
        if rule is not None and rule.action == "drop":
            return Reply(0, "", None, drop=True)
        if rule is not None and rule.action == "error":
            return self._error(ApiError(rule.status, rule.reason()))
        if rule is not None and rule.action == "hang":
            self.faults.hang(rule)
        self._task_fault.rule = rule if rule is not None and rule.action.startswith("task_") else None
        try:
            return self._handle(method, path, params, authorization)
        except ApiError as err:
            return self._error(err)
        finally:
            self._task_fault.rule = None

    def _error(self, err: ApiError) -> Reply:
        if err.status in (401, 595):  # a 401, and a proxy's connection error (AnyEvent::HTTP's 595), have no body
            return Reply(err.status, err.message, None)
        body: dict[str, Any] = {"data": None, "message": err.message + "\n"}
        if err.errors:
            body["errors"] = err.errors
        return Reply(err.status, err.message, body)

    def _handle(self, method, path, params, authorization) -> Reply:
        if not path.startswith(API_PREFIX + "/"):
            raise ApiError(501, "Not Implemented")
        rel = path[len(API_PREFIX):].rstrip("/") or "/"
        principal = self.tokens.authenticate(authorization)
        found = find(method, rel)
        if found is None:
            raise not_implemented(method, rel)
        route, uri = found
        conflicting = {k: "duplicate parameter (already defined in URI) with conflicting values!"
                       for k in sorted(set(uri) & set(params)) if params[k] != uri[k]}
        if conflicting:
            raise param_error(conflicting)
        merged = {**params, **uri}
        if not route.schema.get("allowtoken"):
            raise forbidden_text(f"URI '{rel}' not available with API token, need proper ticket.")
        # pve-http-server's order: the schema's permission check, proxying to the node, then the
        # handler, which validates the parameters before it runs (and checks its own permissions).
        perm = route.schema_check(merged)
        if perm is not None:
            check(principal, *perm)
        self.cluster.refresh()
        proxyto = route.schema.get("proxyto")
        if proxyto:
            target = merged.get(proxyto, "")
            if self.cluster.get(target) is None:
                raise unknown_node(target)
            if not self.cluster.online(target):
                raise node_unreachable()
        typed = validate_params(route.parameters, merged)
        perm = route.handler_check(typed)
        if perm is not None:
            check(principal, *perm)
        node = merged.get(proxyto, self.node) if proxyto else self.node
        self._request.node = node
        try:
            # Only a call proxied to the node reads the CT's config there; the others (a CT's firewall rules,
            # ipsets, aliases) are answered from the cluster file system by whichever node gets them.
            if proxyto and "{vmid}" in route.pattern and "{node}" in route.pattern:
                placed = self.node_of(typed["vmid"])
                if placed is not None and placed != node:
                    raise fail(missing_config(node, typed["vmid"]))  # its config is in the other node's directory
            if method != "GET" and not self.cluster.quorate():
                raise no_quorum()  # pmxcfs is read-only without quorum: every write dies in check_cfs_quorum
            result = route.handler(Call(self, principal, typed))
        finally:
            self._request.node = None
        if self.verify_results:
            data = result.data if isinstance(result, WithTotal) else result
            wrong = answer_errors(route.schema.get("returns") or {}, data)
            if wrong:
                raise ApiError(400, "Result verification failed", wrong)
        if isinstance(result, WithTotal):
            return Reply(200, "OK", {"data": result.data, "total": result.total})
        return Reply(200, "OK", {"data": result})

    # --- helpers for handlers -------------------------------------------------------------
    def request_node(self) -> str:
        """The node the current call (or task) runs on: the call's {node}, else the local node."""
        return getattr(self._request, "node", None) or self.node

    def node_of(self, vmid: int) -> str | None:
        """The node a CT is placed on (None when there is no such CT)."""
        rec = self.store.load(vmid)
        return None if rec is None else self.node_in(rec)

    def node_in(self, rec: dict) -> str:
        """The node a CT's record places it on."""
        return rec.get("node") or self.node

    def place(self, vmid: int, node: str) -> None:
        """Record that a CT now belongs to a node (its config moved to nodes/<node>/lxc/)."""
        with self.store.lock(vmid):
            rec = self.store.load(vmid)
            if node == self.node:
                rec.pop("node", None)  # the default node's records stay as a one-node lab writes them
            else:
                rec["node"] = node
            self.store.save(vmid, rec)

    def running(self, vmid: int) -> bool:
        """Tell whether a CT runs (False when the driver does not know it)."""
        try:
            return self.driver.exists(vmid) and self.driver.status(vmid) == "running"
        except Exception:  # noqa: BLE001 - a driver that cannot tell means "not running"
            return False

    def guests(self) -> list[tuple[int, dict, bool | None]]:
        """Every CT as (vmid, its record, whether it runs; None when the driver cannot tell them all at once),
        from ONE listing of the driver and one read of each record: a guest list of the cluster asks the driver
        once, not once per CT."""
        try:
            listing = list(self.driver.list() or [])
        except Exception as exc:  # noqa: BLE001 - listing must not fail on a driver hiccup
            print(f"pve: driver list failed: {exc}", file=sys.stderr)
            listing = None
        running = None if listing is None else listed_running(listing)
        out = []
        for vmid in self.vmids(listing):
            rec = self.store.load(vmid)
            if rec is not None:
                out.append((vmid, rec, None if running is None else vmid in running))
        return out

    def vmids(self, listing: list | None = None) -> list[int]:
        """Return every CT: those with a config plus any the driver holds (adopted); listing: the driver's list()
        when the caller has it already."""
        known = set(self.store.vmids())
        try:
            held = listed_vmids((self.driver.list() or []) if listing is None else listing)
            for vmid in held - known:
                self.adopt(vmid)
                known.add(vmid)
            # A CT destroyed behind the API's back (lab down, a test's cleanup) loses its config too;
            # a CT still being created (lock: create) has a config before the driver holds it.
            for vmid in known - held:
                rec = self.store.load(vmid)
                if rec is not None and not rec["config"].get("lock"):
                    self.store.delete(vmid)
                    known.discard(vmid)
        except Exception as exc:  # noqa: BLE001 - listing must not fail on a driver hiccup
            print(f"pve: driver list failed: {exc}", file=sys.stderr)
        return sorted(known)

    def adopt(self, vmid: int) -> None:
        """Give a CT the driver created outside the API a config (from the driver's meta when it has one)."""
        meta: dict = {}
        if hasattr(self.driver, "meta"):
            try:
                meta = dict(self.driver.meta(vmid))
            except Exception:  # noqa: BLE001 - a CT without metadata still gets a minimal config
                meta = {}
        config = {"arch": "amd64", "hostname": meta.get("hostname") or f"CT{vmid}",
                  "memory": int(meta.get("memory", 512)), "cores": int(meta.get("cores", 1)),
                  "ostype": "debian", "swap": 512, "rootfs": f"local:{vmid}/vm-{vmid}-disk-0.raw,size=8G"}
        if meta.get("ip"):
            net = f"name=eth0,bridge=labbr0,gw={meta.get('gateway', '')},hwaddr={meta.get('mac', '')}"
            config["net0"] = f"{net},ip={meta['ip']}/{meta.get('prefix', 24)},type=veth"
        with self._adopt_lock:
            self.store.create(vmid, config)

    def record(self, vmid: int, in_task: bool = False) -> dict:
        """Return a CT's record or fail with PVE's missing-config text."""
        rec = self.store.load(vmid)
        if rec is None and vmid in self.vmids():
            rec = self.store.load(vmid)
        if rec is None:
            raise (TaskFailure if in_task else fail)(missing_config(self.request_node(), vmid))
        return rec

    def run_task(self, call: Call, type_: str, vmid: int | str, worker: Callable[[Task], None],
                 lock: bool = True) -> str:
        """Start a task for the caller; with lock, tasks on one CT run one after the other."""

        fault: Rule | None = getattr(self._task_fault, "rule", None)
        self._task_fault.rule = None
        node = self.request_node()

        def body(task: Task) -> None:
            self._request.node = node
            if fault is not None:
                self._faulted_task(task, fault)
            if not lock:
                worker(task)
                return
            with self.store.lock(int(vmid)):
                worker(task)

        return self.tasks.start(type_, str(vmid), call.principal.authid, body, node=node)

    def _faulted_task(self, task: Task, rule: Rule) -> None:
        """An injected task fault: hang until the rule goes, or end in error before doing any work."""
        if rule.action == "task_hang":
            task.log("waiting for lock")  # what a real task prints while another holds the CT
            self.faults.hang(rule)
            return
        raise TaskFailure(rule.message or "command failed: exit code 1")
