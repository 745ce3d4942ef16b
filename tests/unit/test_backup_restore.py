"""make restore against the in-process PVE emulator (in-memory hosts): the archive verified before the CT is
replaced, the recovery point, the steps' lines; every refusal one line before any change, no secret in it.
Ansible's converge and the health checks are fakes here (the e2e test runs them for real)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml
from pve_inprocess import in_process_client
from pve_memdriver import MemHosts

from lab.pve.app import Emulator
from plugins.backup import cli
from plugins.backup.restore import restore_host
from plugins.deploy.run_lock import RunLock
from plugins.inventory import load_inventory, validate_document

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAB_PATH = ROOT / "inventories" / "lab.yml"
LAB = load_inventory(LAB_PATH)
APP, UTILITIES = LAB.host("app-demo"), LAB.host("utilities")
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
SECRETS = {"RESTIC_PASSWORD": "p4ss-w0rd-never-shown",  # pragma: allowlist secret
           "AWS_ACCESS_KEY_ID": "id-never-shown",
           "AWS_SECRET_ACCESS_KEY": "k3y-never-shown"}  # pragma: allowlist secret


class Node:
    """The emulator with app-demo and utilities created, running, one backup each; a client over it."""

    def __init__(self, tmp_path: Path):
        self.app = Emulator(tmp_path / "pve", MemHosts(), node="homelab", backup_dir=tmp_path / "backup")
        self.client = in_process_client(self.app)
        for host in (APP, UTILITIES):
            self.client.wait_task("homelab", self.client._call("create", lambda api, h=host: api.nodes("homelab").lxc.post(
                vmid=h.vmid, ostemplate=TEMPLATE, hostname=h.hostname, start=1,
                net0=f"name=eth0,bridge=labbr0,ip={h.ip}/24,gw=198.18.0.1")))
            self.files(host.vmid)["/srv/marker"] = "first"
            self.client.wait_task("homelab", self.client._call("vzdump", lambda api, h=host: api.nodes("homelab").vzdump.post(
                vmid=h.vmid, storage="backup", compress="zstd")))

    def files(self, vmid: int) -> dict:
        return self.app.driver.cts[vmid]["files"]

    def backups(self, vmid: int) -> list[str]:
        rows = self.client._call("list", lambda api: api.nodes("homelab").storage("backup").content.get(
            content="backup", vmid=vmid))
        return [row["volid"] for row in rows]

    def status(self, vmid: int) -> str:
        return self.client.container_status("homelab", vmid)["status"]


@pytest.fixture
def node(tmp_path, monkeypatch) -> Node:
    monkeypatch.setenv("HOMELAB_SUITE_STATE_DIR", str(tmp_path / "state"))  # the deploy lock's directory
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return Node(tmp_path)


class Recorder:
    """The converge and health steps, faked: what they were asked."""

    def __init__(self):
        self.calls: list[str] = []

    def converge(self, inventory, host) -> str:
        self.calls.append(f"converge {host.hostname}")
        return "ok=12 changed=0"

    def health(self, inventory, host) -> str:
        self.calls.append(f"health {host.hostname}")
        return "9 checks passed, 1 services answered"


def restore(node: Node, name: str, source: str = "newest", inventory=LAB) -> tuple[int, list[str], Recorder]:
    said: list[str] = []
    steps = Recorder()
    rc = restore_host(inventory, node.client, name, source, say=said.append, converge_host=steps.converge,
                      check_host=steps.health)
    return rc, said, steps


def test_a_host_comes_back_from_its_newest_backup_then_is_converged_and_checked(node):
    """The file written after the backup is gone, the one before is back; a line per step; the scratch CT gone."""
    node.files(APP.vmid)["/srv/marker"] = "second"
    node.files(UTILITIES.vmid)["/srv/marker"] = "second"
    rc, said, steps = restore(node, "app-demo")
    assert rc == 0, said
    assert [line.split()[0] for line in said[:-1]] == ["choose", "verify", "stop", "restore", "converge", "health"]
    assert all(line.endswith(" s)") for line in said[:-1]), said
    assert said[-1].startswith(f"app-demo restored from {node.backups(APP.vmid)[0]} and healthy: recovery time ")
    assert node.files(APP.vmid)["/srv/marker"] == "first"
    assert node.files(UTILITIES.vmid)["/srv/marker"] == "second", "another host was touched"
    assert node.status(APP.vmid) == "running"
    assert set(node.client.containers("homelab")) == {APP.vmid, UTILITIES.vmid}, "the trial restore's CT is left"
    assert steps.calls == ["converge app-demo", "health app-demo"]


def test_a_lost_container_comes_back_from_its_backup(node):
    """The CT gone (a lost disk): no stop, a restore without force, the CT running with the backed-up files."""
    node.client.stop("homelab", APP.vmid)
    node.client.wait_task("homelab", node.client._call("destroy", lambda api: api.nodes("homelab").lxc(APP.vmid).delete(
        purge=1)))
    assert APP.vmid not in node.client.containers("homelab")
    rc, said, _ = restore(node, "app-demo")
    assert rc == 0, said
    assert [line.split()[0] for line in said[:-1]] == ["choose", "verify", "restore", "converge", "health"]
    assert node.status(APP.vmid) == "running" and node.files(APP.vmid)["/srv/marker"] == "first"


def test_a_restore_names_the_backup_to_restore(node):
    """FROM=<volid> restores that archive (an older one than the newest)."""
    older = node.backups(APP.vmid)[0]
    node.files(APP.vmid)["/srv/marker"] = "second"
    time.sleep(1.1)  # vzdump names archives to the second: a second one in the same second replaces the first
    node.client.wait_task("homelab", node.client._call("vzdump", lambda api: api.nodes("homelab").vzdump.post(
        vmid=APP.vmid, storage="backup", compress="zstd", **{"prune-backups": "keep-all=1"})))
    rc, said, _ = restore(node, "app-demo", older)
    assert rc == 0 and f"from {older}" in said[0], said
    assert node.files(APP.vmid)["/srv/marker"] == "first"


def test_a_corrupted_archive_is_found_before_the_running_ct_is_replaced(node):
    """A damaged archive: one line saying so; the CT still running with its files; no scratch CT; no converge."""
    volid = node.backups(APP.vmid)[0]
    archive = node.app.storages["backup"].dump_dir / volid.split("/", 1)[1]
    data = bytearray(archive.read_bytes())
    data[len(data) // 2:] = b"\0" * (len(data) - len(data) // 2)
    archive.write_bytes(bytes(data))
    node.files(APP.vmid)["/srv/marker"] = "second"
    rc, said, steps = restore(node, "app-demo")
    assert rc == 1
    assert said[-1].startswith("restore of app-demo FAILED after ") and f"the archive {volid} is damaged" in said[-1]
    assert "app-demo (250) was not touched" in said[-1] and "\n" not in said[-1]
    assert node.status(APP.vmid) == "running" and node.files(APP.vmid)["/srv/marker"] == "second"
    assert set(node.client.containers("homelab")) == {APP.vmid, UTILITIES.vmid}
    assert steps.calls == []


def refused(node: Node, name: str, source: str = "newest", inventory=LAB) -> str:
    """A restore refused before any change: its one line (no task ran, nothing written)."""
    tasks_before = len(node.app.tasks._tasks)
    calls_before = len(node.app.driver.calls)
    rc, said, steps = restore(node, name, source, inventory)
    assert rc == 2 and len(said) == 1 and steps.calls == [], said
    assert len(node.app.driver.calls) == calls_before, "the node's hosts were touched"
    assert len(node.app.tasks._tasks) == tasks_before, "a task ran on the node"
    assert not any(secret in said[0] for secret in SECRETS.values())
    return said[0]


def test_an_unknown_host_is_refused_naming_the_hosts(node):
    """HOST=nosuch: one line naming the inventory and the hosts it has."""
    assert refused(node, "nosuch") == ("HOST=nosuch: no such host in inventories/lab.yml: hosts (expected one of: "
                                       "proxy, utilities, ci-runner, monitoring, app-demo)")


def test_the_runner_the_suite_runs_on_is_never_restored(node):
    """ci-runner is lab.yml's runner: refused with why and where the docs say how."""
    line = refused(node, "ci-runner")
    assert line.startswith("HOST=ci-runner: refused: ci-runner is the runner the suite runs on "
                           "(inventories/lab.yml: runner.host), and a restore stops it with this run")
    assert "docs/how-to/restore.md#the-runner" in line


def test_a_backup_that_does_not_exist_or_is_another_hosts_is_refused(node):
    """FROM= an unknown volid, another host's archive, or not a volid at all: one line each."""
    own = node.backups(APP.vmid)[0]
    missing = own.replace("vzdump-lxc-250-", "vzdump-lxc-250-1999_")
    assert refused(node, "app-demo", missing) == (f"FROM={missing}: no such backup on storage 'backup' of node "
                                                  f"homelab (expected one of app-demo's: {own})")
    other = node.backups(UTILITIES.vmid)[0]
    assert refused(node, "app-demo", other) == (f"FROM={other}: a backup of CT 201 (utilities), not of app-demo "
                                                "(250) (expected one of app-demo's backups)")
    assert refused(node, "app-demo", "yesterday").startswith("FROM=yesterday: not a backup volume (expected newest "
                                                             "or <storage>:backup/vzdump-lxc-250-")
    assert refused(node, "app-demo", "nas:backup/vzdump-lxc-250-2026_01_01-00_00_00.tar.zst").startswith(
        "backup storage 'nas' does not exist on node homelab; storages: ")


def _variant(change) -> object:
    document = copy.deepcopy(yaml.safe_load(LAB_PATH.read_text()))
    change(document)
    return validate_document("inventories/lab.yml", document)


def test_a_backup_storage_the_node_lacks_is_refused(node):
    """backup.storage: nas on a node without it: PVE's storages named, and where to fix it."""
    inventory = _variant(lambda d: d["backup"].update(storage="nas"))
    line = refused(node, "app-demo", inventory=inventory)
    assert line.startswith("backup storage 'nas' does not exist on node homelab; storages: ")
    assert line.endswith("(inventories/lab.yml: backup.storage)")


def test_a_missing_restic_password_is_refused_without_a_secret(node, monkeypatch):
    """RESTIC_PASSWORD unset: the variable and the inventory key named, no value shown."""
    monkeypatch.delenv("RESTIC_PASSWORD")
    assert refused(node, "app-demo") == ("RESTIC_PASSWORD is unset or empty (inventories/lab.yml: "
                                         "backup.offsite.password: expected the environment variable to hold "
                                         "the password)")


def test_a_restore_waits_for_no_deploy_it_refuses_while_one_runs(node):
    """The environment's deploy lock held (a deploy running): refused in one line naming the holder; taken and
    let go by a restore otherwise."""
    lock = RunLock(LAB.environment)
    lock.acquire("deploy-1234", "inventories/lab.yml")
    try:
        line = refused(node, "app-demo")
    finally:
        lock.release()
    assert line.startswith("restore of app-demo refused: another deploy of 'lab' is running: ")
    assert restore(node, "app-demo")[0] == 0
    assert not lock.path.exists(), "the restore kept the lock"


def test_a_host_without_a_backup_is_told_to_back_up_first(node):
    """No archive of the host on the storage: one line saying so and what to run."""
    node.app.driver.calls.clear()
    for volid in node.backups(APP.vmid):
        upid = node.client._call("delete", lambda api, v=volid: api.nodes("homelab").storage("backup").content(v).delete())
        if isinstance(upid, str):
            node.client.wait_task("homelab", upid)
    assert refused(node, "app-demo") == ("no backup of app-demo (250) on storage 'backup' of node homelab "
                                         "(inventories/lab.yml: backup.storage): run make backup first")


def test_the_command_refuses_bad_input_in_one_line(tmp_path, capsys, monkeypatch):
    """`python -m plugins.backup restore`: an unknown HOST= and a retention of 0 are one line on stderr, exit 2,
    before the node is asked anything (no PVE token in the environment: it would fail later if asked)."""
    monkeypatch.delenv("PVE_TOKEN_SECRET", raising=False)
    assert cli.main(["restore", "--inventory", str(LAB_PATH), "--host", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("HOST=nosuch: no such host in ")
    document = yaml.safe_load(LAB_PATH.read_text())
    document["backup"]["retention"] = {"keep_last": 0}
    zero = tmp_path / "zero.yml"
    zero.write_text(yaml.safe_dump(document, sort_keys=False))
    assert cli.main(["restore", "--inventory", str(zero), "--host", "app-demo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "backup.retention" in err and "keeps nothing" in err, err


def test_the_converge_runs_the_deploys_playbook_on_the_host_alone(monkeypatch):
    """site.yml with limit=<host>, the deploy's key and known_hosts; a failed task is one line naming it."""
    from plugins.backup import restore as restore_module
    from plugins.tools.playbooks import SITE_PLAYBOOK, TaskFailure

    asked: dict = {}

    class Result:
        ok = False

        def failures(self):
            return [TaskFailure(host="app-demo", task="app_demo : Build the frontend", message="npm ci failed")]

        def summary(self):
            return "failed=1"

    def fake_run(playbook, inventory, **options):
        asked.update(playbook=playbook, **options)
        return Result()

    monkeypatch.setattr(restore_module, "run_playbook", fake_run)
    with pytest.raises(restore_module.RestoreFailed) as failed:
        restore_module.converge(LAB, APP)
    assert asked["playbook"] == SITE_PLAYBOOK and asked["limit"] == "app-demo"
    assert asked["private_key"] == LAB.runner.deploy_key
    assert str(failed.value) == ("converging app-demo with ansible failed: task 'app_demo : Build the frontend': "
                                 "npm ci failed")
