"""The SSH known_hosts file of an environment, shared by Ansible, the health checks and the rollback wait.

Host keys are pinned on first contact (accept-new) and checked afterwards. A container that the
deploy creates (or re-creates) has new keys: its old entry is forgotten right after it is created,
and only then — a changed key on a host the deploy did not create stays a loud error.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def known_hosts_file(inventory) -> Path:
    """known_hosts_<environment> next to the deploy key (one per environment: lab keys never mix with real ones)."""
    return Path(inventory.runner.deploy_key).expanduser().parent / f"known_hosts_{inventory.environment}"


def forget(known_hosts: Path, addresses: list[str]) -> list[str]:
    """Remove the pinned keys of these addresses (hosts just created); return the addresses that had one."""
    forgotten = []
    if not known_hosts.exists():
        return forgotten
    for address in addresses:
        found = subprocess.run(["ssh-keygen", "-F", address, "-f", str(known_hosts)],
                               capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            subprocess.run(["ssh-keygen", "-R", address, "-f", str(known_hosts)],
                           capture_output=True, text=True, check=True)
            forgotten.append(address)
    old = known_hosts.with_name(known_hosts.name + ".old")
    old.unlink(missing_ok=True)  # ssh-keygen -R keeps a backup we do not want lying around
    return forgotten
