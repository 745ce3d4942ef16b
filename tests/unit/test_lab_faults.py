"""The lab's fault control, no root: rules written by lab.faults.LabFaults, obeyed by the emulator, undone."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from pve_memdriver import MemHosts

from lab import config
from lab.faults import ROLLBACK, SNAPSHOT, LabFaults
from lab.pve.app import Emulator
from lab.pve.auth import FULL_TOKEN_ID, load_tokens
from lab.pve.ca import ensure_ca
from lab.pve.faults import FAULTS_FILE, Rule, RuleError
from lab.pve.server import PveServer

pytestmark = pytest.mark.unit
BASE = "/api2/json"
NET = "name=eth0,bridge=labbr0,ip=198.18.0.50/24,gw=198.18.0.1"
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"


@pytest.fixture
def paths(tmp_path):
    """Lab paths under a temp dir (the emulator's state dir is paths.pve_dir)."""
    lab = config.LabPaths(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache")
    lab.pve_dir.mkdir(parents=True)
    return lab


@pytest.fixture
def app(paths):
    """An emulator on the in-memory driver, reading its faults from paths.pve_dir."""
    return Emulator(paths.pve_dir, MemHosts(), node="homelab")


@pytest.fixture
def faults(paths):
    """The lab's fault control on the same state dir; every fault undone after the test."""
    with LabFaults(paths) as control:
        yield control


def call(app, method, path, **params):
    """One call with the full token's current secret (re-read: a test may rotate it)."""
    auth = f"PVEAPIToken={FULL_TOKEN_ID}={load_tokens(app.state_dir)[FULL_TOKEN_ID]}"
    return app.handle(method, BASE + path, {k: str(v) for k, v in params.items()}, auth)


def task_status(app, upid):
    """Wait for a task; its status."""
    app.tasks.wait(upid, 10)
    return call(app, "GET", f"/nodes/homelab/tasks/{upid}/status").body["data"]


def make_ct(app, vmid):
    """Create CT vmid and wait for it."""
    reply = call(app, "POST", "/nodes/homelab/lxc", vmid=vmid, ostemplate=TEMPLATE, hostname=f"t{vmid}", net0=NET)
    assert task_status(app, reply.body["data"])["exitstatus"] == "OK"


def snapshot(app, vmid, name="deploy_1"):
    """POST a snapshot; the reply."""
    return call(app, "POST", f"/nodes/homelab/lxc/{vmid}/snapshot", snapname=name)


def test_an_error_rule_answers_one_ct_with_pves_text_and_leaves_the_others(app, faults):
    make_ct(app, 250)
    make_ct(app, 251)
    rule = faults.api_error("POST", SNAPSHOT, vmid=250, status=500, message="snapshot feature is not available")
    failed = snapshot(app, 250)
    assert (failed.status, failed.reason) == (500, "snapshot feature is not available")
    assert failed.body == {"data": None, "message": "snapshot feature is not available\n"}
    assert snapshot(app, 251).status == 200
    assert faults.fired(rule) == 1


def test_nth_fires_only_on_that_call(app, faults):
    make_ct(app, 250)
    faults.api_error("GET", r"/version", nth=2, status=500)
    assert [call(app, "GET", "/version").status for _ in range(3)] == [200, 500, 200]


def test_a_401_rule_looks_like_a_revoked_token(app, faults):
    faults.api_error("*", r"/nodes/.*", status=401)
    reply = call(app, "GET", "/nodes/homelab/lxc")
    assert (reply.status, reply.reason, reply.body) == (401, "authentication failure", None)


def test_a_task_error_rule_ends_the_task_in_error_without_doing_its_work(app, faults):
    make_ct(app, 250)
    faults.task_error("POST", SNAPSHOT, vmid=250, message="snapshot 'deploy_1' failed: no space left")
    reply = snapshot(app, 250)
    assert reply.status == 200, "the call itself is accepted: the task fails, as PVE's do"
    status = task_status(app, reply.body["data"])
    assert status["exitstatus"] == "snapshot 'deploy_1' failed: no space left"
    listed = call(app, "GET", "/nodes/homelab/lxc/250/snapshot").body["data"]
    assert [s["name"] for s in listed] == ["current"]


def test_a_task_hang_runs_until_the_rule_is_removed(app, faults):
    make_ct(app, 250)
    assert task_status(app, snapshot(app, 250, "deploy_1").body["data"])["exitstatus"] == "OK"
    rule = faults.task_hang("POST", ROLLBACK, vmid=250)
    upid = call(app, "POST", "/nodes/homelab/lxc/250/snapshot/deploy_1/rollback").body["data"]
    time.sleep(0.5)
    assert call(app, "GET", f"/nodes/homelab/tasks/{upid}/status").body["data"]["status"] == "running"
    faults.remove(rule)
    assert task_status(app, upid)["exitstatus"] == "OK"


def test_undo_removes_every_rule_even_after_a_failure(paths, app):
    control = LabFaults(paths)
    with pytest.raises(AssertionError), control:
        control.api_error("GET", "/version")
        control.task_error("POST", SNAPSHOT)
        assert call(app, "GET", "/version").status == 200  # fails: the fault is in force
    assert not (paths.pve_dir / FAULTS_FILE).exists()
    assert call(app, "GET", "/version").status == 200


def test_rotating_the_token_revokes_the_old_secret_at_once(app, faults):
    old = load_tokens(app.state_dir)[FULL_TOKEN_ID]
    assert call(app, "GET", "/version").status == 200
    new = faults.rotate_token()
    assert new != old
    stale = app.handle("GET", BASE + "/version", {}, f"PVEAPIToken={FULL_TOKEN_ID}={old}")
    assert stale.status == 401
    assert call(app, "GET", "/version").status == 200


def test_a_bad_rule_is_refused_in_one_line_before_it_is_written(paths, faults):
    with pytest.raises(RuleError, match=r"^fault .*: action 'explode'; expected one of error, hang"):
        faults.rule("explode")
    with pytest.raises(RuleError, match="path is not a regex"):
        faults.api_error("GET", "(")
    assert not (paths.pve_dir / FAULTS_FILE).exists()


def test_an_unreadable_faults_file_is_no_fault(app, paths):
    (paths.pve_dir / FAULTS_FILE).write_text("{not json")
    assert call(app, "GET", "/version").status == 200


def test_a_rule_matches_the_vmid_of_a_create_by_its_parameter():
    rule = Rule.from_dict({"id": "c", "action": "error", "method": "POST", "path": r"/nodes/[^/]+/lxc", "vmid": 260})
    assert rule.matches("POST", "/nodes/homelab/lxc", {"vmid": "260"})
    assert not rule.matches("POST", "/nodes/homelab/lxc", {"vmid": "250"})
    assert not rule.matches("GET", "/nodes/homelab/lxc", {"vmid": "260"})


def test_over_https_drop_and_hang_leave_the_client_without_an_answer(paths, app, faults):
    ca_file, cert, key = ensure_ca(paths.pve_dir)
    server = PveServer(("127.0.0.1", 0), app, cert, key, auth_delay=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}{BASE}/version"
    headers = {"Authorization": f"PVEAPIToken={FULL_TOKEN_ID}={load_tokens(paths.pve_dir)[FULL_TOKEN_ID]}"}
    try:
        drop = faults.api_unreachable()
        with pytest.raises(requests.ConnectionError):
            requests.get(url, headers=headers, verify=ca_file, timeout=5)
        faults.remove(drop)
        faults.api_hang("GET", "/version", seconds=30)
        with pytest.raises(requests.Timeout):
            requests.get(url, headers=headers, verify=ca_file, timeout=0.5)
        faults.undo()
        assert requests.get(url, headers=headers, verify=ca_file, timeout=5).status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    hits = json.loads((paths.pve_dir / "faults-hits.json").read_text())
    assert hits["fired"][drop] == 1
