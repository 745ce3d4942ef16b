"""The one Proxmox VE client: token auth, verified TLS, task waiting that checks exitstatus, snapshots.

A call about one container goes to the node it runs on NOW, read from /cluster/resources, never only the node the
inventory assumed: HA or a migration may have moved it (a node that does not have it answers "Configuration file
'nodes/<node>/lxc/<vmid>.conf' does not exist").

Nothing outside plugins/proxmox/ imports proxmoxer. Every API error leaves this package as a ProxmoxError
whose message is a one-line diagnosis (plugins/proxmox/tasks.py); the token secret never appears in any text.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

from plugins.proxmox import ha
from plugins.proxmox.snapshots import check_snapshot_name
from plugins.proxmox.tasks import (
    ProxmoxError,
    TaskFailed,
    TaskResult,
    TaskTimeout,
    explain_resource_error,
    explain_transport_error,
    wait_for_task,
)
from plugins.shared.backoff import Backoff, poll
from plugins.shared.fanout import fan_out

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory

__all__ = ["ProxmoxClient", "ProxmoxError", "TaskFailed", "TaskResult", "TaskTimeout", "per_node"]

HTTP_TIMEOUT = 60.0  # proxmoxer's 5 s default cuts rollbacks and creates short (community.proxmox #45, #160)
TASK_TIMEOUT = 300.0
# A status read is one cheap GET; every task of a deploy (snapshot, prune, rollback) is waited for in turn, so a
# late look at a task that has ended delays the stage by up to this much.
POLL_INTERVAL = 0.25
MAX_PARALLEL = 8

_TOKEN_ID = re.compile(r"^(?P<user>[^@!\s]+@[^@!\s]+)!(?P<name>[A-Za-z][A-Za-z0-9._-]*)$")


def _bool(value: bool) -> int:
    return 1 if value else 0  # PVE rejects True/False: "type check ('boolean') failed - got 'True'"


class ProxmoxClient:
    """A Proxmox VE API session for one token; every call raises ProxmoxError with a diagnosis."""

    def __init__(self, api_factory: Callable[[], Any], *, url: str, token_id: str, secret_env: str,
                 verify: str | bool = True, http_timeout: float = HTTP_TIMEOUT,
                 task_timeout: float = TASK_TIMEOUT, poll_interval: float = POLL_INTERVAL):
        self._api_factory = api_factory
        self._local = threading.local()  # one requests session per thread (rollback_many fans out)
        self.url = url
        self.token_id = token_id
        self.secret_env = secret_env
        self.verify = verify
        self.http_timeout = http_timeout
        self.task_timeout = task_timeout
        self.poll_interval = poll_interval

    def __repr__(self) -> str:
        return f"ProxmoxClient({self.url}, token {self.token_id})"

    @classmethod
    def from_inventory(cls, inventory: Inventory, env: Mapping[str, str] = os.environ, *,
                       http_timeout: float | None = None, **kwargs: Any) -> ProxmoxClient:
        """Build the client from the inventory's proxmox section (its timeouts unless given); the secret comes from
        the env var it names."""
        section = inventory.proxmox
        http_timeout = section.http_timeout if http_timeout is None else http_timeout
        kwargs.setdefault("task_timeout", section.task_timeout)
        host, port, token_id, secret_env = section.host, section.port, section.token_id, section.token_secret_env
        match = _TOKEN_ID.match(token_id)
        if not match:
            raise ProxmoxError(f"proxmox.token_id {token_id!r} is not of the form user@realm!tokenname")
        secret = env.get(secret_env, "")
        if not secret:
            raise ProxmoxError(
                f"environment variable {secret_env} is unset or empty: it must hold the secret of token "
                f"{token_id} (inventory key proxmox.token_secret_env names it)"
            )
        verify = section.tls_verify  # the inventory's one derivation: its CA file, or the system CAs
        if isinstance(verify, str) and not Path(verify).is_file():
            raise ProxmoxError(f"CA file {verify} (inventory key proxmox.ca_file) does not exist")
        url = f"https://{f'[{host}]' if ':' in host else host}:{port}"

        def api_factory() -> ProxmoxAPI:
            return ProxmoxAPI(host, port=port, user=match["user"], token_name=match["name"],
                              token_value=secret, verify_ssl=verify, timeout=http_timeout)

        return cls(api_factory, url=url, token_id=token_id, secret_env=secret_env, verify=verify,
                   http_timeout=http_timeout, **kwargs)

    def _api(self) -> Any:
        api = getattr(self._local, "api", None)
        if api is None:
            api = self._local.api = self._api_factory()
        return api

    def _call(self, action: str, request: Callable[[Any], Any]) -> Any:
        try:
            return request(self._api())
        except ResourceException as exc:
            raise explain_resource_error(exc, action=action, url=self.url, token_id=self.token_id,
                                         secret_env=self.secret_env) from None
        except requests.RequestException as exc:
            raise explain_transport_error(exc, action=action, url=self.url, verify=self.verify,
                                          timeout=self.http_timeout) from None

    def api_call(self, what: str, method: str, path: str, /, **params: Any) -> Any:
        """One call by path ("cluster/firewall/options") and method (GET, POST, PUT, DELETE), explained on failure."""
        return self._call(what, lambda api: getattr(api(path), method.lower())(**params))

    def version(self) -> dict:
        """PVE's version object ({version, release, repoid})."""
        return self._call("read the PVE version", lambda api: api.version.get())

    def nodes(self) -> list[str]:
        """Names of the cluster's nodes."""
        return [n["node"] for n in self._call("list nodes", lambda api: api.nodes.get()) or []]

    def cluster_status(self) -> list[dict]:
        """/cluster/status: the cluster entry (quorate, nodes; none on a standalone node) and each node's (online)."""
        return self._call("read the cluster's status", lambda api: api.cluster.status.get()) or []

    def offline_nodes(self) -> list[str]:
        """The cluster's nodes that are not online (/cluster/status), sorted; none on a standalone node."""
        return sorted(str(r.get("name")) for r in self.cluster_status() if r.get("type") == "node" and not r.get("online"))

    def require_node(self, node: str, *, source: str = "") -> None:
        """Raise ProxmoxError naming the wanted node and the existing ones if node is not there."""
        names = self.nodes()
        if node not in names:
            hint = f" ({source})" if source else ""
            raise ProxmoxError(f"node '{node}' not found on {self.url}; nodes: {', '.join(names) or 'none'}{hint}")

    def containers(self, node: str) -> dict[int, dict]:
        """The node's LXC containers: {vmid: status entry (name, status, maxmem, …)}."""
        rows = self._call(f"list containers on node {node}", lambda api: api.nodes(node).lxc.get()) or []
        return {int(row["vmid"]): row for row in rows}

    def guests(self) -> dict[int, dict]:
        """Every guest of the cluster: {vmid: its /cluster/resources entry (node it runs on now, status, lock, name)}."""
        rows = self._call("list the cluster's guests", lambda api: api.cluster.resources.get(type="vm")) or []
        return {int(row["vmid"]): row for row in rows if row.get("vmid") is not None and row.get("node")}

    def placement(self) -> dict[int, str]:
        """{vmid: the node each guest runs on now}, from /cluster/resources (one call for the whole cluster)."""
        return {vmid: str(row["node"]) for vmid, row in self.guests().items()}

    def current_node(self, vmid: int, assumed: str) -> str:
        """The node CT vmid runs on now (HA or a migration may have moved it off the inventory's node); the
        assumed node when the cluster does not list it (its errors then name the node the inventory gave)."""
        return self.placement().get(int(vmid), assumed)

    def _node(self, vmid: int, node: str, resolve: bool) -> str:
        return self.current_node(vmid, node) if resolve else node

    def container_exists(self, node: str, vmid: int) -> bool:
        """Tell whether CT vmid exists in the cluster (on the node, or wherever it runs now)."""
        return int(vmid) in self.placement() or int(vmid) in self.containers(node)

    def container_status(self, node: str, vmid: int, *, resolve: bool = True) -> dict:
        """The container's current status entry (status running/stopped, uptime, …), asked of the node it runs on
        now (resolve=False: node is already that, from placement())."""
        node = self._node(vmid, node, resolve)
        return self._call(f"read status of CT {vmid} on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).status.current.get())

    def snapshots(self, node: str, vmid: int, *, resolve: bool = True) -> list[dict]:
        """The container's snapshots ({name, snaptime, description, parent?}), without 'current'."""
        node = self._node(vmid, node, resolve)
        rows = self._call(f"list snapshots of CT {vmid} on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).snapshot.get()) or []
        return [row for row in rows if row.get("name") != "current"]

    def has_snapshot(self, node: str, vmid: int, name: str, *, resolve: bool = True) -> bool:
        """Tell whether the container has a snapshot of that name."""
        return any(row.get("name") == name for row in self.snapshots(node, vmid, resolve=resolve))

    def snapshot(self, node: str, vmid: int, name: str, description: str = "", *,
                 timeout: float | None = None, resolve: bool = True) -> TaskResult:
        """Take snapshot name of CT vmid (on the node it runs on now) and wait for the task to succeed."""
        check_snapshot_name(name)
        node = self._node(vmid, node, resolve)
        upid = self._call(f"snapshot CT {vmid} as '{name}' on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).snapshot.post(snapname=name, description=description))
        return self.wait_task(node, upid, timeout)

    def ha_states(self) -> dict[int, str]:
        """{vmid: requested state} of every HA-managed container (/cluster/ha/resources; none outside HA)."""
        return ha.states(self._call("list the HA resources", lambda api: api.cluster.ha.resources.get()) or [])

    def set_ha_state(self, vmid: int, state: str) -> None:
        """Set the requested state of CT vmid's HA resource (started, stopped, disabled, ignored)."""
        self._call(f"set the HA state of CT {vmid} to '{state}'",
                   lambda api: api.cluster.ha.resources(ha.sid(vmid)).put(state=state))

    def rollback(self, node: str, vmid: int, name: str, start: bool = True, *,
                 timeout: float | None = None, on_log: Callable[[str], None] | None = None,
                 resolve: bool = True, ha_state: str | None = None) -> TaskResult:
        """Roll CT vmid back to snapshot name on the node it runs on now (started afterwards when start) and wait for
        success; on_log gets the task's log lines as they appear. An HA-managed CT is `ignored` by the HA manager
        for the rollback, then back (plugins/proxmox/ha.py); resolve=False: ha_state is its state already read."""
        check_snapshot_name(name)
        node = self._node(vmid, node, resolve)
        if resolve:
            ha_state = self.ha_states().get(int(vmid))

        def roll() -> TaskResult:
            upid = self._call(f"roll back CT {vmid} to '{name}' on node {node}",
                              lambda api: api.nodes(node).lxc(vmid).snapshot(name).rollback.post(start=_bool(start)))
            return self.wait_task(node, upid, timeout, on_log=on_log)

        return ha.hands_off(self.set_ha_state, vmid, ha_state, roll, on_log)

    def delete_snapshot(self, node: str, vmid: int, name: str, *, force: bool = False,
                        timeout: float | None = None, resolve: bool = True) -> TaskResult:
        """Delete snapshot name of CT vmid (on the node it runs on now) and wait for success."""
        check_snapshot_name(name)
        node = self._node(vmid, node, resolve)
        params = {"force": 1} if force else {}
        upid = self._call(f"delete snapshot '{name}' of CT {vmid} on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).snapshot(name).delete(**params))
        return self.wait_task(node, upid, timeout)

    def start(self, node: str, vmid: int, *, timeout: float | None = None, resolve: bool = True) -> TaskResult:
        """Start CT vmid (on the node it is on now) and wait for success."""
        node = self._node(vmid, node, resolve)
        upid = self._call(f"start CT {vmid} on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).status.start.post())
        return self.wait_task(node, upid, timeout)

    def stop(self, node: str, vmid: int, *, timeout: float | None = None, resolve: bool = True) -> TaskResult:
        """Stop CT vmid (hard stop, on the node it runs on now) and wait for success."""
        node = self._node(vmid, node, resolve)
        upid = self._call(f"stop CT {vmid} on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).status.stop.post())
        return self.wait_task(node, upid, timeout)

    def migrate(self, node: str, vmid: int, target: str, *, restart: bool = False,
                timeout: float | None = None) -> TaskResult:
        """Move CT vmid from the node it runs on now to target (restart mode for a running CT) and wait until it is
        there: an HA-managed CT's migrate (an `hamigrate` task) only asks the HA manager, which moves it later."""
        row = self.guests().get(int(vmid)) or {}
        node = str(row.get("node") or node)
        params = {"target": target, "restart": 1} if restart else {"target": target}
        upid = self._call(f"migrate CT {vmid} from node {node} to {target}",
                          lambda api: api.nodes(node).lxc(vmid).migrate.post(**params))
        timeout = self.task_timeout if timeout is None else timeout
        result = self.wait_task(node, upid, timeout)
        if result.type == "hamigrate":
            self._wait_moved(vmid, target, row.get("status") == "running", timeout, upid)
        return result

    def _wait_moved(self, vmid: int, target: str, running: bool, timeout: float, upid: str) -> None:
        """Poll /cluster/resources until CT vmid is on target, running again if it ran (the HA manager's
        relocation: stop, move, start)."""
        def moved(row: dict | None) -> bool:
            return bool(row) and row.get("node") == target and (not running or row.get("status") == "running")

        polled = poll(lambda _left: self.guests().get(int(vmid)), moved, deadline=timeout,
                      backoff=Backoff(0.1, 1.5, self.poll_interval))
        if not polled.done:
            row = polled.value or {}
            raise TaskTimeout(f"CT {vmid}: the HA manager has not moved it to {target} within {timeout:g} s "
                              f"(it is {row.get('status', 'unknown')} on {row.get('node', 'no node')}); see "
                              f"`ha-manager status` on the cluster", upid=upid, timeout=timeout)

    def wait_task(self, node: str, upid: str, timeout: float | None = None, *,
                  on_log: Callable[[str], None] | None = None) -> TaskResult:
        """Wait until the task stops; TaskFailed unless exitstatus is OK/WARNINGS, TaskTimeout at the deadline;
        on_log gets the task's log lines as they appear."""
        if not isinstance(upid, str) or not upid.startswith("UPID:"):
            raise ProxmoxError(f"expected a task UPID from {self.url} on node {node}, got {upid!r}")
        task = f"task {upid}"
        return wait_for_task(
            lambda: self._call(f"read status of {task}", lambda api: api.nodes(node).tasks(upid).status.get()),
            lambda: self._call(f"read log of {task}",
                               lambda api: api.nodes(node).tasks(upid).log.get(start=0, limit=5000)),
            upid=upid, node=node, timeout=self.task_timeout if timeout is None else timeout,
            poll_interval=self.poll_interval, on_log=on_log,
        )

    def rollback_many(self, node: str, targets: Mapping[int, str], start: bool = True, *,
                      timeout: float | None = None, on_log: Callable[[int, str], None] | None = None,
                      ) -> dict[int, TaskResult | Exception]:
        """Roll back several containers in parallel: {vmid: TaskResult or the exception it raised}; on_log gets
        (vmid, line) for each task's log lines as they appear."""
        where = self.placement()  # one look at the cluster for all of them, not one per container
        managed = self.ha_states()

        def one(vmid: int, name: str) -> TaskResult:
            lines = (lambda line: on_log(vmid, line)) if on_log else None
            return self.rollback(where.get(vmid, node), vmid, name, start, timeout=timeout, on_log=lines,
                                 resolve=False, ha_state=managed.get(int(vmid)))

        return self._fan_out(targets, one)

    def delete_snapshots_many(self, node: str, targets: Mapping[int, list[str]], *,
                              timeout: float | None = None) -> dict[int, list[str] | Exception]:
        """Delete each container's listed snapshots (one after the other), containers in parallel:
        {vmid: names deleted, or the exception that stopped that container's deletions}."""
        where = self.placement()

        def delete(vmid: int, names: list[str]) -> list[str]:
            for name in names:
                self.delete_snapshot(where.get(vmid, node), vmid, name, timeout=timeout, resolve=False)
            return names

        return self._fan_out({v: names for v, names in targets.items() if names}, delete)

    def start_many(self, node: str, vmids: Iterable[int], *,
                   timeout: float | None = None) -> dict[int, TaskResult | Exception]:
        """Start several containers in parallel: {vmid: TaskResult or the exception it raised}."""
        where = self.placement()
        return self._fan_out(dict.fromkeys(vmids), lambda vmid, _: self.start(where.get(vmid, node), vmid,
                                                                              timeout=timeout, resolve=False))

    def snapshot_many(self, node: str, targets: Mapping[int, str], description: str = "", *,
                      timeout: float | None = None) -> dict[int, TaskResult | Exception]:
        """Snapshot several containers in parallel: {vmid: TaskResult or the exception it raised}."""
        for name in targets.values():
            check_snapshot_name(name)
        where = self.placement()
        return self._fan_out(targets, lambda vmid, name: self.snapshot(where.get(vmid, node), vmid, name, description,
                                                                       timeout=timeout, resolve=False))

    def _fan_out(self, targets: Mapping[int, Any], work: Callable[[int, Any], Any]) -> dict:
        """{vmid: work's result or the exception it raised}: kept per container, one failure hides no other."""
        outcomes = fan_out(lambda item: work(*item), targets.items(), workers=MAX_PARALLEL, name="pve",
                           keep_errors=True)
        return dict(zip(targets, outcomes, strict=True))


def per_node(hosts: Iterable[Host]) -> dict[str, list[Host]]:
    """The hosts grouped by the node that owns them, nodes in name order (a node's tasks go to that node)."""
    grouped: dict[str, list[Host]] = {}
    for host in hosts:
        grouped.setdefault(host.node, []).append(host)
    return dict(sorted(grouped.items()))
