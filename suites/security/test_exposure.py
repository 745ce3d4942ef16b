"""Exposure: from a point on the LAN each host answers only on what the inventory opens to the LAN; a service's port
answers from the proxy (and the metrics from Prometheus) and from nowhere else.

One test per (source, host). Each source probes every host's ports once, all at once: the LAN from a network
namespace on the bridge (plugins/security/lan_point.py), the proxy and Prometheus from inside their containers over
SSH. Read-only: nothing on the hosts changes. The work: plugins/security/exposure.py.
"""

from __future__ import annotations

import pytest

from plugins.health.waiting import ssh_pool
from plugins.inventory import get_inventory
from plugins.inventory.firewall import PROMETHEUS_SERVICE
from plugins.security.exposure import exposures, parse_answers, probe_command, targets_from
from plugins.security.lan_point import LanPointError, lan_point

SOURCES = ("lan", "proxy", "monitoring")


def _source_host(inventory, source: str):
    """The host a source probes from (None for the LAN point)."""
    if source == "proxy":
        return inventory.proxy_host
    if source == "monitoring":
        return next((h for h in inventory.hosts if PROMETHEUS_SERVICE in h.services), None)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """(source, host) pairs from the inventory; a source without a host (no proxy, no Prometheus) is left out."""
    if "exposure_case" not in metafunc.fixturenames:
        return
    inventory = get_inventory(metafunc.config)
    cases = []
    for source in SOURCES:
        origin = _source_host(inventory, source)
        if source != "lan" and origin is None:
            continue
        cases += [(source, h.hostname) for h in inventory.hosts if origin is None or h.hostname != origin.hostname]
    metafunc.parametrize("exposure_case", cases, ids=[f"{s}-{h}" for s, h in cases])


@pytest.fixture(scope="module")
def answers(inventory) -> dict:
    """{source: {hostname: Exposure}} or {source: why it could not probe}: each source probed once."""
    found: dict = {}
    try:
        with lan_point(inventory) as point:
            done = point.run(probe_command(targets_from(inventory)), timeout=60)
            found["lan"] = exposures(inventory, point.address, f"the LAN ({point.address})", parse_answers(done.stdout))
    except LanPointError as error:
        found["lan"] = str(error)
    for source in SOURCES[1:]:
        host = _source_host(inventory, source)
        if host is None:
            continue
        with ssh_pool(inventory, [host]) as pool:
            done = pool.run(host.hostname, probe_command(targets_from(inventory, host.hostname)), timeout=60)
        if done.returncode != 0:
            found[source] = f"probing from {host.hostname} over SSH failed (rc {done.returncode}): {done.stderr.strip()}"
            continue
        found[source] = exposures(inventory, host.ip, f"the {source} host {host.hostname} ({host.ip})",
                                  parse_answers(done.stdout), source_host=host.hostname)
    return found


def test_each_host_answers_a_source_only_on_what_the_firewall_opens_to_it(answers, exposure_case):
    """The ports that answer this source are the inventory's openings to it: none more, none of the derived missing."""
    source, hostname = exposure_case
    seen = answers[source]
    if source == "lan" and isinstance(seen, str):
        pytest.skip(seen)
    assert not isinstance(seen, str), seen
    problem = seen[hostname].problem()
    assert not problem, f"exposure ({source}): {problem}"
