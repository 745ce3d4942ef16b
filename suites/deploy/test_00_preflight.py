"""Preflight: everything that broke on the day is checked before anything is written.

Nothing here takes a snapshot or writes to the API. Each message names what was expected
and what was found (incidents #1, #2, #3, #6, #7, #8, #15, #16).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.proxmox import snapshot_name
from plugins.self_host import is_this_machine
from plugins.terraform import missing_backend_flags
from plugins.workflows import DEPLOY_WORKFLOW, PLAN_WORKFLOW, plan_workflow_problems, workflow_problems

pytestmark = [pytest.mark.order(0), pytest.mark.stage("preflight", sequential=False)]


def test_the_run_id_gives_a_valid_snapshot_name(deployment):
    """deploy_<run id> follows PVE's rule (letter first, [a-z0-9_-], at most 40 characters)."""
    deployment.snapshot_name = snapshot_name(deployment.run_id)


def test_proxmox_answers_and_accepts_the_token(proxmox):
    """The API answers over verified TLS and the token authenticates (401/403 explained otherwise)."""
    assert proxmox.version().get("version")


def test_the_node_exists(proxmox, inventory):
    """Every node the inventory names exists (incident #2: 'pve' vs 'homelab')."""
    proxmox.require_node(inventory.proxmox.node, source=inventory.where("proxmox.node"))
    for node in sorted({h.node for h in inventory.hosts} - {inventory.proxmox.node}):
        proxmox.require_node(node, source=inventory.where("hosts[].node"))


def test_every_vmid_is_free_or_holds_its_own_host(proxmox, inventory, deployment):
    """A VMID that exists holds the host the inventory says; missing ones are listed for creation (#8)."""
    existing = {}
    for node in sorted({h.node for h in inventory.hosts}):
        existing.update({vmid: (node, row) for vmid, row in proxmox.containers(node).items()})
    wrong = []
    for host in inventory.hosts:
        found = existing.get(host.vmid)
        if found is None:
            if host in inventory.rollback_set:
                deployment.first_deploy.append(host.vmid)
            continue
        node, row = found
        if node != host.node:
            wrong.append(f"CT {host.vmid} is on node '{node}', inventory says '{host.node}'")
        if row.get("name") and row["name"] != host.hostname:
            wrong.append(f"CT {host.vmid} is '{row['name']}', inventory says '{host.hostname}'")
    assert not wrong, "; ".join(wrong) + f" ({inventory.source}: hosts)"


def test_the_state_backend_carries_the_s3_compatible_flags(inventory):
    """S3-compatible stores have no STS: the skip flags must be set (incident #3)."""
    missing = missing_backend_flags(inventory.state_backend)
    assert not missing, (f"state backend lacks {', '.join(missing)} = true "
                         f"({inventory.where('state_backend')}): terraform init would call STS and fail")


def test_the_deploy_key_exists_and_is_not_empty(inventory):
    """The runner's deploy key and its public half exist and are not empty (incident #6)."""
    key = Path(inventory.runner.deploy_key)
    problems = [f"{p} is {'empty' if p.exists() else 'missing'}"
                for p in (key, key.with_name(key.name + ".pub")) if not (p.exists() and p.stat().st_size)]
    assert not problems, "; ".join(problems) + f" ({inventory.where('runner.deploy_key')})"


def test_the_runner_is_not_in_the_rollback_set(inventory):
    """Neither the runner nor this machine is ever rolled back (incident #7)."""
    offenders = [f"{h.hostname} ({h.ip}) is this machine" for h in inventory.rollback_set if is_this_machine(h)]
    assert not offenders, "; ".join(offenders) + f": set rollback: false ({inventory.source}: hosts)"


def test_every_role_exists(inventory, pytestconfig):
    """Each role the inventory names is a role of ansible/roles/ (site.yml includes it by name)."""
    roles = pytestconfig.rootpath / "ansible" / "roles"
    missing = [f"{role} (ansible/roles/{role}/tasks/main.yml)" for role in inventory.roles
               if not (roles / role / "tasks" / "main.yml").is_file()]
    assert not missing, f"roles that do not exist: {', '.join(missing)} ({inventory.source}: hosts[].roles)"


def test_the_deploy_workflow_matches_the_inventory(inventory, pytestconfig):
    """Branch, runner label, environment and permissions agree with the inventory (#1, #14, #15, #16)."""
    problems = workflow_problems(pytestconfig.rootpath / DEPLOY_WORKFLOW, inventory.github, inventory.where("github"))
    assert not problems, "; ".join(problems)


def test_the_plan_workflow_matches_the_inventory(inventory, pytestconfig):
    """The pull requests' plan job runs on the runner label, may comment, and avoids the deploy's environment."""
    problems = plan_workflow_problems(pytestconfig.rootpath / PLAN_WORKFLOW, inventory.github, inventory.where("github"))
    assert not problems, "; ".join(problems)
