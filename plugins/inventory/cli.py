"""`python -m plugins.inventory check|tfvars|schema`: validate an inventory or print the Terraform variables.

The Ansible inventory, with what each host runs, is plugins/stack's: `python -m plugins.stack ansible`.

A problem is one line on stderr (file, key or line, what was expected) and the exit status is 1; nothing is
written; no traceback, whatever the input.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable

from plugins.inventory.errors import InventoryError
from plugins.inventory.loader import display, load_inventory
from plugins.inventory.machine import machine_problems
from plugins.inventory.model import Inventory
from plugins.inventory.plugin import DEFAULT_INVENTORY
from plugins.inventory.repository import repository_problems
from plugins.inventory.schema import DECLARATION_SCHEMA_PATH, SCHEMA_PATH, written_schemas

EXIT_INVALID = 1
EXIT_INTERNAL = 70  # EX_SOFTWARE
EXIT_USAGE = 2  # argparse's
ANSIBLE_MOVED = "the Ansible inventory is plugins/stack's: python -m plugins.stack ansible [PATH]"

LEVELS = f"""\
check validates in three levels and stops at the first that fails:
  structure    the file alone: YAML without YAML 1.1 surprises, keys, value grammars (names that reach a
               shell, apt, Docker or Proxmox), cross-field rules; and the services/<name>.yml declarations it
               runs (each one's keys and values, no secret written in one, dependencies declared and without a
               cycle, published ports and route hosts unique). Every pytest session checks this at start.
  repository   against this checkout: each role has ansible/roles/<role>/tasks/main.yml, the environment
               has terraform/envs/<environment>, service ports agree with what the roles serve.
  this machine only with --here: the files the inventory names (proxmox.ca_file, services' ca_file,
               runner.deploy_key and its .pub) exist, are readable and not empty, the key is not readable
               by others. Run it on the runner: without --here nothing on this machine is looked at, so
               inventories/homelab.yml validates anywhere. The deploy checks these again in its preflight.
A problem is one line on stderr naming the file and the key (or line) — a declaration's own file for a mistake in
it, both files when two declarations collide; exit status {EXIT_INVALID}; nothing is written.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m plugins.inventory",
        description="Validate an inventory file or print what the deploy derives from it.",
        epilog=LEVELS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="check|tfvars|schema")
    check = commands.add_parser("check", help="validate inventories (structure, repository; --here: this machine)",
                                epilog=LEVELS, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("paths", nargs="*", default=[DEFAULT_INVENTORY], metavar="PATH",
                       help=f"inventory files (default {DEFAULT_INVENTORY})")
    check.add_argument("--here", action="store_true",
                       help="also check the files the inventory names on this machine (run it on the runner)")
    tfvars = commands.add_parser("tfvars", help="print the Terraform variables derived from the inventory, as JSON")
    tfvars.add_argument("path", nargs="?", default=DEFAULT_INVENTORY, metavar="PATH")
    moved = commands.add_parser("ansible", help=f"moved: {ANSIBLE_MOVED}")
    moved.add_argument("path", nargs="?", default=DEFAULT_INVENTORY, metavar="PATH")
    commands.add_parser("schema", help=f"write {display(SCHEMA_PATH)} and {display(DECLARATION_SCHEMA_PATH)} from the "
                                       "models")
    return parser


def check(path: str, here: bool) -> list[str]:
    """The problems of one inventory file, one line each ([] when it is valid)."""
    try:
        inventory = load_inventory(path)
    except InventoryError as error:
        return error.lines()
    problems = repository_problems(inventory)
    if not problems and here:
        problems = machine_problems(inventory)
    if problems:
        return InventoryError(inventory.source, problems).lines()
    checked = "structure, repository" + (", this machine" if here else "; files on this machine not checked: --here")
    print(f"{inventory.source}: ok ({len(inventory.hosts)} hosts, {len(inventory.endpoints)} services; {checked})")
    return []


def _run(args: argparse.Namespace) -> int:
    if args.command == "schema":
        for path, text in written_schemas().items():
            path.write_text(text, encoding="utf-8")
            print(f"wrote {display(path)}")
        return 0
    if args.command == "check":
        problems = [line for path in args.paths for line in check(path, args.here)]
        for line in problems:
            print(line, file=sys.stderr)
        return EXIT_INVALID if problems else 0
    if args.command == "ansible":
        print(ANSIBLE_MOVED, file=sys.stderr)
        return EXIT_USAGE
    return print_derived(args.path, lambda inventory: inventory.terraform_vars())


def print_derived(path: str, derive: Callable[[Inventory], dict]) -> int:
    """Print what derive makes of the inventory at path, as JSON; a broken inventory is its lines on stderr, exit 1."""
    try:
        inventory = load_inventory(path)
    except InventoryError as error:
        print("\n".join(error.lines()), file=sys.stderr)
        return EXIT_INVALID
    print(json.dumps(derive(inventory), indent=2))
    return 0


def guarded(run: Callable[[], int], package: str) -> int:
    """run()'s exit status; an interrupt or a bug is one line on stderr (a bug's text may hold a value: not shown)."""
    try:
        return run()
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - a bug must still be one line, and its text may hold a value
        frame = traceback.extract_tb(error.__traceback__)[-1]
        print(f"internal error: {type(error).__name__} in {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} "
              f"(a bug of {package}; nothing was written)", file=sys.stderr)
        return EXIT_INTERNAL


def main(argv: list[str]) -> int:
    """Run one command; the exit status: 0 valid, 1 invalid, 2 usage."""
    args = _parser().parse_args(argv)
    return guarded(lambda: _run(args), "plugins/inventory")
