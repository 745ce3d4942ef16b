"""The rollback's wait expects what the snapshot holds: a service the failed run added is gone after the
rollback, as it should be, and is neither waited for nor reported unhealthy."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from plugins.deploy.finish import rollback
from plugins.inventory import Inventory, read_document

pytestmark = pytest.mark.unit

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab.yml"


def lab(max_health_wait: float | None = None) -> Inventory:
    """The lab inventory as the model (with deploy.max_health_wait, a test's cap on the deploy's checks)."""
    _, document = read_document(LAB)
    document = copy.deepcopy(document)
    if max_health_wait:
        document.setdefault("deploy", {})["max_health_wait"] = max_health_wait
    return Inventory.model_validate(document)


@pytest.fixture
def captured(monkeypatch):
    """What the rollback hands the wait: per host (check, subject) pairs, and the (host, check) HTTP pairs."""
    seen = {}

    def fake_wait(inventory, hosts, services, wanted_of, deadline_of):
        seen["wanted"] = {h.hostname: wanted_of(h) for h in hosts}
        seen["services"] = [(h.hostname, s.name) for h, s in services]
        seen["deadlines"] = {s.name: deadline_of(s) for _, s in services}
        return {}, {}

    monkeypatch.setattr(rollback, "wait_hosts_and_services", fake_wait)
    return seen


def test_a_service_the_run_added_is_not_waited_for(captured):
    """app-demo had only its database when snapshotted: the backend and frontend (added by the failed run) are
    neither expected running nor asked over HTTP; the database still is."""
    inventory = lab()
    app = inventory.host("app-demo")
    before = {"app-demo": ["app-demo-postgres", "node-exporter", "promtail"]}
    problems = rollback.wait_healthy([app], inventory, before)
    assert problems == {"app-demo": ""}
    containers = [subject for check, subject in captured["wanted"]["app-demo"] if check == "container_running"]
    assert containers == ["app-demo-postgres", "node-exporter", "promtail"]
    assert not [name for _, name in captured["services"] if "backend" in name or "frontend" in name]
    assert rollback.new_services(inventory, before) == {
        "app-demo": ["app-demo-backend", "app-demo-frontend"]}


def test_without_a_record_the_wait_expects_every_declared_service(captured):
    """A host whose containers were not listed at the snapshot (it did not answer): everything is expected."""
    inventory = lab()
    app = inventory.host("app-demo")
    rollback.wait_healthy([app], inventory, {})
    containers = [subject for check, subject in captured["wanted"]["app-demo"] if check == "container_running"]
    assert containers == app.containers
    assert [name for _, name in captured["services"]] == [s.name for s in app.endpoints]
    assert rollback.new_services(inventory, {}) == {}


def test_the_outcome_says_what_was_not_waited_for():
    """describe() names the services the rollback took away with the run."""
    outcome = {"ok": True, "seconds": 4.2, "rolled_back": {"app-demo": "deploy_x"}, "task_errors": {},
               "unhealthy": {}, "excluded": [], "new_in_this_run": {"app-demo": ["app-demo-backend"]}}
    assert "  not waited for on app-demo (added by this run, gone with it): app-demo-backend" in rollback.describe(outcome)


def test_the_rollback_waits_the_declared_deadlines_not_the_deploys_cap(captured):
    """deploy.max_health_wait shortens the deploy's own checks; the rollback still gives NetBox, whose restart
    loads Django, the deadline its declaration says (and every service its own)."""
    inventory = lab(max_health_wait=20)
    utilities = inventory.host("utilities")
    netbox = next(s for s in utilities.endpoints if s.name == "netbox")
    assert netbox.deadline == 20, "the cap no longer applies to the deploy's checks"
    rollback.wait_healthy([utilities], inventory, {})
    assert captured["deadlines"]["netbox"] == 300
    assert captured["deadlines"]["netbox-via-traefik"] == 300
    assert captured["deadlines"] == {s.name: s.deadline for s in lab().host("utilities").endpoints}
