"""What the lab's slow tests (tests/e2e, tests/faults) share to drive deploys from outside: the lab itself,
waiting for a condition, and finding a deploy's ansible-playbook."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from lab import orchestrate


def running_lab(who: str) -> dict:
    """The running lab's status; skip with one line when there is no lab or no root (`who` needs them)."""
    if os.geteuid() != 0:
        pytest.skip(f"{who} need root and the lab: sudo make test")
    if shutil.which("lxc-start") is None:
        pytest.skip("LXC is not installed: sudo make install")
    st = orchestrate.status()
    if not st["up"]:
        pytest.skip("the lab is not up: sudo python -m lab up")
    return st


def wait_for(condition, what: str, timeout: float = 180, poll: float = 0.2) -> None:
    """Poll until condition() is true; fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll)
    pytest.fail(f"{what}: not seen within {timeout:.0f} s")


def ansible_running(root: int) -> bool:
    """Whether an ansible-playbook process descends from the deploy's process now (ansible-runner gives it a pty
    and a session of its own, so it is found by parentage, not by session)."""
    parents, commands = {}, {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            parents[int(pid)] = int(stat.rsplit(")", 1)[1].split()[1])
            commands[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
    for pid, command in commands.items():
        ancestor = pid
        while b"ansible-playbook" in command and ancestor > 1:
            ancestor = parents.get(ancestor, 0)
            if ancestor == root:
                return True
    return False
