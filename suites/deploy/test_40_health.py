"""Health: the deployed hosts and services pass the same checks as suites/health, with wait-and-retry.

Hosts get until their deadline to boot and start their containers; each service until its own
deadline, warm-up codes (502/503) counting only as "not yet". The runner skips its self-checks.
"""

from __future__ import annotations

import pytest

from plugins import checks, reporting
from plugins.host_health import wait_hosts_and_services
from plugins.inventory import get_inventory

pytestmark = [pytest.mark.order(40), pytest.mark.stage("health", plan_only=False, sequential=False)]


def pytest_generate_tests(metafunc):
    """One test per inventory host and per service, with readable ids."""
    inventory = get_inventory(metafunc.config)
    if "health_host" in metafunc.fixturenames:
        metafunc.parametrize("health_host", inventory.hosts, ids=[h.hostname for h in inventory.hosts])
    if "health_service" in metafunc.fixturenames:
        pairs = inventory.services
        metafunc.parametrize("health_service", pairs, ids=[f"{h.hostname}/{s.name}" for h, s in pairs])


@pytest.fixture(scope="module")
def health_results(inventory, deployment):
    """Hosts' checks and services' answers, waited for at the same time (run once for the stage)."""
    with reporting.step(f"check {len(inventory.hosts)} host(s), wait for {len(inventory.services)} service(s)"):
        hosts, services = wait_hosts_and_services(inventory, inventory.hosts, inventory.services)
    deployment.health.extend(hosts.values())
    deployment.health.extend(services.values())
    reporting.attach_text("http answers", "\n".join(r.message or f"{r.url}: {r.status}" for r in services.values()))
    return hosts, services


@pytest.fixture(scope="module")
def host_results(health_results):
    """Every host's checks, retried until they pass or the host deadline passes."""
    return health_results[0]


@pytest.fixture(scope="module")
def service_results(health_results):
    """Every service's answer, each waited for until its own deadline."""
    return health_results[1]


def test_the_host_passes_its_checks(health_host, host_results):
    """SSH with the deploy key, no passwords, runner key, rsync, Docker and its containers, packages."""
    mine = [r for r in host_results.values() if r.host == health_host.hostname]
    failed = [r.message for r in mine if r.outcome == checks.FAIL]
    assert not failed, "; ".join(failed)
    if mine and all(r.outcome == checks.SKIP for r in mine):
        pytest.skip(mine[0].message)


def test_the_service_answers_an_accepted_code(health_service, service_results):
    """The service answers one of its accepted codes before its deadline (warm-up codes only mean wait)."""
    host, service = health_service
    result = service_results[(host.hostname, service.name)]
    assert result.ok, result.message
