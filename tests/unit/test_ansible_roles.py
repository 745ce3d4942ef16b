"""ansible/: role layout and conventions, lint, syntax, ports agreeing with the inventory, templates and
key checks rendered by real ansible on localhost (nothing on the machine is changed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from plugins.inventory import load_inventory
from plugins.stack import ansible_inventory
from plugins.tools.playbooks import (
    ANSIBLE_CFG,
    ANSIBLE_DIR,
    PLAYBOOKS_DIR,
    ROLES_DIR,
    PlaybookResult,
    run_playbook,
    runner_env,
    task_label,
)

pytestmark = pytest.mark.unit

ROOT = ANSIBLE_DIR.parent
LAB_INVENTORY = ROOT / "inventories" / "lab.yml"
ROLES = ["bootstrap", "proxy", "app_demo", "monitoring", "utilities", "github_runner", "stack"]
CATALOG_ROLES = ["proxy", "monitoring", "utilities", "stack"]  # deploy from services/<name>.yml alone
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


@pytest.mark.parametrize("role", CATALOG_ROLES)
def test_catalog_roles_hold_no_service_fact(role):
    """No port, container name or image in the roles that deploy from the declarations: those are data."""
    catalog = load_inventory(LAB_INVENTORY).catalog
    facts = {str(p.container) for d in catalog.declarations.values() for p in d.ports}
    facts |= {str(p.published) for d in catalog.declarations.values() for p in d.ports if p.published}
    facts |= {d.container for d in catalog.declarations.values()} | {d.image for d in catalog.declarations.values()}
    found = []
    for path in sorted((ROLES_DIR / role).rglob("*.yml")):
        words = set(path.read_text().replace('"', " ").replace("'", " ").replace(":", " ").split())
        found += [f"{path.relative_to(ROLES_DIR)}: {fact}" for fact in sorted(facts & words)]
    assert not found, "a service's fact written in a role (it belongs in services/<name>.yml): " + "; ".join(found)


def test_group_vars_hold_no_port():
    """ansible/playbooks/group_vars/all.yml is no second home of a port or container name."""
    assert not [k for k in (group_vars() or {}) if k.endswith(("_port", "_container_name"))]


def test_every_playbook_passes_syntax_check_on_the_lab_inventory(tmp_path):
    """ansible-playbook --syntax-check accepts every playbook with the lab's derived inventory."""
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps(ansible_inventory(load_inventory(LAB_INVENTORY))))
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


def test_the_proxy_role_writes_the_generated_traefik_configuration(tmp_path):
    """The proxy role's config tasks, run on localhost with the lab's host vars: traefik.yml, routes.yml and the
    certificate land where services/traefik.yml mounts them, as plugins/stack/traefik.py generated them."""
    hostvars = ansible_inventory(load_inventory(LAB_INVENTORY))["all"]["hosts"]["proxy"]
    (tmp_path / "cert.pem").write_text("certificate\n")
    (tmp_path / "key.pem").write_text("key\n")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             **{k: v for k, v in hostvars.items() if k.startswith("proxy_")},
             "proxy_config_dir": str(tmp_path / "traefik"), "proxy_tls_cert_src": str(tmp_path / "cert.pem"),
             "proxy_tls_key_src": str(tmp_path / "key.pem")}
    play = tmp_path / "render.yml"
    play.write_text(
        "- name: Write Traefik's configuration as the proxy role does\n  hosts: proxy\n  gather_facts: false\n"
        "  tasks:\n    - name: Run the proxy role's configuration tasks\n      ansible.builtin.include_role:\n"
        "        name: proxy\n        tasks_from: config\n")
    result = run_playbook(play, {"all": {"hosts": {"proxy": local}}}, private_key=tmp_path / "unused")
    assert result.ok, result.recap()
    written = tmp_path / "traefik"
    assert yaml.safe_load((written / "traefik.yml").read_text()) == hostvars["proxy_static_config"]
    assert yaml.safe_load((written / "dynamic" / "routes.yml").read_text()) == hostvars["proxy_dynamic_config"]
    assert (written / "tls" / "cert.pem").read_text() == "certificate\n"
    assert oct((written / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"


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


def run_role_locally(tmp_path: Path, role: str, variables: dict, tasks_from: str = "main") -> PlaybookResult:
    """One role's tasks on localhost (as this user) with the given vars."""
    play = tmp_path / f"{role}.yml"
    play.write_text(yaml.safe_dump([{"name": f"Run the {role} role", "hosts": "all", "gather_facts": False,
                                     "tasks": [{"name": "Run the role", "ansible.builtin.include_role": {
                                         "name": role, "tasks_from": tasks_from}}]}]))
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **variables}
    return run_playbook(play, {"all": {"hosts": {"localhost": host}}}, private_key=tmp_path / "unused")


def written(result: PlaybookResult) -> list[str]:
    """The tasks that ran a writing module (neither skipped nor a read)."""
    return [task_label(e["event_data"]) for e in result.events if e.get("event") == "runner_on_ok"
            and e["event_data"].get("role") and not e["event_data"].get("task", "").startswith(("Read ", "Check "))]


def test_the_github_runner_role_writes_only_what_differs(tmp_path):
    """First run: the work directory, the labels, the ssh directory; a rerun: one read, nothing written; a changed
    labels file: only it is written again."""
    variables = {"deploy_user": "root", "github_runner_work_dir": str(tmp_path / "actions-runner"),
                 "github_runner_private_key_path": str(tmp_path / "home" / ".ssh" / "id_ed25519")}
    first = run_role_locally(tmp_path, "github_runner", variables)
    assert first.ok and first.changed_total == 3, first.recap()
    rerun = run_role_locally(tmp_path, "github_runner", variables)
    assert rerun.ok and rerun.changed_total == 0 and written(rerun) == [], rerun.recap()
    (tmp_path / "actions-runner" / "labels").write_text("other\n")
    again = run_role_locally(tmp_path, "github_runner", variables)
    assert again.ok and [task for _, task in again.changed_tasks()] == ["github_runner : Record the runner's labels"]
    assert (tmp_path / "actions-runner" / "labels").read_text() == "self-hosted-proxmox\n"


def test_the_proxy_role_rewrites_only_a_changed_file(tmp_path):
    """A rerun of the configuration tasks writes nothing; a changed routes file alone is written again."""
    hostvars = ansible_inventory(load_inventory(LAB_INVENTORY))["all"]["hosts"]["proxy"]
    (tmp_path / "cert.pem").write_text("certificate\n")
    (tmp_path / "key.pem").write_text("key\n")
    variables = {**{k: v for k, v in hostvars.items() if k.startswith("proxy_")},
                 "proxy_config_dir": str(tmp_path / "traefik"), "proxy_tls_cert_src": str(tmp_path / "cert.pem"),
                 "proxy_tls_key_src": str(tmp_path / "key.pem")}
    first = run_role_locally(tmp_path, "proxy", variables, tasks_from="config")
    assert first.ok and first.changed_total == 5, first.recap()  # the directories (one task), four files
    rerun = run_role_locally(tmp_path, "proxy", variables, tasks_from="config")
    assert rerun.ok and rerun.changed_total == 0 and written(rerun) == [], rerun.recap()
    (tmp_path / "traefik" / "dynamic" / "routes.yml").write_text("{}\n")
    again = run_role_locally(tmp_path, "proxy", variables, tasks_from="config")
    assert [task for _, task in again.changed_tasks()] == ["proxy : Write Traefik's routes"]
