"""pytest suites/deploy end to end on the lab: first deploy, no-change redeploy, rollback, guard, preflight.

A failed deploy's data coming back (a destructive migration, NetBox's and Zabbix's rows) is
tests/e2e/test_rollback_with_data_e2e.py's.

Every run is the Makefile's own command (`make -n deploy|plan|health`), options included: what a user
types. The tests run in file order and share the lab: the first deploys from nothing, the next ones
start from what it built; the no-change redeploy comes last, so the lab is handed on deployed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lab_driving import hand_over

from lab import scenarios
from lab.hosts import LabHosts
from plugins.deploy.run_lock import state_dir
from plugins.inventory import load_inventory
from plugins.proxmox.client import ProxmoxClient

INVENTORY = load_inventory(scenarios.LAB_INVENTORY)
APP = INVENTORY.host("app-demo")
RUNNER = INVENTORY.runner_host
SENTINEL = "/opt/app-demo/src/README.md"


@pytest.fixture(scope="module")
def proxmox(lab_status):
    """A Proxmox client on the lab's emulator, to read state the way the suite does."""
    return ProxmoxClient.from_inventory(INVENTORY, env=scenarios.suite_env())


def snapshots_everywhere(proxmox) -> dict[int, list[str]]:
    """{vmid: snapshot names} of every inventory container that exists."""
    existing = proxmox.containers(INVENTORY.proxmox.node)
    return {h.vmid: [s["name"] for s in proxmox.snapshots(h.node, h.vmid)] for h in INVENTORY.hosts
            if h.vmid in existing}


@pytest.fixture(scope="module")
def first_deploy(lab_status):
    """Deploy from an empty lab (containers destroyed, Terraform state dropped)."""
    scenarios.empty_lab()
    run = scenarios.run_suite("deploy")
    assert run.rc == 0, f"first deploy failed (rc {run.rc}):\n{run.tail()}"
    return run


def test_first_deploy_creates_every_container_and_the_health_suite_passes(first_deploy, proxmox):
    """From nothing: every inventory container exists and runs, the result says so, suites/health passes."""
    containers = proxmox.containers(INVENTORY.proxmox.node)
    missing = [h.hostname for h in INVENTORY.hosts if containers.get(h.vmid, {}).get("status") != "running"]
    assert not missing, f"not running after the first deploy: {missing}"
    assert sorted(first_deploy.result["first_deploy"]) == sorted(h.vmid for h in INVENTORY.rollback_set)
    health = scenarios.run_suite("health")
    assert health.rc == 0, f"suites/health after the first deploy:\n{health.tail()}"


def test_plan_only_changes_nothing(first_deploy, proxmox):
    """--plan-only: preflight, plan + guard, ansible --check; no snapshot, no apply, no notification."""
    before = snapshots_everywhere(proxmox)
    run = scenarios.run_suite("deploy", "--plan-only")
    assert run.rc == 0, f"--plan-only failed:\n{run.tail()}"
    assert not run.result["snapshots"] and not run.result["applied"]
    assert run.result["ansible"]["site"]["check"], run.result["ansible"]
    assert snapshots_everywhere(proxmox) == before


def test_a_deploy_that_breaks_a_service_is_rolled_back(first_deploy, proxmox, tmp_path):
    """A bad change to the app fails health: the terminal names the service and its answer, the hosts come
    back as they were (not the runner), and result.json, deploy-result.md, the notification and Allure say so."""
    source = scenarios.broken_app_copy(tmp_path)
    inventory = scenarios.short_deadlines_variant(tmp_path)
    results = tmp_path / "allure-results"
    before = scenarios.ssh_root(APP.ip, f"cat {SENTINEL}").stdout
    marker = f"untouched-{tmp_path.name}"
    # A file the deploy never writes and PID 1's start time: a rollback or restart of the runner changes them.
    runner_state = f"echo {marker} > /root/e2e-marker && cat /root/e2e-marker && ps -o lstart= -p 1"
    runner_before = scenarios.ssh_root(RUNNER.ip, runner_state).stdout

    run = scenarios.run_suite("deploy", "--ansible-var", f"app_demo_src={source}/", inventory=inventory,
                              alluredir=results)

    assert run.rc != 0, f"a deploy whose health failed exited 0:\n{run.tail()}"
    assert "INTERNALERROR" not in run.output, run.tail(80)
    service = APP.endpoints[0]
    failures, _, end = run.output.partition("end of the deploy run")
    assert f"{service.name} {service.url}: got 500" in failures.partition("FAILURES")[2], run.tail(80)
    rollback = run.result["rollback"]
    assert rollback and rollback["ok"], f"rollback did not succeed: {rollback}\n{run.tail()}"
    assert f"rollback succeeded in {rollback['seconds']} s" in end, run.tail(40)
    assert set(rollback["rolled_back"]) == {h.hostname for h in INVENTORY.rollback_set}
    assert run.result["status"] == "failed" and "result written to" in run.result["notification"]
    markdown = (scenarios.ROOT / "reports" / "deploy-result.md").read_text()
    assert markdown.startswith(f"## Deploy failed: lab (run {run.result['run_id']})"), markdown
    assert f"### Rollback succeeded in {rollback['seconds']} s" in markdown
    ends = [json.loads(f.read_text()) for f in results.glob("*-result.json")]
    ends = [r for r in ends if r["name"] == "deploy › rollback"]
    assert [r["status"] for r in ends] == ["passed"], f"Allure results of the rollback: {ends}"

    assert scenarios.ssh_root(APP.ip, f"cat {SENTINEL}").stdout == before, "the sentinel file was not restored"
    answer = scenarios.ssh_root(APP.ip, f"curl -s -o /dev/null -w '%{{http_code}}' {service.url}").stdout
    assert answer == "200", f"{service.url} answers {answer} after the rollback"
    assert run.result["snapshot_name"] not in snapshots_everywhere(proxmox).get(RUNNER.vmid, [])
    runner_after = scenarios.ssh_root(RUNNER.ip, "cat /root/e2e-marker && ps -o lstart= -p 1").stdout
    assert runner_after == runner_before and marker in runner_after, "the runner was rolled back or restarted"


def test_the_guard_refuses_to_replace_a_protected_container(first_deploy, proxmox, tmp_path):
    """Moving app-demo to a new address would replace it: refused before apply, nothing changed, no snapshot."""
    inventory = scenarios.inventory_variant(tmp_path, "moved-app", _move_app)
    before = snapshots_everywhere(proxmox)

    run = scenarios.run_suite("deploy", inventory=inventory)

    assert run.rc != 0, f"the guard let a replace through:\n{run.tail()}"
    assert any("plan would replace protected container app-demo (250)" in r for r in run.result["plan_refusals"])
    assert not run.result["applied"] and not run.result["snapshots"]
    assert snapshots_everywhere(proxmox) == before, "snapshots changed although the guard refused"
    assert LabHosts().list() and {h.vmid: h.ip for h in LabHosts().list()}[APP.vmid] == APP.ip


def test_a_wrong_node_fails_preflight_naming_the_nodes_that_exist(first_deploy, proxmox, tmp_path):
    """proxmox.node 'pve': preflight says which node exists, before any snapshot or API write."""
    inventory = scenarios.inventory_variant(tmp_path, "wrong-node", _node_pve)
    before = snapshots_everywhere(proxmox)

    run = scenarios.run_suite("deploy", inventory=inventory)

    assert run.rc != 0
    assert "node 'pve' not found on https://127.0.0.1:8006; nodes: homelab" in run.output, run.tail()
    assert run.result["stages"]["preflight"]["outcome"] == "failed"
    assert not run.result["snapshots"] and not run.result["applied"]
    assert snapshots_everywhere(proxmox) == before


def test_a_second_deploy_changes_nothing_and_reports_without_secrets(request, first_deploy, lab_status, tmp_path):
    """Again, unchanged (after the rolled-back and the refused deploys, which left the first's lab): Terraform plans
    nothing, site.yml reports changed=0 on every host; Allure has no secret. It is the module's last deploy, so the
    next module's deployed lab is this passing plain one, not one more deploy after the rolled-back run."""
    results = tmp_path / "allure-results"
    run = scenarios.run_suite("deploy", "--idempotence", alluredir=results)
    assert run.rc == 0, f"redeploy failed:\n{run.tail()}"
    assert run.result["plan"]["empty"], f"redeploy planned changes: {run.result['plan']}"
    site = run.result["ansible"]["site"]
    assert site["status"] == "successful" and site["changed_total"] == 0, f"the no-change redeploy changed: {site}"
    texts = {f.name: f.read_text(errors="replace") for f in results.iterdir() if f.is_file()}
    leaked = [name for name, text in texts.items() if lab_status["token_secret"] in text]
    assert not leaked, f"the PVE token secret is in {leaked}"
    attached = " ".join(texts.values())
    for expected in ("terraform plan summary", "ansible recap site", "http answers"):
        assert expected in attached, f"no '{expected}' attachment in the Allure results"
    hand_over(request, run)


def _move_app(document: dict) -> None:
    app = next(h for h in document["hosts"] if h["hostname"] == "app-demo")
    app["ip"] = "198.18.0.251"  # its services' URLs follow: they are derived


def _node_pve(document: dict) -> None:
    document["proxmox"]["node"] = "pve"


def test_no_secret_appears_in_any_report_log_or_result(first_deploy, lab_status, tmp_path_factory):
    """After every deploy of this module (success, no change, rollbacks, refusals): no value of the PVE tokens,
    the services' secrets (stack.secrets, from `lab env`) or the deploy key is in reports/, the suite's state
    directory, any run's Allure results, or the first deploy's output."""
    env = scenarios.suite_env()
    secrets = {"PVE token": lab_status["token_secret"], "read-only PVE token": lab_status["readonly_token_secret"]}
    secrets |= {source.env: env[source.env] for source in INVENTORY.stack.secrets.values()}
    key_body = [line for line in Path(INVENTORY.runner.deploy_key).read_text().splitlines() if "-----" not in line]
    secrets |= {f"deploy key line {n}": line for n, line in enumerate(key_body) if len(line) >= 16}
    assert all(len(value) >= 12 for value in secrets.values()), "a secret too short to grep for"
    roots = [scenarios.ROOT / "reports", state_dir(env), tmp_path_factory.getbasetemp()]
    files = [path for root in roots if root.is_dir() for path in root.rglob("*") if path.is_file()]
    assert any(path.name == "deploy-result.md" for path in files), "no report to grep: the test would prove nothing"
    leaks = [f"{name} in {path}" for path in files for name, value in secrets.items()
             if value.encode() in path.read_bytes()]
    leaks += [f"{name} in the first deploy's output" for name, value in secrets.items() if value in first_deploy.output]
    assert not leaks, f"secrets leaked: {leaks}"
