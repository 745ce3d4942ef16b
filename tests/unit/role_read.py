"""A role's one read of its host, run on this machine: its read task and the fact it keeps, through ansible-runner."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from plugins.tools.playbooks import run_playbook


def read_on_localhost(tmp_path: Path, role: Path, read: dict, fact: str, variables: dict) -> dict:
    """The fact the role's "Keep what the read found" task sets after its read task, on localhost."""
    tasks = yaml.safe_load((role / "tasks" / "main.yml").read_text())
    [keep] = [t for t in tasks if t.get("name") == "Keep what the read found"]
    play = tmp_path / "read.yml"
    play.write_text(yaml.safe_dump([{
        "name": f"The {role.name} role's read", "hosts": "all", "gather_facts": False, "vars": variables,
        "tasks": [read, keep, {"name": "Show what it found", "ansible.builtin.debug": {"var": fact}}]}]))
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    result = run_playbook(play, {"all": {"hosts": {"localhost": host}}}, private_key=tmp_path / "unused")
    assert result.ok, result.recap()
    [found] = [e["event_data"]["res"][fact] for e in result.events if e.get("event") == "runner_on_ok"
               and e["event_data"]["task"] == "Show what it found"]
    return found
