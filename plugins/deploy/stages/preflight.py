"""Preflight: everything that broke on the day, checked before anything is written.

Nothing here takes a snapshot or writes to the API. Each problem names what was expected and what was
found, and where in the inventory to look.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from plugins.proxmox.client import ProxmoxClient
from plugins.report.redaction import REDACTOR
from plugins.shared.this_machine import this_machine_reason
from plugins.tools.terraform import missing_backend_flags
from plugins.tools.vault import VaultProblem, leaves, open_vault, vault_files

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession
    from plugins.inventory import Inventory


def proxmox_version(deployment: DeploySession, proxmox: ProxmoxClient) -> str:
    """The PVE version the API answers with (it authenticates the token); recorded for the report."""
    version = str(proxmox.version().get("version") or "")
    if version:
        deployment.facts["proxmox_version"] = version
    return version


def require_nodes(proxmox: ProxmoxClient, inventory: Inventory) -> None:
    """Raise ProxmoxError naming the nodes that exist when a node the inventory names does not (incident #2)."""
    proxmox.require_node(inventory.proxmox.node, source=inventory.where("proxmox.node"))
    for node in sorted({h.node for h in inventory.hosts} - {inventory.proxmox.node}):
        proxmox.require_node(node, source=inventory.where("hosts[].node"))


def offline_nodes(rows: list[dict]) -> list[str]:
    """The nodes /cluster/status says are not online, sorted."""
    return sorted(str(r.get("name")) for r in rows if r.get("type") == "node" and not r.get("online"))


def hosts_on(inventory: Inventory, proxmox: ProxmoxClient, nodes: list[str]) -> dict[str, list]:
    """{node: the inventory's hosts whose container is on it NOW} (an HA host already recovered elsewhere is not;
    a host PVE does not list counts on its inventory node)."""
    where = proxmox.placement()
    return {node: [h for h in inventory.hosts if where.get(h.vmid, h.node) == node] for node in nodes}


def cluster_problem(deployment: DeploySession, proxmox: ProxmoxClient) -> str:
    """'' when the cluster is quorate; else why nothing can be written. Nodes that are down are recorded with the
    hosts on them now (HA-managed ones are the HA manager's to recover; the others are down with their node)."""
    inventory = deployment.inventory
    rows = proxmox.cluster_status()
    offline = offline_nodes(rows)
    if offline:
        held = hosts_on(inventory, proxmox, offline)
        deployment.facts["nodes_down"] = "; ".join(
            f"{node}: {', '.join(h.hostname + (' (HA)' if h.ha else '') for h in held[node]) or 'no host'}"
            for node in offline)
    cluster = next((r for r in rows if r.get("type") == "cluster"), None)
    if cluster is None or cluster.get("quorate"):
        return ""
    nodes = int(cluster.get("nodes") or 0)
    return (f"cluster '{cluster.get('name')}' has no quorum: {nodes - len(offline)} of {nodes} nodes online "
            f"(down: {', '.join(offline) or 'none'}); Proxmox VE refuses every write (cluster not ready - no quorum?)")


def node_down_problem(deployment: DeploySession, proxmox: ProxmoxClient) -> str:
    """'' when every node is up, or some are down on a quorate cluster and the inventory's deploy.node_down is
    proceed (then recorded as `node_down_policy`); else one line: which node is down, which hosts that takes with
    it, and that the policy refuses. Without quorum cluster_problem() refuses already: '' here."""
    inventory = deployment.inventory
    rows = proxmox.cluster_status()
    offline = offline_nodes(rows)
    cluster = next((r for r in rows if r.get("type") == "cluster"), None)
    if not offline or cluster is None or not cluster.get("quorate"):
        return ""
    held = hosts_on(inventory, proxmox, offline)
    parts = []
    for node in offline:
        hosts = held[node]
        ha = [h.hostname for h in hosts if h.ha and h.ha.state != "ignored"]
        lost = [h.hostname for h in hosts if h.hostname not in ha]
        what = ([f"{', '.join(lost)} down with it"] if lost else []) + (
            [f"{', '.join(ha)} to be recovered on another node by the HA manager"] if ha else [])
        parts.append(f"node {node} is down ({'; '.join(what) or 'no host on it'})")
    online = int(cluster.get("nodes") or 0) - len(offline)
    said = f"{'; '.join(parts)}; the cluster is quorate ({online} of {cluster.get('nodes')} nodes online)"
    if inventory.deploy.node_down == "proceed":
        deployment.facts["node_down_policy"] = f"proceed: {said}"
        leave_out(deployment, held)
        return ""
    return (f"{said}; {inventory.where('deploy.node_down')} is refuse: nothing deployed (proceed deploys on the nodes "
            "that are up)")


def leave_out(deployment: DeploySession, held: dict[str, list]) -> None:
    """Leave the hosts on the down nodes out of this run (every later stage skips them: a call about one would
    answer 595), each named once under the preflight's line. An HA host the manager has not recovered yet is left
    out too: it runs nowhere until it is; one already recovered is on an online node and deployed as any other."""
    record = deployment.stage("preflight")
    for node, hosts in held.items():
        for host in hosts:
            pending = host.ha and host.ha.state != "ignored"
            deployment.left_out[host.vmid] = f"node {node} down" + (
                " (the HA manager is to recover it on another node)" if pending else "")
    record.details += [f"  host      {line}" for line in deployment.left_out_lines()]


def vmid_problem(deployment: DeploySession, proxmox: ProxmoxClient) -> str:
    """What is wrong with the VMIDs that exist ('' if nothing); records those of the rollback set that do not (#8).

    A VMID that exists must hold the host the inventory says; one that does not exist yet is a first deploy,
    listed for creation. The cluster's guest list is read once: a host running on another node than the
    inventory's (HA or a migration moved it) is no problem, every call follows it there; the run records it.
    """
    inventory = deployment.inventory
    existing = proxmox.guests()
    wrong, moved = [], []
    for host in inventory.hosts:
        row = existing.get(host.vmid)
        if row is None:
            if (host in inventory.rollback_set and host.vmid not in deployment.first_deploy
                    and host.vmid not in deployment.left_out):
                deployment.first_deploy.append(host.vmid)
            continue
        if row.get("node") and row["node"] != host.node:
            moved.append(f"{host.hostname} (CT {host.vmid}) runs on node '{row['node']}', inventory says '{host.node}'")
        if row.get("name") and row["name"] != host.hostname:
            wrong.append(f"CT {host.vmid} is '{row['name']}', inventory says '{host.hostname}'")
    if moved:
        deployment.facts["moved_hosts"] = "; ".join(moved)
    return "; ".join(wrong) + f" ({inventory.source}: hosts)" if wrong else ""


def backend_problem(inventory: Inventory) -> str:
    """The S3-compatible skip flags the state backend lacks ('' if none): without them init calls STS (#3)."""
    missing = missing_backend_flags(inventory.state_backend.model_dump())
    if not missing:
        return ""
    return (f"state backend lacks {', '.join(missing)} = true ({inventory.where('state_backend')}): "
            "terraform init would call STS and fail")


def deploy_key_problem(inventory: Inventory) -> str:
    """What is wrong with the runner's deploy key and its public half ('' if both exist, not empty) (#6)."""
    key = Path(inventory.runner.deploy_key)
    problems = [f"{p} is {'empty' if p.exists() else 'missing'}"
                for p in (key, key.with_name(key.name + ".pub")) if not (p.exists() and p.stat().st_size)]
    return "; ".join(problems) + f" ({inventory.where('runner.deploy_key')})" if problems else ""


def rollback_set_problem(inventory: Inventory) -> str:
    """The hosts of the rollback set that are this machine ('' if none): it would roll itself back (#7).

    The runner itself can not be in the rollback set: the inventory refuses it.
    """
    offenders = [reason for reason in map(this_machine_reason, inventory.rollback_set) if reason]
    return "; ".join(offenders) + f": set rollback: false ({inventory.source}: hosts)" if offenders else ""


def missing_roles_problem(inventory: Inventory, root: Path) -> str:
    """The roles the inventory names that ansible/roles/ lacks ('' if none): site.yml includes them by name."""
    roles = root / "ansible" / "roles"
    missing = [f"{role} (ansible/roles/{role}/tasks/main.yml)" for role in inventory.roles
               if not (roles / role / "tasks" / "main.yml").is_file()]
    return f"roles that do not exist: {', '.join(missing)} ({inventory.source}: hosts[].roles)" if missing else ""


def service_secrets_problem(inventory: Inventory, env: Mapping[str, str] = os.environ) -> str:
    """The services' secrets that have no value ('' if none): an unset environment variable, a vault that does not
    open, a vault variable the vault lacks. Names only; the values found are registered with the redactor."""
    stack = inventory.stack
    if stack is None:
        return ""
    where = inventory.where("stack.secrets")
    unset = sorted(source.env for source in stack.secrets.values() if source.env and not env.get(source.env))
    problems = [(f"environment variables {', '.join(unset)} are unset or empty ({where}; the lab exports them with "
                '`eval "$(python -m lab env)"`)')] if unset else []
    wanted = sorted(source.vault for source in stack.secrets.values() if source.vault)
    if wanted:
        try:
            files = vault_files(inventory, env)
            variables = open_vault(files) if files else {}
        except VaultProblem as problem:
            problems.append(str(problem))
        else:
            REDACTOR.add(*(text for value in variables.values() for text in leaves(value)))
            missing = [name for name in wanted if variables.get(name) in (None, "")]
            if missing:
                problems.append(f"vault file {files.vault_file} lacks {', '.join(missing)} ({where}: expected each "
                                "vault variable the secrets name)")
    return "; ".join(problems)
