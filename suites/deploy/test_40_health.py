"""Health: the deployed hosts and services pass the same checks as suites/health, with wait-and-retry.

Hosts get until their deadline to boot and start their containers; each service until its own
deadline, warm-up codes (502/503) counting only as "not yet". The runner skips its self-checks.
The checks: plugins/health/registry.py; the work: plugins/deploy/stages/health.py.
"""

from __future__ import annotations

import pytest

from plugins.deploy.stages import health
from plugins.inventory import get_inventory

pytestmark = pytest.mark.stage("health")


def pytest_generate_tests(metafunc):
    """One test per inventory host and per service, with readable ids."""
    inventory = get_inventory(metafunc.config)
    if "health_host" in metafunc.fixturenames:
        metafunc.parametrize("health_host", inventory.hosts, ids=[h.hostname for h in inventory.hosts])
    if "health_service" in metafunc.fixturenames:
        pairs = inventory.endpoints
        metafunc.parametrize("health_service", pairs, ids=[f"{h.hostname}/{s.name}" for h, s in pairs])


@pytest.fixture(scope="module")
def health_results(deployment):
    """Hosts' checks and services' answers, waited for at the same time (run once for the stage)."""
    return health.wait_until_healthy(deployment)


def test_the_host_passes_its_checks(health_host, health_results, deployment):
    """SSH with the deploy key, no passwords, runner key, rsync, Docker and its containers, packages."""
    why = health.not_judged(deployment, health_host)
    if why:
        pytest.skip(why)
    outcome = health.host_outcome(health_results[0], health_host)
    assert not outcome.problem, outcome.problem
    if outcome.skip:
        pytest.skip(outcome.skip)


def test_the_service_answers_an_accepted_code(health_service, health_results, deployment):
    """The service answers one of its accepted codes before its deadline (warm-up codes only mean wait)."""
    host, service = health_service
    why = health.not_judged(deployment, host)
    if why:
        pytest.skip(why)
    result = health.service_answer(health_results[1], host, service)
    assert result.ok, result.message
