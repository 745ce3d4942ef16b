"""ansible/roles/hardening: the role's one read, run for real on this machine (it only reads), parses into what its
writing tasks compare: the kernel's live values in the role's order, login.defs, the files' modes, owners and SHA-1s."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from role_read import read_on_localhost

from plugins.tools.playbooks import ROLES_DIR, run_playbook

pytestmark = pytest.mark.unit

ROLE = ROLES_DIR / "hardening"


def read_on_this_machine(tmp_path: Path, **variables) -> dict:
    """hardening_has after the role's read task on localhost, with the role's defaults and the given vars."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    [read] = [t for t in tasks if t.get("register") == "hardening_read"]
    return read_on_localhost(tmp_path, ROLE, read, "hardening_has", {**defaults, **variables})


def test_the_read_gives_what_the_tasks_compare(tmp_path):
    """Live sysctl values in order, login.defs' lines, each existing path as find gave it (mode 0644, owner names,
    SHA-1), a missing path absent; APT not asked when unattended-upgrades is off."""
    keys = {"net.ipv4.conf.all.accept_redirects": 0, "net.ipv4.ip_forward": 0}
    found = read_on_this_machine(tmp_path, hardening_sysctl=keys, hardening_unattended_upgrades=False,
                                 hardening_read_paths=["/etc/passwd", "/etc/shadow", "/etc/no-such-file"])
    live = subprocess.run(["sysctl", "-n", *keys], check=True, capture_output=True, text=True).stdout.split()
    assert found["sysctl"] == live
    assert found["login_defs"] == Path("/etc/login.defs").read_text().splitlines()
    assert found["upgrades_policy"] == ""
    assert set(found["files"]) == {"/etc/passwd", "/etc/shadow"}
    passwd = found["files"]["/etc/passwd"]
    assert passwd == {"type": "regular file", "mode": "0644", "pw_name": "root", "gr_name": "root",
                      "checksum": hashlib.sha1(Path("/etc/passwd").read_bytes(), usedforsecurity=False).hexdigest()}
    assert found["files"]["/etc/shadow"]["mode"] == "0640"


def test_a_key_the_kernel_lacks_fails_the_read(tmp_path):
    """sysctl's own error stops the role, as the command alone did."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    [read] = [t for t in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text()) if t.get("register") == "hardening_read"]
    play = tmp_path / "read.yml"
    play.write_text(yaml.safe_dump([{
        "name": "The hardening role's read", "hosts": "all", "gather_facts": False,
        "vars": {**defaults, "hardening_sysctl": {"net.no.such.key": 0}, "hardening_unattended_upgrades": False},
        "tasks": [read]}]))
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    result = run_playbook(play, {"all": {"hosts": {"localhost": host}}}, private_key=tmp_path / "unused")
    assert not result.ok
    assert "net.no.such.key" in result.failures()[0].message


def test_the_read_asks_apt_about_unattended_upgrades_when_the_role_installs_it(tmp_path):
    """APT's policy as apt-cache prints it (what the install task compares: Installed, Candidate)."""
    found = read_on_this_machine(tmp_path, hardening_unattended_upgrades=True, hardening_sysctl={},
                                 hardening_read_paths=["/etc/passwd"])
    live = subprocess.run(["apt-cache", "policy", "unattended-upgrades"], check=True, capture_output=True, text=True)
    assert found["upgrades_policy"] == live.stdout.strip()
