"""Probe `grafana_datasources`: every provisioned datasource passes Grafana's own health check."""

from __future__ import annotations

from collections.abc import Mapping

import requests

TIMEOUT = 10.0  # Grafana's health check asks the datasource in turn
USER = "admin"


def probe(session: requests.Session, base_url: str, secrets: Mapping[str, str]) -> tuple[bool, str]:
    """With the admin's basic auth: GET /api/datasources, then /api/datasources/uid/<uid>/health of each."""
    password = secrets.get("password")
    if not password:
        return False, "grafana_datasources needs the admin password (probe secrets: password)"
    auth = (USER, password)
    url = f"{base_url}/api/datasources"
    response = session.get(url, auth=auth, timeout=TIMEOUT)
    if response.status_code != 200:
        return False, f"{url}: got {response.status_code}, expected 200" + (
            " (the admin password was refused)" if response.status_code == 401 else "")
    try:
        sources = [(s["uid"], s.get("name", s["uid"])) for s in response.json()]
    except (ValueError, KeyError, TypeError):
        return False, f"{url}: not Grafana's datasources API (expected a list with uids)"
    if not sources:
        return False, f"{url}: no datasource provisioned"
    failing = []
    for uid, name in sources:
        health = session.get(f"{base_url}/api/datasources/uid/{uid}/health", auth=auth, timeout=TIMEOUT)
        try:
            body = health.json()
        except ValueError:
            body = {}
        if health.status_code != 200 or body.get("status") != "OK":
            failing.append(f"{name} ({uid}): {health.status_code} {str(body.get('message', ''))[:120]}")
    if failing:
        return False, f"{len(failing)} of {len(sources)} datasources unhealthy: " + "; ".join(failing)
    return True, f"{len(sources)} datasources healthy ({', '.join(name for _, name in sources)})"
