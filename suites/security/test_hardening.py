"""Each host's hardening: lynis's index at the inventory's floor, ANSSI's profile in OpenSCAP, unattended security
upgrades, Docker locked down."""

import pytest


@pytest.mark.control("lynis")
def test_lynis_index_at_or_above_the_floor(security_host, finding):
    """lynis's hardening index is at or above security.lynis_floor; its warnings are listed in the message."""
    finding.assert_passed()


@pytest.mark.control("openscap")
def test_openscap_anssi_profile_fails_only_accepted_rules(security_host, finding):
    """OpenSCAP's ANSSI BP-028 intermediary profile: every failing rule is in openscap-accepted.yml, with its reason."""
    finding.assert_passed()


@pytest.mark.control("upgrades")
def test_unattended_security_upgrades_are_on(security_host, finding):
    """unattended-upgrades is installed and APT runs it daily."""
    finding.assert_passed()


@pytest.mark.control("docker")
def test_docker_has_no_tcp_socket_nor_privileged_container(security_host, finding):
    """dockerd listens on no TCP port; no container is privileged or mounts the socket undeclared."""
    finding.assert_passed()
