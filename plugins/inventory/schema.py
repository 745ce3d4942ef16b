"""The JSON schemas editors read: inventories/schema.json (an inventory), services/schema.json (a declaration)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from plugins.inventory.declaration import Declaration
from plugins.inventory.model import Inventory

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "inventories" / "schema.json"
DECLARATION_SCHEMA_PATH = ROOT / "services" / "schema.json"
# The first line of every services/<name>.yml: editors with the YAML language server validate it while one types.
SCHEMA_MODELINE = "# yaml-language-server: $schema=schema.json"


def schema(model: type[BaseModel] = Inventory) -> dict:
    """JSON schema of the inventory (the file inventories/schema.json holds), or of another model."""
    document = model.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **document}


def schema_text(model: type[BaseModel] = Inventory) -> str:
    """The exact text of inventories/schema.json (or of services/schema.json for Declaration)."""
    return json.dumps(schema(model), indent=2, ensure_ascii=False) + "\n"


def written_schemas() -> dict[Path, str]:
    """{path: text} of every schema file `python -m plugins.inventory schema` writes."""
    return {SCHEMA_PATH: schema_text(Inventory), DECLARATION_SCHEMA_PATH: schema_text(Declaration)}
