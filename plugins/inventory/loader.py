"""Read an inventory file and validate it: one InventoryError, each problem one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from plugins.inventory.errors import InventoryError
from plugins.inventory.messages import describe_errors
from plugins.inventory.model import Inventory

# libyaml's parser when PyYAML has it: the pure-Python one takes ~0.2 s for a 50-host inventory.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (expected each key once)",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def display(path: Path) -> str:
    """The path as messages show it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_document(path: str | Path) -> tuple[str, dict]:
    """Read an inventory file into a mapping; InventoryError for a missing, unreadable, empty or non-mapping file."""
    path = Path(path)
    source = display(path)
    if not path.is_file():
        raise InventoryError(source, [("", f"no such inventory file (expected a YAML file, cwd {Path.cwd()})")])
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = " ".join(str(error.problem or error.context or "syntax error").split())
        raise InventoryError(source, [("", f"{where}invalid YAML: {problem}")]) from None
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as error:
        raise InventoryError(source, [("", f"cannot read: {' '.join(str(error).split())}")]) from None
    if document is None:
        raise InventoryError(source, [("", "file is empty (expected a mapping with environment, proxmox, hosts, …)")])
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise InventoryError(
            source, [("", f"top level is a {kind} (expected a mapping with environment, proxmox, hosts, …)")]
        )
    return source, document


def load_inventory(path: str | Path) -> Inventory:
    """Load and validate an inventory file; raise InventoryError with one line naming file, key, expected and found."""
    source, document = read_document(path)
    try:
        inventory = Inventory.model_validate(document)
    except ValidationError as error:
        raise InventoryError(source, describe_errors(error, document)) from None
    inventory._source = source
    return inventory
