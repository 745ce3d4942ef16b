"""The deploy's health stage waits for hosts as long as for services: deploy.max_health_wait caps both (a host cut
off the network fails the stage at the cap, not after the hosts' own 90 s), and without it hosts get their own."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from plugins.deploy.session import DeploySession
from plugins.deploy.stages import health
from plugins.health.waiting import HOST_DEADLINE
from plugins.inventory import Inventory, read_document

pytestmark = pytest.mark.unit

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab.yml"


def session(tmp_path: Path, max_health_wait: float | None) -> DeploySession:
    """A deploy session on the lab inventory, with or without the deploy's cap on its health waits."""
    _, document = read_document(LAB)
    document = copy.deepcopy(document)
    if max_health_wait:
        document.setdefault("deploy", {})["max_health_wait"] = max_health_wait
    return DeploySession(run_id="unit-health", inventory=Inventory.model_validate(document),
                         reports_dir=tmp_path / "reports")


@pytest.mark.parametrize(("cap", "expected"), [(20, 20), (None, HOST_DEADLINE), (HOST_DEADLINE + 30, HOST_DEADLINE)])
def test_the_hosts_wait_is_capped_by_max_health_wait(tmp_path, monkeypatch, cap, expected):
    """The stage hands the wait min(hosts' deadline, cap), and each service its capped deadline."""
    seen = {}

    def fake_wait(inventory, hosts, services, host_deadline):
        seen["host_deadline"] = host_deadline
        seen["service_deadlines"] = {s.deadline for _, s in services}
        return {}, {}

    monkeypatch.setattr(health, "wait_hosts_and_services", fake_wait)
    health.wait_until_healthy(session(tmp_path, cap))
    assert seen["host_deadline"] == expected
    if cap:
        assert max(seen["service_deadlines"]) <= cap, seen["service_deadlines"]
