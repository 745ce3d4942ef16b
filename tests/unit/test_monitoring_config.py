"""The monitoring host's generated configuration, for BOTH inventories: Prometheus's (promtool check config and
check rules), Grafana's provisioning and the repository's dashboards, the log shipper's."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import yaml

from plugins.inventory import load_inventory
from plugins.stack import ansible_inventory, grafana, prometheus, promtail
from plugins.stack.configs import host_path

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = {name: ROOT / "inventories" / f"{name}.yml" for name in ("lab", "homelab")}
PROMTOOL = shutil.which("promtool")
run = partial(subprocess.run, check=False, capture_output=True, text=True, timeout=60)
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: scripts/install.sh installs "
                                                               "Debian's prometheus package")


@pytest.fixture(params=sorted(INVENTORIES), scope="module")
def inventory(request):
    """Each shipped inventory."""
    return load_inventory(INVENTORIES[request.param])


def host_running(inventory, name):
    """The host that runs a service."""
    return next(h for h in inventory.hosts if name in h.services)


def render(inventory, host, name, directory: Path) -> dict[str, Path]:
    """The stack role's files for one service, written under directory by their host paths; their paths."""
    entry = next(e for e in ansible_inventory(inventory)["all"]["hosts"][host.hostname]["stack_services"]
                 if e["name"] == name)
    written = {}
    for item in entry["files"]:
        path = directory / item["dest"].lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(item["content_b64"]))
        written[item["dest"]] = path
    return written


@needs_promtool
def test_promtool_accepts_the_generated_configuration_and_the_rules(inventory, tmp_path):
    """promtool check config on the rendered prometheus.yml (it checks the rule files it names, too)."""
    host = host_running(inventory, "prometheus")
    decl = inventory.catalog["prometheus"]
    files = render(inventory, host, "prometheus", tmp_path)
    config = files[host_path(decl, prometheus.CONFIG_FILE)]
    done = run([PROMTOOL, "check", "config", str(config)])
    assert done.returncode == 0, done.stdout + done.stderr
    rules = len(prometheus.rule_files())
    assert rules and f"SUCCESS: {rules} rule files found" in done.stdout + done.stderr, done.stdout + done.stderr


@needs_promtool
def test_promtool_accepts_the_rules(tmp_path):
    """promtool check rules on every rule file of the repository."""
    paths = sorted(prometheus.RULES_DIR.glob("*.yml"))
    assert paths
    done = run([PROMTOOL, "check", "rules", *map(str, paths)])
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_refuses_a_broken_rule(tmp_path):
    """The check can fail: a rule with a PromQL syntax error is refused."""
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: up ==\n")
    done = run([PROMTOOL, "check", "rules", str(broken)])
    assert done.returncode != 0


def test_prometheus_scrapes_every_node_exporter_traefik_and_itself(inventory):
    """One node target per host that runs a node exporter (every host), Traefik's entrypoint, itself."""
    config = prometheus.scrape_config(inventory, inventory.catalog["prometheus"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", "node", "traefik"}
    nodes = {c["labels"]["instance"]: c["targets"] for c in jobs["node"]["static_configs"]}
    assert set(nodes) == {h.hostname for h in inventory.hosts}, "a host without a node exporter"
    node_port = inventory.catalog["node-exporter"].ports[0].published
    assert all(targets == [f"{inventory.host(name).ip}:{node_port}"] for name, targets in nodes.items())
    traefik_port = inventory.catalog["traefik"].port_named("traefik").published
    assert jobs["traefik"]["static_configs"][0]["targets"] == [f"{inventory.proxy_host.ip}:{traefik_port}"]
    assert inventory.catalog["traefik"] and "metrics" in ansible_inventory(inventory)["all"]["hosts"][
        inventory.proxy_host.hostname]["proxy_static_config"]


def test_grafana_provisions_prometheus_and_loki_by_container_name(inventory):
    """Both datasources, on Grafana's host's Docker network: http://<container>:<container port>."""
    host = host_running(inventory, "grafana")
    sources = {s["uid"]: s for s in grafana.datasources(inventory, host)["datasources"]}
    assert set(sources) == {"prometheus", "loki"}
    assert sources["prometheus"]["url"] == "http://prometheus:9090" and sources["prometheus"]["isDefault"]
    assert sources["loki"]["url"] == "http://loki:3100"


def panels(board: dict) -> list[dict]:
    """Every panel of a dashboard, rows' panels included."""
    found = []
    for panel in board.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def datasource_uids(thing: dict) -> list[str]:
    """The datasource uids a panel or template variable refers to (its own and its targets')."""
    found = []
    for holder in [thing, *thing.get("targets", [])]:
        source = holder.get("datasource")
        if isinstance(source, dict) and "uid" in source:
            found.append(source["uid"])
        elif source is not None:
            found.append(source)
    return found


def test_dashboards_are_valid_and_refer_to_provisioned_datasources_only(inventory):
    """Structure (uid, title, schemaVersion, panels with id, type, gridPos), unique uids and panel ids, and
    every datasource uid is a provisioned one."""
    boards = grafana.dashboards()
    assert len(boards) >= 2
    provisioned = {s["uid"] for s in grafana.datasources(inventory, host_running(inventory, "grafana"))["datasources"]}
    uids = [board["uid"] for board in boards.values()]
    assert len(uids) == len(set(uids)), f"two dashboards share a uid: {uids}"
    for name, board in boards.items():
        assert isinstance(board.get("title"), str) and board["title"], name
        assert isinstance(board.get("schemaVersion"), int), name
        assert board.get("panels"), f"{name}: no panels"
        ids = [panel["id"] for panel in panels(board)]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        for panel in panels(board):
            assert {"type", "title", "gridPos"} <= set(panel), f"{name}: panel {panel.get('id')}"
            for uid in datasource_uids(panel):
                assert uid in provisioned, f"{name}: panel {panel['id']} uses datasource {uid!r}, not provisioned"
        for variable in board.get("templating", {}).get("list", []):
            for uid in datasource_uids(variable):
                assert uid in provisioned, f"{name}: variable {variable['name']} uses datasource {uid!r}"


def test_a_panel_on_an_unprovisioned_datasource_is_caught(inventory):
    """The reference check can fail: a panel naming datasource `nowhere`."""
    board = json.loads(json.dumps(next(iter(grafana.dashboards().values()))))
    board["panels"][0]["datasource"] = {"type": "prometheus", "uid": "nowhere"}
    provisioned = {s["uid"] for s in grafana.datasources(inventory, host_running(inventory, "grafana"))["datasources"]}
    assert any(uid not in provisioned for panel in panels(board) for uid in datasource_uids(panel))


def test_grafana_mounts_its_provisioning_and_dashboards(inventory, tmp_path):
    """The rendered files land in the host directories services/grafana.yml mounts, the provider's path among them."""
    host = host_running(inventory, "grafana")
    files = render(inventory, host, "grafana", tmp_path)
    decl = inventory.catalog["grafana"]
    provider = yaml.safe_load(files[host_path(decl, f"{grafana.PROVISIONING}/dashboards/homelab.yaml")].read_text())
    assert provider["providers"][0]["options"]["path"] == grafana.DASHBOARDS
    assert {host_path(decl, f"{grafana.DASHBOARDS}/{name}") for name in grafana.dashboards()} <= set(files)


def test_every_shipper_pushes_to_the_inventorys_loki(inventory):
    """Loki's host by container name, the others by Loki's host address and published port."""
    loki_host = host_running(inventory, "loki")
    for host in inventory.hosts:
        assert "promtail" in host.services, f"{host.hostname} ships no logs"
        config = promtail.config(inventory, host, inventory.catalog["promtail"])
        expected = ("http://loki:3100" if host is loki_host else f"http://{loki_host.ip}:3100") + "/loki/api/v1/push"
        assert config["clients"] == [{"url": expected}]
        labels = config["scrape_configs"][0]["static_configs"][0]["labels"]
        assert labels["host"] == host.hostname and labels["__path__"] == promtail.DOCKER_LOGS


def test_the_stack_role_writes_the_files_untouched_by_ansibles_templating(tmp_path):
    """The stack role's files tasks, run by real Ansible on localhost with the lab monitoring host's entries:
    every file lands byte for byte as generated, the rules' {{ $labels }} and dashboards' {{instance}} too; run
    again, they write nothing; a file changed on the host (or its mode) is written back, and only that one."""
    from plugins.tools.playbooks import run_playbook

    def here(path: str) -> str:
        return str(tmp_path / "host" / path.lstrip("/"))

    hostvars = ansible_inventory(load_inventory(INVENTORIES["lab"]))["all"]["hosts"]["monitoring"]
    selected = [{**entry, "host_dirs": [here(d) for d in entry["host_dirs"]],
                 "files": [{**f, "dest": here(f["dest"])} for f in entry["files"]]}
                for entry in hostvars["stack_services"] if entry["files"]]
    for entry in selected:
        for item in entry["files"]:
            Path(item["dest"]).parent.mkdir(parents=True, exist_ok=True)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "stack_selected": selected}
    play = tmp_path / "files.yml"
    play.write_text(
        "- name: Write the generated files as the stack role does\n  hosts: monitoring\n  gather_facts: false\n"
        "  tasks:\n    - name: Run the stack role's files tasks\n      ansible.builtin.include_role:\n"
        "        name: stack\n        tasks_from: files\n")
    inventory = {"all": {"hosts": {"monitoring": local}}}
    files = [item for entry in selected for item in entry["files"]]

    def written_files() -> list[str]:
        """Run the tasks; the files they wrote. Each file not written must be skipped, never copied again."""
        result = run_playbook(play, inventory, private_key=tmp_path / "unused")
        assert result.ok, result.recap()
        items = [e for e in result.events if e["event_data"].get("task", "").startswith("Write")
                 and e.get("event") in ("runner_item_on_ok", "runner_item_on_skipped")]
        assert len(items) == len(files)
        written = [e for e in items if e["event"] == "runner_item_on_ok"]
        assert all(e["event_data"]["res"].get("changed") for e in written), "a file was copied only to find it the same"
        return sorted(e["event_data"]["res"]["dest"] for e in written)

    assert written_files() == sorted(item["dest"] for item in files)
    for item in files:
        assert Path(item["dest"]).read_bytes() == base64.b64decode(item["content_b64"]), item["dest"]
    assert len(files) >= 5
    rules = next(Path(f["dest"]) for f in files if f["dest"].endswith("rules/homelab.yml"))
    assert "{{ $labels.instance }}" in rules.read_text()

    assert written_files() == [], "a second run with nothing changed wrote files"
    rules.write_text("changed on the host\n")
    Path(files[0]["dest"]).chmod(0o600)
    assert written_files() == sorted({str(rules), files[0]["dest"]})
    assert rules.read_bytes() == base64.b64decode(next(f for f in files if f["dest"] == str(rules))["content_b64"])
