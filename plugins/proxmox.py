"""The one Proxmox VE client: token auth, verified TLS, task waiting that checks exitstatus, snapshots.

Nothing else in the project imports proxmoxer. Every API error leaves this module as a ProxmoxError
whose message is a one-line diagnosis; the token secret never appears in any text.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

from plugins.proxmox_tasks import (
    ProxmoxError,
    TaskFailed,
    TaskResult,
    TaskTimeout,
    explain_resource_error,
    explain_transport_error,
    wait_for_task,
)

__all__ = [
    "InvalidSnapshotName", "ProxmoxClient", "ProxmoxError", "TaskFailed", "TaskResult", "TaskTimeout",
    "check_snapshot_name", "is_deploy_snapshot", "snapshot_name", "snapshots_to_prune",
]

HTTP_TIMEOUT = 60.0  # proxmoxer's 5 s default cuts rollbacks and creates short (community.proxmox #45, #160)
TASK_TIMEOUT = 300.0
POLL_INTERVAL = 0.5
MAX_PARALLEL = 8

SNAPSHOT_PREFIX = "deploy_"
SNAPSHOT_MAX_LEN = 40
RESERVED_SNAPSHOT_NAMES = frozenset({"current", "vzdump"})
_CONFIGID = re.compile(r"^[a-z][a-z0-9_-]+$", re.IGNORECASE)  # PVE's pve-configid format
_TOKEN_ID = re.compile(r"^(?P<user>[^@!\s]+@[^@!\s]+)!(?P<name>[A-Za-z][A-Za-z0-9._-]*)$")


class InvalidSnapshotName(ProxmoxError, ValueError):
    """A snapshot name PVE would refuse; raised before any API write."""


def check_snapshot_name(name: str) -> str:
    """Return the name if PVE accepts it as a snapshot name, else raise InvalidSnapshotName."""
    rule = f"letter first, then letters, digits, '_' or '-', 2-{SNAPSHOT_MAX_LEN} characters"
    if not isinstance(name, str) or not _CONFIGID.match(name):
        raise InvalidSnapshotName(f"snapshot name {name!r} is not valid for PVE ({rule})")
    if len(name) > SNAPSHOT_MAX_LEN:
        raise InvalidSnapshotName(f"snapshot name {name!r} has {len(name)} characters; PVE allows {rule}")
    if name.lower() in RESERVED_SNAPSHOT_NAMES:
        raise InvalidSnapshotName(f"snapshot name {name!r} is reserved by PVE")
    return name


def snapshot_name(run_id: str | int) -> str:
    """The snapshot name of a deploy run: deploy_<run id>, checked against PVE's rule."""
    if str(run_id) == "":
        raise InvalidSnapshotName("snapshot name needs a run id, got an empty one (deploy_<run id>: letter first, "
                                  f"then letters, digits, '_' or '-', at most {SNAPSHOT_MAX_LEN} characters)")
    return check_snapshot_name(f"{SNAPSHOT_PREFIX}{run_id}")


def is_deploy_snapshot(name: str) -> bool:
    """Tell whether a snapshot name was made by snapshot_name (deploy_<run id>)."""
    return (isinstance(name, str) and name.startswith(SNAPSHOT_PREFIX) and len(name) > len(SNAPSHOT_PREFIX)
            and bool(_CONFIGID.match(name)))


def snapshots_to_prune(snapshots: Iterable[Mapping], retention: int, *, current: str | None = None) -> list[str]:
    """Names of the oldest deploy_* snapshots beyond retention (current run's included in it, never pruned)."""
    if retention < 0:
        raise ValueError(f"snapshot retention must be >= 0, got {retention}")
    deploys = [s for s in snapshots if is_deploy_snapshot(s.get("name", ""))]
    newest_first = sorted(deploys, key=lambda s: (int(s.get("snaptime") or 0), s["name"]), reverse=True)
    has_current = any(s["name"] == current for s in newest_first)
    others = [s for s in newest_first if s["name"] != current]
    keep = max(retention - (1 if has_current else 0), 0)
    return [s["name"] for s in reversed(others[keep:])]


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
    def from_inventory(cls, proxmox_cfg: Any, env: Mapping[str, str] = os.environ, *,
                       http_timeout: float = HTTP_TIMEOUT, **kwargs: Any) -> ProxmoxClient:
        """Build the client from the inventory's proxmox section; the secret comes from the named env var."""
        host = str(_cfg(proxmox_cfg, "host"))
        port = int(_cfg(proxmox_cfg, "port", 8006) or 8006)
        token_id = str(_cfg(proxmox_cfg, "token_id"))
        secret_env = str(_cfg(proxmox_cfg, "token_secret_env"))
        match = _TOKEN_ID.match(token_id)
        if not match:
            raise ProxmoxError(f"proxmox.token_id {token_id!r} is not of the form user@realm!tokenname")
        secret = env.get(secret_env, "")
        if not secret:
            raise ProxmoxError(
                f"environment variable {secret_env} is unset or empty: it must hold the secret of token "
                f"{token_id} (inventory key proxmox.token_secret_env names it)"
            )
        verify = _verify_setting(proxmox_cfg)
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

    def version(self) -> dict:
        """PVE's version object ({version, release, repoid})."""
        return self._call("read the PVE version", lambda api: api.version.get())

    def nodes(self) -> list[str]:
        """Names of the cluster's nodes."""
        return [n["node"] for n in self._call("list nodes", lambda api: api.nodes.get()) or []]

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

    def container_exists(self, node: str, vmid: int) -> bool:
        """Tell whether CT vmid exists on the node."""
        return int(vmid) in self.containers(node)

    def container_status(self, node: str, vmid: int) -> dict:
        """The container's current status entry (status running/stopped, uptime, …)."""
        return self._call(f"read status of CT {vmid} on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).status.current.get())

    def snapshots(self, node: str, vmid: int) -> list[dict]:
        """The container's snapshots ({name, snaptime, description, parent?}), without 'current'."""
        rows = self._call(f"list snapshots of CT {vmid} on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).snapshot.get()) or []
        return [row for row in rows if row.get("name") != "current"]

    def has_snapshot(self, node: str, vmid: int, name: str) -> bool:
        """Tell whether the container has a snapshot of that name."""
        return any(row.get("name") == name for row in self.snapshots(node, vmid))

    def snapshot(self, node: str, vmid: int, name: str, description: str = "", *,
                 timeout: float | None = None) -> TaskResult:
        """Take snapshot name of CT vmid and wait for the task to succeed."""
        check_snapshot_name(name)
        upid = self._call(f"snapshot CT {vmid} as '{name}' on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).snapshot.post(snapname=name, description=description))
        return self.wait_task(node, upid, timeout)

    def rollback(self, node: str, vmid: int, name: str, start: bool = True, *,
                 timeout: float | None = None) -> TaskResult:
        """Roll CT vmid back to snapshot name (started afterwards when start) and wait for success."""
        check_snapshot_name(name)
        upid = self._call(f"roll back CT {vmid} to '{name}' on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).snapshot(name).rollback.post(start=_bool(start)))
        return self.wait_task(node, upid, timeout)

    def delete_snapshot(self, node: str, vmid: int, name: str, *, force: bool = False,
                        timeout: float | None = None) -> TaskResult:
        """Delete snapshot name of CT vmid and wait for success."""
        check_snapshot_name(name)
        params = {"force": 1} if force else {}
        upid = self._call(f"delete snapshot '{name}' of CT {vmid} on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).snapshot(name).delete(**params))
        return self.wait_task(node, upid, timeout)

    def start(self, node: str, vmid: int, *, timeout: float | None = None) -> TaskResult:
        """Start CT vmid and wait for success."""
        upid = self._call(f"start CT {vmid} on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).status.start.post())
        return self.wait_task(node, upid, timeout)

    def stop(self, node: str, vmid: int, *, timeout: float | None = None) -> TaskResult:
        """Stop CT vmid (hard stop) and wait for success."""
        upid = self._call(f"stop CT {vmid} on node {node}",
                          lambda api: api.nodes(node).lxc(vmid).status.stop.post())
        return self.wait_task(node, upid, timeout)

    def wait_task(self, node: str, upid: str, timeout: float | None = None) -> TaskResult:
        """Wait until the task stops; TaskFailed unless exitstatus is OK/WARNINGS, TaskTimeout at the deadline."""
        if not isinstance(upid, str) or not upid.startswith("UPID:"):
            raise ProxmoxError(f"expected a task UPID from {self.url} on node {node}, got {upid!r}")
        task = f"task {upid}"
        return wait_for_task(
            lambda: self._call(f"read status of {task}", lambda api: api.nodes(node).tasks(upid).status.get()),
            lambda: self._call(f"read log of {task}",
                               lambda api: api.nodes(node).tasks(upid).log.get(start=0, limit=5000)),
            upid=upid, node=node, timeout=self.task_timeout if timeout is None else timeout,
            poll_interval=self.poll_interval,
        )

    def rollback_many(self, node: str, targets: Mapping[int, str], start: bool = True, *,
                      timeout: float | None = None) -> dict[int, TaskResult | Exception]:
        """Roll back several containers in parallel: {vmid: TaskResult or the exception it raised}."""
        return self._fan_out(targets, lambda vmid, name: self.rollback(node, vmid, name, start, timeout=timeout))

    def delete_snapshots_many(self, node: str, targets: Mapping[int, list[str]], *,
                              timeout: float | None = None) -> dict[int, list[str] | Exception]:
        """Delete each container's listed snapshots (one after the other), containers in parallel:
        {vmid: names deleted, or the exception that stopped that container's deletions}."""
        def delete(vmid: int, names: list[str]) -> list[str]:
            for name in names:
                self.delete_snapshot(node, vmid, name, timeout=timeout)
            return names

        return self._fan_out({v: names for v, names in targets.items() if names}, delete)

    def snapshot_many(self, node: str, targets: Mapping[int, str], description: str = "", *,
                      timeout: float | None = None) -> dict[int, TaskResult | Exception]:
        """Snapshot several containers in parallel: {vmid: TaskResult or the exception it raised}."""
        for name in targets.values():
            check_snapshot_name(name)
        return self._fan_out(targets, lambda vmid, name: self.snapshot(node, vmid, name, description,
                                                                       timeout=timeout))

    def _fan_out(self, targets: Mapping[int, Any], work: Callable[[int, Any], Any]) -> dict:
        if not targets:
            return {}

        def run(item: tuple[int, str]) -> TaskResult | Exception:
            try:
                return work(*item)
            except Exception as exc:  # noqa: BLE001 - kept per container: one failure must not hide the others
                return exc

        with ThreadPoolExecutor(max_workers=min(len(targets), MAX_PARALLEL), thread_name_prefix="pve") as pool:
            outcomes = list(pool.map(run, targets.items()))
        return dict(zip(targets, outcomes))


def _cfg(cfg: Any, key: str, default: Any = None) -> Any:
    value = cfg.get(key, default) if isinstance(cfg, Mapping) else getattr(cfg, key, default)
    if value is None and default is None:
        raise ProxmoxError(f"inventory key proxmox.{key} is missing")
    return value


def _verify_setting(cfg: Any) -> str | bool:
    """The requests `verify` value: the inventory's CA file, or True for the system CAs; never False."""
    ca_file = _cfg(cfg, "ca_file", "")
    if ca_file:
        if not Path(ca_file).is_file():
            raise ProxmoxError(f"CA file {ca_file} (inventory key proxmox.ca_file) does not exist")
        return str(ca_file)
    if _cfg(cfg, "verify_tls", True) is False:
        raise ProxmoxError("inventory sets proxmox.verify_tls: false; TLS is always verified: set proxmox.ca_file")
    return True
