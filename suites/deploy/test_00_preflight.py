"""Preflight: everything that broke on the day is checked before anything is written.

Nothing here takes a snapshot or writes to the API. Each message names what was expected
and what was found (incidents #1, #2, #3, #6, #7, #8, #15, #16). The work: plugins/deploy/stages/preflight.py.
"""

from __future__ import annotations

import pytest

from plugins.backup.job import NoBackupApi, check_storage
from plugins.deploy.stages import host_states, preflight
from plugins.deploy.workflows import DEPLOY_WORKFLOW, PLAN_WORKFLOW, plan_workflow_problems, workflow_problems
from plugins.proxmox.snapshots import check_snapshot_name
from plugins.proxmox.versions import unsupported_version_problem

pytestmark = pytest.mark.stage("preflight")


def test_the_run_id_gives_a_valid_snapshot_name(deployment):
    """deploy_<run id> follows PVE's rule (letter first, [a-z0-9_-], at most 40 characters)."""
    check_snapshot_name(deployment.snapshot_name)


def test_proxmox_answers_and_accepts_the_token(proxmox, deployment):
    """The API answers over verified TLS and the token authenticates (401/403 explained otherwise)."""
    assert preflight.proxmox_version(deployment, proxmox), "the Proxmox API answered without a version"


def test_proxmox_runs_a_supported_version(proxmox):
    """The node runs a PVE release the suite supports (README: supported Proxmox VE versions)."""
    problem = unsupported_version_problem(proxmox.version(), proxmox.url)
    assert not problem, problem


def test_the_node_exists(proxmox, inventory):
    """Every node the inventory names exists (incident #2: 'pve' vs 'homelab')."""
    preflight.require_nodes(proxmox, inventory)


def test_the_cluster_has_quorum(proxmox, deployment):
    """A cluster without quorum refuses every write: nothing would deploy (nodes down are recorded either way)."""
    problem = preflight.cluster_problem(deployment, proxmox)
    assert not problem, problem


def test_a_node_down_is_what_the_inventory_allows(proxmox, deployment):
    """A node down on a quorate cluster: named with the hosts it takes down, then refused or gone on with as the
    inventory's deploy.node_down says (refuse by default)."""
    problem = preflight.node_down_problem(deployment, proxmox)
    assert not problem, problem


def test_every_vmid_is_free_or_holds_its_own_host(proxmox, deployment):
    """A VMID that exists holds the host the inventory says; missing ones are listed for creation (#8)."""
    problem = preflight.vmid_problem(deployment, proxmox)
    assert not problem, problem


def test_no_declared_host_is_locked(proxmox, deployment):
    """Every declared host's state is read first: a stopped one is named and started by the deploy, a missing one
    named and created by Terraform, a locked one refuses the run before any side effect."""
    refusals = host_states.read_host_states(deployment, proxmox)
    assert not refusals, "\n".join(refusals)


def test_the_backup_storage_exists_and_holds_backups(proxmox, inventory):
    """The storage the backup policy names is on the node with content `backup` (inventory backup.storage)."""
    if inventory.backup is None:
        pytest.skip(f"no backup policy ({inventory.where('backup')})")
    try:
        check_storage(proxmox, inventory)
    except NoBackupApi as reason:
        pytest.skip(str(reason))


def test_the_state_backend_carries_the_s3_compatible_flags(inventory):
    """S3-compatible stores have no STS: the skip flags must be set (incident #3)."""
    problem = preflight.backend_problem(inventory)
    assert not problem, problem


def test_the_deploy_key_exists_and_is_not_empty(inventory):
    """The runner's deploy key and its public half exist and are not empty (incident #6)."""
    problem = preflight.deploy_key_problem(inventory)
    assert not problem, problem


def test_the_runner_is_not_in_the_rollback_set(inventory):
    """Neither the runner nor this machine is ever rolled back (incident #7)."""
    problem = preflight.rollback_set_problem(inventory)
    assert not problem, problem


def test_every_service_secret_has_a_value(inventory):
    """Each secret the services name has a value: its environment variable, or its variable in the vault the
    inventory names, opened with the CI's password file (names only in the message)."""
    problem = preflight.service_secrets_problem(inventory)
    assert not problem, problem


def test_every_role_exists(inventory, pytestconfig):
    """Each role the inventory names is a role of ansible/roles/ (site.yml includes it by name)."""
    problem = preflight.missing_roles_problem(inventory, pytestconfig.rootpath)
    assert not problem, problem


def test_the_deploy_workflow_matches_the_inventory(inventory, pytestconfig):
    """Branch, runner label, environment and permissions agree with the inventory (#1, #14, #15, #16)."""
    problems = workflow_problems(pytestconfig.rootpath / DEPLOY_WORKFLOW, inventory.github, inventory.where("github"))
    assert not problems, "; ".join(problems)


def test_the_plan_workflow_matches_the_inventory(inventory, pytestconfig):
    """The pull requests' plan job runs on the runner label, may comment, and avoids the deploy's environment."""
    problems = plan_workflow_problems(pytestconfig.rootpath / PLAN_WORKFLOW, inventory.github, inventory.where("github"))
    assert not problems, "; ".join(problems)
