"""The lab's S3 state store (SeaweedFS): Terraform's lock holds between concurrent runs, objects survive kill -9."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from lab_driving import running_lab

from lab import orchestrate, s3
from plugins.inventory import load_inventory
from plugins.tools.terraform import TerraformError, TerraformRunner

pytestmark = pytest.mark.lab

STORE = orchestrate.STATE_STORE
# A run whose apply holds the lock for a while: its provisioner sleeps (plans run no provisioner).
HOLDER = """terraform {
  backend "s3" {}
}

resource "terraform_data" "slow" {
  input = "held"
  provisioner "local-exec" {
    command = "sleep 12"
  }
}
"""


@pytest.fixture(scope="module")
def store() -> Iterator[s3.StateStore]:
    """The lab's state store, running (the lab is up; its store is started if it is not)."""
    running_lab("the state store tests")
    STORE.start()
    yield STORE


@pytest.fixture
def prefix(store) -> Iterator[str]:
    """A key prefix of this test's own; every object under it is deleted afterwards."""
    name = f"tests/{uuid.uuid4().hex[:12]}"
    yield name
    client = store.client()
    for key in s3.read_bucket(client, s3.BUCKET):
        if key.startswith(name + "/"):
            client.delete_object(Bucket=s3.BUCKET, Key=key)


def _runner(workdir: Path, key: str) -> TerraformRunner:
    workdir.mkdir()
    (workdir / "main.tf").write_text(HOLDER)
    (workdir / "vars.tfvars.json").write_text("{}")
    config = load_inventory("inventories/lab.yml").state_backend.backend_config()
    config.update(key=key)
    access, secret = STORE.credentials()
    env = {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": s3.REGION,
           "PATH": os.environ["PATH"]}
    return TerraformRunner(workdir, env=env, backend_config=config)


def test_a_plan_is_refused_while_another_run_holds_the_lock(store, prefix, tmp_path):
    """Two runs at once on one state: the second's plan fails on the lock and names the holder."""
    key = f"{prefix}/terraform.tfstate"
    first, second = _runner(tmp_path / "first", key), _runner(tmp_path / "second", key)
    first.init()
    second.init()
    client = store.client()
    outcome: dict = {}

    def hold() -> None:
        try:
            outcome["first"] = first.apply(first.plan(tmp_path / "first" / "vars.tfvars.json"))
        except TerraformError as exc:  # reported by the assertion below
            outcome["first"] = exc

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        deadline = time.monotonic() + 60
        while "first" not in outcome:  # the apply's lock object appears once it holds the state
            try:
                lock = json.loads(client.get_object(Bucket=s3.BUCKET, Key=key + ".tflock")["Body"].read())
                if lock.get("Operation") == "OperationTypeApply":
                    break
            except ClientError:
                pass
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.2)
        with pytest.raises(TerraformError, match="Error acquiring the state lock") as refused:
            second.plan(tmp_path / "second" / "vars.tfvars.json")
        assert lock["ID"] in str(refused.value)  # Terraform names the holder's lock
    finally:
        holder.join(120)
    assert isinstance(outcome["first"], str), outcome["first"]
    # the holder released the lock: the second plan now runs and sees the first's resource
    plan = second.plan(tmp_path / "second" / "vars.tfvars.json")
    assert not plan.errored and plan.changes_nothing
    assert "resources" in json.loads(client.get_object(Bucket=s3.BUCKET, Key=key)["Body"].read())


def test_only_one_of_racing_conditional_puts_wins(store, prefix):
    """Eight clients put the same lock object with If-None-Match at once: one 200, seven 412."""
    key = f"{prefix}/race.tflock"

    def put(n: int) -> str:
        try:
            store.client().put_object(Bucket=s3.BUCKET, Key=key, Body=str(n).encode(), IfNoneMatch="*")
            return "won"
        except ClientError as exc:
            return exc.response["Error"]["Code"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(put, range(8)))
    assert sorted(results) == ["PreconditionFailed"] * 7 + ["won"], results


def test_objects_survive_a_kill_of_the_store(store, prefix):
    """kill -9 of the store's process, then its start: the state and a held lock read back unchanged."""
    client = store.client()
    state, lock = f"{prefix}/terraform.tfstate", f"{prefix}/terraform.tfstate.tflock"
    client.put_object(Bucket=s3.BUCKET, Key=state, Body=b'{"version": 4, "serial": 7}')
    client.put_object(Bucket=s3.BUCKET, Key=lock, Body=b'{"ID": "held"}', IfNoneMatch="*")
    pid = store.pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.pid() is None
    store.start()
    assert store.pid() != pid
    client = store.client()
    assert client.get_object(Bucket=s3.BUCKET, Key=state)["Body"].read() == b'{"version": 4, "serial": 7}'
    with pytest.raises(ClientError, match="PreconditionFailed"):  # the lock is still held
        client.put_object(Bucket=s3.BUCKET, Key=lock, Body=b'{"ID": "other"}', IfNoneMatch="*")


def test_the_store_refuses_a_wrong_key(store):
    """Only the key pair `lab up` generated opens the store."""
    with pytest.raises(ClientError, match="InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied"):
        store.client(("LAB0000000000000000", "wrong")).list_buckets()
