"""The homelab's Ansible Vault: preflight opens it and names what is missing (never a value), the deploy hands it
to ansible-playbook, and what it holds never reaches a run's output."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from plugins.deploy.stages.preflight import service_secrets_problem
from plugins.inventory import InventoryError, load_inventory
from plugins.report.redaction import REDACTOR
from plugins.tools.playbooks import run_playbook
from plugins.tools.vault import VaultFiles, VaultProblem, open_vault, vault_files

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HOMELAB = ROOT / "inventories" / "homelab.yml"
PASSWORD = "vault-password-for-the-test-7c1f"
VALUE = "netbox-db-value-9f2e4d1a77"
RUN_VALUE = "probe-run-value-31d0c5e8aa"  # registered by no other test: only run_playbook can mask it


def encrypted(path: Path, variables: dict, password: str = PASSWORD) -> Path:
    """Write variables as an Ansible Vault file (what `ansible-vault create` makes)."""
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password.encode()))])
    path.write_bytes(vault.encrypt(yaml.safe_dump(variables)))
    return path


def homelab_with_vault(tmp_path: Path, vault_file: Path):
    """homelab.yml with stack.vault.file pointing at the test's vault (the owner's file never exists here)."""
    document = yaml.safe_load(HOMELAB.read_text())
    document["stack"]["vault"]["file"] = str(vault_file)
    path = tmp_path / "homelab.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_inventory(path)


def all_vault_vars(value: str = VALUE) -> dict:
    """A value for every vault variable homelab.yml's secrets name."""
    secrets = yaml.safe_load(HOMELAB.read_text())["stack"]["secrets"]
    return {source["vault"]: f"{value}-{index}" for index, source in enumerate(secrets.values())}


@pytest.fixture
def password_file(tmp_path) -> Path:
    """The file CI writes from the ANSIBLE_VAULT_PASSWORD secret."""
    path = tmp_path / "vault-password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def test_a_complete_vault_passes_preflight_and_its_values_are_redacted(tmp_path, password_file):
    """Every vault variable present: no problem; each value is then masked in anything the redactor sees."""
    wanted = all_vault_vars()
    inventory = homelab_with_vault(tmp_path, encrypted(tmp_path / "vault.yml", wanted))
    assert service_secrets_problem(inventory, {"ANSIBLE_VAULT_PASSWORD_FILE": str(password_file)}) == ""
    some = next(iter(wanted.values()))
    assert some not in REDACTOR.redact(f"the database said {some}")


def test_a_missing_vault_variable_is_named_without_any_value(tmp_path, password_file):
    """The vault lacks one variable: one line naming it and the file; no value of the others."""
    wanted = all_vault_vars()
    wanted.pop("vault_zabbix_db_password")
    inventory = homelab_with_vault(tmp_path, encrypted(tmp_path / "vault.yml", wanted))
    problem = service_secrets_problem(inventory, {"ANSIBLE_VAULT_PASSWORD_FILE": str(password_file)})
    assert "lacks vault_zabbix_db_password" in problem and str(tmp_path / "vault.yml") in problem
    assert "\n" not in problem and VALUE not in problem


@pytest.mark.parametrize(("case", "expected"), [
    ("no-password-env", "ANSIBLE_VAULT_PASSWORD_FILE is not set"),
    ("wrong-password", "does not open it (expected the vault's password)"),
    ("not-encrypted", "is not encrypted (expected `ansible-vault encrypt` on it"),
    ("no-vault-file", "No such file or directory".lower()),
])
def test_a_vault_that_cannot_be_opened_is_one_line(tmp_path, password_file, case, expected):
    """No password file variable, a wrong password, a clear-text file, no file: one line, no value, no password."""
    vault_file = tmp_path / "vault.yml"
    if case == "not-encrypted":
        vault_file.write_text(yaml.safe_dump(all_vault_vars()))
    elif case != "no-vault-file":
        encrypted(vault_file, all_vault_vars(), password="another-password-entirely" if case == "wrong-password"
                  else PASSWORD)
    env = {} if case == "no-password-env" else {"ANSIBLE_VAULT_PASSWORD_FILE": str(password_file)}
    problem = service_secrets_problem(homelab_with_vault(tmp_path, vault_file), env)
    assert expected in problem, problem
    assert "\n" not in problem and VALUE not in problem and PASSWORD not in problem


def test_vault_secrets_without_a_vault_file_are_refused_by_the_inventory(tmp_path):
    """homelab.yml without stack.vault: the inventory names the vault secrets and the key it needs."""
    document = yaml.safe_load(HOMELAB.read_text())
    del document["stack"]["vault"]
    path = tmp_path / "homelab.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(InventoryError, match=r"stack\.vault: secrets app_demo_db_password, .* come from Ansible "
                                             r"Vault but stack\.vault is not set"):
        load_inventory(path)


def test_the_lab_needs_no_vault_and_names_unset_variables():
    """The lab's secrets are environment variables: unset ones are named (never a value), set ones pass."""
    lab = load_inventory(ROOT / "inventories" / "lab.yml")
    names = sorted(source.env for source in lab.stack.secrets.values())
    problem = service_secrets_problem(lab, {})
    assert f"environment variables {', '.join(names)} are unset or empty" in problem
    assert service_secrets_problem(lab, {name: "a-value-long-enough" for name in names}) == ""
    assert vault_files(lab, {}) is None


def test_ansible_playbook_gets_the_vault_and_never_shows_its_values(tmp_path, password_file):
    """run_playbook(vault=…): the play sees the vault's variable; a task that prints it shows *** instead."""
    vault_file = encrypted(tmp_path / "vault.yml", {"vault_probe_password": RUN_VALUE})
    play = tmp_path / "probe.yml"
    play.write_text(
        "- name: Read a vault variable\n  hosts: local\n  gather_facts: false\n  tasks:\n"
        "    - name: The vault variable has its value\n      ansible.builtin.assert:\n"
        f"        that: vault_probe_password == '{RUN_VALUE[::-1]}'[::-1]\n"
        "    - name: Print it (a careless task)\n      ansible.builtin.debug:\n        var: vault_probe_password\n")
    inventory = {"all": {"hosts": {"local": {"ansible_connection": "local",
                                             "ansible_python_interpreter": sys.executable}}}}
    result = run_playbook(play, inventory, private_key=tmp_path / "unused", vault=VaultFiles(vault_file, password_file))
    assert result.ok, result.recap()
    assert RUN_VALUE not in result.stdout and RUN_VALUE not in repr(result.events)
    assert "***" in result.stdout


def test_open_vault_reads_what_ansible_vault_wrote(tmp_path, password_file):
    """The decrypted variables are the ones written."""
    variables = {"vault_a_password": "first-value-12345", "vault_b_token": "second-value-67890"}
    assert open_vault(VaultFiles(encrypted(tmp_path / "v.yml", variables), password_file)) == variables
    with pytest.raises(VaultProblem, match="is not encrypted"):
        (tmp_path / "clear.yml").write_text("vault_a_password: x\n")
        open_vault(VaultFiles(tmp_path / "clear.yml", password_file))
