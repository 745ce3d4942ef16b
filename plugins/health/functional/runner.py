"""Run one functional probe until it answers or its deadline passes; its secrets come from the environment."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import requests

from plugins.health.functional import KINDS
from plugins.health.functional.errors import WarmingUp
from plugins.health.web import BACKOFF, HttpResult, describe_error, new_session
from plugins.shared.backoff import poll

if TYPE_CHECKING:
    from plugins.inventory.model import FunctionalCheck


def secret_values(check: FunctionalCheck) -> tuple[dict[str, str], str]:
    """The probe's secrets by name from their environment variables, or ({}, why one is missing)."""
    values = {}
    for name, env in check.secrets.items():
        if not env:
            return {}, (f"secret {name} comes from Ansible Vault (stack.secrets): the health suite reads secrets "
                        "from the environment; export it there to run this probe")
        if not os.environ.get(env):
            return {}, f"secret {name}: environment variable {env} is unset or empty (`python -m lab env` exports it)"
        values[name] = os.environ[env]
    return values, ""


def probe_session(check: FunctionalCheck) -> tuple[requests.Session, str]:
    """A session for the probe and the URL to call: through the proxy, its address with the route's Host name."""
    session = new_session()
    session.verify = check.tls_verify
    if not check.connect_to:
        return session, check.url
    parts = urlsplit(check.url)
    session.headers["Host"] = parts.hostname or ""
    netloc = check.connect_to + (f":{parts.port}" if parts.port else "")
    return session, urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def wait_for_probe(check: FunctionalCheck, *, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> HttpResult:
    """Run the check's kind until it gives a verdict (retrying while the service warms up) or the deadline passes."""
    values, missing = secret_values(check)
    if missing:
        return HttpResult(check.name, check.url, ok=False, message=f"{check.name}: {missing}")
    function = KINDS[check.kind]

    def attempt(_remaining: float) -> tuple[tuple[bool, str] | None, str]:
        session, url = probe_session(check)
        try:
            return function(session, url, values), ""
        except WarmingUp as exc:
            return None, str(exc)
        except requests.RequestException as exc:
            return None, describe_error(exc)
        finally:
            session.close()

    polled = poll(attempt, lambda answer: answer[0] is not None, deadline=check.deadline, backoff=BACKOFF,
                  clock=clock, sleep=sleep)
    verdict, why = polled.value
    if verdict is None:
        return HttpResult(check.name, check.url, ok=False, error=why, elapsed=polled.elapsed, attempts=polled.attempts,
                          warming_up=True, message=(f"{check.name}: no verdict within {check.deadline:g} s "
                                                    f"({polled.attempts} attempts): {why}"))
    ok, message = verdict
    return HttpResult(check.name, check.url, ok=ok, elapsed=polled.elapsed, attempts=polled.attempts,
                      message=f"{check.name}: {message}")
