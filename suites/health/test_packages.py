"""Packages: every package the inventory lists for a host is installed."""

import pytest


@pytest.mark.check("package_installed")
def test_package(health_package, verdict):
    """The Debian package is installed (dpkg status `install ok installed`)."""
    verdict.assert_passed()
