"""The host vars the Ansible roles deploy from: each host's containers and generated files, the proxy's config.

From the host's declarations (plugins/inventory gives each host its own, dependencies first) and the stack
section: one entry per service for the stack role, and on the proxy host Traefik's generated configuration.
Nothing here is written twice: a port lives in its declaration alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugins.inventory.declaration import SecretRef
from plugins.inventory.stack_needs import PROXY_SERVICE
from plugins.stack import configs, traefik
from plugins.stack.backup_dumps import backup_vars

if TYPE_CHECKING:
    from plugins.inventory.model import Host, Inventory

STACK_NETWORK = "homelab"  # the Docker network of a host's services: they reach each other by container name


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
            "files": files,  # [{dest, content_b64}]: generated configuration (plugins/stack/configs.py)
            "healthcheck": _healthcheck(decl),
            "restart_policy": decl.restart,
            "init": decl.init,
            "stop_signal": decl.stop_signal,  # None: the image's own
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
    found: dict = {"stack_network": STACK_NETWORK, "stack_services": container_vars(inv, host),
                   **backup_vars(inv, host)}
    if host is inv.proxy_host and inv.stack:
        decl = inv.catalog[PROXY_SERVICE]
        found.update({
            "proxy_container": decl.container,
            "proxy_config_dir": traefik.config_dir(decl),
            "proxy_static_config": traefik.static_config(decl),
            "proxy_dynamic_config": traefik.dynamic_config(inv),
            "proxy_tls_cert_src": inv.stack.tls.cert_file,
            "proxy_tls_key_src": inv.stack.tls.key_file,
        })
    return found
