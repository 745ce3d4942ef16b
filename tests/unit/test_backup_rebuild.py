"""The vzdump archives off-site and `make restore-node` against the in-process PVE emulator and a real restic
repository in a local directory (the S3 store's stand-in): each host's newest archive copied, the node's CTs and
backups lost, the hosts rebuilt from the repository alone. Ansible's converge and the health checks are fakes here
(the e2e test runs them for real); every refusal is one line before any change, no secret in it."""

from __future__ import annotations

import shutil

import pytest
from test_backup_restore import APP, LAB, SECRETS, UTILITIES, Node

from plugins.backup import archives, cli, rebuild, run
from plugins.backup.offsite import ARCHIVE_TAG, Repository
from plugins.proxmox import backups as node_backups

pytestmark = [pytest.mark.unit,
              pytest.mark.skipif(shutil.which("restic") is None, reason="restic is not installed (sudo make install)")]


@pytest.fixture
def node(tmp_path, monkeypatch) -> Node:
    monkeypatch.setenv("HOMELAB_SUITE_STATE_DIR", str(tmp_path / "state"))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return Node(tmp_path)


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Repository:
    """restic's repository in a local directory, reached as the policy's would be."""
    repository = Repository(str(tmp_path / "restic"), "http://127.0.0.1:9000", SECRETS, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(Repository, "reachable", lambda self: None)
    monkeypatch.setattr(rebuild, "repository", lambda inventory, environment: repository)
    repository.ensure()
    return repository


def lose(node: Node, *hosts) -> None:
    """The hosts lost with their local backups: CT destroyed, every archive of it removed from the storage."""
    for host in hosts:
        node.client.stop("homelab", host.vmid)
        node_backups.destroy(node.client, "homelab", host.vmid)
        for volid in node.backups(host.vmid):
            node_backups.remove_backup(node.client, "homelab", "backup", volid)


class Steps:
    """converge and health faked: what they were asked."""

    def __init__(self):
        self.calls: list[str] = []

    def converge(self, inventory, hosts) -> str:
        self.calls.append("converge " + ",".join(h.hostname for h in hosts))
        return "ok=12 changed=0"

    def health(self, inventory, host) -> str:
        self.calls.append(f"health {host.hostname}")
        return "9 checks passed"


def test_each_hosts_newest_archive_goes_offsite_then_rebuilds_it_alone(node, repo):
    """copy_offsite puts the newest archive (tagged vzdump, apart from dumps); with the CTs and the storage's
    archives gone, restore-node fetches, restores, converges and checks each host: the backed-up files are back."""
    rows = {h.hostname: run.HostBackup(h.hostname, vzdump=(1, 0.1)) for h in (APP, UTILITIES)}
    assert run.copy_offsite(repo, LAB, rows, node.client) == "passed"
    assert all(row.offsite and row.offsite[0] > 0 for row in rows.values()), rows
    copied = repo.archives("app-demo")
    assert len(copied) == 1 and ARCHIVE_TAG in copied[0]["tags"] and repo.dumps("app-demo") == []
    newest = node.backups(APP.vmid)[0].split("/", 1)[1]
    assert archives.archive_name(copied[0], APP) == newest
    lose(node, APP, UTILITIES)
    said: list[str] = []
    steps = Steps()
    rc = rebuild.rebuild_node(LAB, node.client, ["app-demo", "utilities"], say=said.append,
                              converge_hosts=steps.converge, check_host=steps.health)
    assert rc == 0, said
    assert [line.split()[0] for line in said] == ["choose", "fetch", "restore", "fetch", "restore", "converge",
                                                  "health", "health", "job", "app-demo,"], said
    assert said[-1].startswith("app-demo, utilities rebuilt from the off-site copy and healthy: recovery time ")
    assert node.files(APP.vmid)["/srv/marker"] == "first" and node.status(APP.vmid) == "running"
    assert node.backups(APP.vmid) == [f"backup:backup/{newest}"], "the fetched archive is on the storage"
    assert steps.calls == ["converge app-demo,utilities", "health app-demo", "health utilities"]
    assert not [p for p in (node.app.storages["backup"].dump_dir).iterdir() if p.name.startswith(".")], \
        "the fetch's scratch directory is left"
    assert all(secret not in "\n".join(said) for secret in SECRETS.values())


def refused(node: Node, names, **kwargs) -> str:
    said: list[str] = []
    steps = Steps()
    rc = rebuild.rebuild_node(LAB, node.client, names, say=said.append, converge_hosts=steps.converge,
                              check_host=steps.health, **kwargs)
    assert rc == 2 and len(said) == 1 and steps.calls == [], said
    return said[0]


def test_bad_input_is_one_line_before_any_change(node, repo, monkeypatch):
    """The runner, an unknown host, a CT still there, no archive off-site, a missing restic secret: one line each."""
    assert "is the runner the suite runs on" in refused(node, ["ci-runner"])
    assert refused(node, ["nope"]).startswith("HOSTS=nope: no such host in inventories/lab.yml")
    assert "CT 250 exists on node homelab: restore-node rebuilds lost hosts only" in refused(node, ["app-demo"])
    lose(node, APP)
    assert refused(node, ["app-demo"]).startswith("app-demo: no vzdump archive of it off-site in ")
    without = {k: v for k, v in SECRETS.items() if k != "RESTIC_PASSWORD"}
    assert refused(node, ["app-demo"], env=without).startswith("RESTIC_PASSWORD is unset or empty")
    assert not node.client.container_exists("homelab", APP.vmid)


def test_a_repository_that_does_not_exist_is_one_line(node, tmp_path, monkeypatch):
    """No repository where the policy points (make backup never ran): one line naming it, nothing made there."""
    missing = Repository(str(tmp_path / "none"), "http://127.0.0.1:9000", SECRETS, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(Repository, "reachable", lambda self: None)
    monkeypatch.setattr(rebuild, "repository", lambda inventory, environment: missing)
    lose(node, APP)
    assert refused(node, ["app-demo"]).startswith(f"no restic repository at {tmp_path / 'none'} (inventories/lab.yml: "
                                                  "backup.offsite: expected the one make backup makes)")
    assert not (tmp_path / "none").exists()


def test_the_command_says_a_wrong_host_in_one_line(capsys):
    """`restore-node --hosts nope`: exit 2, one line on stderr, before the node is asked anything."""
    assert cli.main(["restore-node", "--inventory", str(LAB.source), "--hosts", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("HOSTS=nope: no such host in ") and "\n" not in err
