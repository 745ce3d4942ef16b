"""A rollback's timeline: when each host and each service reached each step, in seconds from the rollback's start.

The steps, in the order a host goes through them: the Proxmox task's log lines as they appear (stopping the CT,
restoring the snapshot, starting it), the task's end, SSH answering, Docker answering, each container running
(healthy, when it has a healthcheck), each HTTP check green. Each step is marked once, the first time it is seen:
a wait that sees it later says when the wait looked, not when it happened, so every mark is as late as the poll
that saw it (the waits' pauses are capped at a second). The result keeps it (result.json, `rollback.timeline`),
the end of the run shows each host's milestones, and bench/deploy.py prints it whole.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The step names the rollback marks (a task's log line is marked as "task: <line>").
TASK_SENT = "rollback task sent"
TASK_DONE = "rollback task done"
SSH_UP = "ssh answers"
CHECKS_START = "checks start"
DOCKER_UP = "docker answers"
HOST_CHECKS = "host checks pass"
HEALTHY = "host healthy"
TASK_LINE = "task: "
CONTAINER = "container "
HTTP = "http "


@dataclass(frozen=True)
class Mark:
    """One step of one host: when (seconds from the rollback's start) and what."""

    host: str
    step: str
    at: float


class Timeline:
    """The marks of one rollback, from threads at once; a step keeps the first time it was seen."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self._marks: dict[tuple[str, str], float] = {}

    def mark(self, host: str, step: str, at: float | None = None) -> None:
        """Mark that HOST reached STEP now, or AT seconds from the start (a step marked before keeps its first time)."""
        at = round(self._clock() - self._start, 2) if at is None else at
        with self._lock:
            self._marks.setdefault((host, step), at)

    def last(self, host: str, *prefixes: str) -> float | None:
        """When HOST reached the last of its steps named with one of PREFIXES; None when it reached none."""
        with self._lock:
            found = [at for (name, step), at in self._marks.items() if name == host and step.startswith(prefixes)]
        return max(found) if found else None

    def marks(self) -> list[Mark]:
        """Every mark, in time order (marks of the same time in the order they were made)."""
        with self._lock:
            found = [Mark(host, step, at) for (host, step), at in self._marks.items()]
        return sorted(found, key=lambda m: m.at)

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        """{host: [{step, at}, …] in time order}: what result.json keeps."""
        found: dict[str, list[dict[str, Any]]] = {}
        for mark in self.marks():
            found.setdefault(mark.host, []).append({"step": mark.step, "at": mark.at})
        return found


def _steps(entries: Sequence[Mapping[str, Any]]) -> list[tuple[str, float]]:
    """(step, at) in time order, whatever order the entries come in (a hand-edited or merged result)."""
    steps = [(str(entry.get("step", "?")), float(entry.get("at", 0.0))) for entry in entries]
    return sorted(steps, key=lambda item: item[1])


def timeline_lines(timeline: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """The whole timeline as text: a block per host, one step a line, with the time since the host's step before."""
    if not timeline:
        return []
    width = max(len(host) for host in timeline)
    lines = ["timeline from the rollback's start (s; +s since the host's step before):"]
    for host, entries in timeline.items():
        before = 0.0
        for index, (step, at) in enumerate(_steps(entries)):
            name = host if index == 0 else ""
            lines.append(f"  {name:{width}s} {at:6.2f}  +{at - before:5.2f}  {step}")
            before = at
    return lines


def _last(steps: list[tuple[str, float]], prefix: str) -> tuple[str, float] | None:
    found = [(step, at) for step, at in steps if step.startswith(prefix)]
    return max(found, key=lambda item: item[1]) if found else None


def milestone_lines(timeline: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """One line per host for the end of the run: task done, SSH, Docker, the last container, the last HTTP check."""
    lines = []
    for host, entries in timeline.items():
        steps = _steps(entries)
        at = dict(steps)
        parts = [f"{label} {at[step]:.1f} s" for label, step in
                 (("task done", TASK_DONE), ("ssh", SSH_UP), ("docker", DOCKER_UP)) if step in at]
        for label, prefix in (("last container", CONTAINER), ("last http", HTTP)):
            last = _last(steps, prefix)
            if last:
                parts.append(f"{label} {last[0][len(prefix):]} {last[1]:.1f} s")
        if HEALTHY in at:
            parts.append(f"healthy {at[HEALTHY]:.1f} s")
        lines.append(f"timeline of {host}: {', '.join(parts) or 'no step reached'}")
    return lines
