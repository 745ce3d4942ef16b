"""Fixtures of the deploy stages: the Proxmox client, the Terraform runner, the tfvars file.

The stages state promises; the work happens in plugins/deploy/stages/, in the order and with the gating
of plugins/deploy/pipeline.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugins.deploy.terraform_setup import terraform_runner, terraform_workdir
from plugins.proxmox.client import ProxmoxClient
from plugins.proxmox.tasks import ProxmoxError
from plugins.report.redaction import register_inventory
from plugins.tools.terraform import TerraformRunner


@pytest.fixture(scope="session")
def proxmox_client(inventory) -> ProxmoxClient | str:
    """The one Proxmox VE API client of this run, or why it cannot be made (token from the env var the inventory names)."""
    register_inventory(inventory)
    try:
        return ProxmoxClient.from_inventory(inventory)
    except ProxmoxError as error:
        name = inventory.proxmox.token_secret_env
        return (f"{error}; set it: in CI, from the repository secret {name}; on the embedded lab, "
                f'eval "$(python -m lab env)"')


@pytest.fixture
def proxmox(proxmox_client, request):
    """The Proxmox client; without one, the first test that needs it fails with why, the others skip."""
    if isinstance(proxmox_client, ProxmoxClient):
        return proxmox_client
    if not request.session.stash.get(_REPORTED, False):
        request.session.stash[_REPORTED] = True
        pytest.fail(proxmox_client, pytrace=False)
    pytest.skip("no Proxmox client (see the first failure)")


_REPORTED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def run_dir(deployment) -> Path:
    """reports/deploy/<run id>/: what this run writes (tfvars, ansible artifacts, result)."""
    deployment.run_dir.mkdir(parents=True, exist_ok=True)
    return deployment.run_dir


@pytest.fixture(scope="session")
def tfvars_file(inventory, run_dir) -> Path:
    """The Terraform variables of this run, derived from the inventory (never typed twice)."""
    path = run_dir / "terraform.tfvars.json"
    path.write_text(json.dumps(inventory.terraform_vars(), indent=2))
    return path


@pytest.fixture(scope="session")
def terraform(inventory, pytestconfig) -> TerraformRunner:
    """The Terraform runner of this environment: terraform/envs/<environment>, S3 backend from the inventory."""
    workdir = terraform_workdir(inventory, pytestconfig.rootpath)
    if not workdir.is_dir():
        pytest.fail(f"no Terraform environment {workdir} for environment '{inventory.environment}' "
                    f"({inventory.where('environment')})")
    return terraform_runner(inventory, pytestconfig.rootpath)
