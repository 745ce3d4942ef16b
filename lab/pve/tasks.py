"""Asynchronous tasks with real UPIDs, status and logs (one worker thread per task)."""

from __future__ import annotations

import itertools
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import param_error

MISSING_FILE = "unable to open file - No such file or directory"


@dataclass
class Task:
    """One task: the fields of its UPID plus its state and log lines."""

    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str
    status: str = "running"
    exitstatus: str | None = None
    lines: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def upid(self) -> str:
        """Return the UPID, PVE's format with its trailing colon."""
        return (
            f"UPID:{self.node}:{self.pid:08X}:{self.pstart:08X}:{self.starttime:08X}:"
            f"{self.type}:{self.id}:{self.user}:"
        )

    def log(self, line: str) -> None:
        """Append a line to the task log."""
        self.lines.extend(str(line).rstrip("\n").split("\n"))

    def status_dict(self) -> dict:
        """Return the object GET /nodes/{node}/tasks/{upid}/status answers."""
        user, _, tokenid = self.user.partition("!")
        out = {
            "upid": self.upid, "node": self.node, "pid": self.pid, "pstart": self.pstart,
            "starttime": self.starttime, "type": self.type, "id": self.id, "user": user,
            "status": self.status,
        }
        if tokenid:
            out["tokenid"] = tokenid
        if self.status == "stopped":
            out["exitstatus"] = self.exitstatus
        return out


def parse_upid(upid: str) -> dict:
    """Split a UPID into its fields or raise PVE's 400."""
    parts = upid.split(":")
    if len(parts) != 9 or parts[0] != "UPID":
        raise param_error({"upid": "unable to parse worker upid"})
    try:
        pid, pstart, starttime = (int(x, 16) for x in parts[2:5])
    except ValueError:
        raise param_error({"upid": "unable to parse worker upid"}) from None
    return {"node": parts[1], "pid": pid, "pstart": pstart, "starttime": starttime,
            "type": parts[5], "id": parts[6], "user": parts[7]}


class TaskRegistry:
    """Runs task workers in threads and keeps every task of this server's lifetime."""

    def __init__(self, node: str):
        self.node = node
        self._pids = itertools.count(os.getpid() * 16 % 0x3FFFFF + 1)
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def start(self, type_: str, id_: str, user: str, worker: Callable[[Task], None], node: str | None = None) -> str:
        """Start a worker thread for a task (on `node`, default this server's) and return its UPID at once."""
        with self._lock:
            task = Task(node or self.node, next(self._pids), int(time.monotonic() * 100) & 0xFFFFFFFF,
                        int(time.time()), type_, str(id_), user)
            self._tasks[task.upid] = task
        threading.Thread(target=self._run, args=(task, worker), name=task.upid, daemon=True).start()
        return task.upid

    def _run(self, task: Task, worker: Callable[[Task], None]) -> None:
        try:
            worker(task)
        except Exception as exc:  # noqa: BLE001 - any failure becomes the exitstatus, as in PVE
            msg = str(exc).strip()
            if not msg or type(exc).__module__ == "builtins":
                msg = traceback.format_exception_only(exc)[-1].strip()
            task.log(f"TASK ERROR: {msg}")
            task.exitstatus = msg
        else:
            task.log("TASK OK")
            task.exitstatus = "OK"
        task.status = "stopped"
        task.done.set()

    def get(self, upid: str) -> Task | None:
        """Return the task of a UPID, None when this server never ran it."""
        return self._tasks.get(upid)

    def wait(self, upid: str, timeout: float | None = None) -> Task:
        """Block until a task stops (for tests and for in-process callers)."""
        task = self._tasks[upid]
        task.done.wait(timeout)
        return task

    def running(self) -> list[Task]:
        """Return the tasks still running."""
        return [t for t in self._tasks.values() if t.status == "running"]
