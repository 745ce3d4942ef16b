"""The rules between an inventory's hosts, its stack section and the declarations it runs, one line each.

A problem of the inventory (a service listed twice, a dependency on another host) names the inventory's key; a
problem of a declaration (a secret stack.secrets does not source, two declarations publishing one port on a
host or taking one route host) names the declaration's file and key, and the other file it collides with.
When the stack section is missing, that is said first and once: every secret and route needs it.
"""

from __future__ import annotations

import difflib
from typing import Any

from plugins.inventory.catalog import Catalog
from plugins.inventory.errors import Problem
from plugins.inventory.masking import looks_secret, shown
from plugins.inventory.stack_needs import (
    FIRST_PORT_READERS,
    GENERATED_MOUNTS,
    PROXY_CONFIG_TARGET,
    PROXY_ENTRYPOINTS,
    PROXY_SERVICE,
)

MAX_LISTED = 5  # names listed in one line before "…"


def stack_problems(inv: Any, catalog: Catalog, refs: list[str]) -> list[Problem]:
    """Every disagreement between the hosts' services, the catalog and the stack section, one line each."""
    placed = _placed(inv, catalog)
    problems: list[Problem] = [*_missing_stack(inv, placed), *catalog.problems]
    problems += _host_problems(inv, catalog, refs)
    problems += _collisions(inv, catalog, refs)
    for decl in placed.values():
        problems += _declaration_in_inventory(inv, catalog, decl)
    vaulted = sorted(name for name, source in (inv.stack.secrets if inv.stack else {}).items() if source.vault)
    if vaulted and inv.stack.vault is None:
        problems.append(("stack.vault", (f"secrets {', '.join(vaulted)} come from Ansible Vault but stack.vault is "
                                         "not set (expected stack.vault.file: the encrypted vars file)")))
    if any(decl.route for decl in placed.values()) and PROXY_SERVICE not in placed:
        problems.append(("hosts", ("services have routes but no host runs traefik (expected traefik in one host's "
                                  "services)")))
    return problems


def _placed(inv: Any, catalog: Catalog) -> dict:
    """The declarations the inventory runs, by name, in order of first appearance."""
    return {name: catalog[name] for host in inv.hosts for name in host.services if name in catalog}


def _listed(names: list[str]) -> str:
    return ", ".join(names[:MAX_LISTED]) + (", …" if len(names) > MAX_LISTED else "")


def _missing_stack(inv: Any, placed: dict) -> list[Problem]:
    """The stack section (or its secrets) missing, said once and first: every secret and route needs it."""
    secrets = list(dict.fromkeys(s for decl in placed.values() for s in decl.secrets))
    if inv.stack is not None:
        if inv.stack.secrets or not secrets:
            return []
        return [("stack.secrets", (f"no secret is sourced, yet its services need {len(secrets)} ({_listed(secrets)}) "
                                   "(expected stack.secrets: <name>: {env: VAR} or {vault: var}, for each)"))]
    routed = [decl.name for decl in placed.values() if decl.route]
    needs = [f"{len(secrets)} secret(s) ({_listed(secrets)})"] if secrets else []
    needs += [f"the route(s) of {_listed(routed)}"] if routed else []
    if not needs:
        return []
    return [("stack", (f"the inventory has no stack section, which its services need for {' and '.join(needs)} "
                       "(expected stack: domain, tls, and secrets: where each secret's value comes from)"))]


def _host_problems(inv: Any, catalog: Catalog, refs: list[str]) -> list[Problem]:
    """Per host: each service declared, listed once, a routed one on one host, its dependencies beside it."""
    problems: list[Problem] = []
    placed: dict[str, str] = {}
    for ref, host in zip(refs, inv.hosts):
        for index, name in enumerate(host.services):
            path = f"{ref}.services[{index}]"
            if name not in catalog:
                if name not in catalog.broken:  # its file's own problems say why it is not usable
                    close = difflib.get_close_matches(name, catalog.names, n=1)
                    hint = f"did you mean {close[0]}? " if close else ""
                    problems.append((path, (f"{shown(name)} is not declared in services/ ({hint}expected one of: "
                                           f"{', '.join(catalog.names) or 'none'})")))
                continue
            if name in host.services[:index]:
                problems.append((path, f"{name} is listed twice (expected each service once per host)"))
                continue
            decl = catalog[name]
            if name in placed and decl.route:
                problems.append((path, (f"{name} already runs on {placed[name]} (expected a routed service on one "
                                       "host: its route names one backend)")))
                continue
            placed.setdefault(name, ref)
            for dep_index, dependency in enumerate(decl.depends_on):
                if dependency in catalog and dependency not in host.services:
                    problems.append((path, (f"{name} depends on {dependency}, which {host.hostname} does not run "
                                           f"({catalog.where(name)}: depends_on[{dep_index}]; expected it in the "
                                           "same host's services)")))
    return problems


def _collisions(inv: Any, catalog: Catalog, refs: list[str]) -> list[Problem]:
    """Two declarations on one host with one container name or published port, or in one inventory with one
    route host: named against the later declaration's key, with the earlier's file and key, once per pair."""
    found: dict[tuple, list[str]] = {}
    routes: dict[str, tuple[str, str]] = {}
    for host in inv.hosts:
        containers: dict[str, str] = {}
        published: dict[int, tuple[str, str]] = {}
        for name in dict.fromkeys(host.services):
            if name not in catalog:
                continue
            decl = catalog[name]
            if containers.setdefault(decl.container, name) != name:
                found.setdefault(("container", name, "container", containers[decl.container], "container",
                                  decl.container), []).append(host.hostname)
            for index, port in enumerate(decl.ports):
                if port.published is None:
                    continue
                first = published.setdefault(port.published, (name, f"ports[{index}].published"))
                if first[0] != name:
                    found.setdefault(("port", name, f"ports[{index}].published", *first, port.published),
                                     []).append(host.hostname)
            if decl.route and routes.setdefault(decl.route.host, (name, "route.host"))[0] != name:
                found.setdefault(("route", name, "route.host", *routes[decl.route.host], decl.route.host), [])
    problems: list[Problem] = []
    for (kind, name, key, other, other_key, found_value), hosts in found.items():
        value = "(not shown)" if isinstance(found_value, str) and looks_secret(found_value) else found_value
        if kind == "route":
            domain = inv.stack.domain if inv.stack else "its domain"
            message = (f"{value}.{domain} is also the route of {catalog.where(other)} ({other_key}); {inv.source} "
                       "runs both (expected a unique route host per domain)")
        else:
            what = "container name" if kind == "container" else "published port"
            message = (f"{what} {value} is also {catalog.where(other)}'s ({other_key}); {inv.source} runs both on "
                       f"{', '.join(dict.fromkeys(hosts))} (expected a unique {what} per host)")
        problems.append((key, message, catalog.where(name)))
    return problems


def _declaration_in_inventory(inv: Any, catalog: Catalog, decl: Any) -> list[Problem]:
    """A declaration's needs this inventory must meet, once per declaration: its secrets sourced; the proxy's
    entrypoints and mounts, a generated file's mount."""
    where = catalog.where(decl.name)
    problems: list[Problem] = []
    if inv.stack is not None and inv.stack.secrets:  # none at all: _missing_stack said it once
        known = sorted(inv.stack.secrets)
        for secret, key in decl.secret_keys():
            if secret in inv.stack.secrets:
                continue
            close = difflib.get_close_matches(secret, known, n=1, cutoff=0.85)  # a typo, not a sibling's name
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append((key, (f"secret {secret} is not in stack.secrets of {inv.source}{hint} (expected a secret "
                                   f"stack.secrets names, or stack.secrets.{secret}: {{env: VAR}} or {{vault: var}} "
                                   "added there)"), where))
    if decl.name == PROXY_SERVICE:
        problems += [("volumes" if line.startswith("no host directory") else "ports", line, where)
                     for line in _entrypoint_problems(decl)]
    problems += [("volumes", line, where) for line in _mount_problems(decl)]
    if not any(len(problem) == 3 and problem[2] == where for problem in catalog.problems):
        # a declaration's own mistake (an unpublished check port) already explains what its files cannot read
        problems += [(key, line, where) for key, line in _port_problems(decl)]
    return problems


def _entrypoint_problems(decl: Any) -> list[str]:
    """What the traefik declaration lacks for the generated static configuration."""
    problems = [f"no port named {name} (expected ports[].name {name})" for name in PROXY_ENTRYPOINTS
                if decl.port_named(name) is None]
    if not any(v.target == PROXY_CONFIG_TARGET and not v.named for v in decl.volumes):
        problems.append(f"no host directory mounted at {PROXY_CONFIG_TARGET} (expected a volume with that target)")
    return problems


def _mount_problems(decl: Any) -> list[str]:
    """What a declaration with generated files lacks: a host directory over each file (one line each)."""
    mounted = {v.target for v in decl.volumes if not v.named}
    return [f"no host directory mounted at {target} (expected a volume with that target: its files are generated)"
            for target in GENERATED_MOUNTS.get(decl.name, ()) if target not in mounted]


def _port_problems(decl: Any) -> list[tuple[str, str]]:
    """(key, line) for a declaration whose first port a generated file reads and that has none, or unpublished."""
    reader = FIRST_PORT_READERS.get(decl.name)
    if reader is None:
        return []
    if not decl.ports:
        return [("ports", f"no port declared (expected one, published: {reader} reads its first port)")]
    if decl.ports[0].published is None:
        return [("ports[0].published", f"the first port is not published (expected a host port: {reader} reads it)")]
    return []
