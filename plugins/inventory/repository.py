"""Cross-checks of an inventory against this repository: what the deploy would otherwise find out halfway.

Every host role has an Ansible role (ansible/roles/<role>/tasks/main.yml), the environment has its Terraform
directory (terraform/envs/<environment>), and a service's port is the one its role serves where that is
knowable today: a host whose expected containers are exactly the ones its roles run (the inventory does not
yet say which container serves which url).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

from plugins.inventory.errors import Problem
from plugins.inventory.fields import RESERVED_GROUPS, url_for_messages
from plugins.inventory.masking import looks_secret, shown
from plugins.inventory.model import Inventory
from plugins.inventory.rules import host_refs

REPOSITORY = Path(__file__).resolve().parents[2]
GROUP_VARS = Path("ansible/playbooks/group_vars/all.yml")


def repository_problems(inventory: Inventory, root: Path = REPOSITORY) -> list[Problem]:
    """Every disagreement between the inventory and the roles and Terraform directories under root."""
    refs = host_refs([h.hostname for h in inventory.hosts])
    return [*_roles(inventory, refs, root), *_terraform(inventory, root), *_ports(inventory, refs, root)]


def _named(name: str) -> str:
    return "<not shown>" if looks_secret(name) else name


def _known_roles(root: Path) -> list[str]:
    roles = root / "ansible" / "roles"
    found = sorted(p.parent.parent.name for p in roles.glob("*/tasks/main.yml")) if roles.is_dir() else []
    return [role for role in found if role not in RESERVED_GROUPS]


def _roles(inventory: Inventory, refs: list[str], root: Path) -> list[Problem]:
    known = _known_roles(root)
    problems = []
    for ref, host in zip(refs, inventory.hosts):
        for index, role in enumerate(host.roles):
            if not (root / "ansible" / "roles" / role / "tasks" / "main.yml").is_file():
                expected = ", ".join(known) or "none found"
                message = (f"role {shown(role)} has no ansible/roles/{_named(role)}/tasks/main.yml "
                           f"(expected one of: {expected})")
                problems.append((f"{ref}.roles[{index}]", message))
    return problems


def _terraform(inventory: Inventory, root: Path) -> list[Problem]:
    envs = root / "terraform" / "envs"
    directory = envs / inventory.environment
    if directory.is_dir() and any(directory.glob("*.tf")):
        return []
    known = sorted(p.name for p in envs.iterdir() if p.is_dir() and any(p.glob("*.tf"))) if envs.is_dir() else []
    name = inventory.environment
    message = (f"{shown(name)} has no Terraform directory terraform/envs/{_named(name)} with .tf files "
               f"(expected one of: {', '.join(known) or 'none'})")
    return [("environment", message)]


def _read_vars(path: Path) -> dict:
    """A vars file of the repository as a mapping ({} when absent or not a mapping)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _served(role: str, root: Path, shared: dict) -> tuple[str, int] | None:
    """(container, port) the role runs, from group_vars over its defaults; None when either is not plain data."""
    defaults = _read_vars(root / "ansible" / "roles" / role / "defaults" / "main.yml")
    container = shared.get(f"{role}_container_name", defaults.get(f"{role}_container_name"))
    port = shared.get(f"{role}_port", defaults.get(f"{role}_port"))
    if isinstance(container, str) and isinstance(port, int) and not isinstance(port, bool):
        return container, port
    return None


def _url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _ports(inventory: Inventory, refs: list[str], root: Path) -> list[Problem]:
    shared = _read_vars(root / GROUP_VARS)
    by_role = {role: found for role in inventory.roles if (found := _served(role, root, shared))}
    problems = []
    for ref, host in zip(refs, inventory.hosts):
        served = {role: by_role[role] for role in host.roles if role in by_role}
        if not served or sorted(host.containers) != sorted(c for c, _ in served.values()):
            continue  # which container answers which url is not knowable from the data today
        ports = sorted({port for _, port in served.values()})
        for index, service in enumerate(host.services):
            port = _url_port(service.url)
            if port not in ports:
                roles = ", ".join(f"{role} serves {container} on {p}" for role, (container, p) in served.items())
                message = (f"{url_for_messages(service.url)} uses port {port}, but {roles} ({GROUP_VARS} or the "
                           f"role's defaults; expected port {' or '.join(map(str, ports))})")
                problems.append((f"{ref}.services[{index}].url", message))
    return problems
