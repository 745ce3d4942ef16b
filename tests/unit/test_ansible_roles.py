"""ansible/: role layout and conventions, lint, syntax, ports agreeing with the inventory, templates and
key checks rendered by real ansible on localhost (nothing on the machine is changed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from plugins.inventory import load_inventory
from plugins.tools.playbooks import ANSIBLE_CFG, ANSIBLE_DIR, PLAYBOOKS_DIR, ROLES_DIR, run_playbook, runner_env

pytestmark = pytest.mark.unit

ROOT = ANSIBLE_DIR.parent
LAB_INVENTORY = ROOT / "inventories" / "lab.yml"
ROLES = ["bootstrap", "proxy", "app_demo", "monitoring", "utilities", "github_runner", "docker_service"]
DEPLOYED_ROLES = ["proxy", "app_demo", "monitoring", "utilities"]
VENV_BIN = Path(sys.executable).parent


def load_yaml(path: Path):
    """Parse one YAML file."""
    return yaml.safe_load(path.read_text())


def group_vars() -> dict:
    """ansible/playbooks/group_vars/all.yml."""
    return load_yaml(PLAYBOOKS_DIR / "group_vars" / "all.yml")


def role_defaults(role: str) -> dict:
    """defaults/main.yml of a role."""
    return load_yaml(ROLES_DIR / role / "defaults" / "main.yml") or {}


def task_files(role: str) -> list[Path]:
    """Every task and handler file of a role."""
    return sorted((ROLES_DIR / role).glob("tasks/*.yml")) + sorted((ROLES_DIR / role).glob("handlers/*.yml"))


@pytest.mark.parametrize("role", ROLES)
def test_role_has_defaults_meta_and_tasks(role):
    """Each role has defaults/main.yml, meta/main.yml with galaxy_info, tasks/main.yml."""
    base = ROLES_DIR / role
    missing = [p for p in ("defaults/main.yml", "meta/main.yml", "tasks/main.yml") if not (base / p).is_file()]
    assert not missing, f"role {role}: missing {', '.join(missing)}"
    assert load_yaml(base / "meta" / "main.yml")["galaxy_info"]["role_name"] == role


@pytest.mark.parametrize("role", ROLES)
def test_role_variables_carry_the_role_prefix(role):
    """Every default is named <role>_… (geerlingguy style): no collisions between roles."""
    stray = [name for name in role_defaults(role) if not name.startswith(f"{role}_")]
    assert not stray, f"role {role}: defaults without the '{role}_' prefix: {', '.join(stray)}"


@pytest.mark.parametrize("role", ROLES)
def test_task_names_are_sentences(role):
    """Every task and handler has a name that starts with a capital letter."""
    bad = [
        f"{path.relative_to(ROLES_DIR)}: {task.get('name')!r}"
        for path in task_files(role)
        for task in load_yaml(path) or []
        if not str(task.get("name") or "")[:1].isupper()
    ]
    assert not bad, "tasks without a sentence as name: " + "; ".join(bad)


@pytest.mark.parametrize("role", ROLES)
def test_commands_say_when_they_change(role):
    """A command task always states changed_when (a rerun must report changed=0)."""
    bad = [
        f"{path.relative_to(ROLES_DIR)}: {task['name']}"
        for path in task_files(role)
        for task in load_yaml(path) or []
        if {"ansible.builtin.command", "ansible.builtin.shell"} & task.keys() and "changed_when" not in task
    ]
    assert not bad, "commands without changed_when: " + "; ".join(bad)


def test_the_private_key_task_is_never_logged():
    """Every github_runner task that touches the private key has no_log: true."""
    tasks = load_yaml(ROLES_DIR / "github_runner" / "tasks" / "main.yml")
    touching = [
        t
        for t in tasks
        if "github_runner_private_key }}" in json.dumps(t)
        or "'PRIVATE KEY' in github_runner_private_key" in json.dumps(t)
    ]
    assert touching, "no task writes github_runner_private_key"
    assert all(t.get("no_log") is True for t in touching), [t["name"] for t in touching if t.get("no_log") is not True]


def test_app_sync_excludes_node_modules_and_git_as_the_deploy_user():
    """Incidents #10/#11: synchronize excludes node_modules and .git and runs with become: false."""
    assert {"node_modules", ".git"} <= set(role_defaults("app_demo")["app_demo_sync_excludes"])
    [sync] = [t for t in load_yaml(ROLES_DIR / "app_demo" / "tasks" / "main.yml") if "ansible.posix.synchronize" in t]
    assert sync["become"] is False
    assert sync["ansible.posix.synchronize"]["verify_host"] is True, "rsync's ssh must check host keys"


def test_playbooks_connect_as_root_for_bootstrap_and_as_deploy_user_after():
    """bootstrap.yml logs in as root (the key given at create); the role playbooks as the deploy user."""
    assert load_yaml(PLAYBOOKS_DIR / "bootstrap.yml")[0]["remote_user"] == "root"
    for name in ("proxy", "app_demo", "monitoring", "utilities", "github_runner"):
        [play] = load_yaml(PLAYBOOKS_DIR / f"{name}.yml")
        assert "deploy_user" in play["remote_user"] and play["become"] is True, name
        assert play["roles"] == [name] and play["hosts"] == name


def test_ansible_cfg_checks_host_keys():
    """ansible.cfg never disables host key checking, writes no retry files, pipelines."""
    text = ANSIBLE_CFG.read_text()
    assert "host_key_checking = True" in text
    assert "retry_files_enabled = False" in text
    assert "pipelining = True" in text
    assert "StrictHostKeyChecking=no" not in text


def test_service_ports_agree_between_roles_group_vars_and_inventory():
    """Each role's port default = group_vars/all.yml = the port of its host's service url in lab.yml."""
    shared = group_vars()
    inventory = load_yaml(LAB_INVENTORY)
    problems = []
    for role in DEPLOYED_ROLES:
        port = role_defaults(role)[f"{role}_port"]
        if shared[f"{role}_port"] != port:
            problems.append(f"{role}_port: role default {port}, group_vars {shared[f'{role}_port']}")
        for host in (h for h in inventory["hosts"] if role in h.get("roles", [])):
            ports = {urlsplit(s["url"]).port or 80 for s in host.get("services", [])}
            if port not in ports:
                problems.append(f"{host['hostname']} ({role}): services use ports {sorted(ports)}, role serves {port}")
    assert not problems, "; ".join(problems)


def test_container_names_agree_with_the_inventory():
    """The container each role runs is the one lab.yml expects on its hosts (health checks look for it)."""
    inventory = load_yaml(LAB_INVENTORY)
    problems = []
    for role in DEPLOYED_ROLES:
        name = role_defaults(role)[f"{role}_container_name"]
        for host in (h for h in inventory["hosts"] if role in h.get("roles", [])):
            if name not in host.get("containers", []):
                problems.append(f"{host['hostname']}: expects {host.get('containers')}, role {role} runs {name!r}")
    assert not problems, "; ".join(problems)


def test_every_playbook_passes_syntax_check_on_the_lab_inventory(tmp_path):
    """ansible-playbook --syntax-check accepts every playbook with the lab's derived inventory."""
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps(load_inventory(LAB_INVENTORY).ansible_inventory()))
    env = {**os.environ, **runner_env(tmp_path / "key", tmp_path / "known_hosts", tmp_path)}
    playbooks = sorted(str(p) for p in PLAYBOOKS_DIR.glob("*.yml"))
    done = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "--syntax-check", "-i", str(hosts), *playbooks],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_proxy_routes_are_rendered_from_the_inventory(tmp_path):
    """routes.json sends /app/ to the app_demo host's address, keeps the 302, drops routes without hosts."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {
        "all": {
            "hosts": {
                "proxy": local,
                "app-demo": {"ansible_host": "198.18.0.250"},
                "monitoring": {"ansible_host": "198.18.0.202"},
            },
            "children": {
                "proxy": {"hosts": {"proxy": {}}},
                "app_demo": {"hosts": {"app-demo": {}}},
                "monitoring": {"hosts": {"monitoring": {}}},
            },
        }
    }
    defaults = role_defaults("proxy")
    play = tmp_path / "render.yml"
    play.write_text(
        "- name: Render the proxy routes as the proxy role does\n  hosts: proxy\n  gather_facts: false\n"
        "  vars_files:\n    - " + str(ROLES_DIR / "proxy" / "defaults" / "main.yml") + "\n"
        "    - " + str(PLAYBOOKS_DIR / "group_vars" / "all.yml") + "\n"
        "  tasks:\n    - name: Render routes.json\n      ansible.builtin.template:\n"
        "        src: " + str(ROLES_DIR / "proxy" / "templates" / "routes.json.j2") + "\n"
        "        dest: " + str(tmp_path / "routes.json") + '\n        mode: "0644"\n'
    )
    result = run_playbook(play, inventory, private_key=tmp_path / "unused")
    assert result.ok, result.recap()
    routes = json.loads((tmp_path / "routes.json").read_text())
    assert routes["redirects"] == defaults["proxy_redirects"]
    assert {"path": "/", "location": "/app/", "status": 302} in routes["redirects"]
    assert routes["routes"] == [
        {"prefix": "/app/", "upstream": "http://198.18.0.250:80/"},
        {"prefix": "/grafana/", "upstream": "http://198.18.0.202:3000/"},
    ]


def check_key_play(tmp_path: Path) -> Path:
    """A play running only the bootstrap role's key check against localhost."""
    play = tmp_path / "check_key.yml"
    play.write_text(
        "- name: Check the deploy key as bootstrap does\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Run the key check\n      ansible.builtin.include_role:\n        name: bootstrap\n"
        "        tasks_from: check_key\n"
    )
    return play


def local_inventory(private_key: Path) -> dict:
    """localhost over the local connection, with the deploy key path as the lab inventory gives it."""
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {"all": {"hosts": {"localhost": host}, "vars": {"ansible_ssh_private_key_file": str(private_key)}}}


@pytest.mark.parametrize(
    "content",
    ["", "\n", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"],
    ids=["empty", "blank", "private"],
)
def test_bootstrap_refuses_an_empty_or_private_deploy_key(tmp_path, content):
    """Incident #6: an empty (or private) <deploy_key>.pub fails bootstrap with a message naming the file."""
    private = tmp_path / "deploy_ed25519"
    private.write_text("unused\n")
    public = tmp_path / "deploy_ed25519.pub"
    public.write_text(content)
    result = run_playbook(check_key_play(tmp_path), local_inventory(private), private_key=private)
    assert not result.ok
    [failure] = result.failures()
    assert str(public) in failure.message and "ssh-keygen" in failure.message
    assert "abc" not in result.stdout


def test_bootstrap_accepts_a_public_deploy_key(tmp_path):
    """A real public key passes the check."""
    private = tmp_path / "deploy_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(private)], check=True)
    result = run_playbook(check_key_play(tmp_path), local_inventory(private), private_key=private)
    assert result.ok, result.recap()
