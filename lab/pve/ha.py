"""The HA manager's configuration (resources.cfg, rules.cfg) and the part of its CRM the emulator plays.

Kept in STATE_DIR/state/ha.json. The CRM is played at once, inside the call that changes a resource
(PVE's CRM acts on its next round, ~10 s later): a resource requested `started` is started, one requested
`stopped` or `disabled` is stopped, an `ignored` one is left alone. The manager's rounds (fencing, recovery,
placement by the node- and resource-affinity rules kept here, requested moves) are crm.py's, crm_commands.py's,
ha_rules.py's and ha_placement.py's (docs/reference/pve-cluster.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

HA_FILE = "ha.json"
STATES = ("started", "stopped", "disabled", "ignored")
RESOURCE_DEFAULTS = {"state": "started", "max_restart": 1, "max_relocate": 1, "failback": 1}


def sid_of(vmid: int) -> str:
    """The HA resource id of a CT."""
    return f"ct:{int(vmid)}"


def requested_state(state: str) -> str:
    """The state the CRM acts on (`enabled` is PVE's alias for `started`)."""
    return "started" if state == "enabled" else state


class HaStore:
    """resources.cfg and rules.cfg of the cluster, as one JSON file."""

    def __init__(self, root: str | os.PathLike):
        self.path = Path(root) / HA_FILE
        self.lock = threading.RLock()

    def _read(self) -> dict:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            raw = {}
        return {"resources": raw.get("resources", {}), "rules": raw.get("rules", {})}

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def digest(self) -> str:
        """The config's digest (PVE's SHA1 of the files), to detect concurrent changes."""
        try:
            return hashlib.sha1(self.path.read_bytes()).hexdigest()
        except FileNotFoundError:
            return hashlib.sha1(b"").hexdigest()

    def resources(self) -> dict[str, dict]:
        """Every HA resource: sid -> its options."""
        return self._read()["resources"]

    def rules(self) -> dict[str, dict]:
        """Every HA rule: id -> its options."""
        return self._read()["rules"]

    def save_resource(self, sid: str, options: dict | None) -> None:
        """Write (or, with None, remove) one resource."""
        with self.lock:
            data = self._read()
            if options is None:
                data["resources"].pop(sid, None)
            else:
                data["resources"][sid] = options
            self._write(data)

    def save_rule(self, rule: str, options: dict | None) -> None:
        """Write (or, with None, remove) one rule."""
        with self.lock:
            data = self._read()
            if options is None:
                data["rules"].pop(rule, None)
            else:
                data["rules"][rule] = options
            self._write(data)

    def status_of(self, vmid: int) -> dict:
        """The `ha` object of a CT's status/current: managed or not, and its requested state."""
        options = self.resources().get(sid_of(vmid))
        if options is None:
            return {"managed": 0}
        return {"managed": 1, "state": requested_state(options.get("state", "started"))}

    def managed(self, vmid: int) -> bool:
        """Whether the HA stack acts on the CT (configured and not `ignored`): PVE's vm_is_ha_managed."""
        options = self.resources().get(sid_of(vmid))
        return options is not None and options.get("state") != "ignored"
