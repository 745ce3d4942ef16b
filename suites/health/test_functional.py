"""Functional: what a service does beyond answering its health path (services/<name>.yml `probes:`)."""

import pytest


@pytest.mark.check("functional")
def test_functional(health_probe, verdict):
    """Each declared probe passes before its deadline: Prometheus's targets up, Grafana's datasources healthy."""
    verdict.assert_passed()
