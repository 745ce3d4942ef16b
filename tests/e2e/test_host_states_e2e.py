"""The suite reads the hosts' state before touching them, on the real lab (after tests/e2e's deployed lab).

A host stopped the hard way: `make health` says so at once and fails; `make plan` says a deploy would start it
and starts nothing; `make deploy` starts it (then snapshots it) and passes. The Terraform state object deleted
from the lab's S3 bucket: the plan guard refuses, naming the adoption command; after that command the plan is
empty.
"""

from __future__ import annotations

import re
import subprocess
import sys

import boto3
import pytest
import yaml

from lab import orchestrate, scenarios
from lab.faults import LabFaults

pytestmark = pytest.mark.usefixtures("deployed")

NODE = re.escape(yaml.safe_load(scenarios.LAB_INVENTORY.read_text())["proxmox"]["node"])  # the table's node column

SHORTEST_DEADLINE = 60  # the lab's SSH and HTTP deadlines: a stopped host used to cost at least this


def ct_status(vmid: int) -> str:
    """The container's state as the lab lists it."""
    return next(c["state"] for c in orchestrate.status()["containers"] if c["vmid"] == vmid)


def test_health_with_a_stopped_host_fails_at_once_showing_it_stopped():
    """ci-runner stopped: exit non-zero, its row says STOPPED, its SSH check names the state, no deadline waited."""
    with LabFaults() as faults:
        faults.stop_host(210)
        run = scenarios.run_suite("health")
    assert run.rc != 0, run.tail()
    assert re.search(rf"^\s*ci-runner\s+{NODE}\s+STOPPED\s", run.output, re.MULTILINE), run.tail(30)
    assert "ci-runner (CT 210) is stopped, nothing answers on 198.18.0.210" in run.output, run.tail()
    assert "connection timed out" not in run.output, run.tail()
    assert re.search(rf"^\s*proxy\s+{NODE}\s+running\s+pass", run.output, re.MULTILINE), run.tail(30)
    assert run.seconds < SHORTEST_DEADLINE / 2, f"make health took {run.seconds:.1f} s with one host stopped"
    print(f"make health with ci-runner stopped: {run.seconds:.1f} s, rc {run.rc}")


def test_a_stopped_host_is_named_by_the_plan_and_started_by_the_deploy():
    """proxy stopped: `make plan` passes, says a deploy would start it and leaves it stopped (its check mode leaves
    proxy out); `make deploy` starts it,
    snapshots it, and passes."""
    with LabFaults() as faults:
        faults.stop_host(200)
        plan = scenarios.run_suite("deploy", "--plan-only")
        assert "proxy (CT 200) is stopped: a deploy would start it (--plan-only starts nothing)" in plan.output, \
            plan.tail()
        assert ct_status(200) == "stopped", "--plan-only started a host"
        assert plan.rc == 0, plan.tail()
        run = scenarios.run_suite("deploy")
        assert run.rc == 0, run.tail()
        assert "proxy (CT 200) is stopped: the deploy starts it" in run.output, run.tail()
        assert "started   proxy (CT 200) on node 'homelab': it was stopped" in run.output, run.tail()
        assert ct_status(200) == "running"
        assert run.result and run.result["snapshots"].get("200"), "the started host was not snapshotted"


def _state_object() -> tuple:
    """(S3 client, bucket, key) of the lab inventory's Terraform state."""
    env = scenarios.suite_env()
    backend = yaml.safe_load(scenarios.LAB_INVENTORY.read_text())["state_backend"]
    s3 = boto3.client("s3", endpoint_url=backend["endpoint"], region_name=backend["region"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    return s3, backend["bucket"], backend["key"]


def test_a_deleted_state_is_refused_by_the_guard_and_adopted_back_to_an_empty_plan():
    """The state object deleted by hand: the plan guard names the adoption command; after it, the plan is empty."""
    s3, bucket, key = _state_object()
    saved = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.delete_object(Bucket=bucket, Key=key)
    adopted = False
    try:
        refused = scenarios.run_suite("deploy", "--plan-only")
        assert refused.rc != 0, refused.tail()
        lines = [line for line in refused.output.splitlines()
                 if "plan would create containers that already exist on Proxmox VE" in line]
        assert lines and re.search(r"`python -m plugins\.deploy\.adopt --inventory \S*lab\.yml`", lines[0]), \
            refused.tail()
        for name in ("proxy (CT 200)", "utilities (CT 201)", "monitoring (CT 240)", "app-demo (CT 250)",
                     "ci-runner (CT 210)"):
            assert name in lines[0], lines[0]
        adopt = subprocess.run([sys.executable, "-m", "plugins.deploy.adopt", "--inventory",
                                str(scenarios.LAB_INVENTORY)], cwd=scenarios.ROOT, env=scenarios.suite_env(),
                               capture_output=True, text=True, timeout=900, check=False)
        assert adopt.returncode == 0, adopt.stdout + adopt.stderr
        adopted = True
        assert "plan now: 0 to add, 0 to change, 0 to destroy" in adopt.stdout, adopt.stdout
        plan = scenarios.run_suite("deploy", "--plan-only")
        assert plan.rc == 0, plan.tail()
        assert "0 to add, 0 to change, 0 to destroy" in plan.output, plan.tail()
    finally:
        if not adopted:
            s3.put_object(Bucket=bucket, Key=key, Body=saved)  # the later tests need the deployed lab's state
