"""One deploy run: its id, its snapshot name, its options, and what each stage did (kept in config.stash).

The rollback and the notifier read only this object: nothing re-derives a list of containers
anywhere else (incidents #5 and #8 came from lists copied into five scripts).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from plugins.proxmox.snapshots import snapshot_name

if TYPE_CHECKING:
    from plugins.inventory import Inventory

SESSION_KEY = pytest.StashKey["DeploySession"]()


def new_run_id(env: dict[str, str] | None = None) -> str:
    """A run id usable in a PVE snapshot name: GitHub's run id and attempt in CI, else a UTC timestamp."""
    env = os.environ if env is None else env
    if env.get("GITHUB_RUN_ID"):
        return f"gh{env['GITHUB_RUN_ID']}_{env.get('GITHUB_RUN_ATTEMPT', '1')}"
    return time.strftime("%Y%m%d_%H%M%S", time.gmtime())


@dataclass
class StageRecord:
    """What one stage did: its outcome and a short human summary."""

    name: str
    outcome: str = "not run"  # running | passed | failed | skipped | not run | interrupted (SIGTERM)
    summary: str = ""
    started: float | None = None
    ended: float | None = None
    counts: dict[str, int] = field(default_factory=dict)  # its tests: passed / failed / skipped
    failed_tests: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # lines printed under the stage's line (-q: none)

    @property
    def seconds(self) -> float:
        """Wall time from the stage's first setup to its last teardown."""
        if self.started is None or self.ended is None:
            return 0.0
        return self.ended - self.started


@dataclass
class DeploySession:
    """Everything the stages leave for later stages, the rollback and the notifier."""

    run_id: str
    inventory: Inventory
    plan_only: bool = False
    rollback_enabled: bool = True
    snapshot_name: str = ""  # deploy_<run id>: what the snapshot stage takes and the rollback goes back to
    snapshots: dict[int, str] = field(default_factory=dict)  # vmid -> snapshot taken in THIS run
    first_deploy: list[int] = field(default_factory=list)  # rollback-set vmids that did not exist yet
    host_states: dict[int, Any] = field(default_factory=dict)  # vmid -> HostState PVE gave at preflight
    started: list[int] = field(default_factory=list)  # vmids this run started (they were stopped)
    # vmid -> why this run leaves the host out (deploy.node_down: proceed, its node down): no stage addresses it
    left_out: dict[int, str] = field(default_factory=dict)
    terraform_targets: list[str] = field(default_factory=list)  # the plan's -target addresses when hosts are left out
    # vmid -> the containers it had when snapshotted: what its rollback brings back (and all the wait may expect)
    containers_before: dict[int, list[str]] = field(default_factory=dict)
    pruned: dict[int, list[str]] = field(default_factory=dict)
    plan: Any = None
    plan_refusals: list[str] = field(default_factory=list)
    applied: bool = False
    outputs: dict = field(default_factory=dict)
    # PVE's firewall before this run (plugins/deploy/stages/firewall.py): not in a snapshot, the rollback restores it
    firewall_before: dict | None = None
    # what PVE's firewall held at this run's last read, None once the run wrote to it: a read that nothing has changed
    # since is not repeated (plugins/deploy/stages/firewall.py)
    firewall_seen: dict | None = None
    # PVE's HA resources of the inventory's containers before this run (plugins/deploy/stages/ha.py): the same
    ha_before: dict[int, dict] | None = None
    # the suite's HA node-affinity rules (`homelab-suite-<hostname>`) before this run: the same
    ha_rules_before: dict[str, dict] | None = None
    ansible: dict[str, Any] = field(default_factory=dict)  # playbook -> result
    health: list[Any] = field(default_factory=list)
    stages: dict[str, StageRecord] = field(default_factory=dict)
    rollback: dict[str, Any] | None = None
    release: dict[str, Any] | None = None  # what a successful run recorded of its release (plugins/deploy/release.py)
    interrupted: str = ""  # the signal that cut the run (SIGINT, SIGTERM), '' when none did
    notification: str = ""
    failures: list[str] = field(default_factory=list)
    ended_failing: bool = False  # the session itself failed (interrupted, an error outside the stages)
    refused: str = ""  # why the run was refused before any side effect (the environment's lock)
    reports_dir: Path = Path("reports")
    facts: dict[str, str] = field(default_factory=dict)  # for the report's environment: Proxmox, Terraform versions
    show_diff: bool = False  # --show-diff: a plan prints check mode's diffs
    terse: bool = False  # -q: only one line per stage
    say: Callable[[str], None] = print  # a line for the person watching (the terminal reporter's write_line)

    @property
    def hosts(self) -> list:
        """The inventory's hosts this run deploys: all of them but those it leaves out."""
        return [host for host in self.inventory.hosts if host.vmid not in self.left_out]

    def left_out_line(self, vmid: int) -> str:
        """Why this run leaves a host out, as one line: `app-demo (CT 250): left out: node homelab-3 down`."""
        return f"{self.inventory.host(vmid).hostname} (CT {vmid}): left out: {self.left_out[vmid]}"

    def left_out_lines(self) -> list[str]:
        """One line per host this run leaves out, in VMID order."""
        return [self.left_out_line(vmid) for vmid in sorted(self.left_out)]

    def stage(self, name: str) -> StageRecord:
        """The record of a stage (created on first use)."""
        return self.stages.setdefault(name, StageRecord(name))

    def cut(self, signal_name: str, at: float | None = None) -> list[StageRecord]:
        """Record that a signal interrupted the run: the stage(s) running read `interrupted (<signal>)`, timed to
        `at`; give them."""
        self.interrupted = signal_name
        at = time.monotonic() if at is None else at
        running = [r for r in self.stages.values() if r.outcome == "running"]
        for record in running:
            record.outcome, record.ended = f"interrupted ({signal_name})", at
            record.summary = record.summary or f"cut by {signal_name}"
        return running

    @property
    def failed(self) -> bool:
        """True once any stage failed, or the session ended failing (interrupted, an error outside a stage)."""
        return self.ended_failing or any(r.outcome == "failed" for r in self.stages.values())

    @property
    def run_dir(self) -> Path:
        """reports/deploy/<run id>/: what this run writes."""
        return self.reports_dir / "deploy" / self.run_id


RUN_ID_RE = re.compile(r"^[a-z0-9_-]{1,33}$")


def get_session(config: pytest.Config) -> DeploySession | None:
    """The deploy session of this pytest run, or None outside suites/deploy."""
    return config.stash.get(SESSION_KEY, None)


def start_session(config: pytest.Config, inventory: Inventory) -> DeploySession:
    """Create the deploy session once per pytest run (idempotent)."""
    existing = get_session(config)
    if existing:
        return existing
    run_id = config.getoption("--run-id") or new_run_id()
    if not RUN_ID_RE.match(run_id):
        raise pytest.UsageError(
            f"--run-id {run_id!r}: expected 1-33 characters of [a-z0-9_-] (it becomes the snapshot name deploy_<run id>)")
    session = DeploySession(
        run_id=run_id,
        inventory=inventory,
        snapshot_name=snapshot_name(run_id),
        plan_only=config.getoption("--plan-only"),
        rollback_enabled=not config.getoption("--no-rollback"),
        reports_dir=config.rootpath / "reports",
        show_diff=config.getoption("--show-diff"),
        terse=config.get_verbosity() < 0,
    )
    config.stash[SESSION_KEY] = session
    return session


def parse_ansible_vars(pairs: list[str]) -> dict[str, str]:
    """NAME=VALUE pairs of --ansible-var as a dict; a pair without '=' is a usage error."""
    extravars = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise pytest.UsageError(f"--ansible-var {pair!r}: expected NAME=VALUE with NAME a variable name")
        extravars[name] = value
    return extravars


def add_options(parser: pytest.Parser) -> None:
    """Deploy options: --plan-only, --show-diff, --no-rollback, --run-id, --idempotence, --ansible-var."""
    group = parser.getgroup("deploy", "homelab deploy")
    group.addoption("--plan-only", action="store_true",
                    help="preflight, terraform plan + guard, ansible --check --diff: nothing changes, no snapshot")
    group.addoption("--no-rollback", action="store_true",
                    help="on failure keep the failed state for debugging (snapshots are kept)")
    group.addoption("--run-id", default=None, metavar="ID",
                    help="run id (default: $GITHUB_RUN_ID_$GITHUB_RUN_ATTEMPT or a UTC timestamp)")
    group.addoption("--show-diff", action="store_true",
                    help="with --plan-only: print the diff of every task check mode reports as changed")
    group.addoption("--idempotence", action="store_true",
                    help="re-run every playbook and require changed=0")
    group.addoption("--ansible-var", action="append", default=[], metavar="NAME=VALUE",
                    help="extra variable for every playbook (repeatable), e.g. a test-only fault injection")
