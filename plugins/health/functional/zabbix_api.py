"""Zabbix: the frontend's JSON-RPC API answers `apiinfo.version`, the one method that needs no login."""

from __future__ import annotations

import requests

from plugins.health.functional.errors import WarmingUp

WARMUP = (502, 503, 504)
REQUEST = {"jsonrpc": "2.0", "method": "apiinfo.version", "params": {}, "id": 1}


def zabbix_api(session: requests.Session, base_url: str, secrets: dict[str, str]) -> tuple[bool, str]:
    """POST apiinfo.version to base_url (/api_jsonrpc.php): ok with the version the API reports.

    No auth is sent (Zabbix refuses it on this method). A database error means the frontend is up before its
    database or the server's first schema import: warming up, retried until the probe's deadline.
    """
    answer = session.post(base_url, json=REQUEST, headers={"Content-Type": "application/json-rpc"},
                          allow_redirects=False, timeout=15)
    if answer.status_code in WARMUP:
        raise WarmingUp(f"POST {base_url} answered {answer.status_code} (warming up)")
    if answer.status_code != 200:
        return False, f"POST {base_url} answered {answer.status_code}; expected 200 and a JSON-RPC answer to apiinfo.version"
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        kind = answer.headers.get("Content-Type", "no content type")
        return False, f"POST {base_url} answered {kind}, not a JSON-RPC object (is it Zabbix's api_jsonrpc.php?)"
    version = body.get("result")
    if isinstance(version, str) and version:
        return True, f"{base_url}: Zabbix API {version}"
    error = body.get("error")
    if isinstance(error, dict):
        detail = " ".join(str(error.get(key, "")) for key in ("message", "data")).strip()[:200]
        if "database" in detail.lower():
            raise WarmingUp(f"POST {base_url}: apiinfo.version failed: {detail} (the database is not ready yet)")
        return False, f"POST {base_url}: apiinfo.version failed: {detail}"
    return False, f"POST {base_url} answered no version (expected {{\"result\": \"<version>\"}})"
