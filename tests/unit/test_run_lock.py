"""One deploy of an environment at a time; a killed run is found by the next one, which says what to do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from plugins.deploy.run_lock import LockHeld, RunLock, UnfinishedRun, forget, read_record

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from pathlib import Path
from plugins.deploy.run_lock import RunLock
lock = RunLock("lab", Path(sys.argv[1]))
lock.acquire("holder1", inventory="inventories/lab.yml")
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lab's lock (killed at the end)."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout.readline().strip() == "held"
    yield child
    child.kill()
    child.wait()


def test_a_second_run_is_refused_naming_the_holder(tmp_path, holder):
    """While a run holds the lock, another is refused with the holder's run id, pid, host and start time."""
    with pytest.raises(LockHeld) as refused:
        RunLock("lab", tmp_path).acquire("second")
    message = str(refused.value)
    assert f"run holder1 (pid {holder.pid} on " in message and "since 20" in message
    assert "stopped before any change" in message


def test_a_lock_whose_holder_died_without_snapshots_is_taken_over(tmp_path, holder):
    """The kernel frees a dead holder's flock: the record is seen, and the new run takes over, saying whose."""
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock = RunLock("lab", tmp_path)
    lock.acquire("next")
    assert lock.taken_over is not None and lock.taken_over.run_id == "holder1"
    assert read_record(lock.path).run_id == "next"
    lock.release()
    assert not lock.path.exists()


def test_a_run_killed_after_its_snapshots_blocks_the_next_and_names_the_recovery(tmp_path):
    """Snapshots recorded, holder gone: the next run refuses, naming the snapshots and the recover commands."""
    lock = RunLock("lab", tmp_path)
    lock.acquire("killed1", inventory="inventories/lab.yml")
    lock.note_snapshots({250: "deploy_killed1", 200: "deploy_killed1"})
    lock.abandon()  # as SIGKILL would: the flock goes, the record stays
    with pytest.raises(UnfinishedRun) as unfinished:
        RunLock("lab", tmp_path).acquire("next")
    message = str(unfinished.value)
    assert "run killed1 (pid" in message and "CT 200: deploy_killed1, CT 250: deploy_killed1" in message
    assert "python -m plugins.deploy.recover rollback --inventory inventories/lab.yml" in message
    assert forget("lab", tmp_path).run_id == "killed1"
    assert RunLock("lab", tmp_path).acquire("next").run_id == "next"


def test_forget_refuses_while_the_run_is_alive(tmp_path, holder):
    """`recover forget` never drops the record of a run that is still running."""
    with pytest.raises(LockHeld, match="holder1 .* is still running|another deploy"):
        forget("lab", tmp_path)
    assert read_record(RunLock("lab", tmp_path).path).run_id == "holder1"


def test_the_record_keeps_no_secret_and_is_plain_json(tmp_path):
    """The record says who and what, nothing else (no token, no inventory content; `restores` holds PVE's firewall
    and HA resources, which carry none)."""
    lock = RunLock("lab", tmp_path)
    lock.acquire("plain1", inventory="inventories/lab.yml")
    data = json.loads(lock.path.read_text())
    assert sorted(data) == ["applied", "environment", "host", "inventory", "pid", "restores", "rollback_incomplete",
                            "run_id", "since", "snapshots"]
    lock.release()


def test_recover_status_and_forget_from_the_command_line(tmp_path):
    """`python -m plugins.deploy.recover status|forget` say what is recorded and clear it; bad inventory: one line."""
    lock = RunLock("lab", tmp_path)
    lock.acquire("killed2", inventory="inventories/lab.yml")
    lock.note_snapshots({250: "deploy_killed2"})
    lock.abandon()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOMELAB_SUITE_STATE_DIR": str(tmp_path)}

    def recover(*args):
        return subprocess.run([sys.executable, "-m", "plugins.deploy.recover", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False)

    status = recover("status", "--inventory", "inventories/lab.yml")
    assert status.returncode == 3 and "run killed2" in status.stdout and "CT 250: deploy_killed2" in status.stdout
    gone = recover("forget", "--inventory", "inventories/lab.yml")
    assert gone.returncode == 0 and "forgot run killed2" in gone.stdout
    clean = recover("status", "--inventory", "inventories/lab.yml")
    assert clean.returncode == 0 and "no run recorded" in clean.stdout
    bad = recover("status", "--inventory", str(tmp_path / "missing.yml"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_a_run_whose_rollback_was_incomplete_blocks_the_next_and_names_the_recovery(tmp_path):
    """The run ended, its rollback did not finish: the record stays, the next run refuses saying why and how."""
    lock = RunLock("lab", tmp_path)
    lock.acquire("incomplete1", inventory="inventories/lab.yml")
    lock.note_snapshots({250: "deploy_incomplete1"})
    lock.keep_unfinished("rollback INCOMPLETE in 3.0 s")
    with pytest.raises(UnfinishedRun) as unfinished:
        RunLock("lab", tmp_path).acquire("next")
    message = str(unfinished.value)
    assert "run incomplete1 (pid" in message and "its rollback was incomplete (rollback INCOMPLETE in 3.0 s)" in message
    assert "python -m plugins.deploy.recover rollback --inventory inventories/lab.yml" in message


def test_an_old_record_without_the_rollback_field_still_reads(tmp_path):
    """Records written before the field existed are read as runs killed after their snapshots."""
    path = tmp_path / "deploy-lab.lock"
    path.write_text(json.dumps({"environment": "lab", "run_id": "old1", "pid": 1, "host": "h", "since": "s",
                                "snapshots": {"250": "deploy_old1"}}))
    record = read_record(path)
    assert record is not None and record.rollback_incomplete == "" and record.changed_something()


def test_an_incomplete_rollback_keeps_only_what_is_left_and_says_so(tmp_path):
    """The record narrowed to what the recovery must still put back: the next run names only that; a record
    left with PVE's firewall to put back, and no snapshot, still blocks the next run."""
    lock = RunLock("lab", tmp_path)
    lock.acquire("partial1", inventory="inventories/lab.yml")
    lock.note_snapshots({200: "deploy_partial1", 250: "deploy_partial1"})
    lock.keep_unfinished("rollback INCOMPLETE in 9.0 s", {250: "deploy_partial1"}, {})
    with pytest.raises(UnfinishedRun) as unfinished:
        RunLock("lab", tmp_path).acquire("next")
    assert "(CT 250: deploy_partial1)" in str(unfinished.value) and "CT 200" not in str(unfinished.value)

    other = RunLock("lab2", tmp_path)
    other.acquire("fw1", inventory="inventories/lab.yml")
    other.keep_unfinished("rollback INCOMPLETE in 1.0 s", {}, {"firewall": {"state": {}, "nodes": {}}})
    with pytest.raises(UnfinishedRun, match=r"\(PVE's firewall as the run found them\)"):
        RunLock("lab2", tmp_path).acquire("next")
