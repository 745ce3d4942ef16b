"""Vaultwarden's admin panel: refused without the admin token (401), open with it (login, then /admin/users)."""

from __future__ import annotations

import requests

from plugins.health.functional.errors import WarmingUp

WARMUP = (502, 503, 504)
COOKIE = "VW_ADMIN"


def vaultwarden_admin(session: requests.Session, base_url: str, secrets: dict[str, str]) -> tuple[bool, str]:
    """GET /admin/users without a session must be 401; POST the token to /admin must log in (200/303 with
    the VW_ADMIN cookie) and /admin/users then answer 200 with the user list.

    Only the right token is ever posted: every POST /admin counts against Vaultwarden's admin rate limit.
    """
    (token,) = secrets.values()
    users = base_url.rstrip("/") + "/users"
    anonymous = session.get(users, headers={"Accept": "application/json"}, allow_redirects=False, timeout=10)
    if anonymous.status_code in WARMUP:
        raise WarmingUp(f"GET {users} answered {anonymous.status_code} (warming up)")
    if anonymous.status_code != 401:
        return False, (f"GET {users} without the admin token answered {anonymous.status_code}; expected 401 "
                       "(the admin panel must refuse without ADMIN_TOKEN)")
    login = session.post(base_url, data={"token": token}, allow_redirects=False, timeout=10)
    if login.status_code == 429:
        return False, (f"POST {base_url} answered 429: Vaultwarden's admin rate limit "
                       "(ADMIN_RATELIMIT_SECONDS / ADMIN_RATELIMIT_MAX_BURST) refused the login; retry later")
    if login.status_code not in (200, 303) or COOKIE not in login.cookies:
        return False, (f"POST {base_url} with the admin token answered {login.status_code}"
                       f"{'' if COOKIE in login.cookies else f' without a {COOKIE} cookie'}; expected 200 or 303 "
                       "with the cookie (is ADMIN_TOKEN the inventory's secret?)")
    listed = session.get(users, cookies={COOKIE: login.cookies[COOKIE]}, headers={"Accept": "application/json"},
                         allow_redirects=False, timeout=10)
    try:
        count = len(listed.json()) if listed.status_code == 200 else None
    except ValueError:
        count = None
    if count is None:
        return False, f"GET {users} after the admin login answered {listed.status_code}; expected 200 and a JSON list"
    return True, f"{base_url}: refused without the token (401), admin login with it works ({count} users)"
