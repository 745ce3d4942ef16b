"""The inventory's backup policy: shipped policies load, each bad input is one line naming file and key, and no
message shows a secret."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from plugins.inventory import InventoryError, load_inventory, validate_document

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab.yml"
HOMELAB = ROOT / "inventories" / "homelab.yml"
DOCUMENT = yaml.safe_load(LAB.read_text())


def broken(change) -> str:
    """The one-line error of lab.yml changed by `change(document["backup"])`."""
    document = copy.deepcopy(DOCUMENT)
    change(document["backup"])
    with pytest.raises(InventoryError) as caught:
        validate_document("inventories/lab.yml", document)
    return str(caught.value)


@pytest.mark.parametrize("path", [LAB, HOMELAB], ids=["lab", "homelab"])
def test_both_inventories_declare_a_policy_that_keeps_something_off_the_node(path):
    """lab.yml and homelab.yml load with a policy: a storage, a schedule, a retention, restic's secrets by name."""
    policy = load_inventory(path).backup
    assert policy.storage and policy.schedule and policy.retention.prune_backups()
    assert policy.offsite.repository.startswith("s3:https://" if path == HOMELAB else "s3:http://127.0.0.1:")
    assert policy.offsite.password.env or policy.offsite.password.vault


def test_the_retention_reads_as_pve_and_restic_count_it():
    """One retention, two spellings: PVE's prune-backups property string and restic forget's flags."""
    retention = load_inventory(LAB).backup.retention
    assert retention.prune_backups() == "keep-last=3,keep-daily=7,keep-weekly=4,keep-monthly=6"
    assert retention.forget_flags() == ["--keep-last", "3", "--keep-daily", "7", "--keep-weekly", "4",
                                        "--keep-monthly", "6"]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda b: b.update(retention={"keep_last": 0}),
     ("inventories/lab.yml: backup.retention: a retention of 0 everywhere keeps nothing (expected at least one of "
     "keep_last, keep_daily, keep_weekly, keep_monthly > 0)")),
    (lambda b: b.update(exclude=["ci-runer"]),
     ("inventories/lab.yml: backup.exclude[0]: 'ci-runer' is not a host of this inventory (expected one of: proxy, "
     "utilities, ci-runner, monitoring, app-demo)")),
    (lambda b: b["offsite"].pop("password"), "inventories/lab.yml: backup.offsite.password: required key is missing"),
    (lambda b: b.update(storage="Local"), "inventories/lab.yml: backup.storage: 'Local' is not a Proxmox storage id"),
    (lambda b: b.update(schedule="02:30; reboot"), ("inventories/lab.yml: backup.schedule: '02:30; reboot' is not a "
                                                   "calendar event")),
    (lambda b: b.update(mode="hot"), "inventories/lab.yml: backup.mode: expected one of: snapshot, suspend, stop"),
    (lambda b: b["retention"].update(keep_daily=-1), ("inventories/lab.yml: backup.retention.keep_daily: expected a "
                                                     "number >= 0")),
], ids=["retention-0", "unknown-host", "no-restic-secret", "storage", "schedule", "mode", "negative-keep"])
def test_a_bad_policy_is_one_line_naming_file_key_and_expected(change, expected):
    """Each mistake is one line: the file, the key, what was expected."""
    message = broken(change)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_a_secret_pasted_in_place_of_its_name_is_never_shown():
    """A restic password written in the inventory instead of {env: NAME} is refused without being echoed."""
    secret = "c0rrect-h0rse-battery-staple-9f8e7d6c5b4a39281706"
    message = broken(lambda b: b["offsite"].update(password={"env": secret}))
    assert "backup.offsite.password" in message and secret not in message


def test_a_policy_is_optional():
    """An inventory without backup: loads (no job, no dumps): backups are asked for, not imposed."""
    document = copy.deepcopy(DOCUMENT)
    document.pop("backup")
    assert validate_document("inventories/lab.yml", document).backup is None
