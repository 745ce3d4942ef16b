"""End a deploy run that was killed before it could: `python -m plugins.deploy.recover status|rollback|forget`.

A run killed with SIGKILL (or whose machine died) cannot roll itself back. Its lock record
(plugins/deploy/run_lock.py) names the snapshots it took and keeps PVE's firewall and HA resources as the run found
them; the next deploy refuses to start and points here. rollback puts all of it back, as the run's own would.

  python -m plugins.deploy.recover status   --inventory inventories/lab.yml   what is recorded, who holds the lock
                                                                              (exit 3: a run to roll back or forget)
  python -m plugins.deploy.recover rollback --inventory inventories/lab.yml   roll that run's containers back, then clear
  python -m plugins.deploy.recover forget   --inventory inventories/lab.yml   keep the homelab as it is, clear the record

rollback needs the same environment as a deploy (the Proxmox token's variable: for the lab,
`eval "$(python -m lab env)"`). The runner and this machine are never rolled back, as in a deploy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plugins.deploy import recorded_state
from plugins.deploy.finish.rollback import describe, left_to_recover, recovery_lines, roll_back_session
from plugins.deploy.run_lock import LockHeld, RunLock, forget, read_record, recovery_hint
from plugins.deploy.session import DeploySession
from plugins.inventory import InventoryError, load_inventory

NEEDS_RECOVERY = 3  # `status`: a recorded run took snapshots (as `systemctl status` says 3 for "not running")


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit 0 when it did what it says, 1 when it could not, 2 on bad input; status exits 3 when
    a run is recorded that took snapshots (something to roll back or forget), so a script can test for it."""
    parser = argparse.ArgumentParser(prog="python -m plugins.deploy.recover", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("status", "rollback", "forget"))
    parser.add_argument("--inventory", default="inventories/lab.yml", help="the environment's inventory")
    args = parser.parse_args(argv)
    try:
        inventory = load_inventory(Path(args.inventory))
    except InventoryError as error:
        print(error, file=sys.stderr)
        return 2
    lock = RunLock(inventory.environment)
    record = read_record(lock.path)
    if args.command == "status":
        return _status(lock, record)
    if record is None or not record.changed_something():
        print(f"no unfinished run of '{inventory.environment}' is recorded ({lock.path}): nothing to do")
        return 0
    if args.command == "forget":
        try:
            forget(inventory.environment)
        except LockHeld as held:
            print(held, file=sys.stderr)
            return 1
        print(f"forgot {record.holder()}; its snapshots are kept on the containers")
        return 0
    return _rollback(inventory, lock, record)


def _status(lock: RunLock, record) -> int:
    """Say what the lock file records."""
    if record is None:
        print(f"no run recorded ({lock.path})")
    elif record.changed_something():
        print(f"{record.holder()} left {record.pending()} to put back; if it is no longer running, "
              f"{recovery_hint(record)}")
        return NEEDS_RECOVERY
    else:
        print(f"{record.holder()} holds or held the lock and took no snapshot")
    return 0


def _rollback(inventory, lock: RunLock, record) -> int:
    """Hold the dead run's lock, roll its snapshots back; clear its record only when that worked."""
    try:
        record = lock.adopt()
    except LockHeld as held:
        print(held, file=sys.stderr)
        return 1
    deploy = DeploySession(run_id=record.run_id, inventory=inventory)
    deploy.snapshots = {int(vmid): name for vmid, name in record.snapshots.items()}
    recorded_state.onto_session(deploy, record.restores)  # the firewall and HA resources the run found
    outcome = roll_back_session(deploy, print)
    lines = describe(outcome)
    for line in lines:
        print(line)
    if not outcome["ok"]:
        for line in recovery_lines(outcome, deploy.snapshots, inventory):
            print(line)
        left, restores = left_to_recover(outcome, deploy.snapshots, recorded_state.to_record(deploy), inventory)
        lock.keep_unfinished(lines[0], left, restores)
        print(f"the rollback of {record.holder()} is incomplete: its record keeps what is left ({lock.path})",
              file=sys.stderr)
        return 1
    lock.release()
    print(f"{record.holder()} is rolled back; the next deploy can start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
