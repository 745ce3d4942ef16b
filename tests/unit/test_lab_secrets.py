"""lab/stack_files.py: the lab's service secrets are generated once and never dropped."""

from __future__ import annotations

import json

import pytest

from lab import config, stack_files

pytestmark = pytest.mark.unit


def inventory(tmp_path, *names: str):
    """A lab inventory whose stack.secrets names these env variables."""
    path = tmp_path / f"lab-{len(names)}.yml"
    secrets = "".join(f"    s{i}: {{env: {name}}}\n" for i, name in enumerate(names))
    path.write_text(f"stack:\n  domain: lab.home.arpa\n  secrets:\n{secrets}")
    return path


def test_a_secret_another_inventory_names_keeps_its_value(tmp_path):
    """Checkouts of the lab with different service lists share one secrets file: none erases another's values,
    or a service whose volume was made with the old value could no longer reach its data."""
    paths = config.LabPaths(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    first = stack_files.ensure_service_secrets(paths, inventory(tmp_path, "APP_DB", "ZABBIX_DB"))
    other = stack_files.ensure_service_secrets(paths, inventory(tmp_path, "APP_DB"))
    again = stack_files.ensure_service_secrets(paths, inventory(tmp_path, "APP_DB", "ZABBIX_DB"))
    assert set(other) == {"APP_DB"} and other["APP_DB"] == first["APP_DB"]
    assert again == first
    kept = json.loads(stack_files.secrets_file(paths).read_text())
    assert kept == first and stack_files.secrets_file(paths).stat().st_mode & 0o777 == 0o600


def test_the_lab_makes_the_restic_password_its_backup_policy_names(tmp_path):
    """backup.offsite.password names a variable `lab up` generates once, as it does the services' secrets."""
    paths = config.LabPaths(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    path = tmp_path / "lab-backup.yml"
    path.write_text("stack:\n  secrets: {}\nbackup:\n  offsite:\n    password: {env: RESTIC_PASSWORD}\n"
                    "    access_key_id: {env: AWS_ACCESS_KEY_ID}\n")
    values = stack_files.ensure_service_secrets(paths, path)
    assert set(values) == {"RESTIC_PASSWORD"} and len(values["RESTIC_PASSWORD"]) >= 32
    assert stack_files.ensure_service_secrets(paths, path) == values
