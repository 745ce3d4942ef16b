"""Prometheus's configuration, generated from the inventory and the catalog: never written by hand.

Scrape jobs: Prometheus itself, the node exporter of every host that runs one, and Traefik's metrics on its
`traefik` entrypoint (the one /ping answers on). The alert rules are the repository's
(services/files/prometheus/rules/*.yml), mounted beside the configuration and named relative to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from plugins.inventory.stack_needs import PROMETHEUS_CONFIG_TARGET as CONFIG_TARGET

if TYPE_CHECKING:
    from plugins.inventory.declaration import Declaration
    from plugins.inventory.model import Inventory

CONFIG_FILE = f"{CONFIG_TARGET}/prometheus.yml"
RULES_DIR = Path(__file__).resolve().parents[2] / "services" / "files" / "prometheus" / "rules"
SCRAPE_INTERVAL = "15s"
NODE_EXPORTER = "node-exporter"  # the declaration every host's node exporter comes from


def scrape_config(inventory: Inventory, prometheus: Declaration) -> dict:
    """prometheus.yml: global intervals, the rule files, one job per kind of target."""
    own_port = prometheus.ports[0].container
    jobs: list[dict] = [{"job_name": "prometheus", "static_configs": [{"targets": [f"localhost:{own_port}"]}]}]
    nodes = []
    for host in inventory.hosts:
        for decl in host.declarations:
            if decl.name == NODE_EXPORTER:
                nodes.append({"targets": [f"{host.ip}:{decl.published(decl.ports[0].container)}"],
                              "labels": {"instance": host.hostname}})
    if nodes:
        jobs.append({"job_name": "node", "static_configs": nodes})
    proxy = inventory.proxy_host
    if proxy is not None:
        traefik = inventory.catalog["traefik"]
        port = traefik.port_named("traefik")
        if port is not None and port.published is not None:
            jobs.append({"job_name": "traefik", "static_configs": [
                {"targets": [f"{proxy.ip}:{port.published}"], "labels": {"instance": proxy.hostname}}]})
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL,
                   "external_labels": {"environment": inventory.environment}},
        "rule_files": ["rules/*.yml"],  # relative to prometheus.yml: the same in a check's temp dir
        "scrape_configs": jobs,
    }


def rule_files() -> dict[str, str]:
    """The repository's alert rule files, by file name."""
    return {path.name: path.read_text() for path in sorted(RULES_DIR.glob("*.yml"))}


def files(inventory: Inventory, decl: Declaration) -> dict[str, str]:
    """Every file Prometheus reads, by its path in the container."""
    found = {CONFIG_FILE: yaml.safe_dump(scrape_config(inventory, decl), sort_keys=False)}
    found.update({f"{CONFIG_TARGET}/rules/{name}": text for name, text in rule_files().items()})
    return found
