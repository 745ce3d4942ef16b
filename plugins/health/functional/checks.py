"""The health suite's functional checks: one attempt of a declared probe (plugins/inventory/probes.py), and the
wait that retries it until its deadline. A secret's value is read from the environment here, when the probe
runs, and never appears in a message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import requests

from plugins.health.functional import KINDS
from plugins.health.web import BACKOFF, HttpResult, NamedHostAdapter, describe_error, seconds
from plugins.shared.backoff import poll

if TYPE_CHECKING:
    from plugins.inventory.probes import FunctionalProbe


class ProbeSession(requests.Session):
    """A session that ignores proxy variables and, for a probe through Traefik, sends every request to the
    proxy's address with the route's name as Host header and TLS name, verified against the inventory's CA."""

    def __init__(self, probe: FunctionalProbe):
        """A session for this probe."""
        super().__init__()
        self.trust_env = False
        self.mount("https://", NamedHostAdapter())
        self._probe = probe

    def request(self, method, url, **kwargs):
        """Send as requests does, through the proxy when the probe says so."""
        if self._probe.connect_to:
            parts = urlsplit(url)
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Host": parts.hostname or ""}
            kwargs.setdefault("verify", self._probe.ca_file or True)
            netloc = self._probe.connect_to + (f":{parts.port}" if parts.port else "")
            url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        kwargs.setdefault("allow_redirects", False)
        return super().request(method, url, **kwargs)


def run_probe(probe: FunctionalProbe, environ: dict | None = None) -> tuple[bool, str]:
    """One attempt: the kind's verdict, or what stopped it (a missing secret, a connection error)."""
    environ = os.environ if environ is None else environ
    secrets = {}
    for role, variable in probe.secret_env:
        value = environ.get(variable)
        if not value:
            return False, (f"needs the environment variable {variable} (its {role}; the lab exports it with "
                           "`eval \"$(python -m lab env)\"`)")
        secrets[role] = value
    with ProbeSession(probe) as session:
        try:
            return KINDS[probe.kind](session, probe.base_url, secrets)
        except requests.RequestException as exc:
            return False, f"{probe.base_url}: {describe_error(exc)}"


def wait_for_probe(probe: FunctionalProbe, *, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> HttpResult:
    """Retry the probe until it passes or its deadline passes; the result says the last verdict."""
    polled = poll(lambda remaining: run_probe(probe), lambda verdict: verdict[0], deadline=probe.deadline,
                  backoff=BACKOFF, clock=clock, sleep=sleep)
    ok, message = polled.value
    if not ok:
        message = f"{message} (after {seconds(polled.elapsed)})"
    return HttpResult(probe.name, probe.base_url, ok=ok, elapsed=polled.elapsed, attempts=polled.attempts,
                      message=f"{probe.name} {probe.base_url}: {message}")
