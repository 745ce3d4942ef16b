"""`python -m plugins.inventory schema | check|tfvars|ansible [PATH]`: validate a file or print what it derives."""

from __future__ import annotations

import json
import sys

from plugins.inventory.errors import InventoryError
from plugins.inventory.loader import display, load_inventory
from plugins.inventory.plugin import DEFAULT_INVENTORY
from plugins.inventory.schema import SCHEMA_PATH, schema_text


def main(argv: list[str]) -> int:
    """`schema` writes inventories/schema.json; `check|tfvars|ansible [PATH]` validate or print JSON."""
    command, *rest = argv or ["help"]
    path = rest[0] if rest else DEFAULT_INVENTORY
    if command == "schema":
        SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
        print(f"wrote {display(SCHEMA_PATH)}")
        return 0
    if command not in ("check", "tfvars", "ansible"):
        print("usage: python -m plugins.inventory schema | check|tfvars|ansible [PATH]", file=sys.stderr)
        return 2
    try:
        inventory = load_inventory(path)
    except InventoryError as error:
        print(error, file=sys.stderr)
        return 1
    if command == "check":
        print(f"{inventory.source}: ok ({len(inventory.hosts)} hosts, {len(inventory.services)} services)")
    else:
        derived = inventory.terraform_vars() if command == "tfvars" else inventory.ansible_inventory()
        print(json.dumps(derived, indent=2))
    return 0
