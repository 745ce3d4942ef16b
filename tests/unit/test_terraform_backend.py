"""S3 state backend against moto on loopback, STS/IAM pointed at a 403 rejector (incident #3)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import ThreadingHTTPServer

import boto3
import pytest
from moto.server import ThreadedMotoServer

from lab.sts import RejectingHandler
from plugins.inventory import load_inventory
from plugins.tools.terraform import TerraformError, TerraformRunner, backend_config_args, missing_backend_flags

pytestmark = pytest.mark.unit

BUCKET = "homelab-tfstate"
CONFIG = 'terraform {\n  backend "s3" {}\n}\n\nresource "terraform_data" "marker" {\n  input = "state"\n}\n'
AWS_ENV = {"AWS_ACCESS_KEY_ID": "lab", "AWS_SECRET_ACCESS_KEY": "lab-secret-key", "AWS_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """moto S3 on a free loopback port with the state bucket, and an STS/IAM endpoint answering 403."""
    port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    reject = ThreadingHTTPServer(("127.0.0.1", 0), RejectingHandler)
    threading.Thread(target=reject.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="lab", aws_secret_access_key="lab"
    )
    client.create_bucket(Bucket=BUCKET)
    yield {"endpoint": endpoint, "sts": f"http://127.0.0.1:{reject.server_port}", "client": client}
    reject.shutdown()
    moto.stop()


def _backend(s3, key: str, **overrides) -> dict:
    """The lab inventory's state_backend, re-pointed at this test's ports."""
    state_backend = load_inventory("inventories/lab.yml").state_backend
    config = state_backend.backend_config()
    config.update(key=key, endpoints={"s3": s3["endpoint"], "sts": s3["sts"], "iam": s3["sts"]}, **overrides)
    return config


def _runner(tmp_path, config: dict) -> TerraformRunner:
    (tmp_path / "main.tf").write_text(CONFIG)
    return TerraformRunner(tmp_path, env=AWS_ENV, backend_config=config)


def test_lab_inventory_backend_has_every_skip_flag():
    """The preflight check: inventories/lab.yml and homelab.yml miss no S3-compatible flag."""
    for name in ("lab", "homelab"):
        assert missing_backend_flags(load_inventory(f"inventories/{name}.yml").state_backend.model_dump()) == []
    assert missing_backend_flags({"skip_requesting_account_id": False}) == [
        "skip_credentials_validation",
        "skip_requesting_account_id",
        "skip_region_validation",
        "skip_metadata_api_check",
        "skip_s3_checksum",
    ]


def test_backend_config_renders_nested_endpoints_as_hcl():
    """Maps become HCL objects, bools true/false, top-level strings raw."""
    args = backend_config_args({"bucket": "b", "use_lockfile": True, "endpoints": {"s3": "http://127.0.0.1:9"}})
    assert args == ["bucket=b", "use_lockfile=true", 'endpoints={s3="http://127.0.0.1:9"}']


def test_init_with_all_flags_stores_state_in_the_bucket(s3, tmp_path):
    """With the skip flags init never asks STS; apply writes the state object at the key."""
    runner = _runner(tmp_path, _backend(s3, "ok/terraform.tfstate"))
    runner.init()
    runner.apply(runner.plan(_empty_vars(tmp_path)))
    state = json.loads(s3["client"].get_object(Bucket=BUCKET, Key="ok/terraform.tfstate")["Body"].read())
    assert [r["name"] for r in state["resources"]] == ["marker"]
    assert runner.state_list() == ["terraform_data.marker"]


def test_init_without_skip_requesting_account_id_fails_with_one_clear_line(s3, tmp_path):
    """Incident #3: without the flag init calls STS (403 here, as on OVH) and fails, secret masked."""
    runner = _runner(tmp_path, _backend(s3, "bad/terraform.tfstate", skip_requesting_account_id=False))
    with pytest.raises(TerraformError) as failure:
        runner.init()
    message = str(failure.value)
    assert "\n" not in message
    assert "Retrieving AWS account details" in message and "StatusCode: 403" in message
    assert "lab-secret-key" not in message


def test_a_held_state_lock_stops_a_second_plan(s3, tmp_path):
    """use_lockfile: while <key>.tflock exists, plan fails with Terraform's lock error."""
    key = "locked/terraform.tfstate"
    runner = _runner(tmp_path, _backend(s3, key))
    runner.init()
    lock = {"ID": "held-by-test", "Operation": "OperationTypeApply", "Who": "test", "Version": "1.15.5"}
    s3["client"].put_object(Bucket=BUCKET, Key=key + ".tflock", Body=json.dumps(lock).encode())
    with pytest.raises(TerraformError, match="Error acquiring the state lock"):
        runner.plan(_empty_vars(tmp_path))


def _empty_vars(tmp_path):
    path = tmp_path / "vars.tfvars.json"
    path.write_text("{}")
    return path
