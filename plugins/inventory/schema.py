"""The inventory's JSON schema, as inventories/schema.json holds it (for editors)."""

from __future__ import annotations

import json
from pathlib import Path

from plugins.inventory.model import Inventory

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "inventories" / "schema.json"


def schema() -> dict:
    """JSON schema of the inventory (the file inventories/schema.json holds)."""
    document = Inventory.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **document}


def schema_text() -> str:
    """The exact text of inventories/schema.json."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"
