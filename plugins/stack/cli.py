"""`python -m plugins.stack ansible [PATH]`: print the Ansible inventory the deploy runs site.yml with, as JSON.

A broken inventory is its problems, one line each on stderr, exit 1 (as `python -m plugins.inventory check` says
them); nothing is printed on stdout; no traceback, whatever the input.
"""

from __future__ import annotations

import argparse

from plugins.inventory.cli import guarded, print_derived
from plugins.inventory.plugin import DEFAULT_INVENTORY
from plugins.stack.ansible import ansible_inventory


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m plugins.stack",
                                     description="Print what the hosts run, rendered from an inventory.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="ansible")
    ansible = commands.add_parser("ansible", help="print the Ansible inventory (hosts, groups, what each host "
                                                  "runs), as JSON")
    ansible.add_argument("path", nargs="?", default=DEFAULT_INVENTORY, metavar="PATH")
    return parser


def main(argv: list[str]) -> int:
    """Run one command; the exit status: 0 printed, 1 invalid inventory, 2 usage."""
    args = _parser().parse_args(argv)
    return guarded(lambda: print_derived(args.path, ansible_inventory), "plugins/stack")
