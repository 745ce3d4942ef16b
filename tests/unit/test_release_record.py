"""A successful deploy's release record: what it holds, the file a host keeps (written whole, read back), and
the read after a rollback, which waits for each host to answer SSH."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from plugins.deploy import release
from plugins.inventory import load_inventory

pytestmark = pytest.mark.unit

LAB_PATH = Path(__file__).resolve().parents[2] / "inventories" / "lab.yml"
LAB = load_inventory(LAB_PATH)


def test_the_record_holds_every_hosts_resolved_checks_the_commit_and_the_inventorys_digest():
    """Codes, paths, ports, deadlines and probes of each host of the rollback set, the commit, the digest."""
    record = release.release_record(LAB, "20261206_1200", "abc123", LAB.rollback_set)
    assert record["release"] == "20261206_1200" and record["commit"] == "abc123"
    assert record["inventory_digest"] == "sha256:" + hashlib.sha256(LAB_PATH.read_bytes()).hexdigest()
    assert set(record["hosts"]) == {h.hostname for h in LAB.rollback_set}
    utilities = record["hosts"]["utilities"]
    vaultwarden = next(s for s in utilities["services"] if s["name"] == "vaultwarden")
    assert vaultwarden["url"].endswith(":8080/alive") and vaultwarden["accepted"] == [200]
    assert vaultwarden["deadline"] > 0 and vaultwarden["container"] == "vaultwarden"
    assert ["container_running", "vaultwarden"] in utilities["checks"] and ["ssh_reachable", None] in utilities["checks"]
    assert any(p["kind"] == "vaultwarden_admin" for p in utilities["probes"])
    json.dumps(record)  # plain data all through


def test_no_secret_value_is_in_the_record(monkeypatch):
    """Probes name the variables holding their secrets, never a value (the record is readable on the hosts)."""
    monkeypatch.setenv("VAULTWARDEN_ADMIN_TOKEN", "s3cr3t-value-xyz")
    text = json.dumps(release.release_record(LAB, "r", None, LAB.rollback_set))
    assert "s3cr3t-value-xyz" not in text


def test_a_host_keeps_only_its_own_checks_and_reads_them_back():
    """The file on utilities holds the release's header and utilities' checks only; read back, the same."""
    record = release.release_record(LAB, "r1", "c", LAB.rollback_set)
    mine = release.host_record(record, "utilities")
    assert list(mine["hosts"]) == ["utilities"]
    parsed = release.parse_host_record(json.dumps(mine), "utilities")
    assert parsed["release"] == "r1" and parsed["host"] == record["hosts"]["utilities"]


@pytest.mark.parametrize(("text", "expected"), [
    ("{not json", "Expecting property name"),
    ('{"version": 99, "hosts": {}}', "not a version 1 release record"),
    ('{"version": 1, "hosts": {"proxy": {}}}', "the record has no checks for utilities"),
])
def test_an_unusable_file_is_an_error_with_its_reason(text, expected):
    """Garbage, a future version, another host's record: ValueError saying which."""
    with pytest.raises(ValueError, match=expected):
        release.parse_host_record(text, "utilities")


def test_no_file_is_no_record():
    """The read command's answer for a host without a record (a snapshot older than records) is None."""
    assert release.parse_host_record(release.NO_RECORD + "\n", "proxy") is None


@pytest.fixture
def host_dir(tmp_path, monkeypatch) -> Path:
    """The record's directory under tmp_path, and a `sudo` on PATH that runs its command (as the deploy user's
    passwordless sudo does on a host)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sudo = bin_dir / "sudo"
    sudo.write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    sudo.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    directory = tmp_path / "var" / "lib" / "homelab-suite"
    monkeypatch.setattr(release, "RECORD_DIR", str(directory))
    monkeypatch.setattr(release, "RECORD_PATH", str(directory / "release.json"))
    return directory


def test_the_commands_write_the_file_whole_and_read_it_back(host_dir):
    """Through a real shell: no file → NO_RECORD; written → the same text, mode 0644, no partial file left."""
    read = subprocess.run(["sh", "-c", release.read_command()], capture_output=True, text=True, check=True)
    assert read.stdout.strip() == release.NO_RECORD
    text = json.dumps(release.host_record(release.release_record(LAB, "r1", None, LAB.rollback_set), "proxy"))
    subprocess.run(["sh", "-c", release.write_command(text)], check=True)
    read = subprocess.run(["sh", "-c", release.read_command()], capture_output=True, text=True, check=True)
    assert release.parse_host_record(read.stdout, "proxy")["release"] == "r1"
    assert oct((host_dir / "release.json").stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in host_dir.iterdir()] == ["release.json"]


class BootingPool:
    """An SshPool stand-in: `proxy` answers from its second attempt on, `utilities` never."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files, self.attempts, self.states = files, {}, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def forget(self, name):
        """Nothing to forget."""

    def run(self, name, command, timeout=60):
        """rc 255 while the host boots, then the record's text (or NO_RECORD)."""
        self.attempts[name] = self.attempts.get(name, 0) + 1
        if name == "utilities" or self.attempts[name] < 2:
            return subprocess.CompletedProcess(command, 255, "", "ssh: connect to host port 22: Connection refused")
        return subprocess.CompletedProcess(command, 0, self.files.get(name, release.NO_RECORD), "")


def test_reading_after_a_rollback_waits_for_ssh_and_reports_a_host_that_never_answers(monkeypatch):
    """proxy answers on its second try (its record), app-demo has none, utilities never answers (named)."""
    record = release.release_record(LAB, "r1", None, LAB.rollback_set)
    pool = BootingPool({"proxy": json.dumps(release.host_record(record, "proxy"))})
    monkeypatch.setattr(release, "ssh_pool", lambda inventory, hosts: pool)
    hosts = [LAB.host(name) for name in ("proxy", "app-demo", "utilities")]
    found = release.read_records(LAB, hosts, deadline=0.5)
    assert found["proxy"]["release"] == "r1" and pool.attempts["proxy"] == 2
    assert found["app-demo"] is None
    assert found["utilities"].startswith("no SSH answer: ssh: connect to host port 22: Connection refused")
    assert pool.attempts["utilities"] > 2
