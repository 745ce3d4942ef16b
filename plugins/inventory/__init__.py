"""The inventory: one validated object per environment, read by every layer.

files (a path → text) → strict_yaml (text → data, no YAML 1.1 surprises) → model (fields: value grammars;
rules: cross-field) → loader (load_inventory, one-line InventoryError, messages that never show a secret);
the services the inventory runs: catalog (every services/<name>.yml, each a declaration; the rules between
them) and stack_rules (between them and the inventory); then repository (against this checkout) and machine
(files on this machine); schema (inventories/ and services/schema.json); cli (`python -m plugins.inventory`);
plugin (the pytest entry: `--inventory`, the `inventory` fixture).
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
