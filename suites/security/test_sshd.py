"""SSH on every host: strong algorithms only, keys only, root by key only, only the declared keys."""

import pytest


@pytest.mark.control("ssh-audit")
def test_sshd_offers_no_failing_algorithm(security_host, finding):
    """ssh-audit marks none of sshd's key exchanges, host keys, ciphers or MACs as failing."""
    finding.assert_passed()


@pytest.mark.control("ssh-auth")
def test_sshd_refuses_password_and_keyboard_interactive(security_host, finding):
    """sshd's settings and the methods it offers allow public keys only."""
    finding.assert_passed()


@pytest.mark.control("root-login")
def test_root_logs_in_by_key_only(security_host, finding):
    """PermitRootLogin is prohibit-password (or stricter)."""
    finding.assert_passed()


@pytest.mark.control("keys")
def test_only_declared_keys_are_authorized(security_host, finding):
    """Every authorized_keys file on the host holds only the keys the inventory declares."""
    finding.assert_passed()
