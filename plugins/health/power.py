"""The hosts' power state in the health suite: a stopped or missing host is reported as such, at once.

Before any SSH or HTTP check, PVE is asked for every selected host's state (plugins/proxmox/power.py, one call
for the cluster, each host on the node it runs on now). Nothing can answer on a host that is stopped or missing: its SSH check fails naming that state,
its other host checks are not run, and every HTTP check that would go to it (its own services, a route through
it when it is the proxy, a probe that watches every host) fails at once instead of waiting out its deadline.
Without a Proxmox client (no token in the environment, API down) the checks go by SSH and HTTP alone, and the
run says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from plugins.health.results import FAIL, SKIP, CheckResult, result
from plugins.health.web import HttpResult
from plugins.proxmox.client import ProxmoxClient
from plugins.proxmox.power import HostState, host_states
from plugins.proxmox.tasks import ProxmoxError

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory

STATE_TIMEOUT = 10.0  # seconds per API call: the health suite must not wait on an API that hangs
# Functional probe kinds whose verdict covers every host (Prometheus scrapes each one): a host down fails them.
WATCHES_EVERY_HOST = frozenset({"prometheus_targets"})


def read_states(inventory: Inventory, hosts: Sequence[Host], env: Mapping[str, str] | None = None,
                ) -> tuple[dict[str, HostState], str]:
    """({hostname: HostState} of the hosts, '') from PVE, or ({}, why they could not be read)."""
    try:
        client = ProxmoxClient.from_inventory(inventory, **({} if env is None else {"env": env}),
                                              http_timeout=STATE_TIMEOUT)
        states = host_states(client, hosts, client.offline_nodes())
    except ProxmoxError as error:
        return {}, f"hosts' states not read from Proxmox VE ({error}): the checks go by SSH and HTTP alone"
    return {state.hostname: state for state in states.values()}, ""


def down_line(state: HostState, host: Host) -> str:
    """Why nothing answers on a down host: `ci-runner (CT 210) is stopped, nothing answers on 198.18.0.210`."""
    return f"{state.line()}, nothing answers on {host.ip} (Proxmox VE says so; `make deploy` starts or creates it)"


def down_host_results(host: Host, wanted: Iterable[tuple[str, Any]], state: HostState) -> list[CheckResult]:
    """A down host's checks: ssh_reachable fails with its state, the others are not run (skipped with it)."""
    line = down_line(state, host)
    return [result(host, check, FAIL, line, subject) if check == "ssh_reachable"
            else result(host, check, SKIP, f"not checked: {line}", subject) for check, subject in wanted]


def http_blocked_by(host: Host, subject: Any, states: Mapping[str, HostState],
                    hosts: Mapping[str, Host]) -> str:
    """Why an HTTP check or probe of this host cannot pass now ('' when it may): a host it goes to is down."""
    own = states.get(host.hostname)
    if own is not None and own.down:
        return down_line(own, host)
    by_ip = {h.ip: h for h in hosts.values()}
    via = by_ip.get(getattr(subject, "connect_to", None) or "")
    if via is not None and via.hostname in states and states[via.hostname].down:
        return f"through {down_line(states[via.hostname], via)}"
    if getattr(subject, "kind", None) in WATCHES_EVERY_HOST:
        down = [s.line() for s in states.values() if s.down]
        if down:
            return f"it watches every host, and {'; '.join(down)}"
    return ""


def failed_http(subject: Any, reason: str) -> HttpResult:
    """An HTTP check or probe failed at once, for the reason given."""
    return HttpResult(subject.name, str(subject.url), ok=False, message=f"{subject.name} {subject.url}: not checked: "
                      f"{reason}")
