"""After a power cut the lab comes back like a PVE node (issue 22): the onboot containers start, the Terraform
state is still there, the deploy finds nothing to do and the health suite passes.

The module's name sorts after test_deploy_e2e.py: in a whole session it finds the lab that module leaves
deployed (the `deployed` fixture is then a no-change deploy).
"""

from __future__ import annotations

import subprocess
import sys

from lab import orchestrate, scenarios
from lab.hosts import LabHosts
from plugins.inventory import load_inventory

INVENTORY = load_inventory(scenarios.LAB_INVENTORY)
ROOT = scenarios.ROOT


def test_after_a_power_cut_lab_up_boots_the_homelab_and_a_deploy_changes_nothing(deployed):
    """Power cut (every lab process SIGKILLed, every container stopped with lxc-stop -k, bridge gone), then
    `lab up`: the onboot containers run again, in vmid order (no startup order set), the plan is empty,
    a deploy passes without changing anything, and the health suite passes."""
    declared = sorted(h.vmid for h in INVENTORY.hosts)
    cut = scenarios.power_loss()
    assert {"pve", "s3", "sts"} <= set(cut["killed"]), cut
    assert set(declared) <= set(cut["stopped"]), cut
    assert all(h.state == "stopped" for h in LabHosts().list())

    up = subprocess.run([sys.executable, "-m", "lab", "up"], cwd=ROOT, capture_output=True, text=True,
                        timeout=900, check=False)
    assert up.returncode == 0, f"lab up after the power cut failed:\n{up.stdout[-3000:]}{up.stderr[-3000:]}"
    booted = [int(line.rsplit(" ", 1)[1]) for line in up.stdout.splitlines() if line.startswith("boot: Starting CT ")]
    assert booted == declared, f"lab up started {booted}, expected every onboot container {declared}:\n{up.stdout}"
    states = {h.vmid: h.state for h in LabHosts().list()}
    assert all(states[v] == "running" for v in declared), states
    assert orchestrate.STATE_STORE.objects(), "the Terraform state is gone from the S3 store"

    # The deploy's own plan stage is the plan a `--plan-only` run prints (test_deploy_e2e proves that run alone).
    deploy = scenarios.run_suite("deploy")
    assert deploy.rc == 0, f"deploy after the power cut failed:\n{deploy.tail()}"
    assert deploy.result["plan"]["empty"], f"the plan after the power cut changes something: {deploy.result['plan']}"
    health = scenarios.run_suite("health")
    assert health.rc == 0, f"suites/health after the power cut:\n{health.tail()}"
