"""Grafana's provisioning, generated from the inventory and the catalog, and its dashboards from the repository.

Datasources: Prometheus and Loki where the inventory runs them (by container name on the host's Docker network
when on Grafana's host, else by the host's address and published port), with fixed uids the dashboards name.
Dashboards: one file provider reading the repository's JSON (services/files/grafana/dashboards/*.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from plugins.inventory.stack_needs import GRAFANA_DASHBOARDS as DASHBOARDS
from plugins.inventory.stack_needs import GRAFANA_PROVISIONING as PROVISIONING

if TYPE_CHECKING:
    from plugins.inventory.declaration import Declaration
    from plugins.inventory.model import Host, Inventory

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "services" / "files" / "grafana" / "dashboards"
# service → (datasource type, uid, name): the uids are what the dashboards' panels refer to.
DATASOURCES = {"prometheus": ("prometheus", "prometheus", "Prometheus"), "loki": ("loki", "loki", "Loki")}


def _url(grafana_host: Host, host: Host, decl: Declaration) -> str:
    port = decl.ports[0]
    if host is grafana_host:
        return f"http://{decl.container}:{port.container}"
    return f"http://{host.ip}:{port.published}"


def datasources(inventory: Inventory, grafana_host: Host) -> dict:
    """provisioning/datasources/homelab.yaml: one datasource per service of DATASOURCES the inventory runs."""
    found = []
    for service, (kind, uid, name) in DATASOURCES.items():
        for host in inventory.hosts:
            decl = next((d for d in host.declarations if d.name == service), None)
            if decl is not None:
                found.append({"name": name, "type": kind, "uid": uid, "access": "proxy",
                              "url": _url(grafana_host, host, decl), "isDefault": service == "prometheus",
                              "editable": False})
                break
    return {"apiVersion": 1, "datasources": found}


def dashboard_provider() -> dict:
    """provisioning/dashboards/homelab.yaml: the repository's dashboards, read-only in Grafana."""
    return {"apiVersion": 1, "providers": [{
        "name": "homelab", "orgId": 1, "type": "file", "disableDeletion": True, "allowUiUpdates": False,
        "options": {"path": DASHBOARDS, "foldersFromFilesStructure": False}}]}


def dashboards() -> dict[str, dict]:
    """The repository's dashboards, by file name (parsed: a file that is not JSON fails here, by name)."""
    found = {}
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        try:
            found[path.name] = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
    return found


def files(inventory: Inventory, host: Host) -> dict[str, str]:
    """Every file Grafana reads, by its path in the container."""
    found = {
        f"{PROVISIONING}/datasources/homelab.yaml": yaml.safe_dump(datasources(inventory, host), sort_keys=False),
        f"{PROVISIONING}/dashboards/homelab.yaml": yaml.safe_dump(dashboard_provider(), sort_keys=False),
    }
    found.update({f"{DASHBOARDS}/{name}": json.dumps(board, indent=2) + "\n" for name, board in dashboards().items()})
    return found
