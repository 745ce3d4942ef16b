"""The fault matrix: from a deployed, healthy lab, a deploy that changes something meets one fault at the stage
where it hurts, and ends restored, refused before any side effect, or reported incomplete with the command.

Each row records its figures in reports/faults/<row>.json (bench/faults.py prints the table): what happened,
seconds to healthy, the snapshots before and after, the runner untouched, the exit status, and how often the
run's secret values (a token rotated for the row, so unique to it) appear in its output, reports and logs.
"""

from __future__ import annotations

import time

import pytest
import yaml
from lab_driving import ansible_running
from matrix import (
    APP,
    INVENTORY,
    NEW_HOST_VMID,
    RECOVER,
    Row,
    deploy_args,
    healthy_after,
    inventory_for,
    recover,
    report_files,
    runner_now,
    secret_hits,
    sentinel,
    snapshots,
    wait_for,
)

from lab import scenarios
from lab.faults import CREATE, ROLLBACK, SNAPSHOT

BACKEND = INVENTORY.state_backend
# The base of the app's builds (ansible/roles/app_demo/defaults/main.yml): absent, the deploy must pull it.
NODE_IMAGE = yaml.safe_load((scenarios.ROOT / "ansible/roles/app_demo/defaults/main.yml").read_text())[
    "app_demo_node_image"]


def _revoke(faults, row: Row) -> None:
    row.secrets.append(faults.rotate_token())


ROWS = [
    Row("proxmox-snapshot-500", "500 on one host's snapshot (app-demo)", "snapshot", "refused",
        before=lambda f: f.api_error("POST", SNAPSHOT, vmid=APP.vmid, status=500,
                                     message="snapshot feature is not available")),
    Row("proxmox-snapshot-task-error", "the snapshot task of app-demo ends in error", "snapshot", "refused",
        before=lambda f: f.task_error("POST", SNAPSHOT, vmid=APP.vmid,
                                      message="snapshot create failed: starting cleanup")),
    Row("proxmox-unreachable-after-snapshots", "the API unreachable from Ansible on (a bad app change fails health)",
        "ansible → rollback", "incomplete", change="broken", fast_deadlines=True,
        at="ansible", during=lambda f: f.api_unreachable()),
    Row("proxmox-token-revoked", "the token revoked (401) from Ansible on (a bad app change fails health)",
        "ansible → rollback", "incomplete", change="broken", fast_deadlines=True, at="ansible", during=None),
    Row("proxmox-rollback-task-fails", "the rollback task of app-demo ends in error (a bad app change)",
        "rollback", "incomplete", change="broken", fast_deadlines=True,
        before=lambda f: f.task_error("POST", ROLLBACK, vmid=APP.vmid,
                                      message="rollback failed: unable to restore rootfs")),
    Row("terraform-apply-error", "create of a new container answers 500 (one resource fails)", "terraform",
        "restored", change="new_host",
        before=lambda f: f.api_error("POST", CREATE, vmid=NEW_HOST_VMID, status=500,
                                     message=f"unable to create CT {NEW_HOST_VMID} - storage 'local' is full")),
    Row("terraform-s3-down", "the S3 state store down at init", "plan (init)", "refused",
        before=lambda f: f.stop_s3()),
    Row("terraform-state-locked", "the state lock held by another run", "plan (lock)", "refused",
        before=lambda f: f.hold_state_lock(BACKEND.endpoint, BACKEND.bucket, BACKEND.key)),
    Row("ansible-host-stopped", "app-demo stopped in the middle of the play", "ansible", "restored",
        at="ansible", during=lambda f: f.stop_host(APP.vmid)),
    Row("ansible-task-fails-one-host", "app-demo's source directory read-only: its copy task fails", "ansible",
        "restored", before=lambda f: f.read_only(APP.vmid, "/opt/app-demo/src")),
    Row("ansible-disk-full", "app-demo's disk full where the app is copied", "ansible", "restored",
        before=lambda f: f.fill_disk(APP.vmid, "/opt/app-demo/src")),
    Row("registry-down", "the lab registry down while app-demo must pull the image its build starts from",
        "ansible", "restored", before=lambda f: (f.remove_image(APP.vmid, NODE_IMAGE), f.stop_registry())),
    # A bad app change that never gets healthy, restored, is test_deploy_e2e.py's rollback test (with the
    # terminal, the markdown and Allure checked): a row for it here ran the same deploy a second time.
    Row("health-network-cut", "app-demo's network cut as Ansible ends, before the health checks", "health",
        "restored", fast_deadlines=True, at="after-ansible", during=lambda f: f.cut_network(APP.vmid)),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_fault(row: Row, deployed, runner_fingerprint, faults, record, tmp_path):
    """One fault at its stage: the outcome expected, no snapshot lost or left beyond retention, the runner
    untouched, a failing exit status, and none of the run's secrets in any output, report or log."""
    started_wall = time.time()
    row.secrets = [faults.rotate_token()]  # this row's own secret value, to grep for
    inventory = inventory_for(row, tmp_path)
    args = deploy_args(row, tmp_path)
    before_snaps, before_file = snapshots(), sentinel()
    record.update(fault=row.fault, stage=row.stage, expected=row.expected, snapshots_before=_counts(before_snaps))

    if row.before:
        row.before(faults)
    output = tmp_path / "deploy.log"
    started = time.monotonic()
    proc = scenarios.start_suite("deploy", *args, inventory=inventory, output=output)
    try:
        if row.at:
            _wait_stage(row.at, proc, output)
            if row.id == "proxmox-token-revoked":
                _revoke(faults, row)
            elif row.during:
                row.during(faults)
        proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = output.read_text()
    result = scenarios.latest_result() or {}
    rollback = result.get("rollback") or {}
    record.update(exit_status=proc.returncode, deploy_seconds=round(time.monotonic() - started, 1),
                  happened=_happened(result, out))
    # the fault is over: what follows is what a person finds, and does; an undo that failed would break the
    # next rows instead of this one
    undo_problems = faults.undo()
    assert not undo_problems, "; ".join(undo_problems)

    recovered = None
    if RECOVER in out:
        recovered = recover(inventory)
        record["recovery"] = f"`{RECOVER} …` exit {recovered.returncode}"
        if recovered.returncode != 0:  # the lab is shared: never leave the next user a blocked environment
            recover(inventory, "forget")
    seconds, failing = healthy_after(started)
    after_snaps = snapshots()
    fingerprint = runner_now()
    files = report_files(started_wall)
    texts = [out] + ([recovered.stdout + recovered.stderr] if recovered else [])
    record.update(
        seconds_to_healthy=seconds, health_failing_before=failing, snapshots_after=_counts(after_snaps),
        snapshots_lost=_lost(before_snaps, after_snaps), beyond_retention=_beyond(after_snaps),
        runner_untouched=fingerprint == runner_fingerprint,
        secret_hits=secret_hits(row.secrets, texts, files), files_grepped=len(files) + len(texts))

    assert proc.returncode != 0, f"the faulted deploy exited 0:\n{out[-3000:]}"
    assert record["runner_untouched"], f"runner changed: {fingerprint} != {runner_fingerprint}"
    assert record["secret_hits"] == 0, "a secret value of the run appears in its output, reports or logs"
    assert not record["snapshots_lost"], f"snapshots lost: {record['snapshots_lost']}"
    assert not record["beyond_retention"], f"snapshots beyond retention: {record['beyond_retention']}"
    assert seconds is not None, "the lab never became healthy again after the row"
    if row.expected == "refused":
        assert not result.get("applied") and not result.get("snapshots"), \
            f"side effects before the refusal: applied={result.get('applied')}, snapshots={result.get('snapshots')}"
        assert sentinel() == before_file
    elif row.expected == "restored":
        assert rollback.get("ok"), f"rollback not complete: {rollback}\n{out[-2000:]}"
        assert sentinel() == before_file, "the app's files were not restored"
    else:
        assert rollback and not rollback.get("ok"), f"the rollback was not reported incomplete: {rollback}"
        assert RECOVER in out, f"no manual command in the output:\n{out[-2000:]}"
        assert recovered is not None and recovered.returncode == 0, (recovered.stdout + recovered.stderr)[-2000:]
        assert sentinel() == before_file, "the app's files were not restored by the recovery"


def _wait_stage(stage: str, proc, output) -> None:
    """Wait until the deploy reaches a stage: Ansible running, or Ansible just ended (the health checks follow
    within a second: the health stage's first line in the output comes too late, its checks are done by then)."""
    wait_for(lambda: ansible_running(proc.pid) or proc.poll() is not None, "ansible-playbook of the deploy")
    if stage == "after-ansible":
        wait_for(lambda: not ansible_running(proc.pid), "the end of the deploy's ansible-playbook", timeout=300)
    if proc.poll() is not None:
        pytest.fail(f"the deploy ended before the {stage} stage:\n{output.read_text()[-2000:]}")


def _happened(result: dict, out: str) -> str:
    """One line: where the run stopped and what the rollback did."""
    if not result or "stages" not in result:
        line = next((x for x in out.splitlines() if "refus" in x or "Error" in x), out.strip().splitlines()[-1:])
        return f"no result written: {line}"[:200]
    failed = [name for name, s in result["stages"].items() if s["outcome"] == "failed"]
    why = next((s["summary"] for s in result["stages"].values() if s["outcome"] == "failed" and s["summary"]), "")
    failed = [f"{failed[0]} ({why[:110]})" if why else failed[0], *failed[1:]] if failed else failed
    rollback = result.get("rollback")
    if rollback is None and "nothing to roll back (no host restarted)" in out:
        after = "no host restarted, this run's snapshots deleted"
    elif rollback is None:
        after = "no rollback (nothing snapshotted)" if not result.get("snapshots") else "no rollback"
    elif rollback.get("ok"):
        after = f"rolled back {len(rollback['rolled_back'])} in {rollback['seconds']} s"
    else:
        broken = ", ".join(list(rollback.get("task_errors", {})) + list(rollback.get("unhealthy", {})))
        after = f"rollback INCOMPLETE ({broken}); rolled back {len(rollback.get('rolled_back', {}))}"
    return f"failed at {', '.join(failed) or '?'}; {after}"


def _counts(snaps: dict[str, list[str]]) -> str:
    return " ".join(f"{host}:{len(names)}" for host, names in snaps.items())


def _lost(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """Snapshots there before and gone after, beyond what the retention prunes (the oldest ones)."""
    retention = INVENTORY.deploy.snapshot_retention
    lost = []
    for host, names in before.items():
        kept = set(after.get(host, []))
        for name in sorted(names)[-(retention - 1):] if retention > 1 else []:
            if name not in kept:
                lost.append(f"{host}:{name}")
    return lost


def _beyond(after: dict[str, list[str]]) -> list[str]:
    retention = INVENTORY.deploy.snapshot_retention
    return [f"{host}:{len(names)}" for host, names in after.items() if len(names) > retention]

