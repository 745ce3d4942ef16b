"""NetBox's REST API answers /api/status/ to the API token: its version, Django's, and its RQ workers."""

from __future__ import annotations

import requests

from plugins.health.functional.errors import WarmingUp

WARMUP = (502, 503, 504)


def netbox_status(session: requests.Session, base_url: str, secrets: dict[str, str]) -> tuple[bool, str]:
    """GET base_url (/api/status/) with `Authorization: Token <token>`: 200 and a JSON body naming NetBox's
    version; 401/403 mean the token is not the inventory's."""
    (token,) = secrets.values()
    answer = session.get(base_url, headers={"Authorization": f"Token {token}", "Accept": "application/json"},
                         allow_redirects=False, timeout=15)
    if answer.status_code in WARMUP:
        raise WarmingUp(f"GET {base_url} answered {answer.status_code} (warming up)")
    if answer.status_code in (401, 403):
        return False, (f"GET {base_url} refused the API token ({answer.status_code}); expected 200 (is the "
                       "superuser's API token the inventory's secret?)")
    try:
        status = answer.json() if answer.status_code == 200 else None
    except ValueError:
        status = None
    if not isinstance(status, dict) or not status.get("netbox-version"):
        return False, f"GET {base_url} answered {answer.status_code}; expected 200 and JSON with netbox-version"
    return True, (f"{base_url}: NetBox {status['netbox-version']}, Django {status.get('django-version', '?')}, "
                  f"{status.get('rq-workers-running', '?')} RQ workers")
