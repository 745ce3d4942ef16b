"""The inventory: one validated object per environment, read by every layer.

loader (file → mapping → model, one-line errors), errors, model, fields (value grammars), rules (cross-field),
schema, cli (`python -m plugins.inventory`), plugin (the pytest entry: `--inventory`, the `inventory` fixture).
"""

from plugins.inventory.errors import InventoryError, Problem
from plugins.inventory.loader import load_inventory, read_document
from plugins.inventory.model import Deploy, Github, Host, Inventory, Proxmox, Runner, Service, StateBackend
from plugins.inventory.plugin import DEFAULT_INVENTORY, get_inventory, inventory_path
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
    "read_document",
    "schema",
    "schema_text",
]
