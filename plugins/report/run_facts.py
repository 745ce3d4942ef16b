"""Facts about a run for the report's environment widget and its executor: what ran, where, from which commit.

Read from the session's inventory (already loaded by plugins/inventory), git, the installed packages and,
in GitHub Actions, its variables. Nothing here contacts anything: GitHub's URLs are only written down.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from plugins.inventory.plugin import INVENTORY_KEY


def git_commit(root: Path, env: Mapping[str, str] = os.environ) -> str | None:
    """The commit under test: $GITHUB_SHA in CI, else `git rev-parse HEAD` of the checkout (None outside git)."""
    if env.get("GITHUB_SHA"):
        return env["GITHUB_SHA"]
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def package_version(name: str) -> str | None:
    """An installed distribution's version, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def run_properties(config: pytest.Config, env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """environment, node, git commit, Ansible's version and the CI run id: what every session knows."""
    inventory = config.stash.get(INVENTORY_KEY, None)
    properties: dict[str, Any] = {
        "git_commit": git_commit(config.rootpath, env),
        "ansible_version": package_version("ansible-core"),
        "pytest_version": package_version("pytest"),
    }
    if inventory is not None:
        properties.update(environment=inventory.environment, node=inventory.proxmox.node,
                          proxmox_url=inventory.proxmox_url)
    if env.get("GITHUB_RUN_ID"):
        properties["run_id"] = f"gh{env['GITHUB_RUN_ID']}_{env.get('GITHUB_RUN_ATTEMPT', '1')}"
    return {key: value for key, value in properties.items() if value}


def executor_from_env(env: Mapping[str, str] = os.environ) -> dict[str, Any] | None:
    """executor.json's content from GitHub Actions' variables; None outside GitHub Actions."""
    if env.get("GITHUB_ACTIONS") != "true" or not env.get("GITHUB_RUN_ID"):
        return None
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    repository, run_id = env.get("GITHUB_REPOSITORY", ""), env["GITHUB_RUN_ID"]
    run_url = f"{server}/{repository}/actions/runs/{run_id}" if repository else None
    number = env.get("GITHUB_RUN_NUMBER", run_id)
    executor = {
        "name": "GitHub Actions",
        "type": "github",
        "url": server,
        "buildOrder": int(number) if number.isdigit() else None,
        "buildName": f"{env.get('GITHUB_WORKFLOW', 'workflow')} #{number}",
        "buildUrl": run_url,
        "reportName": f"{repository} {env.get('GITHUB_REF_NAME', '')}".strip(),
    }
    return {key: value for key, value in executor.items() if value is not None}
