"""Functional probes: what a service does beyond answering its health path, one module per kind.

A kind is a function (session, base_url, secrets) → (ok, one-line message): `base_url` is the service's root
(`http://<ip>:<published port><path>` directly, `https://<route>.<domain><path>` through Traefik), `secrets`
the values its declaration's probe names (role → value: never in the message). A declaration lists its
probes (`probes:` in services/<name>.yml, plugins/inventory/catalog.py's Probe); plugins/health/functional/
checks.py turns them into the health suite's subjects and waits for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import requests

from plugins.health.functional import grafana_datasources, prometheus_targets

ProbeFunction = Callable[[requests.Session, str, Mapping[str, str]], tuple[bool, str]]

KINDS: dict[str, ProbeFunction] = {
    "prometheus_targets": prometheus_targets.probe,
    "grafana_datasources": grafana_datasources.probe,
}
