"""ansible/roles/stack: docker_container runs only for a container the one read shows different from its declaration.

The role's real run task, its module swapped for debug, on localhost with a made-up read of the host's Docker:
which containers it would converge. Nothing on the machine is changed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from plugins.tools.playbooks import ROLES_DIR, run_playbook

pytestmark = pytest.mark.unit

RUN_TASK = "Run the services' containers"
IMAGE_ID = "sha256:" + "a" * 64


def service(name: str) -> dict:
    """One entry of the stack_services host var, as plugins/stack/hostvars.py derives it."""
    return {"name": name, "container": name, "image": f"{name}:1", "pull": True, "command": [], "ports": ["80:80"],
            "env": {"A": "1"}, "secret_env": [], "volumes": [], "named_volumes": [], "host_dirs": [], "files": [],
            "healthcheck": None, "restart_policy": "unless-stopped", "init": True, "stop_signal": None}


SERVICES = [service(n) for n in ("same", "stopped", "redeclared", "new-image", "off-network", "restart-policy",
                                 "missing", "reconfigured")]


def run_task_as(module: dict) -> dict:
    """The stack role's run task with its module replaced."""
    [task] = [t for t in yaml.safe_load((ROLES_DIR / "stack" / "tasks" / "main.yml").read_text())
              if t.get("name") == RUN_TASK]
    del task["community.docker.docker_container"]
    return {**task, **module, "no_log": False}


def keep_task() -> dict:
    """The role's task that keeps what its read found (stack_docker_now)."""
    [keep] = [t for t in yaml.safe_load((ROLES_DIR / "stack" / "tasks" / "main.yml").read_text())
              if t.get("name") == "Keep what the read found"]
    return keep


def play(tmp_path: Path, tasks: list[dict], variables: dict) -> list[dict]:
    """Run tasks on localhost with the stack role's defaults and the given vars, after the role's task keeping what its
    read found; the last task's loop items' events."""
    tasks = [keep_task(), *tasks]
    defaults = yaml.safe_load((ROLES_DIR / "stack" / "defaults" / "main.yml").read_text())
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump([{"name": "The stack role's run task", "hosts": "all", "gather_facts": False,
                                     "vars": {**defaults, **variables}, "tasks": tasks}]))
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    result = run_playbook(path, {"all": {"hosts": {"localhost": host}}}, private_key=tmp_path / "unused")
    assert result.ok, result.recap()
    return [e for e in result.events if e.get("event", "").startswith("runner_item_on_")
            and e["event_data"].get("task") == tasks[-1]["name"]]


def test_docker_container_runs_only_for_the_containers_that_differ(tmp_path):
    """Same label, running, on the network, same restart policy and image: skipped; any one different, missing, or a
    changed configuration file: docker_container runs for it."""
    variables = {"stack_selected": SERVICES, "stack_network_name": "homelab"}
    digests = {e["event_data"]["res"]["item"]["name"]: e["event_data"]["res"]["msg"]
               for e in play(tmp_path, [run_task_as({"ansible.builtin.debug": {"msg": "{{ stack_declaration }}"},
                                                     "when": True})], variables)}
    assert len(set(digests.values())) == len(SERVICES) and {len(d) for d in digests.values()} == {64}

    def read(name: str, **changed) -> str:
        line = {"name": f"/{name}", "running": True, "image": IMAGE_ID, "restart": "unless-stopped",
                "declaration": digests[name], "networks": {"homelab": {}, "bridge": {}}, **changed}
        return json.dumps(line)

    lines = [read("same"), read("stopped", running=False), read("redeclared", declaration="0" * 64),
             read("new-image", image="sha256:" + "b" * 64), read("off-network", networks={"bridge": {}}),
             read("restart-policy", restart="no"), read("reconfigured")]
    images = [f"{IMAGE_ID} {s['image']}" for s in SERVICES] + ["sha256:" + "c" * 64 + " <none>:<none>"]
    variables |= {
        "stack_docker_read": {"rc": 0, "stdout": "\n@@stack@@\n".join(
            ["bridge\nhomelab", "netbox-db", "\n".join(images), "\n".join(lines)])},
        "stack_files_written": {"results": [{"changed": True, "item": [SERVICES[-1], {"dest": "/x"}]}]},
    }
    events = play(tmp_path, [run_task_as({"ansible.builtin.debug": {"msg": "{{ item.container }}"}})], variables)
    ran = sorted(e["event_data"]["res"]["msg"] for e in events if e["event"] == "runner_item_on_ok")
    skipped = [e for e in events if e["event"] == "runner_item_on_skipped"]
    assert [e["event_data"]["res"]["item"]["name"] for e in skipped] == ["same"]
    assert ran == sorted(n["name"] for n in SERVICES if n["name"] != "same")


def test_the_run_task_labels_each_container_with_its_declaration():
    """The label the read compares is the one docker_container sets, and the read asks Docker for it."""
    [task] = [t for t in yaml.safe_load((ROLES_DIR / "stack" / "tasks" / "main.yml").read_text())
              if t.get("name") == RUN_TASK]
    assert task["community.docker.docker_container"]["labels"] == {"homelab.declaration": "{{ stack_declaration }}"}
    defaults = yaml.safe_load((ROLES_DIR / "stack" / "defaults" / "main.yml").read_text())
    assert '(index .Config.Labels "homelab.declaration")' in defaults["stack_inspect_format"]


@pytest.mark.parametrize("option", ["image", "command", "ports", "env", "volumes", "healthcheck", "restart_policy",
                                    "init", "stop_signal", "network"])
def test_the_declaration_digest_covers_every_option_given(option):
    """Every option docker_container is given from the declaration is in the digest its label holds."""
    [task] = [t for t in yaml.safe_load((ROLES_DIR / "stack" / "tasks" / "main.yml").read_text())
              if t.get("name") == RUN_TASK]
    assert f"'{option}':" in task["vars"]["stack_declaration"]


FAKE_DOCKER = """#!/bin/sh
# What the Docker CLI prints for the stack role's read (a missing container: nothing on stdout, rc 1).
case "$1 $2" in
  "network ls") printf 'bridge\\nhomelab\\n' ;;
  "volume ls") printf 'netbox-db\\n' ;;
  "image ls") printf 'sha256:%s same:1\\nsha256:%s <none>:<none>\\n' "$(printf 'a%.0s' $(seq 64))" "$(printf 'c%.0s' $(seq 64))" ;;
  "container inspect")
    echo "$4" > "$(dirname "$0")/format"
    shift 4
    for name in "$@"; do [ "$name" = same ] && printf '{"name": "/same", "running": true, "image": "x", "restart": "no", "declaration": "", "networks": {"homelab": {}}}\\n'; done
    exit 1 ;;
esac
"""


def test_the_read_parses_what_the_docker_cli_prints(tmp_path):
    """The role's read task, with a stand-in docker on PATH: networks, volumes, images by reference, the containers
    that exist by name; the format given to `docker container inspect` is the role's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    [read] = [t for t in yaml.safe_load((ROLES_DIR / "stack" / "tasks" / "main.yml").read_text())
              if "ansible.builtin.command" in t]
    tasks = [{**read, "environment": {"PATH": f"{bin_dir}:/usr/bin:/bin"}}, keep_task(),
             {"name": "Show what it found", "ansible.builtin.debug": {"var": "stack_docker_now"}}]
    defaults = yaml.safe_load((ROLES_DIR / "stack" / "defaults" / "main.yml").read_text())
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump([{"name": "The stack role's read", "hosts": "all", "gather_facts": False,
                                     "vars": {**defaults, "stack_selected": SERVICES[:2], "stack_retired": ["old"]},
                                     "tasks": tasks}]))
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    result = run_playbook(path, {"all": {"hosts": {"localhost": host}}}, private_key=tmp_path / "unused")
    assert result.ok, result.recap()
    [found] = [e["event_data"]["res"]["stack_docker_now"] for e in result.events if e.get("event") == "runner_on_ok"
               and e["event_data"]["task"] == "Show what it found"]
    assert found["networks"] == ["bridge", "homelab"] and found["volumes"] == ["netbox-db"]
    assert found["images"]["same:1"] == IMAGE_ID
    assert list(found["containers"]) == ["same"] and found["containers"]["same"]["running"] is True
    assert (bin_dir / "format").read_text().strip() == defaults["stack_inspect_format"].replace(
        "{% raw %}", "").replace("{% endraw %}", "")


def test_the_pull_task_pulls_only_references_the_host_lacks(tmp_path):
    """The services' images and the images a role's builds start from (stack_extra_images), each once, minus what the
    read found."""
    [pull] = [t for t in yaml.safe_load((ROLES_DIR / "stack" / "tasks" / "main.yml").read_text())
              if t.get("name") == "Pull the services' images"]
    task = {"name": pull["name"], "ansible.builtin.debug": {"msg": "{{ item }}"}, "loop": pull["loop"]}
    variables = {"stack_selected": [service("same"), service("new"), {**service("built"), "pull": False}],
                 "stack_extra_images": ["node:24", "new:1"],
                 "stack_docker_read": {"rc": 0, "stdout": f"homelab\n@@stack@@\n\n@@stack@@\n{IMAGE_ID} same:1\n@@stack@@\n"}}
    events = play(tmp_path, [task], variables)
    assert [e["event_data"]["res"]["msg"] for e in events if e["event"] == "runner_item_on_ok"] == ["new:1", "node:24"]
