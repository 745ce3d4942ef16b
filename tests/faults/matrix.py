"""What one row of the fault matrix does: a changing deploy, a fault at its stage, then the figures of the outcome.

A row is declared once (ROWS in test_fault_matrix.py): the change the deploy makes, when the fault goes in
(before the run, when Ansible starts, as Ansible ends and the health checks follow) and the outcome expected:
  restored    the run fails, the rollback puts every host back, the lab is healthy again;
  refused     the run stops before any side effect: no snapshot, nothing applied, nothing changed;
  incomplete  the rollback cannot finish; the run says so and names the exact command, which restores once
              the fault is gone.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lab_driving

from lab import orchestrate, scenarios
from lab.faults import LabFaults
from plugins.inventory import load_inventory

INVENTORY = load_inventory(scenarios.LAB_INVENTORY)
APP = INVENTORY.host("app-demo")
RUNNER = INVENTORY.runner_host
MARKER = "/root/.fault-matrix-marker"
SENTINEL = "/opt/app-demo/src/README.md"
RECOVER = "python -m plugins.deploy.recover rollback --inventory"
# Seconds a service gets in the rows that wait for one (the lab's own deadlines are 60-120 s): those rows' deploys
# fail on purpose (a broken app answering 500, a host cut off, the API gone) and every other service answers at
# once after a deploy that leaves it unchanged, so a longer wait only delays the same failure.
FAST_DEADLINE = 8


@dataclass
class Row:
    """One fault of the matrix: where it goes in, what the deploy changes, what must come out."""

    id: str
    fault: str
    stage: str
    expected: str
    change: str = "app"  # app: a changed file; broken: /health raises; new_host: one more container
    before: Callable[[LabFaults], None] | None = None
    at: str = ""  # "" (no `during`), "ansible" (when it starts) or "after-ansible" (as it ends): when `during` runs
    during: Callable[[LabFaults], None] | None = None
    fast_deadlines: bool = False
    secrets: list[str] = field(default_factory=list)


def changed_app(directory: Path) -> Path:
    """A copy of the app with one changed file: a deploy that changes something, so a rollback undoes it."""
    source = scenarios.app_copy(directory)
    (source / "README.md").write_text(f"changed by {directory.name}\n")
    return source


def inventory_for(row: Row, directory: Path) -> Path:
    """The lab inventory, or a variant: shorter service deadlines, one more container (never an edit of lab.yml)."""
    if not row.fast_deadlines and row.change != "new_host":
        return scenarios.LAB_INVENTORY

    def change(document: dict) -> None:
        if row.fast_deadlines:  # every service's wait capped (the deadlines live in services/*.yml)
            document.setdefault("deploy", {})["max_health_wait"] = FAST_DEADLINE
        if row.change == "new_host":
            document["hosts"].append({"vmid": NEW_HOST_VMID, "hostname": "fault-extra", "ip": "198.18.0.251",
                                      "roles": [], "protected": False, "packages": ["rsync", "python3"],
                                      "memory": 256, "cores": 1})
    return scenarios.inventory_variant(directory, row.id, change)


NEW_HOST_VMID = 260


def deploy_args(row: Row, directory: Path) -> list[str]:
    """The deploy's extra options: the changed app source (the way a user points the role at other code)."""
    source = scenarios.broken_app_copy(directory) if row.change == "broken" else changed_app(directory)
    return ["--ansible-var", f"app_demo_src={source}/"]


def wait_for(condition, what: str, timeout: float = 240) -> None:
    """Poll until condition() is true; fail naming what was awaited (rows poll closer than the e2e tests)."""
    lab_driving.wait_for(condition, what, timeout, poll=0.05)


def snapshots() -> dict[str, list[str]]:
    """Every host's deploy_* snapshots now, by hostname (through the API, with the lab's current token)."""
    api = scenarios._Api(orchestrate.status())
    out = {}
    for host in INVENTORY.hosts:
        try:
            listed = api.call("GET", f"/nodes/{api.node}/lxc/{host.vmid}/snapshot")
        except RuntimeError:
            listed = []
        out[host.hostname] = sorted(s["name"] for s in listed if s["name"].startswith("deploy_"))
    return out


def sentinel() -> str:
    """The changed file's content on the app host (what a rollback must bring back)."""
    return scenarios.ssh_root(APP.ip, f"cat {SENTINEL}").stdout


def recover(inventory: Path, command: str = "rollback") -> subprocess.CompletedProcess:
    """The documented command that rolls back (or forgets) an unfinished run, as a person runs it after the fault."""
    return subprocess.run([".venv/bin/python", "-m", "plugins.deploy.recover", command, "--inventory",
                           str(inventory)], cwd=scenarios.ROOT, env=scenarios.suite_env(),
                          capture_output=True, text=True, timeout=600, check=False)


def healthy_after(started: float, tries: int = 8) -> tuple[float | None, list[dict]]:
    """Seconds from `started` until the health suite passes (None when it never does within the tries), and each
    earlier run's failed tests: which checks were still failing after the deploy had ended."""
    failing = []
    for _ in range(tries):
        run = scenarios.run_suite("health")
        seconds = round(time.monotonic() - started, 1)
        if run.rc == 0:
            return seconds, failing
        failing.append({"seconds": seconds, "failed": failed_tests(run.output)})
        # a run of the suite takes seconds itself: a short pause between runs sees the lab healthy sooner (most rows
        # need a second run after their rollback) and keeps about the same total window as fewer, longer pauses
        time.sleep(1)
    return None, failing


def failed_tests(output: str) -> list[str]:
    """The node ids pytest's short summary (-ra) names as failed or in error."""
    return [line.split(" ", 1)[1].split(" - ", 1)[0] for line in output.splitlines()
            if line.startswith(("FAILED ", "ERROR "))]


def secret_hits(secrets: list[str], texts: list[str], files: list[Path]) -> int:
    """How many times any of the run's secret values appears in its output and files (must be 0)."""
    hits = 0
    for secret in filter(None, secrets):
        hits += sum(text.count(secret) for text in texts)
        for path in files:
            try:
                hits += path.read_bytes().count(secret.encode())
            except OSError:
                continue
    return hits


def runner_now() -> dict:
    """The runner's marker and PID 1 start time now (empty values when the runner does not answer)."""
    res = scenarios.ssh_root(RUNNER.ip, f"cat {MARKER}; cut -d' ' -f22 /proc/1/stat")
    parts = res.stdout.split()
    return {"marker": parts[0] if len(parts) == 2 else "", "pid1_start": parts[-1] if parts else ""}


def report_files(since: float) -> list[Path]:
    """Every report, log and result file written since a time: reports/ and the lab's logs."""
    roots = [scenarios.ROOT / "reports", orchestrate.PATHS.log_dir]
    out = []
    for root in roots:
        for path in root.rglob("*") if root.exists() else []:
            try:
                if path.is_file() and path.stat().st_mtime >= since - 1:
                    out.append(path)
            except OSError:
                continue
    return out
