"""lab down: what it removes beside the containers (no LXC here: the lab's parts are replaced by recorders)."""

from __future__ import annotations

import pytest

from lab import config, orchestrate

pytestmark = pytest.mark.unit


class _Hosts:
    def destroy_all(self):
        return [201, 202]

    def find_leftovers(self):
        return []


class _Store:
    data_dir = "s3"

    def stop(self, timeout):
        return False

    def wipe(self):
        return False


@pytest.fixture
def lab_dir(tmp_path, monkeypatch):
    """A lab directory with keys and known_hosts files; every part down() stops replaced by a no-op."""
    paths = config.LabPaths(lab_dir=tmp_path, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(orchestrate, "PATHS", paths)
    monkeypatch.setattr(orchestrate, "LabHosts", _Hosts)
    monkeypatch.setattr(orchestrate, "STATE_STORE", _Store())
    monkeypatch.setattr(orchestrate.procs, "stop", lambda run_dir, service: False)
    monkeypatch.setattr(orchestrate.net, "bridge_down", lambda: None)
    monkeypatch.setattr(orchestrate.net, "bridge_exists", lambda: False)
    # the machine's real nftables table is the running lab's firewall: a unit test must never delete it
    monkeypatch.setattr(orchestrate, "nft_remove", lambda: False)
    monkeypatch.setattr(orchestrate, "nft_table_exists", lambda: False)
    paths.keys_dir.mkdir(parents=True)
    for name in ("deploy_ed25519", "deploy_ed25519.pub", "known_hosts_lab", "known_hosts_e2e", "s3.json"):
        (paths.keys_dir / name).write_text("x\n")
    return paths


def test_down_forgets_the_host_keys_of_the_containers_it_destroys_and_keeps_the_keys(lab_dir):
    said = []
    assert orchestrate.down(progress=said.append) == []
    assert sorted(p.name for p in lab_dir.keys_dir.iterdir()) == ["deploy_ed25519", "deploy_ed25519.pub", "s3.json"]
    assert f"forgot the host keys in {lab_dir.keys_dir / 'known_hosts_e2e'} (their containers are gone)" in said
