"""HTTP: every service answers one of its accepted codes before its deadline (incident #12)."""

import pytest


@pytest.mark.check("http")
def test_http(health_service, verdict):
    """A warm-up code (502/503) only means "retry": success is an accepted code, redirects not followed."""
    verdict.assert_passed()
