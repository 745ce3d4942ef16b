"""Terraform for one inventory: its environment's workdir, the variables the backend and providers read, the runner.

The deploy suite's fixtures and the adoption command (plugins/deploy/adopt.py) build their runner here, so
both run Terraform exactly alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from plugins.tools.terraform import TerraformRunner

if TYPE_CHECKING:
    from plugins.inventory import Inventory


def terraform_env(inventory: Inventory, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Terraform's environment: what the backend and the lab's local-exec helper read."""
    names = ("PATH", "HOME", "LANG", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    env = {name: environ[name] for name in names if name in environ}
    tls = inventory.proxmox.tls_verify
    env.update({
        "PVE_API_URL": f"{inventory.proxmox_url}/api2/json",
        "PVE_TOKEN_ID": inventory.proxmox.token_id,
        "PVE_TOKEN_SECRET": environ.get(inventory.proxmox.token_secret_env, ""),
    })
    if isinstance(tls, str):
        env["PVE_CA_FILE"] = tls
    return env


def terraform_workdir(inventory: Inventory, root: Path) -> Path:
    """terraform/envs/<environment> of the checkout at root."""
    return root / "terraform" / "envs" / inventory.environment


def terraform_runner(inventory: Inventory, root: Path) -> TerraformRunner:
    """The Terraform runner of this environment: its workdir, S3 backend from the inventory."""
    return TerraformRunner(terraform_workdir(inventory, root), terraform_env(inventory),
                           inventory.state_backend.backend_config())
