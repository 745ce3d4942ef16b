"""PVE's API schema as the lab holds it (lab/pve/pve-api-schema.json, built by lab/pve/schema_build.py)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

SCHEMA_FILE = Path(__file__).with_name("pve-api-schema.json")


@functools.cache
def document() -> dict:
    """The whole schema file: notice, pve_version, source and {"METHOD /path": schema}."""
    return json.loads(SCHEMA_FILE.read_text())


def methods() -> dict[str, dict]:
    """Every PVE method by "METHOD /path" ({} for those kept by name only)."""
    return document()["methods"]


def pve_release() -> str:
    """The PVE release the schema was taken from (e.g. "9.1")."""
    return document()["pve_version"]


def named_formats(schema: object) -> set[str]:
    """The named formats (`format: "pve-vmid"`) a method's schema uses, property strings included."""
    found: set[str] = set()
    if isinstance(schema, dict):
        fmt = schema.get("format")
        if isinstance(fmt, str):
            found.add(fmt)
        for key, value in schema.items():
            if key != "format" or isinstance(value, dict):
                found |= named_formats(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= named_formats(item)
    return found
