"""What the lab's slow tests (tests/e2e, tests/faults) share to drive deploys from outside: the lab itself,
waiting for a condition, and finding a deploy's ansible-playbook."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from lab import orchestrate, scenarios

# session.testsfailed when the last deployed-lab fixture handed the lab over: a module may reuse the lab only
# when no test failed since (a failed test may have left anything behind).
_HANDED_OVER: dict[str, int] = {}


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


def deployed_lab(request, before: str) -> scenarios.DeployRun:
    """A deployed, healthy lab for a module's tests. The session's last deploy is reused when it was the Makefile's
    plain deploy of the lab inventory and passed, no test failed since and the health suite passes now; otherwise
    the Makefile's deploy runs (a no-change one on a deployed lab). `before` names the tests, for the message."""
    session = request.session
    if scenarios.LEDGER.plain and _HANDED_OVER.get("failed") == session.testsfailed:
        health = scenarios.run_suite("health")
        if health.rc == 0:
            print(f"deployed lab: reusing deploy {scenarios.LEDGER.last.result['run_id']} (health passes)")
            return scenarios.LEDGER.last
        print(f"deployed lab: the health suite fails on the last deploy's lab, deploying:\n{health.tail(10)}")
    run = scenarios.run_suite("deploy")
    assert run.rc == 0, f"deploy before {before} failed (rc {run.rc}):\n{run.tail()}"
    _HANDED_OVER["failed"] = session.testsfailed
    return run


def hand_over(request, run: scenarios.DeployRun) -> None:
    """A test's own plain deploy of the lab inventory passed, the last of its module's: the next module's
    deployed_lab may reuse it (health permitting, no test failed since), as it reuses its own, instead of
    deploying again. A deploy started in the background is recorded here too: the ledger could not see it."""
    scenarios.LEDGER.record(run, plain=True)
    _HANDED_OVER["failed"] = request.session.testsfailed


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
