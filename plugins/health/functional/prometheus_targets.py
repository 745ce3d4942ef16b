"""Probe `prometheus_targets`: Prometheus scrapes, and every active target's last scrape is up."""

from __future__ import annotations

from collections.abc import Mapping

import requests

TIMEOUT = 5.0


def probe(session: requests.Session, base_url: str, secrets: Mapping[str, str]) -> tuple[bool, str]:
    """GET /api/v1/targets?state=active: ok when there is at least one target and all are `up`."""
    url = f"{base_url}/api/v1/targets?state=active"
    response = session.get(url, timeout=TIMEOUT)
    if response.status_code != 200:
        return False, f"{url}: got {response.status_code}, expected 200"
    try:
        targets = response.json()["data"]["activeTargets"]
    except (ValueError, KeyError, TypeError):
        return False, f"{url}: not Prometheus's targets API (no data.activeTargets)"
    if not targets:
        return False, f"{url}: no active target (expected the generated scrape jobs' targets)"
    down = [t for t in targets if t.get("health") != "up"]
    if down:
        shown = "; ".join(f"{t.get('labels', {}).get('job', '?')}/{t.get('labels', {}).get('instance', '?')} "
                          f"{t.get('health', '?')}" + (f" ({t['lastError']})" if t.get("lastError") else "")
                          for t in down[:5])
        more = f" and {len(down) - 5} more" if len(down) > 5 else ""
        return False, f"{len(down)} of {len(targets)} targets not up: {shown}{more}"
    jobs = sorted({t.get("labels", {}).get("job", "?") for t in targets})
    return True, f"{len(targets)} targets up ({', '.join(jobs)})"
