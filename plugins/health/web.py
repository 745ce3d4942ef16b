"""HTTP acceptance per service: one check, one wait-and-retry (health suite, deploy health stage, rollback wait).

A service is the inventory's (name, url, accepted, warmup, deadline, tls_verify, follow_redirects).
Accepted codes are data (incident #12): a 302 is a success only where the inventory lists it; warm-up
codes (502/503) never count as success, they only mean "keep retrying until the deadline".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from plugins.shared.backoff import Backoff, poll

if TYPE_CHECKING:
    from plugins.inventory import Service

# The cap keeps a service that comes up late from waiting a long pause after it is ready; the deadline
# bounds the whole wait.
BACKOFF = Backoff(first=0.1, factor=2.0, cap=1.0)
# One attempt never waits longer than this for a connection or an answer (and never past the deadline).
ATTEMPT_TIMEOUT = 10.0
MIN_ATTEMPT_TIMEOUT = 0.2


@dataclass(frozen=True)
class HttpResult:
    """The outcome of checking one service: success, the last code or connection error, and a diagnosis."""

    service: str
    url: str
    ok: bool
    status: int | None = None
    error: str | None = None
    location: str | None = None
    warming_up: bool = False
    elapsed: float = 0.0
    attempts: int = 1
    message: str = ""

    def __bool__(self) -> bool:
        """A result is true when the service answered an accepted code."""
        return self.ok


def accepted_codes(service: Service) -> str:
    """Describe what a service accepts: `200 (502/503 while warming up)`."""
    text = "/".join(str(code) for code in service.accepted)
    if service.warmup:
        text += " (" + "/".join(str(code) for code in service.warmup) + " while warming up)"
    return text


class NamedHostAdapter(HTTPAdapter):
    """Connects to the address in the URL, but speaks TLS to the name in the Host header (SNI and certificate
    check): a route is checked through the proxy by its host name, without DNS."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        """The pool key of requests, with the Host header's name as server_hostname and assert_hostname."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        name = request.headers.get("Host")
        if name and host_params.get("scheme") == "https":
            pool_kwargs["server_hostname"] = name
            pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs


def new_session() -> requests.Session:
    """Give a session that ignores proxy/netrc variables: checks go straight to the address in the inventory."""
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", NamedHostAdapter())
    return session


def request_target(service: Service) -> tuple[str, dict[str, str]]:
    """The URL to send to and the headers: for a service checked through the proxy (connect_to), the proxy's
    address with the route's host name in the Host header; otherwise the url as it is."""
    if not getattr(service, "connect_to", None):
        return service.url, {}
    parts = urlsplit(service.url)
    netloc = service.connect_to + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), {"Host": parts.hostname or ""}


def check_service(
    service: Service,
    *,
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.monotonic,
    timeout: float = ATTEMPT_TIMEOUT,
) -> HttpResult:
    """Send one GET to the service and judge its status against the accepted codes (no retry)."""
    own = session is None
    session = session or new_session()
    start = clock()
    try:
        url, headers = request_target(service)
        response = session.get(
            url,
            headers=headers,
            allow_redirects=service.follow_redirects,
            verify=service.tls_verify,  # the inventory's one derivation: its ca_file, or the system CAs
            timeout=timeout,
            stream=True,  # the status is the verdict: don't download a large body
        )
        response.close()
    except requests.RequestException as exc:
        error = describe_error(exc)
        return HttpResult(service.name, service.url, ok=False, error=error, elapsed=clock() - start,
                          message=diagnosis(service, None, error, None, clock() - start))
    finally:
        if own:
            session.close()
    status = response.status_code
    location = response.headers.get("Location") if response.is_redirect else None
    ok = status in service.accepted
    warming_up = not ok and status in service.warmup
    elapsed = clock() - start
    message = f"{service.name} {service.url}: got {status}" if ok else diagnosis(service, status, None, location, elapsed)
    return HttpResult(service.name, service.url, ok=ok, status=status, location=location,
                      warming_up=warming_up, elapsed=elapsed, message=message)


def wait_for_service(
    service: Service,
    deadline: float | None = None,
    *,
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], str | None] | None = None,
) -> HttpResult:
    """Retry the service with capped exponential backoff until it answers an accepted code or the deadline (s) passes,
    or `stop` names why waiting longer is pointless (the message then says so)."""
    budget = float(service.deadline if deadline is None else deadline)
    own = session is None
    session = session or new_session()
    try:
        polled = poll(lambda remaining: check_service(service, session=session, clock=clock,
                                                      timeout=max(MIN_ATTEMPT_TIMEOUT, min(ATTEMPT_TIMEOUT, remaining))),
                      lambda answer: answer.ok or bool(stop and stop()), deadline=budget, backoff=BACKOFF,
                      clock=clock, sleep=sleep)
    finally:
        if own:
            session.close()
    result, elapsed = polled.value, polled.elapsed
    message = result.message if result.ok else diagnosis(service, result.status, result.error, result.location, elapsed)
    why = stop() if stop and polled.done and not result.ok else None
    if why:
        message += f"; not waited for further: {why}"
    return HttpResult(result.service, result.url, ok=result.ok, status=result.status, error=result.error,
                      location=result.location, warming_up=result.warming_up, elapsed=elapsed,
                      attempts=polled.attempts, message=message)


def diagnosis(service: Service, status: int | None, error: str | None, location: str | None, elapsed: float) -> str:
    """Write the failure line: what was asked, what came back, for how long, and what would have passed."""
    if status is None:
        found = error or "no answer"
    else:
        found = f"got {status}"
        if location:
            found += f" (redirect to {location}, not followed)"
    return f"{service.name} {service.url}: {found} after {seconds(elapsed)}; accepted {accepted_codes(service)}"


def seconds(value: float) -> str:
    """Format a duration for a message: `60 s`, `2.5 s`."""
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def describe_error(exc: requests.RequestException) -> str:
    """Name a connection-level failure the way a person would say it (refused, timed out, TLS, DNS)."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, requests.exceptions.SSLError):
        if "certificate verify failed" in lowered:
            reason = text.split("certificate verify failed:", 1)[-1].split("(")[0].strip(" ')\"")
            return f"TLS certificate verify failed ({reason or 'untrusted certificate'}; inventory: ca_file)"
        return "TLS handshake failed"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no answer (read timed out)"
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "failed to resolve" in lowered or "nodename nor servname" in lowered:
        return "name does not resolve"
    if "no route to host" in lowered:
        return "no route to host"
    if "network fence" in lowered:
        return "refused by the network fence (address outside 127.0.0.0/8 and 198.18.0.0/15)"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection failed (" + text.splitlines()[0][:160] + ")"
    return type(exc).__name__ + ": " + text.splitlines()[0][:160]
