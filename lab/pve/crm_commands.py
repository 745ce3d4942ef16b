"""Requests to move an HA service as pve-ha-manager takes them: Config.pm's queue_crm_commands (a line in
/etc/pve/ha/crm_commands, here STATE_DIR/state/crm_commands), Manager.pm's update_crm_commands and
queue_resource_motion (checked on the CRM's round, set on the service and on those kept together with it), and
next_state_started/stopped's check of a service's command before it is played (crm.py plays it).
"""

from __future__ import annotations

import re

from .ha_rules import affinitive_resources, effective_rules


def _vmid(sid: str) -> int:
    return int(sid.split(":")[1])


def queue_command(crm, command: str) -> None:
    """Config.pm's queue_crm_commands: a line for the CRM's next round (`migrate ct:100 node2`)."""
    with crm.lock:
        crm.commands_path.parent.mkdir(parents=True, exist_ok=True)
        with crm.commands_path.open("a") as fh:
            fh.write(command.strip() + "\n")


def take_commands(crm) -> list[str]:
    """The queued commands, oldest first; the file emptied (the CRM took them)."""
    try:
        text = crm.commands_path.read_text()
    except FileNotFoundError:
        return []
    crm.commands_path.unlink()
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_commands(crm, resources: dict) -> None:
    """Manager.pm's update_crm_commands: each queued migrate/relocate checked and set on its service."""
    for cmd in take_commands(crm):
        match = re.fullmatch(r"(migrate|relocate)\s+(\S+)\s+(\S+)", cmd)
        if match is None:
            crm.say(f"unable to parse crm command: {cmd}")
            continue
        task, sid, target = match.groups()
        if sid not in resources:
            crm.say(f"crm command error - no such service: {cmd}")
        elif crm.app.cluster.get(target) is None or crm.node_state(target) != "online":
            crm.say(f"crm command error - node not online: {cmd}")
        elif crm.app.node_of(_vmid(sid)) == target:
            crm.say(f"ignore crm command - service already on target node: {cmd}")
        else:
            queue_motion(crm, cmd, task, sid, target, resources)


def queue_motion(crm, cmd: str, task: str, sid: str, target: str, resources: dict) -> None:
    """Manager.pm's queue_resource_motion: refused when a service kept apart is on the target; the services
    kept together with it are moved along."""
    rules = effective_rules(crm.app.ha.rules(), [n.name for n in crm.app.cluster.nodes])
    together, separate = affinitive_resources(rules, sid)
    for csid in sorted(separate):
        if csid in resources and crm.app.node_of(_vmid(csid)) == target:
            crm.say(f"crm command '{cmd}' error - service '{csid}' on node '{target}' in negative affinity "
                      f"with service '{sid}'")
            return
    crm.say(f"got crm command: {cmd}")
    crm.service(sid)["cmd"] = [task, target]
    for csid in sorted(together):
        if csid in resources and crm.app.node_of(_vmid(csid)) != target:
            crm.say(f"crm command '{cmd}' - {task} service '{csid}' to node '{target}' (service '{csid}' in "
                      f"positive affinity with service '{sid}')")
            crm.service(csid)["cmd"] = [task, target]


def command_target(crm, sid: str, node: str) -> str | None:
    """The target of the service's queued migrate/relocate when it can be played now (None: none, or it is
    dropped with PVE's line), as next_state_started/stopped check it."""
    cmd = crm.service(sid).pop("cmd", None)
    if not cmd:
        return None
    task, target = cmd
    if crm.app.cluster.get(target) is None or crm.node_state(target) != "online":
        crm.say(f"ignore service '{sid}' {task} request - node '{target}' not online")
    elif target == node:
        crm.say(f"ignore service '{sid}' {task} request - service already on node '{target}'")
    else:
        return target
    return None
