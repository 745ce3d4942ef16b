"""python -m lab up [--nodes N] | down | status [--json] | reset | node down|up NAME — the embedded homelab-in-a-box.

Needs root (LXC containers, a bridge, overlay mounts): real users run it with sudo.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import sys
import time

from lab import config, orchestrate
from lab.pve import cluster as pve_cluster


def _require_root() -> None:
    if os.geteuid() != 0:
        sys.exit("python -m lab needs root (it creates LXC containers, the labbr0 bridge and overlay mounts): run it with sudo")


def cmd_up(args: argparse.Namespace) -> int:
    """Bring bridge, base, keys, emulator and S3 up (idempotent) and say where each listens."""
    started = time.monotonic()
    try:
        # flushed: under make or CI stdout is a pipe, and a cold build's progress must show as it comes
        status = orchestrate.up(progress=functools.partial(print, flush=True), nodes=args.nodes)
    except pve_cluster.ClusterError as exc:
        print(f"lab up: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a lab service that did not come up: one line naming it and its log
        print(f"lab up failed: {exc}", file=sys.stderr)
        return 1
    print(f"lab up in {time.monotonic() - started:.1f} s")
    orchestrate.print_status(status)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Remove every container, bridge, mount and process the lab made (the base cache stays)."""
    leftovers = orchestrate.down(progress=print, purge=args.purge)
    if leftovers:
        print("left behind (remove by hand):", *leftovers, sep="\n  ", file=sys.stderr)
        return 1
    print("lab down: no container, bridge, mount or lab process left")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Show the lab's services and every container (--json for scripts)."""
    status = orchestrate.status()
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        orchestrate.print_status(status)
    return 0 if status["up"] else 3


def cmd_env(args: argparse.Namespace) -> int:
    """Print shell exports that point the suite at this lab (eval "$(python -m lab env)")."""
    for name, value in orchestrate.suite_env(orchestrate.status()).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    """Take an emulated node down (a power loss: the emulator's HA manager stops its containers, then fences it and
    recovers its HA containers elsewhere) or bring it back (it boots its onboot containers)."""
    try:
        orchestrate.set_node_online(args.name, args.action == "up")
    except pve_cluster.ClusterError as exc:
        print(f"lab node {args.action}: {exc}", file=sys.stderr)
        return 2
    if args.action == "up":
        print(f"node {args.name}: online (it boots its onboot containers)")
    else:
        print(f"node {args.name}: offline (its containers stop; its HA containers on shared storage are recovered on "
              f"another node {config.HA_FENCE_DELAY:g} s after)")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    """down, then up."""
    cmd_down(argparse.Namespace(purge=False))
    return cmd_up(args)


def node_count(text: str) -> int:
    """--nodes: a cluster size of 1 or more."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of nodes, 1 or more") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count}: expected a number of nodes, 1 or more")
    return count


def add_nodes_option(parser: argparse.ArgumentParser) -> None:
    """--nodes N: the size of the emulated cluster (default: keep the lab's, one node on a fresh lab)."""
    parser.add_argument("--nodes", type=node_count, default=None,
                        help="emulated cluster nodes (default: keep the lab's; a fresh lab has 1)")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one lab command."""
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring the lab up (idempotent)")
    add_nodes_option(up)
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="remove every container, bridge, mount and process of the lab")
    down.add_argument("--purge", action="store_true", help="also remove keys, CA and tokens (the base cache stays)")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="show services and containers")
    status.add_argument("--json", action="store_true", help="machine-readable, includes the lab's token secret")
    status.set_defaults(func=cmd_status)
    reset = sub.add_parser("reset", help="down + up")
    add_nodes_option(reset)
    reset.set_defaults(func=cmd_reset)
    node = sub.add_parser("node", help="take an emulated cluster node down (power loss, HA fencing) or bring it back")
    node.add_argument("action", choices=("down", "up"))
    node.add_argument("name")
    node.set_defaults(func=cmd_node)
    sub.add_parser("env", help="shell exports for the suite (token secret, S3 keys)").set_defaults(func=cmd_env)
    args = parser.parse_args(argv)
    _require_root()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
