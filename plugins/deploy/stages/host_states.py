"""The declared hosts' states, read before anything touches them, and the start of those that are stopped.

Preflight asks PVE for every declared host (plugins/proxmox/power.py) and says, one line each, which is stopped,
missing or locked. A locked one refuses the run there, before any side effect: a task on it would fail half-way.
A stopped one is started by the `start` stage, after the plan guard and before the snapshot (a deploy makes the
homelab match the inventory); a missing one is Terraform's to create. --plan-only starts nothing: it says what a
deploy would start. A host the run leaves out (its node down, deploy.node_down: proceed) is neither named here nor
started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.health.results import FAIL
from plugins.health.waiting import wait_hosts_healthy
from plugins.proxmox.power import STOPPED, host_states
from plugins.report import allure_output

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession
    from plugins.proxmox.client import ProxmoxClient

START_DEADLINE = 90.0  # a started host: boot, sshd (the health stage then waits for its services)


def read_host_states(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """Record every declared host's state; give one refusal line per locked host ([] when none is locked).

    Each host that is not running gets a line under the preflight's line: what it is and what the deploy does.
    """
    inventory = deployment.inventory
    deployment.host_states = host_states(proxmox, inventory.hosts)
    lines, refusals = [], []
    for state in deployment.host_states.values():
        if state.vmid in deployment.left_out:
            continue  # named by the node-down check; nothing of this run touches it
        if state.lock:
            refusals.append(f"{state.line()}: the deploy would fail on it half-way; wait for the task holding it, "
                            f"or clear a stale lock on the node (pct unlock {state.vmid}); refusing the run")
        elif state.status == STOPPED:
            lines.append(f"{state.line()}: " + ("a deploy would start it (--plan-only starts nothing)"
                                               if deployment.plan_only else "the deploy starts it"))
        elif not state.exists:
            lines.append(f"{state.line()}: Terraform's plan creates it")
    record = deployment.stage("preflight")
    record.details += [f"  host      {line}" for line in lines + refusals]
    if lines or refusals:
        allure_output.attach_text("hosts not running", "\n".join(lines + refusals))
    return refusals


def start_stopped_hosts(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """Start every declared host preflight found stopped, node by node; record them; give the failures.

    Each start is a PVE task whose exitstatus is checked (plugins/proxmox/client.py).
    """
    inventory = deployment.inventory
    stopped = [inventory.host(s.vmid) for s in deployment.host_states.values()
               if s.status == STOPPED and not s.lock and s.vmid not in deployment.left_out]
    record = deployment.stage("start")
    failures = []
    for node in sorted({h.node for h in stopped}):
        vmids = [h.vmid for h in stopped if h.node == node]
        with allure_output.step(f"start {len(vmids)} stopped container(s) on {node}"):
            outcomes = proxmox.start_many(node, vmids)
        for vmid, outcome in outcomes.items():
            host = inventory.host(vmid)
            if isinstance(outcome, Exception):
                failures.append(f"{host.hostname} (CT {vmid}) did not start: {outcome}")
            else:
                deployment.started.append(vmid)
                record.details.append(f"  started   {host.hostname} (CT {vmid}) on node '{node}': it was stopped")
    names = ", ".join(f"{inventory.host(v).hostname} (CT {v})" for v in deployment.started)
    record.summary = f"started {names}" if names else "every declared host that exists was running"
    return failures


def started_hosts_problem(deployment: DeploySession, deadline: float = START_DEADLINE) -> str:
    """The hosts this run started that do not answer SSH within the deadline ('' if all do, or none was started);
    deploy.max_health_wait caps the deadline as it caps the deploy's other checks."""
    inventory = deployment.inventory
    hosts = [inventory.host(v) for v in deployment.started]
    if not hosts:
        return ""
    cap = inventory.deploy.max_health_wait
    results = wait_hosts_healthy(inventory, hosts, deadline=min(deadline, cap) if cap else deadline,
                                 wanted_of=lambda host: [("ssh_reachable", None)])
    failing = [r.message for r in results.values() if r.outcome == FAIL]
    return "; ".join(failing)
