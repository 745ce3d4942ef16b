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

from plugins.health.functional import grafana_datasources, prometheus_targets
from plugins.health.functional.errors import WarmingUp
from plugins.health.functional.netbox_status import netbox_status
from plugins.health.functional.vaultwarden_admin import vaultwarden_admin
from plugins.health.functional.zabbix_api import zabbix_api

ProbeFunction = Callable[[requests.Session, str, dict[str, str]], tuple[bool, str]]


def until_true(verdict_of: ProbeFunction) -> ProbeFunction:
    """A kind whose False can be a moment of the service (a target not scraped yet, a datasource starting): it is
    retried as a warm-up until the deadline, which then reports its last message. The kind gets the service's
    root without a trailing / and the secret's value as `password`."""

    def probe(session: requests.Session, base_url: str, secrets: dict[str, str]) -> tuple[bool, str]:
        ok, message = verdict_of(session, base_url.rstrip("/"), {"password": next(iter(secrets.values()), "")})
        if not ok:
            raise WarmingUp(message)
        return ok, message

    probe.__doc__ = verdict_of.__doc__
    return probe


KINDS: dict[str, ProbeFunction] = {
    "vaultwarden_admin": vaultwarden_admin,
    "netbox_status": netbox_status,
    "zabbix_api": zabbix_api,
    "prometheus_targets": until_true(prometheus_targets.probe),
    "grafana_datasources": until_true(grafana_datasources.probe),
}

__all__ = ["KINDS", "ProbeFunction", "WarmingUp"]
