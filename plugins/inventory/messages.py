"""pydantic's validation errors as (key path, expected/found) pairs: hosts named by hostname, secrets hidden."""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from plugins.inventory.errors import Problem
from plugins.inventory.masking import looks_secret, shown, shown_name
from plugins.inventory.model import MAX_DEADLINE, Inventory
from plugins.inventory.rules import host_ref


def describe_errors(error: ValidationError, document: dict) -> list[Problem]:
    """Turn pydantic's errors into (key path, expected/found) pairs, hosts named by hostname."""
    hostnames = _hostnames(document)
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        if item["type"] == "inventory_rules":
            problems.extend(tuple(p) for p in item["ctx"]["problems"])
            continue
        loc = _strip_union_branches(item["loc"])
        problems.append((_key_path(loc, hostnames), _message(item, loc)))
    return problems

SECRET_SHAPED = ("a value shaped like a secret (a key, token or UUID; not shown) is refused (expected no secret in "
                 "an inventory: it names the variables and files that hold them)")


def secret_shaped_values(document: dict) -> list[Problem]:
    """Values that passed their field's grammar yet have a secret's shape: an inventory holds no secret."""
    hostnames = _hostnames(document)
    problems: list[Problem] = []
    stack: list[tuple[tuple, Any]] = [((), document)]
    while stack:  # iterative: strict_yaml bounds the depth, but nothing here needs recursion
        loc, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*loc, key), item) for key, item in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend(((*loc, index), item) for index, item in reversed(list(enumerate(value))))
        elif isinstance(value, str) and looks_secret(value):
            problems.append((_key_path(loc, hostnames), SECRET_SHAPED))
    return problems


def _hostnames(document: dict) -> list:
    raw_hosts = document.get("hosts")
    if not isinstance(raw_hosts, list):
        return []
    return [h.get("hostname") if isinstance(h, dict) else None for h in raw_hosts]


def _strip_union_branches(loc: tuple) -> tuple:
    # `X | None` fields add the branch's type name to the location (e.g. 'function-after[...]').
    return tuple(part for part in loc if isinstance(part, int) or not any(c in part for c in "[("))


def _key_path(loc: tuple, hostnames: list) -> str:
    path = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            if index == 1 and loc[0] == "hosts":
                path = host_ref(hostnames, part)
            else:
                path += f"[{part}]"
        else:
            name = shown_name(part)
            path += f".{name}" if path else name
    return path


def _found(item: dict, loc: tuple) -> str:
    return shown(item.get("input"), loc)


def _message(item: dict, loc: tuple) -> str:
    kind = item["type"]
    ctx = {k: _number(v) for k, v in item.get("ctx", {}).items()}
    found = _found(item, loc)
    if kind == "value_error":
        return str(ctx.get("error", item["msg"]))
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    expected = {
        "string_type": "a string",
        "int_type": "an integer",
        "int_parsing": "an integer",
        "int_from_float": "an integer",
        "float_type": "a number",
        "float_parsing": "a number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "list_type": "a list",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
        "dict_type": "a mapping",
        "greater_than": f"a number > {ctx.get('gt')}",
        "greater_than_equal": f"a number >= {ctx.get('ge')}",
        "less_than": f"a number < {ctx.get('lt')}",
        "less_than_equal": f"a number <= {ctx.get('le')}",
        "string_too_short": "a non-empty string",
        "too_short": f"at least {ctx.get('min_length')} item(s)",
        "string_too_long": f"at most {ctx.get('max_length')} characters",
        "finite_number": "a finite number",
    }.get(kind)
    if kind in ("greater_than_equal", "less_than_equal") and loc and loc[-2:-1] in (("accepted",), ("warmup",)):
        expected = "an HTTP status code 100-599"
    elif kind in ("greater_than_equal", "less_than_equal") and loc and loc[-1] == "vmid":
        expected = "a VMID 100-999999999"
    elif kind in ("greater_than", "less_than_equal") and loc and loc[-1] == "deadline":
        expected = f"a number of seconds > 0 and <= {MAX_DEADLINE}"
    if expected is None:
        return f"{item['msg'][0].lower()}{item['msg'][1:]}, found {found}"
    return f"expected {expected}, found {found}"


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _unknown_key(loc: tuple) -> str:
    key = str(loc[-1])
    name = repr(key) if shown_name(key) == key else "(a name not shown: it may be a secret)"
    model = _model_at(loc[:-1])
    if model is None:
        return f"unknown key {name}"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1) if shown_name(key) == key else []
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {name} ({hint}expected one of: {', '.join(allowed)})"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Inventory
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        model = _find_model(field.annotation) if field else None
    return model


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _find_model(arg)
        if found:
            return found
    return None
