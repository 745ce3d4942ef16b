"""PVE's parameter validation (JSONSchema subset) with its exact error texts."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import param_error

Format = Callable[[str], "str | None"]

CONFIGID = re.compile(r"^[a-z][a-z0-9_-]+$", re.IGNORECASE)
NODE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$")


def configid(value: str) -> str | None:
    """Check PVE's `pve-configid` format (snapshot names)."""
    if CONFIGID.match(value):
        return None
    return f"invalid format - invalid configuration ID '{value}'"


def nodename(value: str) -> str | None:
    """Check PVE's `pve-node` format."""
    if NODE.match(value):
        return None
    return "invalid format - value does not look like a valid node name"


@dataclass(frozen=True)
class P:
    """One parameter of an endpoint's schema."""

    type: str = "string"
    optional: bool = True
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    fmt: Format | None = None
    enum: tuple[str, ...] | None = None


VMID = P("integer", optional=False, minimum=100, maximum=999999999)
NODE_P = P(fmt=nodename, optional=False)
BOOL = P("boolean")
STR = P()
INT = P("integer")


def _check(name: str, spec: P, value: str) -> tuple[Any, str | None]:
    if spec.type == "boolean":
        if value in ("0", "1"):
            return int(value), None
        return None, f"type check ('boolean') failed - got '{value}'"
    if spec.type == "integer":
        if not re.fullmatch(r"[+-]?\d+", value):
            return None, f"type check ('integer') failed - got '{value}'"
        number = int(value)
        if spec.minimum is not None and number < spec.minimum:
            return None, f"value must have a minimum value of {spec.minimum}"
        if spec.maximum is not None and number > spec.maximum:
            return None, f"value must have a maximum value of {spec.maximum}"
        return number, None
    if spec.max_length is not None and len(value) > spec.max_length:
        return None, f"value may only be {spec.max_length} characters long"
    if spec.enum is not None and value not in spec.enum:
        return None, f"value '{value}' does not have a value in the enumeration '{', '.join(spec.enum)}'"
    if spec.fmt is not None:
        err = spec.fmt(value)
        if err:
            return None, err
    return value, None


def validate(schema: dict[str, P], params: dict[str, str], extra: bool = False) -> dict[str, Any]:
    """Return the typed parameters or raise PVE's 400 with one message per bad parameter."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for name, value in params.items():
        spec = schema.get(name)
        if spec is None:
            if extra:
                out[name] = value
            else:
                errors[name] = (
                    "property is not defined in schema and the schema does not allow additional properties"
                )
            continue
        typed, err = _check(name, spec, value)
        if err:
            errors[name] = err
        else:
            out[name] = typed
    for name, spec in schema.items():
        if not spec.optional and name not in params:
            errors[name] = "property is missing and it is not optional"
    if errors:
        raise param_error(errors)
    return out
