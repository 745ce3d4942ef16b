"""The emulator's backups (vzdump, backup storage, content, prune, restore, jobs) on the in-memory driver.

Expected texts are PVE's (pve-manager PVE/VZDump.pm and PVE/API2/Backup.pm, pve-storage PVE/Storage.pm and
Plugin.pm, pve-container src/PVE/API2/LXC.pm), written here, not taken from the emulator.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from pve_inprocess import EmulatorCalls
from pve_memdriver import MemHosts

from lab import config
from lab.faults import LabFaults
from lab.pve.app import Emulator
from lab.pve.auth import FULL_TOKEN_ID, load_tokens
from lab.pve.storage import Storage, prune_mark_backup_group

pytestmark = pytest.mark.unit
NODE = "/nodes/homelab"
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
NET = "name=eth0,bridge=labbr0,ip=198.18.0.50/24,gw=198.18.0.1"
ARCHIVE = re.compile(r"^vzdump-lxc-900-\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2}\.tar\.zst$")


class Node(EmulatorCalls):
    """The emulator, called with the full token; tasks waited for."""

    def __init__(self, tmp_path):
        super().__init__(Emulator(tmp_path / "pve", MemHosts(), node="homelab", verify_results=True,
                                  backup_dir=tmp_path / "backup"))

    def task(self, method, path, **params):
        task = self.app.tasks.wait(self.ok(method, path, **params), 20)
        return task.exitstatus, task.lines

    @property
    def files(self) -> dict:
        return self.app.driver.cts[900]["files"]

    def backups(self) -> list[dict]:
        return self.ok("GET", f"{NODE}/storage/backup/content", content="backup")


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path)
    status, _ = n.task("POST", f"{NODE}/lxc", vmid=900, ostemplate=TEMPLATE, hostname="app-demo", net0=NET, start=1)
    assert status == "OK"
    n.files["/srv/marker"] = "first"
    return n


def backup(node, **params) -> tuple[str, list[str]]:
    return node.task("POST", f"{NODE}/vzdump", **{"vmid": 900, "storage": "backup", "compress": "zstd", **params})


def test_the_backup_storage_is_a_dir_storage_apart_from_the_cts_disks(node, tmp_path):
    """GET /storage: `backup` (content backup, path under the lab) beside the untouched `local`."""
    listed = {s["storage"]: s for s in node.ok("GET", "/storage")}
    assert listed["backup"] == {"storage": "backup", "type": "dir", "content": "backup", "shared": 0,
                                "path": str(tmp_path / "backup")}
    assert listed["local"]["content"] == "backup,iso,rootdir,vztmpl"
    on_node = node.ok("GET", f"{NODE}/storage", content="backup")
    assert {s["storage"] for s in on_node} == {"backup", "local"}
    assert all(s["active"] == 1 and s["total"] > 0 for s in on_node)


def test_a_snapshot_backup_logs_pves_lines_and_writes_a_real_archive(node):
    """vzdump in snapshot mode: PVE's log, the .tar.zst with pct.conf and the CT's files, its .log and .notes."""
    status, lines = backup(node, mode="snapshot", **{"notes-template": "{{guestname}} on {{node}} ({{vmid}})"})
    assert status == "OK", lines
    assert lines[0] == "INFO: starting new backup job: vzdump 900 --compress zstd --mode snapshot --node homelab " \
                       "--notes-template '{{guestname}} on {{node}} ({{vmid}})' --storage backup"
    for expected in ("INFO: Starting Backup of VM 900 (lxc)", "INFO: status = running", "INFO: backup mode: snapshot",
                     "INFO: create storage snapshot 'vzdump'", "INFO: cleanup temporary 'vzdump' snapshot",
                     "INFO: adding notes to backup", "INFO: Backup job finished successfully", "TASK OK"):
        assert expected in lines
    assert any(re.fullmatch(r"INFO: creating vzdump archive '.*/dump/vzdump-lxc-900-.*\.tar\.zst'", x) for x in lines)
    assert any(re.fullmatch(r"INFO: Finished Backup of VM 900 \(\d\d:\d\d:\d\d\)", x) for x in lines)
    [entry] = node.backups()
    name = entry["volid"].removeprefix("backup:backup/")
    assert ARCHIVE.match(name) and entry["format"] == "tar.zst" and entry["subtype"] == "lxc"
    assert entry["vmid"] == 900 and entry["notes"] == "app-demo on homelab (900)" and entry["size"] > 0
    dump = node.app.storages["backup"].dump_dir
    listing = subprocess.run(["tar", "-tf", str(dump / name), "--zstd"], capture_output=True, text=True, check=True)
    assert {"./etc/vzdump/pct.conf", "./srv/marker"} <= set(listing.stdout.split())
    conf = subprocess.run(["tar", "-xOf", str(dump / name), "--zstd", "./etc/vzdump/pct.conf"],
                          capture_output=True, text=True, check=True).stdout
    assert "hostname: app-demo" in conf and "lock" not in conf
    assert (dump / name.replace(".tar.zst", ".log")).read_text().count("INFO: Starting Backup of VM 900 (lxc)") == 1
    assert [s["name"] for s in node.ok("GET", f"{NODE}/lxc/900/snapshot")] == ["current"]
    assert "lock" not in node.ok("GET", f"{NODE}/lxc/900/config")
    assert node.ok("GET", f"{NODE}/lxc/900/status/current")["status"] == "running"


@pytest.mark.parametrize(("compress", "suffix"), [("gzip", ".tar.gz"), ("0", ".tar")])
def test_compress_names_the_archive(node, compress, suffix):
    """compress gzip gives .tar.gz, 0 a plain .tar."""
    assert backup(node, compress=compress)[0] == "OK"
    assert node.backups()[0]["volid"].endswith(suffix)


def test_stop_mode_stops_the_ct_and_starts_it_again(node):
    """mode stop on a running CT: stopped for the copy, started after (PVE's lines)."""
    status, lines = backup(node, mode="stop")
    assert status == "OK"
    assert "INFO: stopping virtual guest" in lines and "INFO: restarting vm" in lines
    assert node.ok("GET", f"{NODE}/lxc/900/status/current")["status"] == "running"


def test_an_unknown_storage_fails_the_task_with_pves_words(node):
    """storage 'nosuch': the job fails before any CT, in VZDump->new's words."""
    status, _ = backup(node, storage="nosuch")
    assert status == ("could not activate storage 'nosuch': storage 'nosuch' does not exist "
                      "could not get storage information for 'nosuch': storage 'nosuch' does not exist")


def test_a_storage_without_backup_content_is_refused(node, tmp_path):
    """A storage without `backup` in its content: wrong content type."""
    node.app.storages["tmpl"] = Storage("tmpl", tmp_path / "tmpl", ("vztmpl",))
    status, _ = backup(node, storage="tmpl")
    assert status == "could not get storage information for 'tmpl': can't use storage 'tmpl' for backups - wrong content type"


def test_a_locked_ct_is_not_backed_up(node):
    """A CT locked by another operation: the CT's backup fails, the job ends in `job errors`."""
    rec = node.app.store.load(900)
    rec["config"]["lock"] = "snapshot"
    node.app.store.save(900, rec)
    status, lines = backup(node)
    assert status == "job errors"
    assert "ERROR: Backup of VM 900 failed - CT is locked (snapshot)" in lines
    assert "INFO: Backup job finished with errors" in lines
    assert node.backups() == [] and node.app.store.load(900)["config"]["lock"] == "snapshot"


def test_an_unknown_vmid_fails_its_backup(node):
    """vmid 999 does not exist: unable to find VM '999'."""
    status, lines = backup(node, vmid=999)
    assert status == "job errors" and "ERROR: Backup of VM 999 failed - unable to find VM '999'" in lines


@pytest.mark.parametrize(("params", "errors"), [
    ({"all": 1}, {"all": "option conflicts with option 'vmid'"}),
    ({"notes-template": "{{nope}}"}, {"notes-template": "found unknown: variable 'nope' at char 2"}),
])
def test_vzdump_parameter_errors(node, params, errors):
    """verify_vzdump_parameters' 400s, before any task."""
    reply = node("POST", f"{NODE}/vzdump", vmid=900, storage="backup", **params)
    assert (reply.status, reply.body["errors"]) == (400, errors)


def test_vzdump_without_vmid_or_all_names_vmid(node):
    """Neither vmid nor all: vmid is missing."""
    reply = node("POST", f"{NODE}/vzdump", storage="backup")
    assert (reply.status, reply.body["errors"]) == (400, {"vmid": "property is missing"})


def test_protected_backup_is_refused_deletion_and_pruning(node):
    """A protected backup: DELETE ends in PVE's error, prune marks it `protected` and keeps it."""
    assert backup(node, protected=1)[0] == "OK"
    [entry] = node.backups()
    assert entry["protected"] == 1
    volid = entry["volid"]
    volname = volid.split(":", 1)[1]
    status, _ = node.task("DELETE", f"{NODE}/storage/backup/content/{volid}")
    assert status == f"cannot remove protected volume '{volname}' on 'backup'"
    reply = node("DELETE", f"{NODE}/storage/backup/content/{volid}", delay=5)
    assert (reply.status, reply.reason) == (500, f"cannot remove protected volume '{volname}' on 'backup'")
    marks = node.ok("GET", f"{NODE}/storage/backup/prunebackups", **{"prune-backups": "keep-last=1"})
    assert [m["mark"] for m in marks] == ["protected"]
    node.ok("PUT", f"{NODE}/storage/backup/content/{volid}", protected=0, notes="unprotected now")
    assert node.backups()[0].get("protected") is None and node.backups()[0]["notes"] == "unprotected now"
    assert node.task("DELETE", f"{NODE}/storage/backup/content/{volid}") == ("OK", [f"Removed volume '{volid}'", "TASK OK"])
    assert node.backups() == [] and list(node.app.storages["backup"].dump_dir.iterdir()) == []


def _three_backups(node) -> list[str]:
    for _ in range(3):
        assert backup(node)[0] == "OK"
        time.sleep(1.05)  # archive names have one-second resolution
    return [b["volid"] for b in sorted(node.backups(), key=lambda b: b["ctime"])]


def test_prune_dry_run_then_prune(node):
    """keep-last=2 of three: the oldest marked remove; DELETE prunebackups removes it alone."""
    oldest, *newer = _three_backups(node)
    marks = {m["volid"]: m["mark"] for m in node.ok("GET", f"{NODE}/storage/backup/prunebackups",
                                                       **{"prune-backups": "keep-last=2"}, vmid=900)}
    assert marks == {oldest: "remove", **dict.fromkeys(newer, "keep")}
    status, lines = node.task("DELETE", f"{NODE}/storage/backup/prunebackups", **{"prune-backups": "keep-last=2"})
    assert status == "OK" and f"removing backup '{oldest}'" in lines
    assert sorted(b["volid"] for b in node.backups()) == sorted(newer)


def test_vzdump_prunes_with_its_retention(node):
    """vzdump with prune-backups keep-last=1: the older backup goes, logged as PVE does."""
    first = _three_backups(node)[-1]
    status, lines = backup(node, **{"prune-backups": "keep-last=1"})
    assert status == "OK"
    assert "INFO: prune older backups with retention: keep-last=1" in lines
    assert f"INFO: removing backup '{first}'" in lines and "INFO: pruned 3 backup(s) not covered by keep-retention policy" in lines
    assert len(node.backups()) == 1


def test_prune_without_retention_names_the_storage(node):
    """No prune-backups given and none on the storage: PVE's error."""
    reply = node("GET", f"{NODE}/storage/backup/prunebackups")
    assert (reply.status, reply.reason) == (500, "no prune-backups options configured for storage 'backup'")


def test_prune_mark_follows_pves_algorithm():
    """keep-daily=2,keep-weekly=1 over backups of four days: newest per day kept, then one older week."""
    def at(text):
        return int(datetime.strptime(text, "%Y-%m-%d %H:%M").timestamp())
    group = [{"ctime": at(t)} for t in ("2026-12-06 10:00", "2026-12-06 08:00", "2026-12-05 10:00",
                                        "2026-12-04 10:00", "2026-11-25 10:00")]
    group[2]["mark"] = "protected"
    prune_mark_backup_group(group, {"keep-daily": "2", "keep-weekly": "1"})
    assert [e["mark"] for e in group] == ["keep", "remove", "protected", "keep", "keep"]


def test_restore_over_the_ct_brings_its_files_and_config_back(node):
    """restore=1, force=1 on the stopped CT: the backed-up file is back, the config too, snapshots gone."""
    assert backup(node)[0] == "OK"
    volid = node.backups()[0]["volid"]
    node.files["/srv/marker"] = "second"
    node.ok("PUT", f"{NODE}/lxc/900/config", memory=1024)
    reply = node("POST", f"{NODE}/lxc", vmid=900, ostemplate=volid, restore=1, force=1)
    assert (reply.status, reply.reason) == (500, "can't overwrite running container")
    assert node.task("POST", f"{NODE}/lxc/900/status/stop")[0] == "OK"
    reply = node("POST", f"{NODE}/lxc", vmid=900, ostemplate=volid, restore=1)
    assert (reply.status, reply.reason) == (500, "CT 900 already exists on node 'homelab'")
    status, lines = node.task("POST", f"{NODE}/lxc", vmid=900, ostemplate=volid, restore=1, force=1, start=1)
    assert status == "OK", lines
    assert lines[0] == f"recovering backed-up configuration from '{volid}'"
    assert f"restoring '{volid}' now.." in lines and "merging backed-up and given configuration.." in lines
    assert node.files["/srv/marker"] == "first"
    config = node.ok("GET", f"{NODE}/lxc/900/config")
    assert config["memory"] == 512 and config["hostname"] == "app-demo" and "lock" not in config
    assert node.ok("GET", f"{NODE}/lxc/900/status/current")["status"] == "running"


def test_a_corrupted_archive_fails_before_the_ct_is_touched(node):
    """A damaged archive: one line naming the failed extraction; the old CT's files, config and lock as they were."""
    assert backup(node)[0] == "OK"
    volid = node.backups()[0]["volid"]
    archive = node.app.storages["backup"].dump_dir / volid.split("/", 1)[1]
    data = bytearray(archive.read_bytes())
    data[len(data) // 2:] = b"\0" * (len(data) - len(data) // 2)
    archive.write_bytes(bytes(data))
    node.task("POST", f"{NODE}/lxc/900/status/stop")
    node.files["/srv/marker"] = "second"
    before = node.ok("GET", f"{NODE}/lxc/900/config")
    status, _ = node.task("POST", f"{NODE}/lxc", vmid=900, ostemplate=volid, restore=1, force=1)
    assert re.fullmatch(r"unable to restore CT 900 - command 'tar xpf .*' failed: exit code 2", status), status
    assert "\n" not in status and node.files["/srv/marker"] == "second"
    assert node.ok("GET", f"{NODE}/lxc/900/config") == before


def test_restore_to_a_new_ct_with_unique_gets_a_new_mac(node):
    """restore onto a free vmid with unique=1: the CT exists with the archive's files and a new hwaddr."""
    assert backup(node)[0] == "OK"
    volid = node.backups()[0]["volid"]
    old_net = node.ok("GET", f"{NODE}/lxc/900/config")["net0"]
    net = "name=eth0,bridge=labbr0,ip=198.18.0.60/24,gw=198.18.0.1"
    status, _ = node.task("POST", f"{NODE}/lxc", vmid=910, ostemplate=volid, restore=1, unique=1, net0=net)
    assert status == "OK"
    assert node.app.driver.cts[910]["files"]["/srv/marker"] == "first"
    new_net = node.ok("GET", f"{NODE}/lxc/910/config")["net0"]
    assert "ip=198.18.0.60/24" in new_net and re.search("hwaddr=([^,]+)", new_net)[1] != re.search("hwaddr=([^,]+)", old_net)[1]


def test_restore_refuses_a_protected_ct_and_an_unknown_volume(node):
    """protection: 1 → refused; a volume on an unknown storage → PVE's storage error."""
    assert backup(node)[0] == "OK"
    volid = node.backups()[0]["volid"]
    node.task("POST", f"{NODE}/lxc/900/status/stop")
    node.ok("PUT", f"{NODE}/lxc/900/config", protection=1)
    reply = node("POST", f"{NODE}/lxc", vmid=900, ostemplate=volid, restore=1, force=1)
    assert (reply.status, reply.reason) == (500, "unable to restore CT 900 - protection mode enabled")
    reply = node("POST", f"{NODE}/lxc", vmid=920, ostemplate="nosuch:backup/x.tar.zst", restore=1)
    assert (reply.status, reply.reason) == (500, "storage 'nosuch' does not exist")


def test_backup_jobs_are_created_listed_changed_and_deleted(node):
    """/cluster/backup: a job with PVE's fields (prune-backups returned parsed), then not-backed-up follows it."""
    node.ok("POST", f"{NODE}/lxc", vmid=901, ostemplate=TEMPLATE, net0=NET.replace(".50/", ".51/"))
    time.sleep(0.2)
    assert [g["vmid"] for g in node.ok("GET", "/cluster/backup-info/not-backed-up")] == [900, 901]
    node.ok("POST", "/cluster/backup", id="nightly", schedule="02:30", vmid=900, storage="backup", mode="snapshot",
            **{"prune-backups": "keep-daily=7,keep-weekly=4"})
    assert node.ok("GET", "/cluster/backup/nightly") == {
        "id": "nightly", "type": "vzdump", "enabled": 1, "schedule": "02:30", "vmid": "900", "storage": "backup",
        "mode": "snapshot", "prune-backups": {"keep-daily": 7, "keep-weekly": 4}}
    assert node.ok("GET", "/cluster/backup-info/not-backed-up") == [{"vmid": 901, "type": "lxc", "name": "CT901"}]
    reply = node("POST", "/cluster/backup", id="nightly", schedule="daily", all=1)
    assert (reply.status, reply.reason) == (500, "Job 'nightly' already exists")
    node.ok("PUT", "/cluster/backup/nightly", all=1, enabled=0)
    job = node.ok("GET", "/cluster/backup")[0]
    assert job["all"] == 1 and job["enabled"] == 0 and "vmid" not in job
    assert node.ok("GET", "/cluster/backup-info/not-backed-up") == []
    node.ok("DELETE", "/cluster/backup/nightly")
    reply = node("GET", "/cluster/backup/nightly")
    assert (reply.status, reply.body["errors"]) == (400, {"id": "No such job 'nightly'"})


def test_a_purged_ct_leaves_the_backup_jobs_a_plain_destroy_does_not(node):
    """pve-container's destroy_vm with purge: remove_vmid_from_backup_jobs (a job left without guests is deleted,
    an `exclude` list loses the VMID); without purge the jobs keep it."""
    for vmid, ip in ((901, ".51/"), (902, ".52/")):
        node.task("POST", f"{NODE}/lxc", vmid=vmid, ostemplate=TEMPLATE, net0=NET.replace(".50/", ip))
    node.ok("POST", "/cluster/backup", id="two", schedule="daily", vmid="900,901")
    node.ok("POST", "/cluster/backup", id="alone", schedule="daily", vmid=901)
    node.ok("POST", "/cluster/backup", id="every", schedule="daily", all=1, exclude="901")
    node.ok("POST", "/cluster/backup", id="plain", schedule="daily", vmid=902)
    assert node.task("DELETE", f"{NODE}/lxc/902")[0] == "OK"
    assert node.ok("GET", "/cluster/backup/plain")["vmid"] == "902"
    status, lines = node.task("DELETE", f"{NODE}/lxc/901", purge=1)
    assert status == "OK" and "purging CT 901 from related configurations.." in lines
    jobs = {job["id"]: job for job in node.ok("GET", "/cluster/backup")}
    assert set(jobs) == {"two", "every", "plain"}
    assert jobs["two"]["vmid"] == "900" and "exclude" not in jobs["every"]


def test_a_job_needs_a_schedule(node):
    """Neither schedule nor starttime: PVE's 400; starttime+dow become a schedule."""
    reply = node("POST", "/cluster/backup", vmid=900)
    assert (reply.status, reply.body["errors"]) == (400, {"schedule": "neither 'starttime' nor 'schedule' were set"})
    node.ok("POST", "/cluster/backup", id="old", starttime="03:00", dow="sat,sun", vmid=900)
    assert node.ok("GET", "/cluster/backup/old")["schedule"] == "sat,sun 03:00"


@pytest.mark.skipif(os.geteuid() != 0, reason="the storage-full fault mounts a tmpfs (root)")
def test_a_full_backup_storage_fails_the_backup_as_enospc_and_keeps_the_old_archives(tmp_path):
    """LabFaults.backup_storage_full: vzdump's write fails with ENOSPC, PVE's lines; undone, the old archive is there."""
    paths = config.LabPaths(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    node = Node(tmp_path)
    node.app = Emulator(paths.pve_dir, MemHosts(), node="homelab", backup_dir=paths.backup_dir)
    node.auth = f"PVEAPIToken={FULL_TOKEN_ID}={load_tokens(node.app.state_dir)[FULL_TOKEN_ID]}"
    assert node.task("POST", f"{NODE}/lxc", vmid=900, ostemplate=TEMPLATE, net0=NET)[0] == "OK"
    node.files["/big"] = "x" * 200_000
    assert backup(node)[0] == "OK"
    [kept] = node.backups()
    with LabFaults(paths) as faults:
        faults.backup_storage_full()
        status, lines = backup(node)
    assert status == "job errors"
    assert any(re.fullmatch(r"ERROR: Backup of VM 900 failed - .*No space left on device", x) for x in lines), lines
    assert node.backups() == [kept] and str(paths.backup_dir / "dump") not in Path("/proc/mounts").read_text()


def test_the_archive_holds_the_cts_firewall_and_a_restore_puts_it_back(node):
    """./etc/vzdump/pct.fw is the CT's <vmid>.fw as pve-firewall writes it (VZDump/LXC.pm copies the file); a restore
    over the CT brings the backed-up rules, options and IP sets back (LXC/Create.pm restore_configuration)."""
    fw = f"{NODE}/lxc/900/firewall"
    node.ok("PUT", f"{fw}/options", enable=1, policy_in="DROP")
    node.ok("POST", f"{fw}/ipset", name="admins", comment="who may ssh")
    node.ok("POST", f"{fw}/ipset/admins", cidr="198.18.0.1")
    node.ok("POST", f"{fw}/ipset/admins", cidr="198.18.0.9", nomatch=1)
    node.ok("POST", f"{fw}/rules", type="in", action="ACCEPT", source="+admins", proto="tcp", dport="22",
            enable=1, comment="ssh from admins")
    node.ok("POST", f"{fw}/rules", type="in", action="DROP", proto="tcp", dport="8080", enable=0, pos=1)
    assert backup(node)[0] == "OK"
    volid = node.backups()[0]["volid"]
    archive = node.app.storages["backup"].dump_dir / volid.removeprefix("backup:backup/")
    text = subprocess.run(["tar", "-xOf", str(archive), "--zstd", "./etc/vzdump/pct.fw"], capture_output=True,
                          text=True, check=True).stdout
    assert text == ("[OPTIONS]\n\nenable: 1\npolicy_in: DROP\n\n"
                    "[IPSET admins] # who may ssh\n\n198.18.0.1\n!198.18.0.9\n\n"
                    "[RULES]\n\nIN ACCEPT -source +admins -p tcp -dport 22 # ssh from admins\n"
                    "|IN DROP -p tcp -dport 8080\n\n")
    before = {part: node.ok("GET", f"{fw}/{part}") for part in ("options", "rules", "ipset", "ipset/admins")}
    node.ok("DELETE", f"{fw}/rules/0")
    node.ok("PUT", f"{fw}/options", enable=0)
    assert node.task("POST", f"{NODE}/lxc/900/status/stop")[0] == "OK"
    status, lines = node.task("POST", f"{NODE}/lxc", vmid=900, ostemplate=volid, restore=1, force=1)
    assert status == "OK", lines
    assert {part: node.ok("GET", f"{fw}/{part}") for part in before} == before


def test_a_ct_without_firewall_rules_archives_an_empty_pct_fw(node):
    """No <vmid>.fw: vzdump writes an empty pct.fw, and its restore leaves the CT without rules."""
    assert backup(node)[0] == "OK"
    volid = node.backups()[0]["volid"]
    archive = node.app.storages["backup"].dump_dir / volid.removeprefix("backup:backup/")
    text = subprocess.run(["tar", "-xOf", str(archive), "--zstd", "./etc/vzdump/pct.fw"], capture_output=True,
                          text=True, check=True).stdout
    assert text == ""
