"""The backup policy's secrets by name, read where they are used: restic's environment, never a command line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from plugins.tools.vault import VaultProblem, open_vault, vault_files

if TYPE_CHECKING:
    from plugins.inventory import Inventory
    from plugins.inventory.secret_source import SecretSource


class BackupProblem(ValueError):
    """A backup that cannot start or finish: one line saying what and where, never a secret's value."""


# restic's own variables (restic's documentation: "Environment Variables"), filled from the inventory's names
_RESTIC_ENV = {"password": "RESTIC_PASSWORD",  # nosec B105 # a variable's name, not a password
               "access_key_id": "AWS_ACCESS_KEY_ID",
               "secret_access_key": "AWS_SECRET_ACCESS_KEY"}  # nosec B105 # a variable's name, not a key


def _value(inventory: Inventory, key: str, source: SecretSource, env: Mapping[str, str], vault: dict | None) -> str:
    where = inventory.where(f"backup.offsite.{key}")
    if source.env:
        value = env.get(source.env, "")
        if not value:
            raise BackupProblem(f"{source.env} is unset or empty ({where}: expected the environment variable to hold "
                                f"the {key.replace('_', ' ')})")
        return value
    if vault is None:
        raise BackupProblem(f"{where}: {source.vault} comes from Ansible Vault but stack.vault is not set (expected "
                            "stack.vault.file: the encrypted vars file)")
    value = vault.get(source.vault)
    if not value:
        raise BackupProblem(f"the vault has no {source.vault} ({where}: expected the variable in the vault file)")
    return str(value)


def restic_environment(inventory: Inventory, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables restic reads (repository password, S3 keys, region), from the sources the policy names;
    BackupProblem naming the missing one."""
    offsite = inventory.backup.offsite
    sources = {key: getattr(offsite, key) for key in _RESTIC_ENV}
    vault = None
    if any(source.vault for source in sources.values()):
        try:
            files = vault_files(inventory, env)
            vault = open_vault(files) if files else None
        except VaultProblem as problem:
            raise BackupProblem(str(problem)) from None
    values = {_RESTIC_ENV[key]: _value(inventory, key, source, env, vault) for key, source in sources.items()}
    if offsite.region:
        values["AWS_DEFAULT_REGION"] = offsite.region
    return values
