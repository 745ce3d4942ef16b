"""make backup's parts against fakes: PVE's backup calls as the API documents them, the one-line refusals before
anything is written, the S3 store down, the restic secrets only in restic's environment, what each host dumps."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from proxmoxer.core import ResourceException

from plugins.backup import run
from plugins.backup.credentials import BackupProblem, restic_environment
from plugins.backup.job import backup_job
from plugins.inventory import load_inventory, validate_document
from plugins.proxmox import backups as node_backups
from plugins.proxmox.client import ProxmoxClient
from plugins.proxmox.tasks import ProxmoxError, TaskFailed
from plugins.stack.backup_dumps import dumps

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAB = load_inventory(ROOT / "inventories" / "lab.yml")
UPID = "UPID:homelab:00001234:00005678:65000000:vzdump:250:root@pam!lab:"
SECRETS = {"RESTIC_PASSWORD": "p4ss-w0rd-never-shown", "AWS_ACCESS_KEY_ID": "id-never-shown",
           "AWS_SECRET_ACCESS_KEY": "k3y-never-shown"}


class FakeApi:
    """proxmoxer's shape (attribute and call chaining, then get/post/put/delete) over a table of answers."""

    def __init__(self, answers: dict, calls: list, path: tuple = ()):
        self._answers, self._calls, self._path = answers, calls, path

    def __getattr__(self, name: str) -> FakeApi:
        return FakeApi(self._answers, self._calls, (*self._path, name))

    def __call__(self, *parts) -> FakeApi:
        return FakeApi(self._answers, self._calls, (*self._path, *(str(p) for p in parts)))

    def _answer(self, method: str, params: dict):
        path = "/".join(self._path)
        self._calls.append((method, path, params))
        if "/tasks/" in path:
            return {"status": "stopped", "exitstatus": self._answers.get("exitstatus", "OK")} \
                if path.endswith("status") else [{"n": 1, "t": "INFO: backup finished"}]
        answer = self._answers.get((method, path))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get(self, **params):
        return self._answer("GET", params)

    def post(self, **params):
        return self._answer("POST", params)

    def put(self, **params):
        return self._answer("PUT", params)


def client(answers: dict, calls: list) -> ProxmoxClient:
    """A client over the fake API (no network)."""
    return ProxmoxClient(lambda: FakeApi(answers, calls), url="https://127.0.0.1:8006", token_id="root@pam!lab",
                         secret_env="PVE_TOKEN_SECRET", poll_interval=0, task_timeout=5)


# As the lab's node: `local` (which PVE lets hold backups too) and `backup`, apart from the CTs' disks.
STORAGES = {("GET", "nodes/homelab/storage"): [{"storage": "local", "content": "vztmpl,backup,rootdir",
                                                "enabled": 1, "active": 1},
                                               {"storage": "backup", "content": "backup", "enabled": 1, "active": 1}]}


def test_the_backup_storage_must_exist_and_hold_backups():
    """A storage the node lacks, or one without `backup` content, is one line naming what exists and where."""
    calls: list = []
    with pytest.raises(ProxmoxError) as caught:
        node_backups.backup_storage(client(STORAGES, calls), "homelab", "nas", where="inventories/lab.yml: "
                                    "backup.storage")
    assert str(caught.value) == ("backup storage 'nas' does not exist on node homelab; storages: backup, local "
                                 "(inventories/lab.yml: backup.storage)")
    no_backups = {("GET", "nodes/homelab/storage"): [{"storage": "local", "content": "vztmpl,rootdir"}]}
    with pytest.raises(ProxmoxError, match="does not hold backups .*expected backup in it"):
        node_backups.backup_storage(client(no_backups, calls), "homelab", "local")


def test_vzdump_asks_pve_for_the_policy_and_checks_the_task():
    """POST /nodes/{node}/vzdump with PVE's parameter names; a task that fails is a TaskFailed, not a success."""
    calls: list = []
    answers = {("POST", "nodes/homelab/vzdump"): UPID}
    node_backups.vzdump(client(answers, calls), "homelab", 250, storage="local", mode="snapshot",
                        prune_backups="keep-last=3")
    method, path, params = calls[0]
    assert (method, path) == ("POST", "nodes/homelab/vzdump")
    assert params == {"vmid": "250", "storage": "local", "mode": "snapshot", "compress": "zstd",
                      "prune-backups": "keep-last=3", "notes-template": "{{guestname}}"}
    with pytest.raises(TaskFailed):
        node_backups.vzdump(client({**answers, "exitstatus": "unable to create temporary directory"}, []),
                            "homelab", 250, storage="local", mode="snapshot", prune_backups="keep-last=3")


def test_the_backup_job_is_created_then_left_alone_then_updated():
    """/cluster/backup: the suite's job (id homelab-suite) is created, unchanged when it matches, PUT when not."""
    job = backup_job(LAB)
    assert job.vmids == (200, 201, 210, 240, 250) and job.schedule == "mon..sun 02:30"
    calls: list = []
    assert node_backups.apply_job(client({("GET", "cluster/backup"): []}, calls), job) == "created"
    assert calls[-1][:2] == ("POST", "cluster/backup") and calls[-1][2]["id"] == node_backups.JOB_ID
    current = {"id": node_backups.JOB_ID, **job.parameters()}
    assert node_backups.apply_job(client({("GET", "cluster/backup"): [current]}, calls), job) == "unchanged"
    stale = {**current, "schedule": "sun 01:00"}
    assert node_backups.apply_job(client({("GET", "cluster/backup"): [stale]}, calls), job) == "updated"
    assert calls[-1][:2] == ("PUT", f"cluster/backup/{node_backups.JOB_ID}")


def test_restic_gets_its_secrets_by_the_names_the_policy_gives():
    """The values come from the variables named; a missing one is one line naming it and its key, no value."""
    assert restic_environment(LAB, SECRETS) == {**SECRETS, "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.raises(BackupProblem) as caught:
        restic_environment(LAB, {k: v for k, v in SECRETS.items() if k != "RESTIC_PASSWORD"})
    assert str(caught.value) == ("RESTIC_PASSWORD is unset or empty (inventories/lab.yml: backup.offsite.password: "
                                 "expected the environment variable to hold the password)")


@pytest.fixture
def in_state_dir(tmp_path, monkeypatch) -> Path:
    """The suite's state directory in tmp_path, and the restic secrets in the environment."""
    monkeypatch.setenv("HOMELAB_SUITE_STATE_DIR", str(tmp_path))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def test_a_missing_secret_or_storage_refuses_before_anything_is_written(in_state_dir, monkeypatch):
    """No restic password: one line, no API call; a storage the node lacks: one line, no vzdump."""
    said: list[str] = []
    calls: list = []
    monkeypatch.delenv("RESTIC_PASSWORD")
    assert run.run_backup(LAB, client(STORAGES, calls), say=said.append) == 2
    assert said == [("RESTIC_PASSWORD is unset or empty (inventories/lab.yml: backup.offsite.password: expected the "
                    "environment variable to hold the password)")] and calls == []
    monkeypatch.setenv("RESTIC_PASSWORD", SECRETS["RESTIC_PASSWORD"])
    document = yaml.safe_load((ROOT / "inventories" / "lab.yml").read_text())
    document["backup"]["storage"] = "nas"
    said.clear()
    assert run.run_backup(validate_document("inventories/lab.yml", document), client(STORAGES, calls),
                          say=said.append) == 2
    assert said == [("backup storage 'nas' does not exist on node homelab; storages: backup, local (inventories/lab.yml: "
                    "backup.storage)")]
    assert all(method == "GET" for method, *_ in calls)


def test_an_unknown_host_is_one_line_naming_the_hosts(in_state_dir):
    """`--hosts nope`: one line naming the inventory's hosts, nothing done."""
    said: list[str] = []
    assert run.run_backup(LAB, client(STORAGES, []), hosts=["nope"], say=said.append) == 2
    assert said[0].startswith("no host 'nope' in inventories/lab.yml; hosts: proxy (200)")


def test_the_s3_store_down_keeps_the_local_backups_and_says_the_offsite_copy_failed(in_state_dir, monkeypatch):
    """vzdump and the dumps succeed, the store refuses connections: a line per host, the off-site failure said
    once with what is kept, exit 1, and no secret anywhere in what is said."""
    answers = {**STORAGES, ("POST", "nodes/homelab/vzdump"): UPID,
               ("GET", "nodes/homelab/storage/backup/content"): [{"volid": "backup:backup/x", "size": 2048,
                                                                  "ctime": 1}],
               ("GET", "storage/backup"): {"storage": "backup", "type": "dir", "path": str(in_state_dir)}}

    def dumped(pool, inventory, host, row):
        row.dumps = (1, 4096, 0.1)
        (run.staging_dir(inventory) / host.hostname).mkdir(parents=True)

    monkeypatch.setattr(run, "dump_host", dumped)
    document = copy.deepcopy(yaml.safe_load((ROOT / "inventories" / "lab.yml").read_text()))
    document["backup"]["offsite"]["endpoint"] = "http://127.0.0.1:9"  # discard: nothing listens there
    inventory = validate_document("inventories/lab.yml", document)
    said: list[str] = []
    assert run.run_backup(inventory, client(answers, []), hosts=["app-demo", "proxy"], say=said.append) == 1
    assert said[0].startswith("app-demo     ok     vzdump 2.0 KiB") and "dumps 1, 4.0 KiB" in said[0]
    assert said[1].startswith("proxy        ok     vzdump 2.0 KiB")
    assert said[2].startswith("off-site copy failed: the S3 store http://127.0.0.1:9 does not answer (")
    assert "the local backups are kept" in said[2]
    assert not any(value in line for value in SECRETS.values() for line in said)
    status = (run.staging_dir(inventory) / run.STATUS_FILE).read_text()
    assert '"app-demo"' in status


def test_an_api_without_backups_skips_vzdump_and_says_so(in_state_dir, monkeypatch):
    """A node API answering 501 for the storage index (an emulator without backups): vzdump is skipped in one
    line, the rest goes on."""
    answers = {("GET", "nodes/homelab/storage"): ResourceException(501, "Not Implemented",
                                                                    "Method 'GET /nodes/homelab/storage' not implemented")}
    monkeypatch.setattr(run, "copy_offsite", lambda repo, inventory, rows, client=None: "passed")
    said: list[str] = []
    assert run.run_backup(LAB, client(answers, []), hosts=["proxy"], say=said.append) == 0
    assert said[0].startswith("vzdump skipped: https://127.0.0.1:8006 does not serve PVE's backup API")
    assert said[1].startswith("proxy        ok     nothing backed up")


def test_each_host_dumps_what_its_services_hold():
    """Databases by their engine's own dump, Vaultwarden's SQLite and NetBox's media from their volumes; a host
    the policy leaves out dumps nothing."""
    kinds = {h.hostname: sorted((d["kind"], d["container"]) for d in dumps(LAB, h)) for h in LAB.hosts}
    assert kinds["utilities"] == [("files", "netbox"), ("mariadb", "snipeit-db"), ("postgres", "netbox-db"),
                                  ("sqlite", "vaultwarden")]
    assert kinds["monitoring"] == [("postgres", "zabbix-db")] and kinds["app-demo"] == [("postgres", "app-demo-postgres")]
    assert kinds["proxy"] == [] and kinds["ci-runner"] == []
    netbox_db = next(d for d in dumps(LAB, LAB.host("utilities")) if d["kind"] == "postgres")
    assert (netbox_db["user"], netbox_db["database"], netbox_db["file"]) == ("netbox", "netbox", "netbox-db.pgdump")
    document = yaml.safe_load((ROOT / "inventories" / "lab.yml").read_text())
    document["backup"]["exclude"] = ["utilities"]
    inventory = validate_document("inventories/lab.yml", document)
    assert dumps(inventory, inventory.host("utilities")) == []
    assert 201 not in backup_job(inventory).vmids


def test_a_job_read_back_with_its_retention_parsed_as_pve_gives_it_matches_the_policy():
    """GET /cluster/backup gives prune-backups parsed ({"keep-last": 3, …}): the same policy is no difference,
    and a changed count is one, named."""
    wanted = backup_job(LAB).parameters()
    parsed = dict(part.split("=") for part in wanted["prune-backups"].split(","))
    as_pve_gives_it = {**wanted, "prune-backups": {key: int(value) for key, value in parsed.items()}}
    assert node_backups.job_differences(wanted, as_pve_gives_it) == []
    calls = []
    current = {"id": node_backups.JOB_ID, **as_pve_gives_it}
    assert node_backups.apply_job(client({("GET", "cluster/backup"): [current]}, calls), backup_job(LAB)) == "unchanged"
    fewer = {**as_pve_gives_it, "prune-backups": {**as_pve_gives_it["prune-backups"], "keep-last": 1}}
    assert node_backups.job_differences(wanted, fewer) == ["prune-backups"]
