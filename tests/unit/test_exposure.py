"""The exposure control's judgement: what each source may reach, the probe it runs, and the line a failure gives."""

from __future__ import annotations

import subprocess

import pytest
from broken_inventory import lab_document

from plugins.inventory import load_inventory
from plugins.inventory.loader import validate_document
from plugins.security.exposure import (
    allowed_from,
    candidate_ports,
    exposures,
    parse_answers,
    probe_command,
    targets_from,
)
from plugins.security.lan_point import lan_address

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def lab():
    return load_inventory("inventories/lab.yml")


def answers_of(lab, ports: dict[str, set[int]]) -> set[tuple[str, int]]:
    return {(lab.host(name).ip, port) for name, found in ports.items() for port in found}


def test_the_lan_point_is_a_free_lan_address_outside_management(lab):
    assert lan_address(lab) == "198.18.0.254"
    assert allowed_from(lab, "198.18.0.254")["proxy"] == {80, 443}
    assert allowed_from(lab, "198.18.0.1")["utilities"] is None  # management: every port (the health suite)


def test_the_proxy_container_may_reach_routes_and_loki(lab):
    allowed = allowed_from(lab, lab.host("proxy").ip)
    assert allowed["utilities"] == {8000, 8001, 8080}
    assert allowed["monitoring"] == {3000, 3001, 3100, 8080, 9090}


def test_candidates_are_ssh_and_every_published_port(lab):
    assert candidate_ports(lab, lab.host("utilities")) == {22, 8080, 8000, 8001, 9100, 9080}  # 9080: promtail
    assert all(ip != lab.host("proxy").ip for ip, _ in targets_from(lab, "proxy"))


def test_a_host_answering_as_declared_has_no_problem(lab):
    seen = exposures(lab, "198.18.0.254", "the LAN", answers_of(lab, {"proxy": {80, 443}}))
    assert all(not e.problem() for e in seen.values())


def test_a_port_answering_the_lan_without_an_opening_is_named(lab):
    seen = exposures(lab, "198.18.0.254", "the LAN", answers_of(lab, {"proxy": {80, 443}, "utilities": {8080}}))
    assert seen["utilities"].problem() == ("utilities: port 8080 answers from the LAN (the inventory's firewall "
                                           "opens to it: none)")
    assert not seen["proxy"].problem()


def test_a_service_port_the_rules_open_to_the_lan_still_fails(lab):
    document = lab_document()
    document["firewall"]["rules"] = [{"host": "utilities", "zone": "lan", "ports": [8080]}]
    opened = validate_document("inventories/lab.yml", document)
    seen = exposures(opened, "198.18.0.254", "the LAN", answers_of(opened, {"proxy": {80, 443}, "utilities": {8080}}))
    assert seen["utilities"].problem().startswith("utilities: service port 8080 answers from the LAN, opened by the "
                                                  "inventory's firewall.rules")


def test_a_route_the_proxy_cannot_reach_is_named(lab):
    seen = exposures(lab, lab.host("proxy").ip, "the proxy", answers_of(lab, {"utilities": {8080, 8000}}),
                     source_host="proxy")
    assert seen["utilities"].problem() == "utilities: port 8001 is opened to the proxy but does not answer"
    assert "proxy" not in seen


def test_the_probe_reports_the_ports_that_accept(tmp_path):
    """The probe command, run for real on this machine's loopback: an open port is printed, a closed one not."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            silent = closed.getsockname()[1]
        done = subprocess.run(probe_command([("127.0.0.1", port), ("127.0.0.1", silent)]), shell=True,  # nosec B602 # the probe is the shell line the suite runs in the LAN namespace; here built from two loopback ports
                              capture_output=True, text=True, timeout=30, check=False)
    assert parse_answers(done.stdout) == {("127.0.0.1", port)}
