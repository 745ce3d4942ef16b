"""Docker: dockerd answers on every host that runs containers, and each expected container is up."""

import pytest


@pytest.mark.check("docker_running")
def test_docker(health_host, verdict):
    """dockerd is running and answers the deploy user."""
    verdict.assert_passed()


@pytest.mark.check("container_running")
def test_container(health_container, verdict):
    """Each container of the inventory is running, and healthy when it has a healthcheck."""
    verdict.assert_passed()
