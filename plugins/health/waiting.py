"""Wait until hosts are healthy: the deploy's health stage and the rollback's wait share this.

Which checks a host owes, and which services, comes from the check registry (plugins/health/registry.py)
read against the inventory. Failing hosts are re-checked with capped backoff until their deadline: a host
that just booted gets time, a broken one a diagnosis. A failure no wait can change (a container stopped whose
restart policy is "no", plugins/health/dockerd.py) ends the wait for it at once: its host is not re-checked
for it, and the services that container answers are not waited for further.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from plugins.health.hosts import check_hosts
from plugins.health.registry import host_wanted, service_containers
from plugins.health.results import FAIL, SKIP, CheckResult
from plugins.health.web import HttpResult, wait_for_service
from plugins.shared.backoff import Backoff, poll
from plugins.shared.fanout import fan_out
from plugins.shared.this_machine import self_reason
from plugins.ssh.known_hosts import known_hosts_file
from plugins.ssh.pool import SshPool, SshTarget

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory, Service

HOST_DEADLINE = 90.0  # a freshly created or rolled-back host: boot, sshd, dockerd, containers restarting
# A re-check is one SSH command per host: cheap, and a late notice costs the whole wait.
RECHECK = Backoff(first=0.25, factor=2.0, cap=1.0)
SERVICE_WORKERS = 32  # HTTP waits mostly sleep


def ssh_pool(inventory: Inventory, hosts: Sequence[Host]) -> SshPool:
    """An SSH master pool for these hosts as the deploy user, with the environment's known_hosts."""
    runner = inventory.runner
    return SshPool([SshTarget(h.hostname, h.ip, runner.deploy_user, runner.deploy_key) for h in hosts],
                   known_hosts=known_hosts_file(inventory))


def wait_hosts_healthy(inventory: Inventory, hosts: Sequence[Host], *, deadline: float = HOST_DEADLINE,
                       clock: Callable[[], float] = time.monotonic,
                       sleep: Callable[[float], None] = time.sleep,
                       wanted_of: Callable[[Host], list] = host_wanted,
                       observe: Callable[[dict[tuple[str, str, Any], CheckResult]], None] | None = None,
                       ) -> dict[tuple[str, str, Any], CheckResult]:
    """Check every host until all its checks pass or the deadline passes; give the last result of each check.

    `wanted_of` gives a host's (check, subject) pairs: the registry's by default (the rollback narrows it);
    `observe` sees each round's results as they come (the rollback's timeline)."""
    pending = list(hosts)
    reasons = {h.hostname: self_reason(inventory, h) for h in pending}
    final: dict[tuple[str, str, Any], CheckResult] = {}
    with ssh_pool(inventory, pending) as pool:

        def check_pending(remaining: float) -> list[Host]:
            nonlocal pending
            for host in pending:
                pool.forget(host.hostname)  # a failed open is tried again; an open master is kept
            results = check_hosts([(h, wanted_of(h)) for h in pending], pool, user=inventory.runner.deploy_user,
                                  public_key_file=inventory.runner.deploy_key + ".pub", self_reasons=reasons)
            final.update(results)
            if observe:
                observe(results)
            failing = {r.host for r in results.values() if r.outcome == FAIL and not r.final}
            failing |= {r.host for r in results.values() if r.outcome == SKIP and not reasons.get(r.host)}
            pending = [h for h in pending if h.hostname in failing]
            return pending

        poll(check_pending, lambda still_failing: not still_failing, deadline=deadline, backoff=RECHECK,
             clock=clock, sleep=sleep)
    return final


def wait_services(services: Sequence[tuple[Host, Service]],
                  deadline_of: Callable[[Service], float] | None = None,
                  observe: Callable[[Host, Service, HttpResult], None] | None = None,
                  given_up: Callable[[Host, Service], str | None] | None = None,
                  ) -> dict[tuple[str, str], HttpResult]:
    """Wait for every (host, service) concurrently, each until its own deadline (or `deadline_of` it), or until
    `given_up` names why waiting for it is pointless; `observe` sees each answer as its wait ends."""
    services = list(services)
    deadline_of = deadline_of or (lambda service: service.deadline)

    def wait(pair: tuple[Host, Service]) -> HttpResult:
        stop = (lambda: given_up(*pair)) if given_up else None
        answer = wait_for_service(pair[1], deadline_of(pair[1]), stop=stop)
        if observe:
            observe(pair[0], pair[1], answer)
        return answer

    answers = fan_out(wait, services, workers=SERVICE_WORKERS, name="http")
    return {(h.hostname, s.name): answer for (h, s), answer in zip(services, answers, strict=True)}


def declared_container(host: Host, service: Service) -> str | None:
    """The container that answers a service of the host as the inventory declares it (None: not known)."""
    return service_containers(host).get(service.name)


class DownForGood:
    """The containers the host checks found down for good, by (hostname, container): the services they answer
    are not waited for further."""

    def __init__(self, container_of: Callable[[Host, Service], str | None]):
        self.container_of = container_of
        self.found: dict[tuple[str, str], str] = {}

    def note(self, results: dict[tuple[str, str, Any], CheckResult]) -> None:
        """Remember each container a round of checks found down for good."""
        for item in results.values():
            if item.final and item.check == "container_running" and item.subject:
                self.found[(item.host, item.subject)] = f"container {item.subject} is stopped and nothing starts it again"

    def reason(self, host: Host, service: Service) -> str | None:
        """Why waiting for the service is pointless (its container is down for good), or None."""
        container = self.container_of(host, service)
        return self.found.get((host.hostname, container)) if container else None


def wait_hosts_and_services(inventory: Inventory, hosts: Sequence[Host], services: Sequence[tuple[Host, Service]],
                            wanted_of: Callable[[Host], list] = host_wanted,
                            deadline_of: Callable[[Service], float] | None = None,
                            host_deadline: float = HOST_DEADLINE,
                            observe_hosts: Callable[[dict[tuple[str, str, Any], CheckResult]], None] | None = None,
                            observe_services: Callable[[Host, Service, HttpResult], None] | None = None,
                            container_of: Callable[[Host, Service], str | None] = declared_container,
                            ) -> tuple[dict[tuple[str, str, Any], CheckResult], dict[tuple[str, str], HttpResult]]:
    """Wait for the hosts' checks (until host_deadline) and the services' answers at the same time (services warm up
    meanwhile); the observers see each round of host checks and each service's answer as they come. A service
    whose container (`container_of`; the inventory's by default) the checks find down for good is not waited for
    further."""
    down = DownForGood(container_of)

    def seen(results: dict[tuple[str, str, Any], CheckResult]) -> None:
        down.note(results)
        if observe_hosts:
            observe_hosts(results)

    host_results, web = fan_out(lambda wait: wait(),
                                [lambda: wait_hosts_healthy(inventory, hosts, deadline=host_deadline, wanted_of=wanted_of,
                                                            observe=seen),
                                 lambda: wait_services(services, deadline_of, observe_services, down.reason)],
                                workers=2, name="health")
    return host_results, web
