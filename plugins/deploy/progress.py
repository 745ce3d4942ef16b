"""What a person watching a deploy reads: one line per stage as it ends, each host's Ansible progress, the table.

Plain text only (no cursor movement, no colour codes of our own): the same lines read well in a terminal
and in a CI log. `-q` keeps only the stage lines; `--show-diff` adds check mode's diffs to a plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from plugins.deploy.session import DeploySession, StageRecord

Say = Callable[[str], None]
TASK_EVENTS = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_unreachable": "unreachable",
               "runner_on_skipped": "skipped"}
DIFF_LINES = 40  # a diff longer than this is cut: the full diff is in the report


def terminal_summary(record: StageRecord) -> str:
    """A stage's summary for the terminal; a failed stage names its failed tests (pytest prints why, once)."""
    tally = ", ".join(f"{n} {word}" for word, n in record.counts.items() if n)
    if record.failed_tests:
        return f"{tally}: {', '.join(dict.fromkeys(record.failed_tests))} (why: in the failures)"
    return record.summary or tally or "-"


def stage_line(record: StageRecord) -> str:
    """`stage  outcome  seconds  summary`: the line printed when a stage ends."""
    return f"[deploy] {record.name:<10} {record.outcome:<8} {record.seconds:6.1f} s  {terminal_summary(record)}"


def result_table(deploy: DeploySession) -> list[str]:
    """The stages' final outcomes as an aligned text table (what the run ends with)."""
    rows = [("stage", "outcome", "seconds", "summary")]
    rows += [(r.name, r.outcome, f"{r.seconds:.1f}", terminal_summary(r)) for r in deploy.stages.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]


@dataclass
class HostProgress:
    """ansible-runner's event handler: a line per host as it finishes each role, and at once for a failure."""

    say: Say
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    role: dict[str, str] = field(default_factory=dict)

    def __call__(self, event: dict) -> None:
        """Count a finished task; print the host's line when its role changes, or when the task failed."""
        kind = TASK_EVENTS.get(event.get("event", ""))
        if kind is None:
            if event.get("event") == "playbook_on_stats":
                for host in sorted(self.role):
                    self._report(host, "done")
            return
        data = event.get("event_data") or {}
        host = data.get("host", "?")
        role = data.get("role") or f"play '{data.get('play') or '?'}'"
        if host in self.role and self.role[host] != role:
            self._report(host, f"{self.role[host]} done")
        self.role[host] = role
        tally = self.counts.setdefault(host, {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0})
        tally[kind] += 1
        if kind == "ok" and (data.get("res") or {}).get("changed"):
            tally["changed"] += 1
        if kind in ("failed", "unreachable") and not data.get("ignore_errors"):
            task = data.get("task") or "?"
            message = str((data.get("res") or {}).get("msg") or kind).splitlines()[0][:200]
            self.say(f"  ansible  {host}: {kind.upper()} {role} : {task}: {message}")

    def _report(self, host: str, what: str) -> None:
        tally = self.counts.get(host, {})
        numbers = " ".join(f"{name}={tally.get(name, 0)}" for name in ("ok", "changed", "failed", "skipped"))
        self.say(f"  ansible  {host}: {what} ({numbers})")


def plan_lines(changes: Iterable[tuple[str, str]]) -> list[str]:
    """One line per resource Terraform would change: `  create  module.x.terraform_data.y`."""
    return [f"  terraform {actions:<14} {address}" for actions, address in changes]


def check_mode_lines(events: list[dict], hosts: Iterable[str], *, show_diff: bool) -> list[str]:
    """Per host, the tasks check mode reports as changed (what a deploy WOULD change), diffs when asked."""
    changed: dict[str, list[tuple[str, list]]] = {}
    for event in events:
        data = event.get("event_data") or {}
        res = data.get("res") or {}
        if event.get("event") == "runner_on_ok" and res.get("changed"):
            role, task = data.get("role"), data.get("task") or "?"
            label = f"{role} : {task}" if role else task
            changed.setdefault(data.get("host", "?"), []).append((label, _diffs(res)))
    lines = []
    for host in hosts:
        tasks = changed.get(host, [])
        lines.append(f"  ansible  {host}: {len(tasks)} task(s) would change" + (":" if tasks else ""))
        for label, diffs in tasks:
            lines.append(f"    ~ {label}")
            if show_diff:
                lines += [f"        {line}" for line in _diff_text(diffs)]
    return lines


def _diffs(res: dict) -> list:
    """The diffs of a task's result (a loop's items included)."""
    found = res.get("diff") or []
    found = found if isinstance(found, list) else [found]
    for item in res.get("results") or ():
        if isinstance(item, dict) and item.get("diff"):
            more = item["diff"]
            found += more if isinstance(more, list) else [more]
    return found


def _diff_text(diffs: list) -> list[str]:
    """A diff as unified-looking lines: `prepared` text as is, before/after as - and + lines."""
    lines: list[str] = []
    for diff in diffs:
        if not isinstance(diff, dict):
            continue
        if diff.get("prepared"):
            lines += str(diff["prepared"]).splitlines()
            continue
        before, after = diff.get("before"), diff.get("after")
        if before == after:
            continue
        if diff.get("before_header") or diff.get("after_header"):
            lines.append(f"--- {diff.get('before_header', 'before')}")
            lines.append(f"+++ {diff.get('after_header', 'after')}")
        lines += [f"- {line}" for line in _text(before).splitlines()]
        lines += [f"+ {line}" for line in _text(after).splitlines()]
    if len(lines) > DIFF_LINES:
        lines = lines[:DIFF_LINES] + [f"… {len(lines) - DIFF_LINES} more line(s): see the report"]
    return lines


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v}" for k, v in sorted(value.items()))
    return str(value)
