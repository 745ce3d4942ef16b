"""The inventory's services, from the catalog: what every layer derives (the rules are stack_rules.py's).

A host names the services it runs (hosts[].services); the catalog declares them; stack gives the environment's
values. From the three: each host's containers and HTTP checks (directly and through Traefik), and the host
vars the Ansible roles deploy from. Nothing here is written twice: a port lives in its declaration alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugins.inventory import configs, traefik
from plugins.inventory.catalog import Catalog, dependency_order
from plugins.inventory.declaration import SecretRef

if TYPE_CHECKING:
    from plugins.inventory.model import Host, Inventory

STACK_NETWORK = "homelab"  # the Docker network of a host's services: they reach each other by container name


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
            "env": decl.literal_environment,
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
