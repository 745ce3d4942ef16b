"""Functional probes by kind: what a service does beyond answering a status code (declarations' `probes:`).

Each kind is a function(session, base_url, secrets) -> (ok, one-line message): base_url is the probe's URL
(the service's address, published port and declared path; through Traefik, the proxy's address with the
route's name in the session's Host header), secrets maps the secret names the declaration gives to their
values. A function raises WarmingUp (or lets a requests connection error out) while the service is not ready
yet: the runner (plugins/health/functional/runner.py) retries until the probe's deadline. Messages never
carry a secret's value.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

from plugins.health.functional.errors import WarmingUp
from plugins.health.functional.netbox_status import netbox_status
from plugins.health.functional.vaultwarden_admin import vaultwarden_admin

ProbeFunction = Callable[[requests.Session, str, dict[str, str]], tuple[bool, str]]

KINDS: dict[str, ProbeFunction] = {
    "vaultwarden_admin": vaultwarden_admin,
    "netbox_status": netbox_status,
}

__all__ = ["KINDS", "ProbeFunction", "WarmingUp"]
