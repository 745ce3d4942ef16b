"""SSH: the runner reaches every host as the deploy user with its key, and no host accepts passwords."""

import pytest


@pytest.mark.check("ssh_reachable")
def test_ssh(health_host, verdict):
    """The runner's deploy key opens an SSH session as the deploy user (not checked on the runner itself)."""
    verdict.assert_passed()


@pytest.mark.check("sshd_refuses_passwords")
def test_sshd_refuses_passwords(health_host, verdict):
    """sshd offers the deploy user public-key authentication only, never passwords."""
    verdict.assert_passed()
