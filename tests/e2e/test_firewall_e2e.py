"""The firewall declared once, end to end on the lab: deployed through PVE's API, enforced by the emulator, checked
by the exposure control (suites/security/test_exposure.py) from a LAN namespace and from inside the proxy and
Prometheus containers.

After a deploy the control passes; a service port opened to the LAN in the firewall data (utilities' Vaultwarden,
8080) and applied as the deploy's firewall stage applies it makes the control fail on exactly that host (seen from
the LAN point, and from the monitoring container, itself on the LAN), naming the port; the next deploy of the inventory as it is puts the firewall back and the control passes again.
"""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from lab import scenarios
from plugins.inventory import load_inventory
from plugins.proxmox.client import ProxmoxClient
from plugins.proxmox.firewall import changes, converge, read_state
from plugins.stack.firewall import MARK, desired_state

OPEN_VAULTWARDEN = {"host": "utilities", "zone": "lan", "ports": [8080], "comment": "e2e: Vaultwarden to the LAN"}


def exposure(inventory_path) -> subprocess.CompletedProcess:
    """Run the exposure control as `make security` runs the suite, on this inventory."""
    return subprocess.run([sys.executable, "-m", "pytest", "suites/security/test_exposure.py", "--inventory",
                           str(inventory_path), "-p", "no:cacheprovider", "-q", "-rfs"],
                          cwd=scenarios.ROOT, env=scenarios.suite_env(), capture_output=True, text=True,
                          timeout=300, check=False)


def failed_cases(done: subprocess.CompletedProcess) -> list[str]:
    """The (source-host) ids of the failed exposure tests."""
    return sorted(set(re.findall(r"FAILED \S+test_exposure\.py::\S+\[([\w-]+)\]", done.stdout)))


def apply_firewall(inventory_path, *, dry_run: bool = False) -> list[str]:
    """Apply an inventory's firewall as the deploy's firewall stage does (through PVE's API); give the changes (with
    dry_run: what would change)."""
    inventory = load_inventory(inventory_path)
    client = ProxmoxClient.from_inventory(inventory, env=scenarios.suite_env())
    cts = {h.vmid: h.node for h in inventory.hosts}
    current, wanted = read_state(client.api_call, cts), desired_state(inventory)
    if dry_run:
        return changes(current, wanted, MARK)
    return converge(client.api_call, current, wanted, MARK, cts)


def test_exposure_passes_then_fails_on_the_opened_host_then_a_deploy_restores_it(deployed, tmp_path):
    """Declared and enforced; an opened service port fails utilities only (lan-utilities), naming 8080; a deploy
    restores it."""
    assert apply_firewall(scenarios.LAB_INVENTORY, dry_run=True) == [], "the deploy left the firewall unconverged"
    done = exposure(scenarios.LAB_INVENTORY)
    assert done.returncode == 0, f"exposure after a deploy:\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
    assert "skipped" not in done.stdout.splitlines()[-1], done.stdout[-2000:]  # the LAN point was made and used

    document = yaml.safe_load(scenarios.LAB_INVENTORY.read_text())
    document["firewall"]["rules"] = [OPEN_VAULTWARDEN]
    opened = tmp_path / "lab-opened.yml"
    opened.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        changed = apply_firewall(opened)
        assert changed == ["security group hl-201: 6 rule(s)"], changed
        done = exposure(opened)
        failed = failed_cases(done)
        # every failure is on utilities: from the LAN point, and from any container on the LAN but the proxy (the
        # monitoring one: 198.18.0.202 is in lan's 198.18.0.0/15 too, and no service answers it either)
        assert done.returncode == 1 and "lan-utilities" in failed, done.stdout[-4000:]
        assert {case.split("-", 1)[1] for case in failed} == {"utilities"}, failed
        assert "exposure (lan): utilities: service port 8080 answers from the LAN" in done.stdout, done.stdout[-3000:]
    finally:
        again = scenarios.run_suite("deploy")
    assert again.rc == 0, again.tail()
    assert apply_firewall(scenarios.LAB_INVENTORY, dry_run=True) == []
    done = exposure(scenarios.LAB_INVENTORY)
    assert done.returncode == 0, f"exposure after the restoring deploy:\n{done.stdout[-3000:]}"
