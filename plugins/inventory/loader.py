"""Read an inventory file and validate its structure: one InventoryError, each problem one line, no traceback.

Structure is everything the file alone decides (YAML, keys, value grammars, cross-field rules); what the
repository or this machine must hold is checked apart (repository.py, machine.py).
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError

from plugins.inventory.catalog import Catalog
from plugins.inventory.errors import InventoryError
from plugins.inventory.files import display, read_text
from plugins.inventory.messages import describe_errors, secret_shaped_values
from plugins.inventory.model import Inventory
from plugins.inventory.strict_yaml import parse

EXPECTED_TOP = "expected a mapping with environment, proxmox, hosts, …"

__all__ = ["display", "load_inventory", "read_document", "validate_document"]


def read_document(path: str | os.PathLike) -> tuple[str, dict]:
    """Read an inventory file into a mapping; InventoryError for a file that is not a YAML mapping."""
    source, text = read_text(path)
    document = parse(source, text)
    if document is None:
        raise InventoryError(source, [("", f"file is empty ({EXPECTED_TOP})")])
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise InventoryError(source, [("", f"top level is a {kind} ({EXPECTED_TOP})")])
    return source, document


def validate_document(source: str, document: Any, catalog: Catalog | None = None) -> Inventory:
    """Validate plain data as the inventory of `source` (against services/, or `catalog`); InventoryError naming
    each key, expected and found."""
    try:
        inventory = Inventory.model_validate(document, context={"catalog": catalog, "source": source})
    except ValidationError as error:
        raise InventoryError(source, describe_errors(error, document, Inventory)) from None
    secrets = secret_shaped_values(document)
    if secrets:
        raise InventoryError(source, secrets)
    inventory._source = source
    return inventory


def load_inventory(path: str | os.PathLike, catalog: Catalog | None = None) -> Inventory:
    """Load and validate an inventory file; raise InventoryError with one line naming file, key, expected and found."""
    return validate_document(*read_document(path), catalog=catalog)
