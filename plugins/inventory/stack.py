"""The inventory's services, from the catalog: the rules that tie them together, and what every layer derives.

A host names the services it runs (hosts[].services); the catalog declares them; stack gives the environment's
values. From the three: each host's containers and HTTP checks (directly and through Traefik), and the host
vars the Ansible roles deploy from. Nothing here is written twice: a port lives in its declaration alone.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from plugins.inventory import configs, traefik
from plugins.inventory.catalog import Catalog, SecretRef, dependency_order
from plugins.inventory.masking import shown

if TYPE_CHECKING:
    from plugins.inventory.errors import Problem
    from plugins.inventory.model import Host, Inventory

STACK_NETWORK = "homelab"  # the Docker network of a host's services: they reach each other by container name
# An environment value that addresses another container: `name`, `name:port` or `scheme://name[:port][/path]`.
_ADDRESS = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?P<host>[a-z0-9][a-z0-9_-]*)(?::(?P<port>[0-9]+))?(?:/.*)?$")


def stack_problems(inv: Any, catalog: Catalog, refs: list[str]) -> list[Problem]:
    """Every disagreement between the hosts' services, the catalog and the stack section, one line each."""
    problems: list[Problem] = [("", line) for line in catalog.problems]
    placed: dict[str, str] = {}
    routes: dict[str, str] = {}
    routed = False
    for ref, host in zip(refs, inv.hosts):
        containers: dict[str, str] = {}
        published: dict[int, str] = {}
        for index, name in enumerate(host.services):
            path = f"{ref}.services[{index}]"
            if name not in catalog:
                problems.append((path, (f"{shown(name)} is not declared in services/ (expected one of: "
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
            if decl.container in containers:
                problems.append((path, (f"container {decl.container} of {name} is also {containers[decl.container]}'s "
                                       "(expected a unique container name per host)")))
            containers[decl.container] = name
            for port in decl.ports:
                if port.published is None:
                    continue
                if port.published in published:
                    problems.append((path, (f"{name} publishes port {port.published}, as {published[port.published]} "
                                           "does (expected a unique published port per host)")))
                published[port.published] = name
            for dependency in decl.depends_on:
                if dependency not in host.services:
                    problems.append((path, (f"{name} depends on {dependency}, which {host.hostname} does not run "
                                           "(expected it in the same host's services)")))
            if decl.route:
                routed = True
                if decl.route.host in routes:
                    problems.append((path, (f"route {decl.route.host} of {name} is also {routes[decl.route.host]}'s "
                                           "(expected a unique route host)")))
                routes[decl.route.host] = name
            problems.extend(_secret_problems(inv, path, name, decl.secrets))
            problems.extend((path, line) for line in address_problems(decl, catalog))
            if name == "traefik":
                problems.extend((path, f"traefik: {line}") for line in traefik.entrypoint_problems(decl))
            problems.extend((path, f"{name}: {line}") for line in configs.mount_problems(decl))
    vaulted = sorted(name for name, source in (inv.stack.secrets if inv.stack else {}).items() if source.vault)
    if vaulted and inv.stack.vault is None:
        problems.append(("stack.vault", (f"secrets {', '.join(vaulted)} come from Ansible Vault but stack.vault is "
                                         "not set (expected stack.vault.file: the encrypted vars file)")))
    if routed and inv.stack is None:
        problems.append(("stack", ("services have routes but the inventory has no stack section "
                                  "(expected stack: domain, tls)")))
    if routed and "traefik" not in placed:
        problems.append(("hosts", ("services have routes but no host runs traefik (expected traefik in one host's "
                                  "services)")))
    return problems


def address_problems(decl: Any, catalog: Catalog) -> list[str]:
    """An environment value that reaches a dependency (`*HOST`, `*_URL`) must name that dependency's container,
    and a port it listens on; `PORT`, where set, is a declared container port: a container or a port renamed in
    one place of a declaration alone is found here."""
    dependencies = [catalog[name] for name in decl.depends_on if name in catalog]
    containers = {d.container: d for d in dependencies}
    problems = []
    port = decl.environment.get("PORT")
    if isinstance(port, str) and port not in {str(p.container) for p in decl.ports}:
        problems.append(f"{decl.name}: PORT is {port}, but its ports declare container port "
                        f"{', '.join(str(p.container) for p in decl.ports) or 'none'} (expected the port it listens on)")
    for key, value in decl.environment.items():
        if not isinstance(value, str) or not key.endswith(("HOST", "_URL")):
            continue
        match = _ADDRESS.match(value)
        if not match or match["host"] == "localhost":
            continue
        target = containers.get(match["host"])
        if target is None:
            problems.append(f"{decl.name}: {key} names {match['host']}, which is not the container of any of its "
                            f"dependencies (expected one of: {', '.join(containers) or 'none: depends_on is empty'})")
        elif match["port"] and int(match["port"]) not in {p.container for p in target.ports}:
            ports = ", ".join(str(p.container) for p in target.ports) or "none"
            problems.append(f"{decl.name}: {key} names port {match['port']} of {target.container}, which "
                            f"services/{target.name}.yml does not declare (expected one of: {ports})")
    return problems


def _secret_problems(inv: Any, path: str, name: str, secrets: list[str]) -> list[Problem]:
    known = inv.stack.secrets if inv.stack else {}
    return [(path, (f"{name} needs secret {secret}, which stack.secrets does not name (expected stack.secrets."
                   f"{secret}: {{env: VAR}} or {{vault: var}})")) for secret in secrets if secret not in known]


def derive_stack(inv: Inventory, catalog: Catalog) -> None:
    """Give every host its declarations (dependencies first) and its HTTP checks."""
    from plugins.inventory.model import FunctionalCheck, Service

    proxy = inv.proxy_host
    cap = inv.deploy.max_health_wait or float("inf")
    for host in inv.hosts:
        host._declarations = [catalog[name] for name in dependency_order(list(host.services), catalog)]
        endpoints = []
        for decl in host._declarations:
            for acceptance in decl.http:
                endpoints.append(Service(
                    name=decl.check_name(acceptance),
                    url=_http_url(host.ip, decl.published(acceptance.port), acceptance.path),
                    accepted=list(acceptance.accepted), warmup=list(acceptance.warmup),
                    deadline=min(acceptance.deadline, cap), rollback_deadline=acceptance.deadline,
                    follow_redirects=acceptance.follow_redirects))
            if decl.route and decl.http and proxy and inv.stack:
                first = decl.http[0]
                endpoints.append(Service(
                    name=f"{decl.name}-via-traefik",
                    url=f"https://{decl.route.host}.{inv.stack.domain}{first.path}",
                    accepted=list(first.accepted), warmup=sorted({*first.warmup, 502, 503, 504} - set(first.accepted)),
                    deadline=min(first.deadline, cap), rollback_deadline=first.deadline,
                    follow_redirects=first.follow_redirects,
                    ca_file=inv.stack.tls.ca_file, connect_to=proxy.ip))
        host._endpoints = endpoints
        host._probes = []
        for decl in host._declarations:
            for probe in decl.probes:
                sources = inv.stack.secrets if inv.stack else {}
                secrets = {probe.secret: sources[probe.secret].env or ""} if probe.secret in sources else {}
                direct = _http_url(host.ip, decl.published(probe.port), probe.path)
                common = {"kind": probe.kind, "secrets": secrets, "deadline": min(probe.deadline, cap)}
                name = f"{decl.name}-{probe.kind.replace('_', '-')}"
                host._probes.append(FunctionalCheck(name=name, url=direct, **common))
                if decl.route and proxy and inv.stack and decl.route.port == probe.port:
                    host._probes.append(FunctionalCheck(
                        name=f"{name}-via-traefik",
                        url=f"https://{decl.route.host}.{inv.stack.domain}{probe.path}",
                        ca_file=inv.stack.tls.ca_file, connect_to=proxy.ip, **common))


def _http_url(address: str, port: int | None, path: str) -> str:
    return f"http://{address}{'' if port == 80 else f':{port}'}{path}"


def container_vars(inv: Inventory, host: Host) -> list[dict]:
    """What the stack role runs on the host, one entry per service, dependencies first (Ansible host var)."""
    entries = []
    for decl in host.declarations:
        files = configs.host_files(inv, host, decl)
        host_dirs = _host_dirs(decl, files)
        secrets = []
        for key, value in decl.environment.items():
            if isinstance(value, SecretRef):
                source = inv.stack.secrets[value.secret]
                secrets.append({"name": key, **({"env": source.env} if source.env else {"vault": source.vault})})
        entries.append({
            "name": decl.name,
            "container": decl.container,
            "image": decl.image,
            "pull": decl.build is None,
            "built_by": decl.build.by if decl.build else None,
            "build_context": decl.build.context if decl.build else None,
            "command": list(decl.command),
            "ports": [f"{p.published}:{p.container}" for p in decl.ports if p.published is not None],
            "env": {k: v for k, v in decl.environment.items() if isinstance(v, str)},
            "secret_env": secrets,  # [{name, env | vault}]: where each value comes from, never the value
            "volumes": [f"{v.source}:{v.target}" + (":ro" if v.read_only else "") for v in decl.volumes],
            "named_volumes": [v.source for v in decl.volumes if v.named],
            "host_dirs": host_dirs,
            "files": files,  # [{dest, content_b64}]: generated configuration (plugins/inventory/configs.py)
            "healthcheck": _healthcheck(decl),
            "restart_policy": decl.restart,
            "init": decl.init,
        })
    return entries


def _host_dirs(decl: Any, files: list[dict]) -> list[str]:
    """The host directories to create, parents first: the writable mounts, the mounts of generated files and
    their subdirectories (rules/, provisioning/…). A read-only mount of the host's own (its root for a node
    exporter, Docker's logs for the shipper) or one a role fills (Traefik's) is left as it is."""
    mounts = [v.source for v in decl.volumes if not v.named]
    found = {m for m in mounts if not next(v for v in decl.volumes if v.source == m).read_only
             or any(f["dest"].startswith(m.rstrip("/") + "/") for f in files)}
    for entry in files:
        parent = entry["dest"].rsplit("/", 1)[0]
        while parent not in found and any(parent.startswith(mount + "/") for mount in found):
            found.add(parent)
            parent = parent.rsplit("/", 1)[0]
    return sorted(found)


def _healthcheck(decl: Any) -> dict | None:
    check = decl.healthcheck
    if check is None:
        return None
    return {"test": list(check.test), "interval": f"{check.interval:g}s", "timeout": f"{check.timeout:g}s",
            "retries": check.retries, "start_period": f"{check.start_period:g}s"}


def host_vars(inv: Inventory, host: Host) -> dict:
    """The Ansible host vars of the host's services; the proxy host gets Traefik's generated configuration too."""
    found: dict = {"stack_network": STACK_NETWORK, "stack_services": container_vars(inv, host)}
    if host is inv.proxy_host and inv.stack:
        decl = inv.catalog["traefik"]
        found.update({
            "proxy_container": decl.container,
            "proxy_config_dir": traefik.config_dir(decl),
            "proxy_static_config": traefik.static_config(decl),
            "proxy_dynamic_config": traefik.dynamic_config(inv),
            "proxy_tls_cert_src": inv.stack.tls.cert_file,
            "proxy_tls_key_src": inv.stack.tls.key_file,
        })
    return found
