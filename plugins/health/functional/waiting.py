"""Run a functional probe until it passes or its deadline passes (health suite)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import requests

from plugins.health.web import ATTEMPT_TIMEOUT, BACKOFF, MIN_ATTEMPT_TIMEOUT, NamedHostAdapter, seconds
from plugins.shared.backoff import poll

if TYPE_CHECKING:
    from plugins.inventory.stack import ProbeTarget


@dataclass(frozen=True)
class ProbeResult:
    """How a probe ended: success, its one-line message, how long and how many attempts."""

    name: str
    url: str
    ok: bool
    message: str
    elapsed: float = 0.0
    attempts: int = 1

    def __bool__(self) -> bool:
        """A result is true when the probe passed."""
        return self.ok


class RoutedSession(requests.Session):
    """A session that sends every request to `connect_to` (when set) with the URL's host name as Host and SNI:
    a route checked through Traefik without DNS; each request gets the current attempt's timeout."""

    def __init__(self, connect_to: str | None, ca_file: str | None):
        """Ignore proxy/netrc variables; verify TLS against ca_file (or the system CAs)."""
        super().__init__()
        self.trust_env = False
        self.verify = ca_file or True
        self.connect_to = connect_to
        self.timeout = ATTEMPT_TIMEOUT
        self.mount("https://", NamedHostAdapter())

    def request(self, method, url, **kwargs):
        """Send as requests does, to connect_to when set, with this attempt's timeout."""
        kwargs.setdefault("timeout", self.timeout)
        if self.connect_to:
            parts = urlsplit(url)
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Host": parts.hostname or ""}
            netloc = self.connect_to + (f":{parts.port}" if parts.port else "")
            url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        return super().request(method, url, **kwargs)


def probe_secrets(target: ProbeTarget, environ: dict | None = None) -> dict[str, str]:
    """The probe's secrets that have a value here (from their env variables; a vault secret has none)."""
    environ = os.environ if environ is None else environ
    return {name: environ[var] for name, var in target.secret_env if var and environ.get(var)}


def wait_for_probe(target: ProbeTarget, *, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> ProbeResult:
    """Retry the target's probe with capped backoff until it passes or its deadline passes."""
    from plugins.health.functional import KINDS

    probe, secrets = KINDS[target.kind], probe_secrets(target)
    with RoutedSession(target.connect_to, target.ca_file) as session:

        def attempt(remaining: float) -> tuple[bool, str]:
            session.timeout = max(MIN_ATTEMPT_TIMEOUT, min(ATTEMPT_TIMEOUT, remaining))
            return probe(session, target.url, secrets)

        polled = poll(attempt, lambda answer: answer[0], deadline=target.deadline, backoff=BACKOFF,
                      clock=clock, sleep=sleep)
    ok, message = polled.value
    if not ok:
        message = f"{target.name}: {message}; still failing after {seconds(polled.elapsed)} (deadline {target.deadline:g} s)"
    return ProbeResult(target.name, target.url, ok, message if not ok else f"{target.name}: {message}",
                       polled.elapsed, polled.attempts)
