"""envs/lab end to end on a stub PVE API: provisioners run pve_lxc.py, the guard reads real plans.

The stub answers the few PVE paths pve_lxc.py uses (over plain HTTP on loopback: TLS and the real
emulator are the lab tests' business). The env's S3 backend is swapped for a local one with an
override file, the way Terraform merges *_override.tf.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from plugins.deploy.plan_guard import check_plan
from plugins.deploy.stages import plan as plan_stage
from plugins.tools.terraform import TerraformError, TerraformRunner

pytestmark = pytest.mark.unit

LAB_ENV = Path(__file__).resolve().parents[2] / "terraform" / "envs" / "lab"
SECRET = "stub-token-secret-0123456789"


class StubPve(BaseHTTPRequestHandler):
    """Containers in a dict; every task finishes at once with the server's `exitstatus`."""

    def _reply(self, status: int, data, reason: str | None = None) -> None:
        body = json.dumps({"data": data}).encode()
        self.send_response(status, reason)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        srv, url = self.server, urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        params = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode() or url.query).items()}
        parts = url.path.removeprefix("/api2/json/").split("/")
        srv.calls.append((self.command, "/".join(parts[2:]), params))
        if self.headers.get("Authorization") != f"PVEAPIToken=root@pam!lab={SECRET}":
            return self._reply(401, None, "authentication failure")
        if parts[2] == "tasks":
            return self._reply(200, {"status": "stopped", "exitstatus": srv.exitstatus})
        vmid = int(params.get("vmid") or parts[3]) if len(parts) > 3 or "vmid" in params else None
        if self.command == "POST" and len(parts) == 3:
            srv.cts[vmid] = {"name": params["hostname"], "status": "running", **params}
        elif self.command == "GET" and parts[-1] == "current":
            if vmid not in srv.cts:
                return self._reply(500, None, f"Configuration file 'nodes/homelab/lxc/{vmid}.conf' does not exist")
            return self._reply(200, srv.cts[vmid])
        elif parts[-1] == "stop":
            srv.cts[vmid]["status"] = "stopped"
        elif self.command == "DELETE":
            srv.cts.pop(vmid)
        self._reply(200, f"UPID:homelab:00000001:00000001:00000001:task:{vmid}:root@pam!lab:")

    do_GET = do_POST = do_DELETE = _handle

    def log_message(self, *args):
        """Silence the per-request log."""


@pytest.fixture
def pve():
    """A stub PVE API on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubPve)
    server.cts, server.calls, server.exitstatus = {}, [], "OK"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _host(vmid: int, hostname: str, ip: str, protected: bool) -> dict:
    return {
        "vmid": vmid,
        "hostname": hostname,
        "node": "homelab",
        "ip": ip,
        "prefix_length": 24,
        "memory": 512,
        "cores": 1,
        "tags": ["app"],
        "protected": protected,
    }


def _tfvars(containers: list[dict], runner: dict | None) -> dict:
    return {
        "node": "homelab",
        "ostemplate": "local:vztmpl/debian-12-lab_amd64.tar.zst",
        "bridge": "labbr0",
        "gateway": "198.18.0.1",
        "prefix_length": 24,
        "ssh_public_keys": "ssh-ed25519 AAAAtest deploy",
        "containers": {c["hostname"]: c for c in containers},
        "runner": runner,
    }


APP = _host(250, "app-demo", "198.18.0.250", True)
PROXY = _host(200, "proxy", "198.18.0.200", False)
RUNNER = _host(210, "ci-runner", "198.18.0.210", True)


@pytest.fixture
def lab(tmp_path, pve):
    """A copy of envs/lab on a local backend, driving the stub; gives plan(tfvars) and the runner."""
    workdir = tmp_path / "lab"
    shutil.copytree(LAB_ENV, workdir, ignore=shutil.ignore_patterns(".terraform*", "*.tfplan"))
    (workdir / "backend_override.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    env = {
        "PVE_API_URL": f"http://127.0.0.1:{pve.server_port}/api2/json",
        "PVE_TOKEN_ID": "root@pam!lab",
        "PVE_TOKEN_SECRET": SECRET,
    }
    runner = TerraformRunner(workdir, env=env)
    runner.init()

    def plan(tfvars: dict):
        (workdir / "vars.tfvars.json").write_text(json.dumps(tfvars))
        return runner.plan(workdir / "vars.tfvars.json")

    return runner, plan


def test_apply_creates_containers_through_the_api_and_a_second_plan_is_empty(lab, pve):
    """Create posts net0/ssh keys/start=1 per container; outputs map hostname to vmid and ip."""
    runner, plan = lab
    first = plan(_tfvars([APP, PROXY], RUNNER))
    assert first.summary() == "3 to add, 0 to change, 0 to destroy" and check_plan(first, {"app-demo"}) == []
    runner.apply(first)
    assert pve.cts[250]["net0"] == "name=eth0,bridge=labbr0,ip=198.18.0.250/24,gw=198.18.0.1"
    assert {pve.cts[250][k] for k in ("start", "ssh-public-keys", "ostemplate")} == {
        "1",
        "ssh-ed25519 AAAAtest deploy",
        "local:vztmpl/debian-12-lab_amd64.tar.zst",
    }
    assert sorted(pve.cts) == [200, 210, 250]
    assert runner.output()["containers"] == {
        "app-demo": {"vmid": 250, "ip": "198.18.0.250"},
        "proxy": {"vmid": 200, "ip": "198.18.0.200"},
    }
    assert sorted(runner.state_list()) == [
        "terraform_data.ci_runner[0]",
        'terraform_data.container["app-demo"]',
        'terraform_data.container["proxy"]',
    ]
    assert plan(_tfvars([APP, PROXY], RUNNER)).is_empty


def test_ip_change_of_a_protected_container_is_refused_and_runner_removal_errors(lab, pve):
    """The guard refuses replacing app-demo; dropping the runner trips prevent_destroy (errored plan)."""
    runner, plan = lab
    runner.apply(plan(_tfvars([APP], RUNNER)))
    moved = plan(_tfvars([{**APP, "ip": "198.18.0.251"}], RUNNER))
    assert check_plan(moved, {"app-demo", "ci-runner"}) == [
        "plan would replace protected container app-demo (250): ip changed; refusing to apply"
    ]
    orphaned = plan(_tfvars([APP], None))
    assert orphaned.errored and "prevent_destroy" in orphaned.error
    errored, destroy = check_plan(orphaned, {"app-demo", "ci-runner"})
    assert errored.startswith("plan errored: terraform plan in ") and "\n" not in errored
    assert destroy == (
        "plan would destroy protected container ci-runner (210): it is no longer in the inventory; refusing to apply"
    )
    with pytest.raises(TerraformError, match="refusing to apply an errored"):
        runner.apply(orphaned)


def test_a_host_on_shared_storage_is_created_there_and_local_plans_as_before(lab, pve):
    """The inventory's storage: `shared` is the rootfs the create posts; `local` (or none, a state from before the
    field) is neither posted nor in the input, so an old state plans no change; moving a protected host to another
    storage is a replacement the guard refuses."""
    runner, plan = lab
    runner.apply(plan(_tfvars([APP], RUNNER)))  # tfvars as written before `storage` existed
    assert "rootfs" not in pve.cts[250]
    assert plan(_tfvars([{**APP, "storage": "local"}], {**RUNNER, "storage": "local"})).is_empty
    utilities = {**_host(201, "utilities", "198.18.0.201", False), "storage": "shared"}
    runner.apply(plan(_tfvars([{**APP, "storage": "local"}, utilities], RUNNER)))
    assert pve.cts[201]["rootfs"] == "shared:8"
    assert plan(_tfvars([{**APP, "storage": "local"}, utilities], RUNNER)).is_empty
    moved = plan(_tfvars([{**APP, "storage": "shared"}, utilities], RUNNER))
    assert check_plan(moved, {"app-demo", "ci-runner"}) == [
        "plan would replace protected container app-demo (250): storage changed; refusing to apply"
    ]


def test_destroy_stops_then_deletes_and_create_adopts_an_existing_ct(lab, pve):
    """Dropping proxy stops and deletes CT 200; an existing CT with the same hostname is adopted."""
    runner, plan = lab
    pve.cts[250] = {"name": "app-demo", "status": "running"}  # already there: adopt, do not POST
    runner.apply(plan(_tfvars([APP, PROXY], None)))
    assert not [c for c in pve.calls if c[0] == "POST" and c[2].get("vmid") == "250"]
    pve.calls.clear()
    runner.apply(plan(_tfvars([APP], None)))
    assert [(m, p) for m, p, _ in pve.calls if m != "GET"] == [("POST", "lxc/200/status/stop"), ("DELETE", "lxc/200")]
    assert 200 not in pve.cts


def test_a_failed_task_fails_the_apply_in_one_line_without_the_token(lab, pve):
    """exitstatus other than OK fails create: one line naming CT and task text; the secret is masked."""
    runner, plan = lab
    pve.exitstatus = "unable to create CT 250 - storage 'local' full"
    with pytest.raises(TerraformError) as failure:
        runner.apply(plan(_tfvars([APP], None)))
    message = str(failure.value)
    assert "create CT 250 (app-demo)" in message and "storage 'local' full" in message
    assert "\n" not in message and SECRET not in message


def test_a_host_left_out_is_not_planned_nor_touched_and_the_others_are(lab, pve):
    """A host the run leaves out (its node down, deploy.node_down: proceed): the plan -target's every other resource
    (read from a plan that does not refresh), so app-demo's replacement is neither planned nor applied (no call
    about CT 250) while utilities is created and proxy kept; the second plan of the same targets is empty, and a
    plan of everything, once the node is back, still has app-demo's change to make."""
    runner, plan = lab
    runner.apply(plan(_tfvars([APP, PROXY], RUNNER)))
    utilities = _host(201, "utilities", "198.18.0.201", False)
    wanted = _tfvars([{**APP, "ip": "198.18.0.251"}, PROXY, utilities], RUNNER)
    assert plan(wanted).summary() == "2 to add, 0 to change, 1 to destroy"  # app-demo replaced, utilities created
    tfvars = runner.workdir / "vars.tfvars.json"
    deployment = SimpleNamespace(inventory=_Hosts(APP, PROXY, utilities, RUNNER), left_out={250: "node homelab-2 down"})
    targets = plan_stage.targets_without_left_out(deployment, runner, tfvars)
    assert sorted(targets) == ["terraform_data.ci_runner[0]", 'terraform_data.container["proxy"]',
                               'terraform_data.container["utilities"]']
    pve.calls.clear()
    targeted = runner.plan(tfvars, targets)
    assert [(c.address, c.actions) for c in targeted.changes if c.actions != ("no-op",)] == [
        ('terraform_data.container["utilities"]', ("create",))]
    runner.apply(targeted)
    assert sorted(pve.cts) == [200, 201, 210, 250] and pve.cts[250]["net0"].startswith("name=eth0,bridge=labbr0,ip=198.18.0.250/")
    assert not [c for c in pve.calls if "250" in c[1] or c[2].get("vmid") == "250"], pve.calls
    assert set(runner.output()["containers"]) == {"app-demo", "proxy", "utilities"}  # the targeted apply's outputs
    assert runner.plan(tfvars, targets).is_empty
    assert [c.address for c in runner.plan(tfvars).changes if c.deletes] == ['terraform_data.container["app-demo"]']


class _Hosts:
    """The inventory's `host(vmid)` for the stub's containers."""

    def __init__(self, *hosts: dict):
        self.by_vmid = {h["vmid"]: SimpleNamespace(hostname=h["hostname"], vmid=h["vmid"]) for h in hosts}

    def host(self, vmid: int):
        return self.by_vmid[vmid]
