"""Keys: the runner's public key is authorized for the deploy user on every host (incident #9)."""

import pytest


@pytest.mark.check("runner_key_authorized")
def test_keys(health_host, verdict):
    """runner.deploy_key + .pub is in ~deploy_user/.ssh/authorized_keys."""
    verdict.assert_passed()
