"""The catalog of services: one declaration per service (services/<name>.yml), shared by every inventory.

A declaration (declaration.py) says what a service IS; an inventory says WHERE it runs (hosts[].services) and
the environment's values (stack: domain, TLS files, where each secret comes from). Here: every file read and
validated, each problem one line naming the declaration's file and key, and the rules between declarations
(dependencies declared, no dependency cycle).
"""

from __future__ import annotations

import difflib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from plugins.inventory.declaration import Declaration, declaration_problems
from plugins.inventory.errors import InventoryError, Problem, problem_line
from plugins.inventory.files import display, read_text
from plugins.inventory.masking import shown
from plugins.inventory.messages import describe_errors, secret_shaped_values
from plugins.inventory.strict_yaml import parse
from plugins.shared.secret_names import names_a_secret

CATALOG_DIR = Path(__file__).resolve().parents[2] / "services"
# An environment value that addresses another container: `name`, `name:port` or `scheme://name[:port][/path]`.
_ADDRESS = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?P<host>[a-z0-9][a-z0-9_-]*)(?::(?P<port>[0-9]+))?(?:/.*)?$")
EXPECTED_DECLARATION = "expected a service declaration: name, container, image, …"
SECRET_SHAPED = ("a value shaped like a secret (a key, token or UUID; not shown) is refused (expected no secret in "
                 "a declaration: its environment names secrets with {secret: NAME})")  # nosec B105 # a message

__all__ = ["CATALOG_DIR", "Catalog", "Declaration", "dependency_order", "load_catalog", "repository_catalog"]


class Catalog:
    """Every declaration of a catalog directory, by name; `problems` says what is wrong with it."""

    def __init__(self, directory: Path, declarations: dict[str, Declaration], problems: list[Problem],
                 broken: set[str] | None = None):
        self.directory = directory
        self.declarations = declarations
        self.problems = problems  # (key path, message, declaration file)
        self.broken = broken or set()  # the files' names whose declaration could not be read: not "undeclared"

    def __contains__(self, name: object) -> bool:
        """Tell whether a service of that name is declared."""
        return name in self.declarations

    def __getitem__(self, name: str) -> Declaration:
        """The declaration of that name."""
        return self.declarations[name]

    @property
    def names(self) -> list[str]:
        """Every declared service, sorted."""
        return sorted(self.declarations)

    def where(self, name: str) -> str:
        """The file of a declaration, as messages show it: `services/netbox.yml`."""
        return display(self.directory / f"{name}.yml")

    def lines(self) -> list[str]:
        """Each problem of the catalog, one line naming the declaration's file and key."""
        return [problem_line(display(self.directory), problem) for problem in self.problems]


def load_catalog(directory: str | os.PathLike = CATALOG_DIR) -> Catalog:
    """Read every services/<name>.yml; each problem one line `services/x.yml: key: expected …, found …`."""
    path = Path(directory)
    declarations: dict[str, Declaration] = {}
    problems: list[Problem] = []
    broken: set[str] = set()
    files = sorted(path.glob("*.yml")) if path.is_dir() else []
    if not files:
        problems.append(("", "no service declarations (expected services/<name>.yml files)", display(path)))
    for file in files:
        decl, found = read_declaration(file)
        problems.extend(found)
        if decl is None:
            broken.add(file.stem)
        else:
            declarations[decl.name] = decl
    catalog = Catalog(path, declarations, problems, broken)
    problems.extend(_dependency_problems(catalog))
    for decl in declarations.values():
        problems.extend((key, message, catalog.where(decl.name)) for key, message in address_problems(decl, catalog))
    return catalog


def read_declaration(file: Path) -> tuple[Declaration | None, list[Problem]]:
    """One declaration file: (the declaration or None, its problems as (key, message, file))."""
    source = display(file)
    try:
        source, text = read_text(file)
        document = parse(source, text)
    except InventoryError as error:
        return None, [(path, message, error.source) for path, message, *_ in error.problems]
    if document is None:
        return None, [("", f"the file is empty ({EXPECTED_DECLARATION})", source)]
    if not isinstance(document, dict):
        return None, [("", f"the top level is {_kind(document)} ({EXPECTED_DECLARATION})", source)]
    try:
        decl = Declaration.model_validate(document)
    except ValidationError as error:
        described = describe_errors(error, document, model=Declaration, hidden=_hidden)
        return None, [(path, message, source) for path, message, *_ in described]
    shaped = secret_shaped_values(document, skip=("environment",), message=SECRET_SHAPED)
    if shaped:  # a declaration holding a secret is used by nothing: no other line may name its values
        return None, [(path, message, source) for path, message, *_ in shaped]
    problems = [(path, message, source) for path, message in declaration_problems(decl)]
    if decl.name != file.stem:
        problems.append(("name", f"{shown(decl.name)} is not the file's name (expected {shown(file.stem)})", source))
        return None, problems
    return decl, problems


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    return "a number" if isinstance(value, (int, float)) else "a single value"


def _hidden(loc: tuple) -> bool:
    # a value under a key that names a secret (APP_KEY, SMTP_PASS) is never shown, whatever is wrong with it
    return len(loc) > 1 and loc[0] == "environment" and names_a_secret(str(loc[1]))


def _dependency_problems(catalog: Catalog) -> list[Problem]:
    """depends_on names declared services, and no chain of them comes back to where it started."""
    problems: list[Problem] = []
    for decl in catalog.declarations.values():
        for index, dependency in enumerate(decl.depends_on):
            if dependency in catalog or dependency in catalog.broken:
                continue
            close = difflib.get_close_matches(dependency, catalog.names, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            problems.append((f"depends_on[{index}]", (f"{shown(dependency)} is not declared ({hint}expected one of: "
                                                      f"{', '.join(catalog.names)})"), catalog.where(decl.name)))
    by_edge: dict[tuple[str, int], list[list[str]]] = {}
    for cycle in dependency_cycles(catalog):
        by_edge.setdefault((cycle[0], catalog[cycle[0]].depends_on.index(cycle[1])), []).append(cycle)
    for (first, index), cycles in by_edge.items():  # one line per dependency that starts cycles: its shortest
        cycle = min(cycles, key=len)
        last = cycle[-2]
        closing = catalog[last].depends_on.index(first)
        more = f"; {len(cycles) - 1} more through it" if len(cycles) > 1 else ""
        problems.append((f"depends_on[{index}]", (f"dependency cycle {' -> '.join(cycle)} ({catalog.where(last)}: "
                                                  f"depends_on[{closing}] closes it{more}): nothing can start first "
                                                  "(expected no service to depend on itself through others)"),
                         catalog.where(first)))
    return problems


MAX_CYCLES = 10  # past a few, the list of cycles says nothing more: the chains need untangling


def dependency_cycles(catalog: Catalog) -> list[list[str]]:
    """Each dependency cycle once (at most MAX_CYCLES), as names from its smallest back to it: [a, b, a]."""
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for start in catalog.names:
        stack = [(start, [start])]
        while stack:  # depth-first, iterative: a catalog's chains are short, but a mutated one needs no recursion
            name, path = stack.pop()
            for dependency in catalog[name].depends_on:
                if dependency == start and len(path) > 1:
                    members = frozenset(path)
                    if members not in seen:
                        seen.add(members)
                        cycles.append([*path, start])
                        if len(cycles) == MAX_CYCLES:
                            return cycles
                elif dependency in catalog and dependency not in path and dependency > start:
                    stack.append((dependency, [*path, dependency]))
    return cycles


def address_problems(decl: Declaration, catalog: Catalog) -> list[tuple[str, str]]:
    """An environment value that reaches a dependency (`*HOST`, `*_URL`) must name that dependency's container,
    and a port it listens on; `PORT`, where set, is a declared container port: a container or a port renamed in
    one place of a declaration alone is found here."""
    dependencies = [catalog[name] for name in decl.depends_on if name in catalog]
    containers = {d.container: d for d in dependencies}
    undeclared = len(dependencies) < len(decl.depends_on)  # said already: its containers are not known
    problems = []
    environment = decl.literal_environment
    port = environment.get("PORT")
    if port is not None and port not in {str(p.container) for p in decl.ports}:
        problems.append(("environment.PORT", (f"PORT is {shown(port)}, but its ports declare container port "
                                              f"{', '.join(str(p.container) for p in decl.ports) or 'none'} "
                                              "(expected the port it listens on)")))
    declared = {d.container: d.name for d in catalog.declarations.values() if d.name not in decl.depends_on}
    not_listed: dict[str, str] = {}  # key → the declared service whose container it names, not in depends_on
    for key, value in environment.items():
        if not key.endswith(("HOST", "_URL")):
            continue
        match = _ADDRESS.match(value)
        if not match or match["host"] == "localhost":
            continue
        target = containers.get(match["host"])
        if target is None and undeclared:
            continue
        if target is None and declared.get(match["host"], decl.name) != decl.name:
            not_listed[key] = declared[match["host"]]
        elif target is None:
            problems.append((f"environment.{key}", (f"names {match['host']}, which is not the container of any of "
                                                    "its dependencies (expected one of: "
                                                    f"{', '.join(containers) or 'none: depends_on is empty'})")))
        elif match["port"] and int(match["port"]) not in {p.container for p in target.ports}:
            ports = ", ".join(str(p.container) for p in target.ports) or "none"
            problems.append((f"environment.{key}", (f"names port {match['port']} of {target.container}, which "
                                                    f"{catalog.where(target.name)} does not declare (expected one "
                                                    f"of: {ports})")))
    if not_listed:  # one cause (a dependency left out), said once
        services = list(dict.fromkeys(not_listed.values()))
        problems.append(("depends_on", (f"{', '.join(not_listed)} name the container of {', '.join(services)}, which "
                                        f"depends_on does not list (expected depends_on: [{', '.join(services)}]: "
                                        "started first, on the same host)")))
    return problems


@lru_cache(maxsize=8)
def _cached(directory: str) -> Catalog:
    return load_catalog(directory)


def repository_catalog(directory: str | os.PathLike = CATALOG_DIR) -> Catalog:
    """The catalog of a directory, read once per process (inventories of one session share it)."""
    return _cached(str(Path(directory).resolve()))


def dependency_order(names: list[str], catalog: Catalog) -> list[str]:
    """The names with each service after the ones it depends on (inventory order otherwise; a cycle, refused at
    load, cannot loop here)."""
    done: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done or name in path or name not in names:
            return
        for dependency in catalog[name].depends_on:
            visit(dependency, (*path, name))
        done.append(name)

    for name in names:
        visit(name, ())
    return done
