"""Functional probes: each service's `probes:` (plugins/health/functional) pass, directly and through Traefik."""

import pytest


@pytest.mark.check("functional")
def test_functional(health_probe, verdict):
    """The service does its job (e.g. the Zabbix API answers apiinfo.version), retried until its deadline."""
    verdict.assert_passed()
