"""The configuration files a service reads, generated from the inventory and the catalog, by service name.

Each generator gives {path in the container: content}; `host_files` maps those paths to the host directory
the declaration mounts there, which the stack role writes before it runs the container (and restarts it
after a change). A file's content is derived, never written by hand on a host.
"""

from __future__ import annotations

import base64
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from plugins.stack import grafana, prometheus, promtail

if TYPE_CHECKING:
    from plugins.inventory.declaration import Declaration
    from plugins.inventory.model import Host, Inventory

GENERATORS = {
    "prometheus": lambda inv, host, decl: prometheus.files(inv, decl),
    "grafana": lambda inv, host, decl: grafana.files(inv, host),
    "promtail": promtail.files,
}


def host_files(inventory: Inventory, host: Host, decl: Declaration) -> list[dict]:
    """[{dest, content_b64}] on the host for the declaration's generated files (none for most services).

    Base64: Ansible templates every string of a host var, and Prometheus's rules and Grafana's dashboards
    carry their own `{{ $labels.x }}` / `{{instance}}`, which must reach the file untouched.
    """
    generate = GENERATORS.get(decl.name)
    if generate is None:
        return []
    found = []
    for path, content in generate(inventory, host, decl).items():
        found.append({"dest": host_path(decl, path), "content_b64": base64.b64encode(content.encode()).decode()})
    return found


def host_path(decl: Declaration, container_path: str) -> str:
    """The host path behind a container path: under the host directory mounted at one of its parents."""
    target = PurePosixPath(container_path)
    for volume in decl.volumes:
        mount = PurePosixPath(volume.target)
        if not volume.named and (target == mount or mount in target.parents):
            return str(PurePosixPath(volume.source) / target.relative_to(mount))
    raise ValueError(f"services/{decl.name}.yml mounts no host directory over {container_path} "
                     "(expected a volume whose source is a host directory and whose target contains it)")
