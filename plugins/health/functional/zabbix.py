"""Zabbix: the frontend's JSON-RPC API answers `apiinfo.version` (the one method that needs no login)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urljoin

import requests

from plugins.health.web import describe_error

API_PATH = "api_jsonrpc.php"
REQUEST = {"jsonrpc": "2.0", "method": "apiinfo.version", "params": {}, "id": 1}


def zabbix_api(session: requests.Session, base_url: str, secrets: Mapping[str, str]) -> tuple[bool, str]:
    """POST apiinfo.version to <base_url>api_jsonrpc.php; ok with the version the API reports."""
    url = urljoin(base_url if base_url.endswith("/") else base_url + "/", API_PATH)
    try:
        response = session.post(url, json=REQUEST, headers={"Content-Type": "application/json-rpc"},
                                allow_redirects=False)
    except requests.RequestException as exc:
        return False, f"{url}: {describe_error(exc)} (expected the Zabbix API's apiinfo.version)"
    if response.status_code != 200:
        return False, f"{url}: got {response.status_code} (expected 200 with a JSON-RPC answer to apiinfo.version)"
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        return False, f"{url}: answered {kind}, not JSON (expected a JSON-RPC answer to apiinfo.version)"
    version = body.get("result") if isinstance(body, dict) else None
    if isinstance(version, str) and version:
        return True, f"{url}: Zabbix API {version}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        detail = " ".join(str(error.get(key, "")) for key in ("message", "data")).strip()
        return False, f"{url}: apiinfo.version failed: {detail[:200]} (the frontend may not reach its database yet)"
    return False, f"{url}: no version in the answer (expected {{\"result\": \"<version>\"}})"
