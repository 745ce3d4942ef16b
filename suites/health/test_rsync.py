"""rsync: Ansible's synchronize runs it on the target, so every host has it (incident #11)."""

import pytest


@pytest.mark.check("rsync_installed")
def test_rsync(health_host, verdict):
    """rsync is on the deploy user's PATH."""
    verdict.assert_passed()
