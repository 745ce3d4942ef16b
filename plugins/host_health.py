"""Wait until hosts are healthy: the deploy's health stage and the rollback's wait share this.

Which checks a host owes comes from the inventory (SSH with the deploy key, no passwords, the
runner's key, rsync, Docker and its expected containers, packages); the checks themselves are
plugins/checks.py, the HTTP acceptance plugins/http.py. Failing hosts are re-checked with capped
backoff until their deadline: a host that just booted gets time, a broken one a diagnosis.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from plugins import checks
from plugins.http import HttpResult, wait_for_service
from plugins.known_hosts import known_hosts_file
from plugins.ssh import SshPool, SshTarget

HOST_DEADLINE = 90.0  # a freshly created or rolled-back host: boot, sshd, dockerd, containers restarting
RECHECK_CAP = 1.0  # a re-check is one SSH command per host: cheap, and a late notice costs the whole wait


def host_checks(host) -> list[tuple[str, str | None]]:
    """The (check, subject) pairs a host owes, from its inventory entry."""
    wanted: list[tuple[str, str | None]] = [
        ("ssh_reachable", None), ("sshd_refuses_passwords", None), ("runner_key_authorized", None),
        ("rsync_installed", None),
    ]
    if host.containers:
        wanted.append(("docker_running", None))
        wanted += [("container_running", name) for name in host.containers]
    wanted += [("package_installed", name) for name in host.packages]
    return wanted


def ssh_pool(inventory, hosts) -> SshPool:
    """An SSH master pool for these hosts as the deploy user, with the environment's known_hosts."""
    runner = inventory.runner
    return SshPool([SshTarget(h.hostname, h.ip, runner.deploy_user, runner.deploy_key) for h in hosts],
                   known_hosts=known_hosts_file(inventory))


def wait_hosts_healthy(inventory, hosts, *, deadline: float = HOST_DEADLINE,
                       sleep=time.sleep) -> dict[tuple[str, str, str | None], checks.CheckResult]:
    """Check every host until all its checks pass or the deadline passes; give the last result of each check."""
    started, pause = time.monotonic(), 0.25
    pending = list(hosts)
    reasons = {h.hostname: checks.self_check_reason(inventory, h) for h in pending}
    final: dict = {}
    with ssh_pool(inventory, pending) as pool:
        while pending:
            results = checks.check_hosts([(h, host_checks(h)) for h in pending], pool,
                                         user=inventory.runner.deploy_user,
                                         public_key_file=inventory.runner.deploy_key + ".pub",
                                         self_reasons=reasons)
            final.update(results)
            failing = {r.host for r in results.values() if r.outcome == checks.FAIL}
            failing |= {r.host for r in results.values() if r.outcome == checks.SKIP and not reasons.get(r.host)}
            pending = [h for h in pending if h.hostname in failing]
            remaining = deadline - (time.monotonic() - started)
            if not pending or remaining <= 0:
                break
            for host in pending:
                pool.forget(host.hostname)
            sleep(min(pause, remaining))
            pause = min(pause * 2, RECHECK_CAP)
    return final


def wait_services(services) -> dict[tuple[str, str], HttpResult]:
    """Wait for every (host, service) concurrently, each until its own deadline."""
    services = list(services)
    if not services:
        return {}
    with ThreadPoolExecutor(max_workers=min(32, len(services)), thread_name_prefix="http") as pool:
        futures = {(h.hostname, s.name): pool.submit(wait_for_service, s) for h, s in services}
        return {key: future.result() for key, future in futures.items()}


def wait_hosts_and_services(inventory, hosts, services) -> tuple[dict, dict[tuple[str, str], HttpResult]]:
    """Wait for the hosts' checks and the services' answers at the same time (services warm up meanwhile)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hosts") as pool:
        host_results = pool.submit(wait_hosts_healthy, inventory, hosts)
        web = wait_services(services)
        return host_results.result(), web
