"""Proxmox errors as one-line diagnoses, and task waiting that checks exitstatus.

Part of the Proxmox client (plugins/proxmox/client.py): nothing outside plugins/proxmox/ imports proxmoxer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from proxmoxer.core import ResourceException

from plugins.shared.backoff import Backoff, poll

LOG_TAIL_LINES = 8
_WARNINGS = re.compile(r"^WARNINGS:\s*(\d+)\s*$")


class ProxmoxError(Exception):
    """A Proxmox API call failed; the message is a one-line diagnosis without secrets."""

    def __init__(self, message: str, *, status_code: int | None = None, pve_message: str = "",
                 errors: dict | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.pve_message = pve_message
        self.errors = errors or {}


class TaskFailed(ProxmoxError):
    """A PVE task stopped with an exitstatus other than OK / WARNINGS."""

    def __init__(self, message: str, *, upid: str, exitstatus: str, log: list[str]):
        super().__init__(message, pve_message=exitstatus)
        self.upid = upid
        self.exitstatus = exitstatus
        self.log = log


class TaskTimeout(ProxmoxError):
    """A PVE task was still running when the caller's deadline passed."""

    def __init__(self, message: str, *, upid: str, timeout: float):
        super().__init__(message)
        self.upid = upid
        self.timeout = timeout


@dataclass(frozen=True)
class TaskResult:
    """A PVE task that stopped successfully (exitstatus OK or WARNINGS: n)."""

    upid: str
    node: str
    exitstatus: str
    duration: float = 0.0
    log: list[str] = field(default_factory=list)

    @property
    def type(self) -> str:
        """The task type from the UPID (vzsnapshot, vzrollback, vzstart, …)."""
        return describe_upid(self.upid)["type"]

    @property
    def warnings(self) -> int:
        """How many warnings the task reported (0 when exitstatus is OK)."""
        match = _WARNINGS.match(self.exitstatus)
        return int(match.group(1)) if match else 0

    def summary(self) -> str:
        """One line: task, target, node and outcome (warnings named)."""
        info = describe_upid(self.upid)
        text = f"task {info['type']} {info['id']} on {self.node}: {self.exitstatus}"
        if self.warnings:
            warn = [line for line in self.log if "warn" in line.lower()]
            text += f" ({'; '.join(warn[-3:]) or 'see the task log'})"
        return text


def describe_upid(upid: str) -> dict[str, str]:
    """Split a UPID into node, type and id (empty strings when it is malformed)."""
    parts = str(upid).split(":")
    if len(parts) >= 8 and parts[0] == "UPID":
        return {"node": parts[1], "type": parts[5], "id": parts[6], "user": parts[7]}
    return {"node": "", "type": "task", "id": str(upid), "user": ""}


def is_success(exitstatus: str) -> bool:
    """Tell whether a stopped task's exitstatus means success (OK or WARNINGS: n)."""
    return exitstatus == "OK" or bool(_WARNINGS.match(exitstatus or ""))


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def _errors_text(errors: Any) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{key}: {_one_line(value)}" for key, value in sorted(errors.items()))
    return _one_line(errors)


def _errors_dict(errors: Any) -> dict:
    """PVE's per-parameter errors; proxmoxer wraps an unparsable body as {"errors": b"…"}: kept only if non-empty."""
    if not isinstance(errors, dict):
        errors = {} if errors is None else {"errors": errors}
    decoded = {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v for k, v in errors.items()}
    return {k: v for k, v in decoded.items() if _one_line(v)}


def explain_resource_error(exc: ResourceException, *, action: str, url: str, token_id: str,
                           secret_env: str) -> ProxmoxError:
    """Turn a proxmoxer ResourceException into a ProxmoxError with a one-line diagnosis."""
    code = exc.status_code
    pve = _one_line(exc.content) or _one_line(exc.status_message)
    errors = _errors_dict(exc.errors)
    if code == 401:
        text = f"authentication failed for token {token_id} on {url}: check the secret in ${secret_env}"
    elif code == 403:
        text = f"{action}: permission denied on {url}: {pve}: token {token_id} lacks privilege"
    elif code == 501:
        text = f"{action}: {url} does not implement this call ({pve}); is it a Proxmox VE API?"
    elif code == 595:  # pveproxy could not reach the node it proxies the call to
        text = f"{action}: {url} cannot reach that node (595 {pve}): the node is down or cut off from the cluster"
    else:
        text = f"{action}: PVE answered {code}: {pve}"
    if errors:
        text += f" ({_errors_text(errors)})"
    return ProxmoxError(text, status_code=code, pve_message=pve, errors=errors)


def explain_transport_error(exc: requests.RequestException, *, action: str, url: str, verify: Any,
                            timeout: float) -> ProxmoxError:
    """Turn a requests error (TLS, refused, timeout) into a ProxmoxError naming what to check."""
    if isinstance(exc, requests.exceptions.SSLError):
        trust = f"CA file {verify}" if isinstance(verify, str) else "the system CAs"
        text = f"{action}: TLS verification of {url} failed against {trust} (inventory proxmox.ca_file)"
    elif isinstance(exc, requests.exceptions.Timeout):
        text = f"{action}: {url} did not answer within {timeout:g} s"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        text = f"{action}: cannot connect to {url} (is the Proxmox API up and the address right?)"
    else:
        text = f"{action}: request to {url} failed: {type(exc).__name__}"
    return ProxmoxError(text)


def wait_for_task(get_status: Callable[[], dict], get_log: Callable[[], list], *, upid: str, node: str,
                  timeout: float, poll_interval: float = 0.5, first_poll: float = 0.1,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep,
                  on_log: Callable[[str], None] | None = None) -> TaskResult:
    """Poll a task until it stops; raise TaskFailed on a bad exitstatus, TaskTimeout at the deadline.

    Polls start at first_poll and grow by half up to poll_interval: a short task (a snapshot on ZFS or
    LVM-thin, a start) is seen soon after it ends, a long one is not polled more than needed. With on_log,
    each poll also reads the task's log and gives on_log every line not seen before (when each step began)."""
    seen = LogReader(get_log, on_log) if on_log else None

    def status(remaining: float) -> dict:
        answer = get_status() or {}
        if seen:
            seen.read()
        return answer

    polled = poll(status, lambda status: status.get("status") == "stopped",
                  deadline=timeout, backoff=Backoff(first_poll, 1.5, poll_interval), clock=clock, sleep=sleep)
    if not polled.done:
        info = describe_upid(upid)
        raise TaskTimeout(
            f"task {info['type']} {info['id']} on {node} still running after {timeout:g} s "
            f"({upid}); see the node's task list",
            upid=upid, timeout=timeout,
        )
    status, duration = polled.value, polled.elapsed
    exitstatus = _one_line(status.get("exitstatus")) or "(no exitstatus)"
    if exitstatus == "OK":
        return TaskResult(upid=upid, node=node, exitstatus=exitstatus, duration=duration)
    log = log_tail(get_log())
    if is_success(exitstatus):
        return TaskResult(upid=upid, node=node, exitstatus=exitstatus, duration=duration, log=log)
    info = describe_upid(upid)
    shown = [line for line in log if line != f"TASK ERROR: {exitstatus}"][-3:]
    text = f"task {info['type']} {info['id']} on {node} failed: {exitstatus}"
    if shown:
        text += f"; last log lines: {' | '.join(shown)}"
    raise TaskFailed(text, upid=upid, exitstatus=exitstatus, log=log)


class LogReader:
    """A task's log read again and again: each line is given once, as it first appears (lines are numbered)."""

    def __init__(self, get_log: Callable[[], list], on_line: Callable[[str], None]) -> None:
        self._get_log, self._on_line, self._next = get_log, on_line, 0

    def read(self) -> None:
        """Read the log; give each line numbered past the last one given. A failed read waits for the next poll."""
        try:
            entries = self._get_log()
        except ProxmoxError:
            return
        if not isinstance(entries, list):
            return
        for entry in sorted((e for e in entries if isinstance(e, dict)), key=lambda e: e.get("n", 0)):
            number = entry.get("n", 0)
            if isinstance(number, int) and number >= self._next:
                self._next = number + 1
                text = _one_line(entry.get("t", ""))
                if text:
                    self._on_line(text)


def log_tail(entries: Any, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a task log as returned by GET …/tasks/{upid}/log ([{n, t}])."""
    if not isinstance(entries, list):
        return []
    ordered = sorted((e for e in entries if isinstance(e, dict)), key=lambda e: e.get("n", 0))
    return [_one_line(e.get("t", "")) for e in ordered if _one_line(e.get("t", ""))][-lines:]
