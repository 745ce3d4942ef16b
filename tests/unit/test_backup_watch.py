"""Backups watched: the allowed age derived from the schedule, a stale or missing host named, the last restic check
read from make backup's record on the runner."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from plugins.backup import watch
from plugins.backup.run import HostBackup, record
from plugins.inventory import load_inventory

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAB = load_inventory(ROOT / "inventories" / "lab.yml")
APP, PROXY = LAB.host("app-demo"), LAB.host("proxy")
NOW = 1_800_000_000
H = watch.HOUR


@pytest.mark.parametrize(("schedule", "hours"), [
    ("daily", 24), ("mon..sun 02:30", 24), ("02:30", 24), ("*-*-* 03:00", 24), ("hourly", 1), ("*:15", 1),
    ("weekly", 7 * 24), ("sat 02:00", 7 * 24), ("mon,thu 01:00", 4 * 24), ("mon..fri 01:00", 3 * 24),
    ("sat..mon 04:00", 5 * 24), ("monthly", 31 * 24),
])
def test_the_interval_is_the_longest_gap_between_two_runs_of_the_schedule(schedule, hours):
    """PVE's and systemd's calendar events: named ones, weekday lists and ranges, every hour."""
    assert watch.schedule_interval(schedule) == hours * H


def test_a_daily_schedule_allows_26_hours():
    """The lab's `mon..sun 02:30` and `daily`: 24 h + 2 h of grace."""
    assert watch.max_backup_age(LAB.backup.schedule) == watch.max_backup_age("daily") == 26 * H


def row(host, age_hours: float) -> dict:
    """A content entry as PVE lists it."""
    return {"volid": f"backup:backup/vzdump-lxc-{host.vmid}-x.tar.zst", "vmid": host.vmid,
            "ctime": int(NOW - age_hours * H)}


def test_a_fresh_backup_passes_and_a_stale_one_names_the_host_and_the_rule():
    """25 h old under a daily schedule passes; 27 h fails naming the host, its archive, the age and the policy."""
    assert watch.backup_freshness(LAB, APP, [row(APP, 25), row(APP, 49)], now=NOW).passed
    verdict = watch.backup_freshness(LAB, APP, [row(APP, 27), row(PROXY, 1)], now=NOW)
    assert not verdict.passed and not verdict.skipped
    assert verdict.message == ("app-demo (250) is stale: its newest backup backup:backup/vzdump-lxc-250-x.tar.zst is "
                               "27.0 h old; the policy allows 26.0 h (schedule 'mon..sun 02:30', "
                               "inventories/lab.yml: backup.schedule)")


def test_a_host_without_a_backup_fails_once_others_have_one_and_nothing_yet_is_a_skip():
    """Another host backed up and not this one: failed, named. No backup on the storage at all: skipped, why."""
    verdict = watch.backup_freshness(LAB, APP, [row(PROXY, 1)], now=NOW)
    assert not verdict.passed and not verdict.skipped and verdict.message.startswith(
        "app-demo (250) has no backup on storage 'backup' while other hosts have")
    nothing = watch.backup_freshness(LAB, APP, [], now=NOW)
    assert nothing.skipped and "run make backup" in nothing.message
    stranger = {"volid": "backup:backup/vzdump-lxc-990-x.tar.zst", "vmid": 990, "ctime": NOW}
    assert watch.backup_freshness(LAB, APP, [stranger], now=NOW).skipped, "a CT outside the inventory judged it"


def test_the_last_restic_check_is_read_from_make_backups_record(tmp_path, monkeypatch):
    """Passed → pass; failed → restic's line; never run → skipped saying so; the record is make backup's own."""
    monkeypatch.setenv("HOMELAB_SUITE_STATE_DIR", str(tmp_path))
    assert watch.restic_check(LAB).skipped
    record(LAB, {"app-demo": HostBackup("app-demo")}, {"at": NOW, "ok": True})
    assert watch.status_path(LAB).is_file()
    assert watch.restic_check(LAB).passed
    error = "restic check in s3:http://127.0.0.1:9000/homelab-backup/restic/lab failed: Fatal: pack 3f2a: not found"
    record(LAB, {"app-demo": HostBackup("app-demo")}, {"at": NOW, "ok": False, "error": error})
    verdict = watch.restic_check(LAB)
    assert not verdict.passed and verdict.message.endswith("failed: " + error)
    watch.status_path(LAB).write_text(json.dumps({"hosts": {}}))
    assert not watch.restic_check(LAB).passed and "no restic check recorded" in watch.restic_check(LAB).message


def test_the_health_suite_watches_the_hosts_the_policy_backs_up(tmp_path):
    """suites/health/test_backups.py: one freshness test per backed-up host (a left-out one has none), then the
    repository's check (collection only: nothing is contacted)."""
    document = copy.deepcopy(yaml.safe_load((ROOT / "inventories" / "lab.yml").read_text()))
    document["backup"]["exclude"] = ["ci-runner"]
    variant = tmp_path / "lab-exclude.yml"
    variant.write_text(yaml.safe_dump(document, sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "pytest", "suites/health/test_backups.py", "--collect-only", "-q",
                           "-p", "no:cacheprovider", f"--inventory={variant}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    tests = [line.split("::", 1)[1] for line in done.stdout.splitlines() if "::" in line]
    fresh = "test_newest_backup_is_younger_than_the_schedule_allows"
    assert tests == [f"{fresh}[{name}]" for name in ("proxy", "utilities", "monitoring", "app-demo")] + [
        "test_last_restic_check_of_the_offsite_copy_passed"], done.stdout[-2000:] + done.stderr[-2000:]


def test_an_inventory_without_a_backup_policy_has_no_backup_watch(tmp_path):
    """No `backup:` section: the watch's tests are not collected (not skipped: a skip would read as a gap), the
    other health tests are."""
    document = copy.deepcopy(yaml.safe_load((ROOT / "inventories" / "lab.yml").read_text()))
    del document["backup"]
    variant = tmp_path / "lab-no-backup.yml"
    variant.write_text(yaml.safe_dump(document, sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "pytest", "suites/health", "--collect-only", "-q",
                           "-p", "no:cacheprovider", f"--inventory={variant}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    tests = [line for line in done.stdout.splitlines() if "::" in line]
    assert done.returncode == 0 and tests, done.stdout[-2000:] + done.stderr[-2000:]
    assert not [t for t in tests if "test_backups.py" in t], tests
