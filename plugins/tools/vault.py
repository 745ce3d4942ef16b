"""The homelab's Ansible Vault: the file of `vault_…` variables the inventory names, opened with the password
file CI writes (its path in the environment variable stack.vault.password_file_env names).

The deploy hands both to ansible-playbook (`--vault-password-file`, `-e @<file>`); preflight opens the vault
here first, so a missing file, a wrong password or a variable the vault lacks is one line before any snapshot.
Values are only ever registered with the redactor: no message names one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from plugins.inventory import Inventory

REPOSITORY = Path(__file__).resolve().parents[2]


class VaultProblem(ValueError):
    """The vault cannot be opened or lacks a variable: one line, never a value."""


@dataclass(frozen=True)
class VaultFiles:
    """The vault file and the file holding its password, as the deploy passes them to Ansible."""

    vault_file: Path
    password_file: Path


def vault_files(inventory: Inventory, env: Mapping[str, str] = os.environ) -> VaultFiles | None:
    """The inventory's vault file and password file (None when stack.vault is not set); VaultProblem when the
    password file's variable is unset."""
    vault = inventory.stack.vault if inventory.stack else None
    if vault is None:
        return None
    password = env.get(vault.password_file_env, "")
    if not password:
        raise VaultProblem(f"{vault.password_file_env} is not set ({inventory.where('stack.vault')}: expected the "
                           "path of a file holding the vault's password, written from the CI secret)")
    path = Path(vault.file)
    return VaultFiles(vault_file=path if path.is_absolute() else REPOSITORY / path, password_file=Path(password))


def open_vault(files: VaultFiles) -> dict[str, Any]:
    """The vault's variables, decrypted with the password file (VaultProblem, naming the file, otherwise)."""
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultLib, VaultSecret, is_encrypted

    try:
        password = files.password_file.read_bytes().strip()
    except OSError as error:
        raise VaultProblem(f"vault password file {files.password_file}: {(error.strerror or 'unreadable').lower()} "
                           "(expected a readable file holding the vault's password)") from None
    try:
        data = files.vault_file.read_bytes()
    except OSError as error:
        raise VaultProblem(f"vault file {files.vault_file}: {(error.strerror or 'unreadable').lower()} (expected the "
                           "file `ansible-vault create` made)") from None
    if not is_encrypted(data):
        raise VaultProblem(f"vault file {files.vault_file} is not encrypted (expected `ansible-vault encrypt` on it: "
                           "secrets are never committed in clear)")
    try:
        text = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password))]).decrypt(data)
    except AnsibleError:
        raise VaultProblem(f"vault file {files.vault_file}: the password in {files.password_file} does not open it "
                           "(expected the vault's password)") from None
    variables = yaml.safe_load(text) or {}
    if not isinstance(variables, dict):
        raise VaultProblem(f"vault file {files.vault_file}: expected a mapping of vault_… variables")
    return variables


def leaves(value: Any) -> list[str]:
    """Every string inside a vault value (what the redactor must hide)."""
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in leaves(item)]
    if isinstance(value, list):
        return [text for item in value for text in leaves(item)]
    return [str(value)] if value is not None and not isinstance(value, bool) else []
