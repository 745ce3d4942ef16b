"""`make backup` on a deployed lab (issue 23): consistent dumps on the hosts, an encrypted restic copy in the lab's
S3 store, pruned and checked; the health suite's backup watch finds every host fresh; the store down keeps the local
backup and says the off-site copy failed; `make dr-drill`'s command destroys and restores the drilled hosts (the
markers prove the recovery point, the recovery time is measured, make restore's code does it) and restores the demo
app's database alone from the off-site copy; `make restore-node` rebuilds two lost hosts, their local archives gone
too, from the off-site copy alone.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lab import orchestrate, scenarios
from plugins.backup import drill, watch
from plugins.backup.credentials import restic_environment
from plugins.backup.offsite import Repository
from plugins.inventory import load_inventory
from plugins.proxmox import backups as node_backups
from plugins.proxmox.client import ProxmoxClient
from plugins.ssh.known_hosts import known_hosts_file
from plugins.stack.backup_dumps import dumps

INVENTORY = load_inventory(scenarios.LAB_INVENTORY)
APP = INVENTORY.host("app-demo")
APP_DB = next(d for d in dumps(INVENTORY, APP) if d["kind"] == "postgres")
DUMPED = [h for h in INVENTORY.hosts if dumps(INVENTORY, h)]
# The host the e2e drill destroys and restores: the demo app's (its database's row), in the time the former
# make restore test took. utilities (NetBox's object, its MariaDB and PostgreSQL rows) and monitoring are drilled by
# make dr-drill itself: the three together take several times longer (docs/reference/figures.md).
DRILLED = [APP.hostname]


def backup(*args: str, state_dir: Path) -> subprocess.CompletedProcess:
    """`make backup`'s command, with the lab's environment and this test's state directory."""
    env = {**scenarios.suite_env(), "HOMELAB_SUITE_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "plugins.backup", *args], cwd=scenarios.ROOT, env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def on_host(ip: str, command: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run a command as root on a lab host (stdin fed from bytes), with the host keys the deploy pinned."""
    key, known = orchestrate.status()["deploy_key"], known_hosts_file(INVENTORY)
    return subprocess.run(["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
                           "-o", f"UserKnownHostsFile={known}", f"root@{ip}", command],
                          input=stdin, capture_output=True, timeout=120, check=False)


def app_sql(sql: str, database: str = "") -> str:
    """Run SQL in the demo app's PostgreSQL container; its output (one-line failure otherwise)."""
    done = on_host(APP.ip, f"docker exec -i {APP_DB['container']} psql -v ON_ERROR_STOP=1 -tA -U {APP_DB['user']} "
                           f"-d {database or APP_DB['database']}", stdin=sql.encode())
    assert done.returncode == 0, f"psql on {APP.hostname}: {done.stderr.decode().strip()}"
    return done.stdout.decode().strip()


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory) -> Path:
    """A state directory of the module's own: the runner's copy of the dumps and the backup status."""
    return tmp_path_factory.mktemp("backup-state")


@pytest.fixture(scope="module")
def marker(deployed) -> str:
    """A row written into the demo app's database before the backup: the restored dump must hold it."""
    name = f"backup-marker-{uuid.uuid4().hex[:8]}"
    app_sql(f"INSERT INTO items (name) VALUES ('{name}');")  # nosec B608 # the test's own uuid, no input
    return name


@pytest.fixture(scope="module")
def backed_up(marker, state_dir) -> subprocess.CompletedProcess:
    """One `make backup` of the whole lab (its wall time printed: docs/reference/figures.md)."""
    started = time.monotonic()
    run = backup("--inventory", str(scenarios.LAB_INVENTORY), state_dir=state_dir)
    print(f"make backup of the whole lab: {time.monotonic() - started:.1f} s wall, rc {run.returncode}")
    return run


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Repository:
    """The lab's restic repository, opened with the secrets the policy names."""
    offsite = INVENTORY.backup.offsite
    return Repository(offsite.repository, offsite.endpoint, restic_environment(INVENTORY, scenarios.suite_env()),
                      cache_dir=tmp_path_factory.mktemp("restic-cache"))


def test_make_backup_says_a_line_per_host_and_checks_the_offsite_copy(backed_up):
    """Every host the policy backs up has its line; the dumping hosts are ok with their dumps; restic check passed."""
    output = backed_up.stdout + backed_up.stderr
    print(backed_up.stdout)  # a line per host: vzdump's size and time, the off-site bytes (docs/reference/figures.md)
    assert backed_up.returncode == 0, f"make backup failed (rc {backed_up.returncode}):\n{output}"
    lines = {line.split()[0]: line for line in backed_up.stdout.splitlines() if line and not line.startswith(
        ("vzdump skipped", "off-site"))}
    assert set(lines) == {h.hostname for h in INVENTORY.hosts}, output
    for host in DUMPED:
        assert " ok " in lines[host.hostname] and "dumps " in lines[host.hostname], output
    assert "restic check passed" in output
    assert scenarios.suite_env()["RESTIC_PASSWORD"] not in output


def test_the_hosts_hold_their_consistent_dumps_for_vzdump(backed_up):
    """Each dumping host has every dump in the policy's directory, readable by the deploy user's group only."""
    directory = INVENTORY.backup.dumps.directory
    for host in DUMPED:
        status = on_host(host.ip, f"cat {directory}/status.json; echo; stat -c %a {directory}")
        text = status.stdout.decode()
        assert status.returncode == 0, f"{host.hostname}: {status.stderr.decode().strip()}"
        report, mode = json.loads(text[:text.rindex("}") + 1]), text.split()[-1]
        assert report["ok"] and mode == "750", f"{host.hostname}: {report} mode {mode}"
        wanted = {d["file"] for d in dumps(INVENTORY, host)}
        taken = {d["file"] for d in report["dumps"] if d.get("bytes") or d.get("note")}
        assert wanted == taken, f"{host.hostname}: dumps {sorted(taken)}, expected {sorted(wanted)}"


def test_the_offsite_copy_is_encrypted_and_holds_each_host(backed_up, repository, tmp_path):
    """restic holds a snapshot of each dumping host; the bucket holds no dump in clear."""
    hosts = {snapshot["hostname"] for snapshot in repository.snapshots()}
    assert {h.hostname for h in DUMPED} <= hosts
    bad = Repository(repository.repository, repository.endpoint,
                     {**restic_environment(INVENTORY, scenarios.suite_env()), "RESTIC_PASSWORD": "not-the-password"},
                     cache_dir=tmp_path)
    with pytest.raises(Exception, match="wrong password|no key found"):
        bad.snapshots()


def test_the_health_watch_finds_every_host_fresh_and_would_name_a_stale_one(backed_up, state_dir):
    """Right after make backup: each host's newest vzdump passes the schedule's age and the restic check passed; the
    same backups judged 27 h later name the stale host."""
    client = ProxmoxClient.from_inventory(INVENTORY, scenarios.suite_env())
    listed = node_backups.backups(client, INVENTORY.proxmox.node, INVENTORY.backup.storage)
    verdicts = {h.hostname: watch.backup_freshness(INVENTORY, h, listed) for h in INVENTORY.hosts}
    assert all(v.passed for v in verdicts.values()), {name: v.message for name, v in verdicts.items()}
    later = max(int(row["ctime"]) for row in listed) + 27 * watch.HOUR
    stale = watch.backup_freshness(INVENTORY, APP, listed, now=later)
    assert not stale.passed and stale.message.startswith(f"{APP.hostname} ({APP.vmid}) is stale: ")
    check = watch.restic_check(INVENTORY, state_dir / "backups" / INVENTORY.environment / watch.STATUS_FILE)
    assert check.passed, check.message


def test_the_s3_store_down_keeps_the_local_backup_and_says_the_offsite_copy_failed(backed_up, tmp_path, state_dir):
    """The off-site endpoint answering nothing: the dumps are still taken and kept, the run says why it failed."""
    closed = scenarios.inventory_variant(tmp_path, "s3-down", lambda document: document["backup"]["offsite"].update(
        endpoint="http://127.0.0.1:9"))
    before = on_host(APP.ip, f"stat -c %Y {INVENTORY.backup.dumps.directory}/{APP_DB['file']}").stdout
    run = backup("--inventory", str(closed), "--hosts", APP.hostname, state_dir=state_dir)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "off-site copy failed: the S3 store http://127.0.0.1:9 does not answer" in output
    assert "local backups are kept" in output
    line = next(line for line in run.stdout.splitlines() if line.startswith(APP.hostname))
    assert " ok " in line and "dumps " in line, f"the dumps should be taken with the store down: {line}"
    after = on_host(APP.ip, f"stat -c %Y {INVENTORY.backup.dumps.directory}/{APP_DB['file']}").stdout
    assert after and after >= before, "the dump on the host should be there, retaken"
    secret = scenarios.suite_env()["RESTIC_PASSWORD"]
    assert secret not in output


def test_make_dr_drill_brings_the_lost_hosts_back_to_their_recovery_point(backed_up, state_dir, tmp_path,
                                                                           record_property):
    """`make dr-drill`'s command on the deployed lab (DRILLED): each host marked, backed up, marked again, destroyed
    with its snapshots, restored, converged and healthy with the first marker back and the second gone; the demo
    app's database restored alone from the off-site copy into the running service."""
    command = scenarios.with_option(scenarios.make_command(
        "dr-drill", INVENTORY=str(scenarios.LAB_INVENTORY), DR_HOSTS=",".join(DRILLED),
        DR_DATABASE=f"{APP.hostname}/{APP_DB['database']}"), "--alluredir", str(tmp_path / "allure"))
    env = {**scenarios.suite_env(), "HOMELAB_SUITE_STATE_DIR": str(state_dir)}
    run = subprocess.run([*command, "-s", "-p", "no:cacheprovider"], cwd=scenarios.ROOT, env=env,
                         capture_output=True, text=True, timeout=1800, check=False)
    output = run.stdout + run.stderr
    print(f"{shlex.join(command)}\n{run.stdout}")  # the drill's own lines: each step, recovery time and point
    assert run.returncode == 0, f"make dr-drill failed (rc {run.returncode}):\n{output[-6000:]}"
    assert f"{len(DRILLED) + 1} passed" in output, output[-3000:]
    summaries = re.findall(r"^(\S+): recovery time ([0-9.]+) s \(lost → healthy\), recovery point (.+?); markers "
                           r"written before the backup back (\d+)/(\d+), written after it gone (\d+)/(\d+)$",
                           run.stdout, re.MULTILINE)
    assert sorted(s[0] for s in summaries) == sorted(DRILLED), output[-3000:]
    for host, seconds, point, back, written, gone, written_after in summaries:
        assert back == written == gone == written_after and int(written) >= 1, f"{host}: {back}/{written} back"
        record_property(f"recovery_time_s_{host}", seconds)
        print(f"make dr-drill: {host}: recovery time {seconds} s, recovery point {point}")
    assert re.search(rf"^{APP_DB['database']} on {APP.hostname} restored from the off-site copy and healthy in ",
                     run.stdout, re.MULTILINE), output[-3000:]
    assert scenarios.suite_env()["RESTIC_PASSWORD"] not in output
    assert scenarios.suite_env()["NETBOX_API_TOKEN"] not in output


def test_make_restore_node_rebuilds_lost_hosts_from_the_offsite_copy_alone(backed_up, marker, state_dir, record_property):
    """proxy and app-demo lost with their local backups (CT, snapshots and vzdump archives gone): `make
    restore-node`'s command fetches each one's archive from restic, restores it through PVE, converges and checks
    them; the row written before the backup is back. The runner is refused first, nothing changed."""
    client = ProxmoxClient.from_inventory(INVENTORY, scenarios.suite_env())
    inventory = str(scenarios.LAB_INVENTORY)
    refused = backup("restore-node", "--inventory", inventory, "--hosts", "ci-runner", state_dir=state_dir)
    assert refused.returncode == 2 and "runner the suite runs on" in refused.stderr, refused.stdout + refused.stderr
    rebuilt = [INVENTORY.host("proxy"), APP]
    storage = INVENTORY.backup.storage
    for host in rebuilt:
        drill.lose_host(client, host)
        for row in node_backups.backups(client, host.node, storage, host.vmid):
            node_backups.remove_backup(client, host.node, storage, row["volid"])
        assert not node_backups.backups(client, host.node, storage, host.vmid)
    run = backup("restore-node", "--inventory", inventory, "--hosts", ",".join(h.hostname for h in rebuilt),
                 state_dir=state_dir)
    output = run.stdout + run.stderr
    print(run.stdout)  # each step's line and time: the figures of docs/reference/figures.md
    assert run.returncode == 0, f"make restore-node failed (rc {run.returncode}):\n{output[-4000:]}"
    steps = [line.split()[0] for line in run.stdout.splitlines()]
    assert steps == ["choose", "fetch", "restore", "fetch", "restore", "converge", "health", "health", "job",
                     "proxy,"], output
    assert all(node_backups.backups(client, h.node, storage, h.vmid) for h in rebuilt), "archives not fetched"
    assert app_sql(f"SELECT count(*) FROM items WHERE name = '{marker}';") == "1"  # nosec B608 # the test's own uuid
    record_property("recovery_time_s", re.search(r"recovery time ([0-9.]+) s", run.stdout)[1])
    assert scenarios.suite_env()["RESTIC_PASSWORD"] not in output
