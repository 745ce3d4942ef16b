"""Functional probes: what a service does, beyond its HTTP status (a declaration's `probes:`).

Each kind is one function `probe(session, base_url, secrets) -> (ok, message)`: `session` is a requests
session already aimed at the right place (directly, or through Traefik with SNI and Host) with TLS
verification and a per-attempt timeout set; `base_url` is the service's root (the declaration's probe
path); `secrets` maps the secret names the probe declares to their values (absent when the environment has
none). The message is one line that names the URL and never holds a secret. plugins/health/functional/
waiting.py retries a probe until it passes or its deadline passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import requests

from plugins.health.functional.zabbix import zabbix_api

ProbeFunction = Callable[[requests.Session, str, Mapping[str, str]], tuple[bool, str]]

KINDS: dict[str, ProbeFunction] = {
    "zabbix_api": zabbix_api,
}
