"""Helpers to break the shipped lab inventory in one place, as a user editing it would."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plugins.inventory import InventoryError, load_inventory

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab.yml"
HOMELAB = ROOT / "inventories" / "homelab.yml"


def lab_text() -> str:
    """The lab inventory's text."""
    return LAB.read_text(encoding="utf-8")


def lab_document() -> dict:
    """A fresh copy of the lab inventory as plain data."""
    return yaml.safe_load(lab_text())


def edited(old: str, new: str, count: int = 1) -> str:
    """The lab inventory's text with `old` (which must be there) replaced by `new`."""
    text = lab_text()
    assert old in text, old
    return text.replace(old, new, count)


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the first occurrence of fragment in text."""
    return text[: text.index(fragment)].count("\n") + 1


class _AsAUserWrites(yaml.SafeDumper):
    """Multi-line text as a `|` block, as a person pasting a key would write it (not a folded quoted scalar)."""


_AsAUserWrites.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def write(directory: Path, content: str | bytes | dict, name: str = "inv.yml") -> Path:
    """Write an inventory (text, bytes or data) into directory and give its path."""
    path = directory / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(yaml.dump(content, Dumper=_AsAUserWrites, sort_keys=False, allow_unicode=True))
    return path


def one_line_error(path: Path | str) -> str:
    """The one-line InventoryError loading path raises (the test fails if it loads or raises otherwise)."""
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    message = str(caught.value)
    assert "\n" not in message, message
    return message
