"""What a rollback restores that no snapshot holds (PVE's firewall, its HA resources and the suite's HA rules), as
the run lock keeps it.

The run records both before it changes them (plugins/deploy/stages/firewall.py and ha.py). The lock's record carries
them too, so that `python -m plugins.deploy.recover rollback` after a SIGKILL puts them back as the run's own
rollback would. JSON keys are text: the VMIDs go back to integers on the way in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession


class PartlyRestored(Exception):
    """A restore that put back what it could reach and not the rest (a container's node is down); `done` lists what
    it changed, the message what it left."""

    def __init__(self, message: str, done: list[str]) -> None:
        super().__init__(message)
        self.done = done


def to_record(deploy: DeploySession) -> dict[str, Any]:
    """The session's recorded firewall, HA resources and HA rules, JSON-ready (only those the run recorded)."""
    out: dict[str, Any] = {}
    if deploy.firewall_before is not None:
        before = deploy.firewall_before
        out["firewall"] = {"state": {**before["state"], "cts": {str(k): v for k, v in before["state"]["cts"].items()}},
                           "nodes": {str(k): v for k, v in before["nodes"].items()}}
    if deploy.ha_before is not None:
        out["ha"] = {str(k): v for k, v in deploy.ha_before.items()}
    if deploy.ha_rules_before is not None:
        out["ha_rules"] = dict(deploy.ha_rules_before)
    return out


def onto_session(deploy: DeploySession, recorded: dict[str, Any]) -> None:
    """Put what the lock's record kept back on a session, as the run's own record_previous left it."""
    firewall = recorded.get("firewall")
    if firewall is not None:
        state = firewall["state"]
        deploy.firewall_before = {"state": {**state, "cts": {int(k): v for k, v in state["cts"].items()}},
                                  "nodes": {int(k): v for k, v in firewall["nodes"].items()}}
    if recorded.get("ha") is not None:
        deploy.ha_before = {int(k): v for k, v in recorded["ha"].items()}
    if recorded.get("ha_rules") is not None:
        deploy.ha_rules_before = dict(recorded["ha_rules"])
