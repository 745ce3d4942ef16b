"""The log shipper's configuration (Promtail's format), generated per host from the inventory and the catalog.

Every host's shipper tails the Docker daemon's JSON log files and pushes to the inventory's Loki: by container
name on Loki's own host (the host's Docker network), else by Loki's host address and published port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from plugins.inventory.stack_needs import PROMTAIL_CONFIG_TARGET as CONFIG_TARGET

if TYPE_CHECKING:
    from plugins.inventory.declaration import Declaration
    from plugins.inventory.model import Host, Inventory

CONFIG_FILE = f"{CONFIG_TARGET}/config.yml"
DOCKER_LOGS = "/var/lib/docker/containers/*/*-json.log"  # dockerd's json-file driver, mounted read-only
LOKI = "loki"


def loki_push_url(inventory: Inventory, host: Host) -> str | None:
    """Where this host's shipper pushes: Loki's push API, or None when the inventory runs no Loki."""
    for other in inventory.hosts:
        decl = next((d for d in other.declarations if d.name == LOKI), None)
        if decl is None:
            continue
        port = decl.ports[0]
        base = f"http://{decl.container}:{port.container}" if other is host else f"http://{other.ip}:{port.published}"
        return f"{base}/loki/api/v1/push"
    return None


def config(inventory: Inventory, host: Host, decl: Declaration) -> dict:
    """config.yml: the HTTP port of the declaration, Loki's push URL, one job for the Docker logs."""
    url = loki_push_url(inventory, host)
    return {
        "server": {"http_listen_port": decl.ports[0].container, "grpc_listen_port": 0},
        "positions": {"filename": "/tmp/positions.yaml"},  # nosec B108 # the container's own /tmp, promtail's default
        "clients": [{"url": url}] if url else [],
        "scrape_configs": [{
            "job_name": "docker",
            "static_configs": [{"targets": ["localhost"],
                                "labels": {"job": "docker", "host": host.hostname, "__path__": DOCKER_LOGS}}],
            "pipeline_stages": [{"docker": {}}],
        }],
    }


def files(inventory: Inventory, host: Host, decl: Declaration) -> dict[str, str]:
    """The shipper's one file, by its path in the container."""
    return {CONFIG_FILE: yaml.safe_dump(config(inventory, host, decl), sort_keys=False)}
