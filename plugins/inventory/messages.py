"""pydantic's validation errors as (key path, expected/found) pairs: hosts named by hostname, secrets hidden."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from plugins.inventory.declaration import MAX_DEADLINE
from plugins.inventory.errors import Problem
from plugins.inventory.masking import HIDDEN, looks_secret, shown, shown_name
from plugins.inventory.refs import host_ref


def describe_errors(error: ValidationError, document: Any, model: type[BaseModel],
                    hidden: Callable[[tuple], bool] = lambda loc: False,
                    ) -> list[Problem]:
    """Turn pydantic's errors into (key path, expected/found) pairs, hosts named by hostname.

    model is the document's (the inventory, or a service declaration); hidden tells which locations' values are
    never shown.
    """
    hostnames = _hostnames(document) if "hosts" in model.model_fields and isinstance(document, dict) else []
    problems: list[Problem] = []
    seen: set[Problem] = set()
    for item in error.errors(include_url=False):
        if item["type"] == "inventory_rules":
            problems.extend(tuple(p) for p in item["ctx"]["problems"])
            continue
        where, loc = _locations(item["loc"], document)
        problem = (_key_path(where, hostnames), _message(item, loc, model, hidden(where)))
        if problem not in seen:  # `X | None` fields repeat one mistake once per branch
            seen.add(problem)
            problems.append(problem)
    return _without_misspelt_missing(problems)


def _without_misspelt_missing(problems: list[Problem]) -> list[Problem]:
    """`valu: unknown key (did you mean 'value'?)` already says what `value: required key is missing` would."""
    misspelt = set()
    for path, message, *_ in problems:
        if message.startswith("unknown key") and "did you mean '" in message:
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            meant = message.split("did you mean '", 1)[1].split("'", 1)[0]
            misspelt.add(f"{parent}.{meant}" if parent else meant)
    return [p for p in problems if not (p[1] == "required key is missing" and p[0] in misspelt)]

SECRET_SHAPED = ("a value shaped like a secret (a key, token or UUID; not shown) is refused (expected no secret in "
                 "an inventory: it names the variables and files that hold them)")  # nosec B105 # a message


def secret_shaped_values(document: dict, skip: tuple[str, ...] = (), message: str = SECRET_SHAPED) -> list[Problem]:
    """Values that passed their field's grammar yet have a secret's shape: an inventory holds no secret (the
    top-level keys in skip have rules of their own)."""
    hostnames = _hostnames(document)
    problems: list[Problem] = []
    stack: list[tuple[tuple, Any]] = [((), document)]
    while stack:  # iterative: strict_yaml bounds the depth, but nothing here needs recursion
        loc, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*loc, key), item) for key, item in reversed(list(value.items())) if loc or key not in skip)
        elif isinstance(value, list):
            stack.extend(((*loc, index), item) for index, item in reversed(list(enumerate(value))))
        elif isinstance(value, str) and looks_secret(value):
            problems.append((_key_path(loc, hostnames), message))
    return problems


def _hostnames(document: dict) -> list:
    raw_hosts = document.get("hosts")
    if not isinstance(raw_hosts, list):
        return []
    return [h.get("hostname") if isinstance(h, dict) else None for h in raw_hosts]


def _locations(loc: tuple, document: Any) -> tuple[tuple, tuple]:
    """(the keys of the file, the path through the model) of a pydantic location.

    A union adds its branch's name to the location (`function-after[…]`, `str`, a tagged branch's model name):
    it is no key of the file. Walking the document tells which parts are its keys, whatever they are called (a
    key may well be `[`); the model's path keeps the branches' names, to find the model of an unknown key.
    """
    where: list = []
    path: list = []
    node: Any = document
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node or (isinstance(node, list) and isinstance(part, int)
                                                       and 0 <= part < len(node)):
            where.append(part)
            path.append(part)
            node = node[part]
            continue
        branch = isinstance(part, str) and (any(c in part for c in "[(") or index < len(loc) - 1
                                            or not isinstance(node, (dict, list)))
        if not (isinstance(part, str) and any(c in part for c in "[(")):
            path.append(part)
        if not branch:  # a missing key: the last part, a key the file does not have
            where.append(part)
            node = None
        # a branch's input is the same value: the next part is looked up in it
    return tuple(where), tuple(path)


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


def _message(item: dict, loc: tuple, model: type[BaseModel], hidden: bool = False) -> str:
    kind = item["type"]
    ctx = {k: _number(v) for k, v in item.get("ctx", {}).items()}
    found = HIDDEN if hidden else _found(item, loc)
    if kind == "value_error":
        return str(ctx.get("error", item["msg"]))
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(loc, model)
    if kind == "literal_error":
        return f"expected one of: {_choices(ctx.get('expected', ''))}, found {found}"
    if kind == "environment_value":
        return f"{item['msg']}, found {_kind_of(item.get('input'), found, hidden)}"
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
        "too_long": f"at most {ctx.get('max_length')} item(s)",
        "dict_attributes_type": "a mapping",
        "string_pattern_mismatch": "a value of the documented form (services/schema.json, inventories/schema.json)",
        "float_from_int": "a number",
        "none_required": "null",
    }.get(kind)
    if kind in ("greater_than_equal", "less_than_equal") and loc and loc[-2:-1] in (("accepted",), ("warmup",)):
        expected = "an HTTP status code 100-599"
    elif kind in ("greater_than_equal", "less_than_equal") and loc and loc[-1] == "vmid":
        expected = "a VMID 100-999999999"
    elif kind in ("greater_than", "less_than_equal") and loc and loc[-1] == "deadline":
        expected = f"a number of seconds > 0 and <= {MAX_DEADLINE}"
    if expected is None:  # a kind not translated yet: pydantic's words are still better than none
        return f"{item['msg'][0].lower()}{item['msg'][1:]}, found {found}"
    return f"expected {expected}, found {found}"


def _choices(expected: str) -> str:
    # pydantic's "'no', 'always' or 'unless-stopped'": the choices as a user would type them
    return expected.replace("' or '", ", ").replace("'", "")


def _kind_of(value: Any, found: str, hidden: bool) -> str:
    """What a value is, in words: a list, a number, a mapping without the expected keys."""
    if isinstance(value, dict):
        return f"a mapping with {', '.join(shown_name(k) for k in value) or 'no key'}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return 'null (an empty value: quote "" for empty text)'
    if isinstance(value, (int, float)):
        return f"a number{' (not shown)' if hidden else ' ' + found} (quote it for text)"
    return found


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _unknown_key(loc: tuple, root: type[BaseModel]) -> str:
    if not loc:
        return "unknown key"
    key = str(loc[-1])
    name = repr(key) if shown_name(key) == key else "(a name not shown: it may be a secret)"
    model = _model_at(loc[:-1], root)
    if model is None:
        return f"unknown key {name}"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1) if shown_name(key) == key else []
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {name} ({hint}expected one of: {', '.join(allowed)})"


def _model_at(loc: tuple, root: type[BaseModel]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    annotation: Any = None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is not None:
            annotation = field.annotation
            model = _find_model(annotation)
        else:  # a mapping's key (environment.DB_HOST), or a tagged union's branch, named after its model
            model = _find_model(annotation, str(part)) or model
    return model


def _find_model(annotation: Any, name: str | None = None) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation if name is None or annotation.__name__ == name else None
    for arg in typing.get_args(annotation):
        found = _find_model(arg, name)
        if found:
            return found
    return None



