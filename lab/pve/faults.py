"""Injected faults: rules a test writes to STATE_DIR/faults.json, read by the emulator on every call.

The file is the lab's control, never the product's: the deploy talks to the emulator exactly as to a
real PVE and only sees what a real PVE can do (an error with PVE's text, a 401, no answer, a task that
ends in error or never ends). lab/faults.py writes the rules; the emulator counts each rule's hits
in STATE_DIR/faults-hits.json so a test can tell that its fault fired.

A rule: {"id": "snap-500", "method": "POST", "path": "/nodes/[^/]+/lxc/[^/]+/snapshot",
         "vmid": 250, "nth": 1, "action": "error", "status": 500, "message": "...", "seconds": 90}
  method  HTTP method or "*";  path  a regex matched in full against the path after /api2/json;
  vmid    only calls on this CT (its path or its `vmid` parameter);  nth  only the Nth matching call
          (1-based; absent = every matching call);
  action  error (status + message, PVE's reason phrase), hang (answer after `seconds`), drop (close the
          connection unanswered: the API unreachable), task_error (the task ends with `message` as its
          exitstatus, its work undone), task_hang (the task runs until the rule is removed or `seconds`).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

FAULTS_FILE = "faults.json"
HITS_FILE = "faults-hits.json"
ACTIONS = ("error", "hang", "drop", "task_error", "task_hang")
DEFAULT_MESSAGES = {
    500: "internal error",
    401: "authentication failure",
}
_VMID_IN_PATH = re.compile(r"/lxc/(\d+)(?:/|$)")


class RuleError(ValueError):
    """A rule the emulator cannot apply (one line: which rule, which key, what was expected)."""


@dataclass(frozen=True)
class Rule:
    """One injected fault: which calls it matches and what the emulator does instead."""

    id: str
    action: str
    path: str
    method: str = "*"
    vmid: int | None = None
    nth: int | None = None
    status: int = 500
    message: str = ""
    seconds: float = 600.0

    @classmethod
    def from_dict(cls, raw: dict) -> Rule:
        """Build a rule from its JSON form, or raise RuleError naming the key."""
        name = str(raw.get("id") or "?")
        if raw.get("action") not in ACTIONS:
            raise RuleError(f"fault {name}: action {raw.get('action')!r}; expected one of {', '.join(ACTIONS)}")
        try:
            re.compile(str(raw.get("path", "")))
        except re.error as exc:
            raise RuleError(f"fault {name}: path is not a regex ({exc})") from None
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(raw) - known)
        if extra:
            raise RuleError(f"fault {name}: unknown key {extra[0]!r}; expected {', '.join(sorted(known))}")
        rule = cls(**{**raw, "id": name, "path": str(raw.get("path", ".*"))})
        if rule.nth is not None and int(rule.nth) < 1:
            raise RuleError(f"fault {name}: nth {rule.nth}; expected 1 or more")
        return rule

    def reason(self) -> str:
        """The reason phrase an error answers with (PVE's text when the test gave none)."""
        return self.message or DEFAULT_MESSAGES.get(self.status, "injected fault")

    def matches(self, method: str, rel: str, params: dict[str, str]) -> bool:
        """Whether a call (method, path after /api2/json, parameters) is one this rule is about."""
        if self.method not in ("*", method):
            return False
        if not re.fullmatch(self.path, rel):
            return False
        if self.vmid is None:
            return True
        found = _VMID_IN_PATH.search(rel)
        vmid = found.group(1) if found else params.get("vmid")
        return str(vmid) == str(self.vmid)


class FaultPlan:
    """The rules of STATE_DIR/faults.json (re-read when the file changes) and how often each matched."""

    def __init__(self, state_dir: str | os.PathLike):
        self.path = Path(state_dir) / FAULTS_FILE
        self.hits_path = Path(state_dir) / HITS_FILE
        self._stamp: tuple[int, int] | None = None
        self._rules: list[Rule] = []
        self._seen: dict[str, int] = {}
        self._fired: dict[str, int] = {}
        self._lock = threading.Lock()

    def rules(self) -> list[Rule]:
        """The rules now in force (none when the file is absent or unreadable: the lab never breaks by itself)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._rules = None, []
            return []
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                raw = json.loads(self.path.read_text())
                self._rules = [Rule.from_dict(r) for r in raw.get("rules", [])]
            except (OSError, ValueError) as exc:
                print(f"pve: ignoring {self.path}: {exc}", flush=True)
                self._rules = []
            self._stamp = stamp
        return self._rules

    def active(self, rule_id: str) -> bool:
        """Whether a rule is still in the file (a task_hang ends when the test removes it)."""
        return any(r.id == rule_id for r in self.rules())

    def match(self, method: str, rel: str, params: dict[str, str]) -> Rule | None:
        """The first rule that fires for this call, counting matches for `nth`; None when none does."""
        with self._lock:
            for rule in self.rules():
                if not rule.matches(method, rel, params):
                    continue
                seen = self._seen[rule.id] = self._seen.get(rule.id, 0) + 1
                if rule.nth is not None and seen != int(rule.nth):
                    continue
                self._fired[rule.id] = self._fired.get(rule.id, 0) + 1
                self._write_hits()
                return rule
        return None

    def _write_hits(self) -> None:
        tmp = self.hits_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seen": self._seen, "fired": self._fired}, sort_keys=True))
        os.replace(tmp, self.hits_path)

    def hang(self, rule: Rule) -> None:
        """Sleep a hang's length, cut short when the test removes the rule."""
        deadline = time.monotonic() + float(rule.seconds)
        while time.monotonic() < deadline and self.active(rule.id):
            time.sleep(0.2)
