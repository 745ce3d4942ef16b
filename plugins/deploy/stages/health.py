"""Health: the deployed hosts and services pass the same checks as suites/health, with wait-and-retry.

Hosts get until their deadline to boot and start their containers; each service until its own deadline,
warm-up codes (502/503) counting only as "not yet"; deploy.max_health_wait caps both. The runner skips its
self-checks. A host the run leaves out (its node down) is not judged, nor its services: the test says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugins.deploy.stages.outcome import HostOutcome
from plugins.health.results import FAIL, SKIP, CheckResult
from plugins.health.waiting import HOST_DEADLINE, wait_hosts_and_services
from plugins.health.web import HttpResult
from plugins.report import allure_output

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession
    from plugins.inventory import Host


def wait_until_healthy(deployment: DeploySession) -> tuple[dict[tuple[str, str, Any], CheckResult],
                                                           dict[tuple[str, str], HttpResult]]:
    """Every host's checks and every service's answer, waited for at the same time; recorded on the session."""
    inventory = deployment.inventory
    cap = inventory.deploy.max_health_wait
    judged = deployment.hosts
    endpoints = [(host, service) for host, service in inventory.endpoints if host in judged]
    with allure_output.step(f"check {len(judged)} host(s), wait for {len(endpoints)} service(s)"):
        hosts, services = wait_hosts_and_services(inventory, judged, endpoints,
                                                  host_deadline=min(HOST_DEADLINE, cap) if cap else HOST_DEADLINE)
    deployment.health.extend(hosts.values())
    deployment.health.extend(services.values())
    allure_output.attach_text("http answers", "\n".join(map(describe_answer, services.values())))
    return hosts, services


def not_judged(deployment: DeploySession, host: Host) -> str:
    """Why the stage does not judge a host ('' when it does): the run left it out, its node is down."""
    if host.vmid not in deployment.left_out:
        return ""
    return (f"{deployment.left_out_line(host.vmid)}: not judged (nothing on it can answer until its node is back; "
            "this run did not deploy it)")


def describe_answer(answer: HttpResult) -> str:
    """One service's answer for a reviewer: URL, code (or error), attempts and time, the diagnosis."""
    got = answer.status if answer.status is not None else answer.error or "no answer"
    line = f"{answer.url}: {got} after {answer.attempts} attempt(s), {answer.elapsed:.1f} s"
    return f"{line}: {answer.message}" if answer.message else line


def service_answer(answers: dict[tuple[str, str], HttpResult], host: Host, service: Any) -> HttpResult:
    """One service's answer, attached to its test in the report."""
    answer = answers[(host.hostname, service.name)]
    allure_output.attach_text(f"http answer of {host.hostname}/{service.name}", describe_answer(answer))
    return answer


def host_outcome(results: dict[tuple[str, str, Any], CheckResult], host: Host) -> HostOutcome:
    """One host's outcome: its failed checks' messages, or why all of them were skipped."""
    mine = [r for r in results.values() if r.host == host.hostname]
    failed = [r.message for r in mine if r.outcome == FAIL]
    if failed:
        return HostOutcome(problem="; ".join(failed))
    if mine and all(r.outcome == SKIP for r in mine):
        return HostOutcome(skip=mine[0].message)
    return HostOutcome()
