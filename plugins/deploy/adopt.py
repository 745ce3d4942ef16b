"""Adopt containers PVE has but Terraform's state lost: `python -m plugins.deploy.adopt --inventory PATH [--print]`.

When the state object is emptied or lost (a store wiped, a bucket recreated), a plan would create every
container again; the plan guard refuses it and names this command. It plans against the inventory, takes the
plain creates of containers whose VMID PVE already has (with the inventory's hostname: anything else is
refused), and records them in the state without touching them:

- a provider resource (envs/homelab, Telmate's `proxmox_lxc`) is imported: `terraform import ADDRESS
  <node>/lxc/<vmid>`, the provider reads the container back;
- a `terraform_data` (envs/lab, no provider to read anything back: Terraform cannot import its input or its
  triggers) is adopted by a targeted apply of exactly those instances, whose create provisioner
  (terraform/envs/lab/pve_lxc.py) finds the container with that VMID and hostname and changes nothing on it.

Then it plans again: nothing existing is left to create. `--print` only says what it would run. It takes the
environment's deploy lock (no deploy runs meanwhile) and needs a deploy's environment (the Proxmox token's
variable, the state store's keys: for the lab, `eval "$(python -m lab env)"`). Exit 0 when nothing is left to
adopt, 1 when something failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from plugins.deploy.plan_guard import container_hostname, container_vmid, creates_of_existing
from plugins.deploy.run_lock import LockHeld, RunLock, UnfinishedRun
from plugins.deploy.terraform_setup import terraform_runner
from plugins.inventory import DEFAULT_INVENTORY, InventoryError, load_inventory
from plugins.proxmox.client import ProxmoxClient
from plugins.proxmox.power import HostState, host_states
from plugins.proxmox.tasks import ProxmoxError
from plugins.tools.terraform import Change, Plan, TerraformError, TerraformRunner

ROOT = Path(__file__).resolve().parents[2]
# A provider resource's import ID, from the container's node and VMID (Telmate/proxmox: `<node>/lxc/<vmid>`).
IMPORT_IDS: dict[str, Callable[[HostState], str]] = {"proxmox_lxc": lambda state: f"{state.node}/lxc/{state.vmid}"}
ADOPTED_BY_APPLY = "terraform_data"  # its create provisioner adopts an existing container
_RESOURCE = re.compile(r'(?:^|\.)(?P<type>[a-z][a-z0-9_]*)\.[A-Za-z_][A-Za-z0-9_-]*(?:\[[^\]]*\])?$')


def resource_type(address: str) -> str:
    """The resource type of a plan address: `module.container["proxy"].proxmox_lxc.this` → proxmox_lxc."""
    match = _RESOURCE.search(address)
    return match["type"] if match else ""


def import_command(change: Change, state: HostState) -> list[str]:
    """The `terraform import` argv that records this provider resource from the container PVE has."""
    return ["terraform", "import", change.address, IMPORT_IDS[resource_type(change.address)](state)]


def adoption(plan: Plan, states: dict[int, HostState]) -> tuple[list[Change], list[Change], list[str]]:
    """(changes adopted by a targeted apply, changes to import, problems) for the plan's creates of existing CTs."""
    existing = [vmid for vmid, state in states.items() if state.exists]
    by_apply, by_import, problems = [], [], []
    for change in creates_of_existing(plan, existing):
        hostname, state = container_hostname(change), states[container_vmid(change)]
        kind = resource_type(change.address)
        if state.name and state.name != hostname:
            problems.append(f"CT {state.vmid} on node '{state.node}' is '{state.name}', the inventory says '{hostname}':"
                            " not adopted (fix the inventory or the container)")
        elif kind == ADOPTED_BY_APPLY:
            by_apply.append(change)
        elif kind in IMPORT_IDS:
            by_import.append(change)
        else:
            problems.append(f"{change.address}: no way to adopt a {kind or 'resource'} (known: {ADOPTED_BY_APPLY}, "
                            f"{', '.join(IMPORT_IDS)})")
    return by_apply, by_import, problems


def adopt(runner: TerraformRunner, var_file: Path, states: dict[int, HostState], *, dry_run: bool,
          say: Callable[[str], None] = print) -> int:
    """Plan, adopt what PVE has and the state lacks, plan again; give the exit status."""
    runner.init()
    plan = runner.plan(var_file)
    if plan.errored:
        say(f"terraform plan failed: {plan.error}")
        return 1
    by_apply, by_import, problems = adoption(plan, states)
    for problem in problems:
        say(problem)
    if not by_apply and not by_import:
        say("nothing to adopt: Terraform's state knows every declared container PVE has")
        return 1 if problems else 0
    state_of = {s.hostname: s for s in states.values()}  # the hostnames agree: adoption() checked them
    if by_apply:
        addresses = [c.address for c in by_apply]
        say(f"adopt by a targeted apply ({ADOPTED_BY_APPLY}: its create provisioner finds the container and changes "
            f"nothing): terraform apply {' '.join(f'-target={a}' for a in addresses)}")
    for change in by_import:
        say(" ".join(import_command(change, state_of[container_hostname(change)])))
    if dry_run:
        return 1 if problems else 0
    if by_apply:
        targeted = runner.plan(var_file, targets=[c.address for c in by_apply])
        unexpected = [c.address for c in targeted.changes if c.actions not in (("create",), ("no-op",))]
        if targeted.errored or unexpected:
            say(f"the targeted plan does more than adopt ({targeted.error or ', '.join(unexpected)}): not applied")
            return 1
        runner.apply(targeted)
    for change in by_import:
        runner.import_resource(var_file, change.address, import_command(change, state_of[container_hostname(change)])[3])
    after = runner.plan(var_file)
    left = creates_of_existing(after, [v for v, s in states.items() if s.exists])
    names = ", ".join(f"{container_hostname(c)} (CT {state_of[container_hostname(c)].vmid})" for c in by_apply + by_import)
    say(f"adopted {names}; plan now: {after.summary()}")
    if left or after.errored:
        say(f"still planned to create existing containers: {', '.join(c.address for c in left) or after.error}")
        return 1
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Run the adoption for one inventory; one line per problem, never a traceback."""
    parser = argparse.ArgumentParser(prog="python -m plugins.deploy.adopt", description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default=DEFAULT_INVENTORY, help="the environment's inventory")
    parser.add_argument("--print", dest="dry_run", action="store_true",
                        help="only say what would be adopted and how (the commands), change nothing")
    args = parser.parse_args(argv)
    try:
        inventory = load_inventory(Path(args.inventory))
    except InventoryError as error:
        print(error, file=sys.stderr)
        return 2
    lock = RunLock(inventory.environment)
    try:
        states = host_states(ProxmoxClient.from_inventory(inventory), inventory.hosts)
        lock.acquire("adopt", inventory=str(inventory.source))
    except (ProxmoxError, LockHeld, UnfinishedRun, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    try:
        with tempfile.TemporaryDirectory(prefix="adopt-") as tmp:
            var_file = Path(tmp, "terraform.tfvars.json")
            var_file.write_text(json.dumps(inventory.terraform_vars()))
            return adopt(terraform_runner(inventory, ROOT), var_file, states, dry_run=args.dry_run)
    except TerraformError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
