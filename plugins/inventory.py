"""Inventory loader (one-line errors), pytest `--inventory` option and `inventory` fixture, CLI.

`python -m plugins.inventory schema|check|tfvars|ansible [PATH]`
"""

from __future__ import annotations

import difflib
import json
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from plugins.inventory_model import Host, Inventory, Service
from plugins.inventory_rules import host_ref

__all__ = [
    "Host",
    "Inventory",
    "InventoryError",
    "Service",
    "get_inventory",
    "load_inventory",
    "schema",
]

DEFAULT_INVENTORY = "inventories/lab.yml"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "inventories" / "schema.json"
_SECRET_WORDS = ("secret", "password", "passwd")


class InventoryError(ValueError):
    """An inventory that cannot be used; str() is one line: `file: key.path: expected …, found …`."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        super().__init__(
            "; ".join(f"{source}: {path}: {message}" if path else f"{source}: {message}" for path, message in problems)
        )


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


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_document(path: str | Path) -> tuple[str, dict]:
    """Read an inventory file into a mapping; InventoryError for a missing, unreadable, empty or non-mapping file."""
    path = Path(path)
    source = _display(path)
    if not path.is_file():
        raise InventoryError(
            source,
            [("", f"no such inventory file (expected a YAML file, cwd {Path.cwd()})")],
        )
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
        raise InventoryError(
            source,
            [
                (
                    "",
                    "file is empty (expected a mapping with environment, proxmox, hosts, …)",
                )
            ],
        )
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise InventoryError(
            source,
            [
                (
                    "",
                    (f"top level is a {kind} (expected a mapping with environment, proxmox, hosts, …)"),
                )
            ],
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


def describe_errors(error: ValidationError, document: dict) -> list[tuple[str, str]]:
    """Turn pydantic's errors into (key path, expected/found) pairs, hosts named by hostname."""
    raw_hosts = document.get("hosts")
    hostnames = (
        [h.get("hostname") if isinstance(h, dict) else None for h in raw_hosts] if isinstance(raw_hosts, list) else []
    )
    problems: list[tuple[str, str]] = []
    for item in error.errors(include_url=False):
        if item["type"] == "inventory_rules":
            problems.extend(tuple(p) for p in item["ctx"]["problems"])
            continue
        loc = _strip_union_branches(item["loc"])
        problems.append((_key_path(loc, hostnames), _message(item, loc)))
    return problems


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
            path += f".{part}" if path else part
    return path


def _found(item: dict, loc: tuple) -> str:
    if any(isinstance(p, str) and any(w in p.lower() for w in _SECRET_WORDS) for p in loc):
        return "a value (not shown)"
    text = repr(item.get("input"))
    return text if len(text) <= 60 else text[:57] + "..."


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
    }.get(kind)
    if kind in ("greater_than_equal", "less_than_equal") and loc and loc[-2:-1] in (("accepted",), ("warmup",)):
        expected = "an HTTP status code 100-599"
    elif kind in ("greater_than_equal", "less_than_equal") and loc and loc[-1] == "vmid":
        expected = "a VMID 100-999999999"
    if expected is None:
        return f"{item['msg'][0].lower()}{item['msg'][1:]}, found {found}"
    return f"expected {expected}, found {found}"


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _unknown_key(loc: tuple) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return f"unknown key {key!r}"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {key!r} ({hint}expected one of: {', '.join(allowed)})"


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


def schema() -> dict:
    """JSON schema of the inventory (the file inventories/schema.json holds)."""
    document = Inventory.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **document}


def schema_text() -> str:
    """The exact text of inventories/schema.json."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


# --- pytest plugin ---------------------------------------------------------------------------

INVENTORY_KEY = pytest.StashKey[Inventory]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add `--inventory PATH` (once, whoever registers this plugin or the option first)."""
    try:
        parser.addoption(
            "--inventory",
            default=DEFAULT_INVENTORY,
            metavar="PATH",
            help=f"inventory file of the environment (default {DEFAULT_INVENTORY}, relative to rootdir)",
        )
    except ValueError:
        pass  # already registered by the root conftest or a second registration of this plugin


def inventory_path(config: pytest.Config) -> Path:
    """The inventory file chosen with --inventory: as given, else relative to the invocation dir, else rootdir."""
    given = Path(config.getoption("--inventory", default=DEFAULT_INVENTORY))
    if given.is_absolute():
        return given
    invoked = config.invocation_params.dir / given
    return invoked if invoked.exists() else config.rootpath / given


def get_inventory(config: pytest.Config) -> Inventory:
    """The session's inventory (loaded once; usable from pytest_generate_tests)."""
    if INVENTORY_KEY not in config.stash:
        config.stash[INVENTORY_KEY] = load_inventory(inventory_path(config))
    return config.stash[INVENTORY_KEY]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop the session (exit 4, `ERROR: <one line>`) when the inventory is not valid."""
    try:
        get_inventory(session.config)
    except InventoryError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.fixture(scope="session")
def inventory(pytestconfig: pytest.Config) -> Inventory:
    """The validated inventory of this session (--inventory)."""
    return get_inventory(pytestconfig)


# --- command line ----------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """`schema` writes inventories/schema.json; `check|tfvars|ansible [PATH]` validate or print JSON."""
    command, *rest = argv or ["help"]
    path = rest[0] if rest else DEFAULT_INVENTORY
    if command == "schema":
        SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
        print(f"wrote {_display(SCHEMA_PATH)}")
        return 0
    if command not in ("check", "tfvars", "ansible"):
        print(
            "usage: python -m plugins.inventory schema | check|tfvars|ansible [PATH]",
            file=sys.stderr,
        )
        return 2
    try:
        inventory = load_inventory(path)
    except InventoryError as error:
        print(error, file=sys.stderr)
        return 1
    if command == "check":
        print(f"{inventory.source}: ok ({len(inventory.hosts)} hosts, {len(inventory.services)} services)")
    else:
        derived = inventory.terraform_vars() if command == "tfvars" else inventory.ansible_inventory()
        print(json.dumps(derived, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
