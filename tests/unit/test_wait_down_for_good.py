"""plugins/health/waiting.py: a container stopped that nothing starts again (restart policy "no") ends the wait for
it at once, its host's re-checks and the HTTP waits of the services it answers; a container dockerd is about to
restart (exited, policy "always") is still waited for until the deadline."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
from clocks import SleepClock
from plain_http import free_port

from plugins.health import waiting
from plugins.health.results import FAIL, PASS, CheckResult
from plugins.health.waiting import DownForGood, declared_container, wait_hosts_and_services, wait_hosts_healthy
from plugins.inventory import Service, load_inventory

pytestmark = pytest.mark.unit

LAB = load_inventory(Path(__file__).resolve().parents[2] / "inventories" / "lab.yml")
UTILITIES = LAB.host("utilities")


def vaultwarden_check(final: bool) -> CheckResult:
    """Vaultwarden exited: with policy "no" a final failure, with "always" one that waiting may change."""
    return CheckResult("utilities", "container_running", FAIL, "container vaultwarden is exited", "vaultwarden", final)


class Rounds(list):
    """The rounds of host checks run (1, 2, ...); `of(round)` gives each round's results."""

    def of(self, round_: int) -> dict:
        return {}


class Pool:
    """The SSH pool's part the wait touches."""

    def forget(self, hostname: str) -> None:
        pass


@pytest.fixture
def rounds(monkeypatch):
    """The host checks answered by a function of the round (no SSH): give the rounds run."""
    seen = Rounds()

    def fake_check_hosts(plan, pool, **_):
        seen.append(len(seen) + 1)
        return seen.of(len(seen))

    monkeypatch.setattr(waiting, "check_hosts", fake_check_hosts)
    monkeypatch.setattr(waiting, "ssh_pool", lambda inventory, hosts: contextlib.nullcontext(Pool()))
    return seen


def results_with(vaultwarden: CheckResult) -> dict:
    """One round's results on utilities: Docker answers, Vaultwarden as given."""
    docker = CheckResult("utilities", "docker_running", PASS, "dockerd answers")
    return {("utilities", "docker_running", None): docker,
            ("utilities", "container_running", "vaultwarden"): vaultwarden}


def test_a_container_down_for_good_ends_its_hosts_wait_after_one_round(rounds):
    rounds.of = lambda round_: results_with(vaultwarden_check(final=True))
    clock = SleepClock()
    final = wait_hosts_healthy(LAB, [UTILITIES], deadline=90, clock=clock, sleep=clock.sleep,
                               wanted_of=lambda host: [("container_running", "vaultwarden")])
    assert rounds == [1] and clock.now == 0.0
    assert final[("utilities", "container_running", "vaultwarden")].outcome == FAIL


def test_a_container_dockerd_is_about_to_restart_is_waited_for_until_the_deadline(rounds):
    rounds.of = lambda round_: results_with(vaultwarden_check(final=False))
    clock = SleepClock()
    wait_hosts_healthy(LAB, [UTILITIES], deadline=90, clock=clock, sleep=clock.sleep,
                       wanted_of=lambda host: [("container_running", "vaultwarden")])
    assert len(rounds) > 80 and clock.now == pytest.approx(90)


def test_a_host_with_a_down_container_is_still_rechecked_for_what_may_pass(rounds):
    """Another container still starting keeps the host in the wait; it ends when that one runs."""
    starting = CheckResult("utilities", "container_running", FAIL, "netbox is starting", "netbox")
    running = CheckResult("utilities", "container_running", PASS, "netbox running", "netbox")
    rounds.of = lambda round_: {**results_with(vaultwarden_check(final=True)),
                                          ("utilities", "container_running", "netbox"): starting if round_ < 4 else running}
    clock = SleepClock()
    final = wait_hosts_healthy(LAB, [UTILITIES], deadline=90, clock=clock, sleep=clock.sleep,
                               wanted_of=lambda host: [("container_running", "vaultwarden"), ("container_running", "netbox")])
    assert rounds == [1, 2, 3, 4]
    assert final[("utilities", "container_running", "netbox")].outcome == PASS


def refused(name: str, deadline: float) -> Service:
    """A service nobody answers (a closed port on loopback: refused at once), waited for `deadline` s."""
    return Service(name=name, url=f"http://127.0.0.1:{free_port()}/alive", accepted=[200], deadline=deadline)


def test_the_services_of_a_container_down_for_good_are_not_waited_for_further(rounds):
    """Vaultwarden's two checks (60 s each) end within a few seconds of the round that found it down for good,
    and say why; a service of another container is waited for its whole deadline."""
    rounds.of = lambda round_: results_with(vaultwarden_check(final=round_ >= 2))
    services = [(UTILITIES, refused("vaultwarden", 60)), (UTILITIES, refused("vaultwarden-admin-locked", 60)),
                (UTILITIES, refused("snipeit", 2))]
    started = time.monotonic()
    _, web = wait_hosts_and_services(LAB, [UTILITIES], services,
                                     wanted_of=lambda host: [("container_running", "vaultwarden")])
    took = time.monotonic() - started
    assert took < 10, f"the wait took {took:.1f} s"
    for name in ("vaultwarden", "vaultwarden-admin-locked"):
        answer = web[("utilities", name)]
        assert not answer.ok and answer.message.endswith(
            "; not waited for further: container vaultwarden is stopped and nothing starts it again"), answer.message
    assert "not waited for further" not in web[("utilities", "snipeit")].message
    assert web[("utilities", "snipeit")].elapsed >= 2


def test_the_inventory_names_the_container_of_each_service_direct_and_through_the_proxy():
    by_name = {service.name: service for service in UTILITIES.endpoints}
    assert declared_container(UTILITIES, by_name["vaultwarden"]) == "vaultwarden"
    assert declared_container(UTILITIES, by_name["vaultwarden-admin-locked"]) == "vaultwarden"
    assert declared_container(UTILITIES, by_name["vaultwarden-via-traefik"]) == "vaultwarden"


def test_only_a_final_failure_of_a_container_names_it_down():
    down = DownForGood(lambda host, service: "vaultwarden")
    service = refused("vaultwarden", 60)
    down.note(results_with(vaultwarden_check(final=False)))
    assert down.reason(UTILITIES, service) is None
    down.note(results_with(vaultwarden_check(final=True)))
    assert down.reason(UTILITIES, service) == "container vaultwarden is stopped and nothing starts it again"
    assert DownForGood(lambda host, service: None).reason(UTILITIES, service) is None
