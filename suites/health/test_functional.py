"""Functional probes: each service's declared `probes:` (plugins/health/functional), directly and through Traefik."""

import pytest


@pytest.mark.check("functional")
def test_functional(health_probe, verdict):
    """The probe's kind does what the service is for (an API answers its token, an admin panel its secret)."""
    verdict.assert_passed()
