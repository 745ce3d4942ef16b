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


def lab() -> Inventory:
    """The lab inventory as the model."""
    _, document = read_document(LAB)
    return Inventory.model_validate(copy.deepcopy(document))


@pytest.fixture
def captured(monkeypatch):
    """What the rollback hands the wait: per host (check, subject) pairs, and the (host, check) HTTP pairs."""
    seen = {}

    def fake_wait(inventory, hosts, services, wanted_of):
        seen["wanted"] = {h.hostname: wanted_of(h) for h in hosts}
        seen["services"] = [(h.hostname, s.name) for h, s in services]
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
