"""Start: a declared host that exists but is stopped is started before anything else touches it.

Preflight read every declared host's state. "Make the homelab match the inventory" starts the stopped ones
(each start a PVE task whose exitstatus is checked), after the plan guard accepted the plan and before the
snapshot stage snapshots them. A missing host is Terraform's to create. The work:
plugins/deploy/stages/host_states.py.
"""

from __future__ import annotations

import pytest

from plugins.deploy.stages import host_states

pytestmark = pytest.mark.stage("start")


def test_every_stopped_host_is_started(deployment, proxmox):
    """Each declared host preflight found stopped is started; each start task ended OK."""
    failures = host_states.start_stopped_hosts(deployment, proxmox)
    assert not failures, "\n".join(failures)


def test_every_started_host_answers_ssh(deployment):
    """A host just started answers SSH before the snapshot and Ansible reach it."""
    problem = host_states.started_hosts_problem(deployment)
    assert not problem, problem
