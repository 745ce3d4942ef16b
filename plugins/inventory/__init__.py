"""The inventory: one validated object per environment, read by every layer; it imports only itself and shared.

files (a path → text) → strict_yaml (text → data, no YAML 1.1 surprises) → model (section: the strict base;
fields: value grammars; rules, refs: cross-field) → loader (load_inventory, one-line InventoryError, messages that
never show a secret); the services the inventory runs: catalog (every services/<name>.yml, each a declaration; the
rules between them), stack_rules (between them and the inventory, reading stack_needs: what the stack's renderers
need of a declaration, as data) and checks (what each host owes: declarations, HTTP checks, probes); then
repository (against this checkout) and machine (files on this machine); schema (inventories/ and
services/schema.json); cli (`python -m plugins.inventory`); plugin (the pytest entry: `--inventory`, the
`inventory` fixture). What the hosts run, rendered from all this, is plugins/stack's.
"""

from plugins.inventory.errors import InventoryError, Problem
from plugins.inventory.loader import load_inventory, read_document, validate_document
from plugins.inventory.machine import machine_problems
from plugins.inventory.model import Deploy, Github, Host, Inventory, Proxmox, Runner, Service, StateBackend
from plugins.inventory.plugin import DEFAULT_INVENTORY, get_inventory, inventory_path
from plugins.inventory.repository import repository_problems
from plugins.inventory.schema import SCHEMA_PATH, schema, schema_text

__all__ = [
    "DEFAULT_INVENTORY",
    "SCHEMA_PATH",
    "Deploy",
    "Github",
    "Host",
    "Inventory",
    "InventoryError",
    "Problem",
    "Proxmox",
    "Runner",
    "Service",
    "StateBackend",
    "get_inventory",
    "inventory_path",
    "load_inventory",
    "machine_problems",
    "read_document",
    "repository_problems",
    "schema",
    "schema_text",
    "validate_document",
]
