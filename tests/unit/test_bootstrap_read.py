"""ansible/roles/bootstrap: one read of the host, then each module only for what is missing or different.

The read runs for real on this machine (it only reads); the decisions are the role's own tasks, their modules swapped
for debug, on localhost with a made-up read. Nothing on the machine is changed."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import yaml
from role_read import read_on_localhost

from plugins.tools.playbooks import ROLES_DIR, run_playbook

pytestmark = pytest.mark.unit

ROLE = ROLES_DIR / "bootstrap"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBootstrapReadTest runner"
DROPIN = "/etc/ssh/sshd_config.d/00-bootstrap.conf"
WRITERS = ["Install rsync, sudo and the host's packages", "Create the deploy user",
           "Authorize the runner's key for the deploy user", "Let the deploy user sudo without a password",
           "Allow key logins only"]


def defaults() -> dict:
    """The role's defaults."""
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def sha1(text: str) -> str:
    """SHA-1 of a text as sha1sum prints it."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def converged(**changed: str) -> str:
    """The read's output on a bootstrapped host, with the given sections replaced."""
    marker = "key-only logins (homelab bootstrap role, managed by Ansible)"
    dropin = f"# BEGIN {marker}\n{defaults()['bootstrap_sshd_block']}# END {marker}\n"
    sections = {
        "packages": "rsync installed\nsudo installed\npython3-requests installed\ngit installed",
        "user": "deploy:x:1000:1000::/home/deploy:/bin/bash",
        "groups": "deploy\ndeploy docker",
        "stat": stat(),
        "keys": f"ssh-ed25519 AAAAother other\n{KEY}",
        "sha1": f"{sha1('deploy ALL=(ALL)NOPASSWD: ALL' + chr(10))}  /etc/sudoers.d/deploy\n{sha1(dropin)}  {DROPIN}",
    }
    sections |= changed
    return "\n@@bootstrap@@\n".join(sections.values())


def decide(tmp_path: Path, stdout: str) -> list[str]:
    """The role's writing tasks that would run after a read printing stdout."""
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    swapped = []
    for task in tasks:
        if task.get("name") not in WRITERS:
            continue
        module = next(key for key in task if key.count(".") == 2)
        swapped.append({"name": task["name"], "ansible.builtin.debug": {"msg": "runs"}, "when": task["when"],
                        **({"vars": task["vars"]} if "vars" in task else {})})
    assert [t["name"] for t in swapped] == WRITERS, module
    [keep] = [t for t in tasks if t.get("name") == "Keep what the read found"]
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{
        "name": "The bootstrap role's decisions", "hosts": "all", "gather_facts": False,
        "vars": {**defaults(), "deploy_user": "deploy", "packages": ["git"], "bootstrap_deploy_public_key": KEY + "\n",
                 "bootstrap_read": {"rc": 0, "stdout": stdout}},
        "tasks": [keep, *swapped]}]))
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    result = run_playbook(play, {"all": {"hosts": {"localhost": host}}}, private_key=tmp_path / "unused")
    assert result.ok, result.recap()
    return [e["event_data"]["task"] for e in result.events if e.get("event") == "runner_on_ok"
            and e["event_data"]["task"] in WRITERS]


def test_a_bootstrapped_host_runs_no_writing_module(tmp_path):
    """Everything as the modules would leave it: every writing task is skipped."""
    assert decide(tmp_path, converged()) == []


def stat(ssh: str = "700|deploy|deploy", keys: str = "600|deploy|deploy", sudoers: str = "440", dropin: str = "644") -> str:
    """The read's stat section: mode|owner|group of the key directory and file, the sudoers and drop-in modes."""
    return "\n".join([f"/home/deploy/.ssh|directory|{ssh}", f"/home/deploy/.ssh/authorized_keys|regular file|{keys}",
                      f"/etc/sudoers.d/deploy|regular file|{sudoers}|root|root", f"{DROPIN}|regular file|{dropin}|root|root"])


@pytest.mark.parametrize(("section", "value", "runs"), [
    ("packages", "rsync installed\nsudo installed\npython3-requests installed\ngit not-installed", WRITERS[0]),
    ("user", "", [WRITERS[1], WRITERS[2]]),  # no user: no home where its key would be
    ("user", "deploy:x:1000:1000::/home/deploy:/bin/sh", WRITERS[1]),
    ("groups", "deploy\ndeploy", WRITERS[1]),
    ("keys", "ssh-ed25519 AAAAother other", WRITERS[2]),
    ("stat", stat(ssh="755|deploy|deploy"), WRITERS[2]),
    ("stat", stat(keys="644|root|root"), WRITERS[2]),
    ("stat", stat(sudoers="644"), WRITERS[3]),
    ("sha1", f"{'0' * 40}  /etc/sudoers.d/deploy\n{sha1('x')}  {DROPIN}", [WRITERS[3], WRITERS[4]]),
    ("stat", stat(dropin="666"), WRITERS[4]),
], ids=["package", "no-user", "shell", "group", "key", "ssh-dir-mode", "key-file-owner", "sudoers-mode",
        "both-files-differ", "dropin-mode"])
def test_what_differs_runs_its_module(tmp_path, section, value, runs):
    """One thing missing or different: its module runs, and only it."""
    ran = decide(tmp_path, converged(**{section: value}))
    assert ran == (runs if isinstance(runs, list) else [runs])


def test_the_read_runs_on_a_real_host(tmp_path):
    """The read itself on this machine (root, its sshd_config): the sections parse into what the tasks look at."""
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    [read] = [t for t in tasks if "ansible.builtin.command" in t]
    found = read_on_localhost(tmp_path, ROLE, read, "bootstrap_has",
                              {**defaults(), "deploy_user": "root", "bootstrap_sshd_dropin": "/etc/ssh/sshd_config"})
    assert found["passwd"][0] == "root" and found["passwd"][5] == "/root"
    assert found["primary_group"] == "root" and "root" in found["groups"]
    assert "rsync" in found["packages"]
    entry = found["files"]["/etc/ssh/sshd_config"]
    assert entry["type"] == "regular file" and entry["owner"] == "root"
    assert entry["sha1"] == hashlib.sha1(Path("/etc/ssh/sshd_config").read_bytes(), usedforsecurity=False).hexdigest()
