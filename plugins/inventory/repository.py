"""Cross-checks of an inventory against this repository: what the deploy would otherwise find out halfway.

Every host role has an Ansible role (ansible/roles/<role>/tasks/main.yml), the environment has its Terraform
directory (terraform/envs/<environment>), a role that builds a service's image repeats no fact of its
declaration differently, the image it builds exposes the ports the declaration publishes, and no group_vars
file is a second home of a port or a container name.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from plugins.inventory.errors import Problem
from plugins.inventory.fields import RESERVED_GROUPS
from plugins.inventory.masking import looks_secret, shown
from plugins.inventory.model import Inventory
from plugins.inventory.refs import host_refs

REPOSITORY = Path(__file__).resolve().parents[2]
GROUP_VARS = Path("ansible/playbooks/group_vars/all.yml")
# Where a building role's source lives in the repository (what it ships to the host and builds there).
ROLE_SOURCES = {"app_demo": Path("app-demo")}
_EXPOSE = re.compile(r"^\s*EXPOSE\s+(.+)$", re.IGNORECASE | re.MULTILINE)


def repository_problems(inventory: Inventory, root: Path = REPOSITORY) -> list[Problem]:
    """Every disagreement between the inventory and the roles and Terraform directories under root."""
    refs = host_refs([h.hostname for h in inventory.hosts])
    return [*_roles(inventory, refs, root), *_terraform(inventory, root), *_built(inventory, refs, root),
            *_exposed(inventory, refs, root), *_second_homes(root)]


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


def _built(inventory: Inventory, refs: list[str], root: Path) -> list[Problem]:
    """A role that builds a service's image states its container, image and port in its defaults: they must be
    the declaration's (the declaration is the home; the role's defaults may only repeat it)."""
    problems = []
    for ref, host in zip(refs, inventory.hosts):
        for role in dict.fromkeys(d.build.by for d in host.declarations if d.build):
            built = [d for d in host.declarations if d.build and d.build.by == role]
            defaults = _read_vars(root / "ansible" / "roles" / role / "defaults" / "main.yml")
            where = f"{ref}.services[{host.services.index(built[0].name)}]"
            files = ", ".join(f"services/{d.name}.yml" for d in built)
            said = {"container_name": [d.container for d in built], "image": [d.image for d in built],
                    "port": sorted({p.container for d in built for p in d.ports})}
            for key, allowed in said.items():
                value = defaults.get(f"{role}_{key}")
                if isinstance(value, (str, int)) and not isinstance(value, bool) and value not in allowed:
                    problems.append((where, (f"ansible/roles/{role}/defaults/main.yml: {role}_{key} is {value}, but "
                                             f"{files} say{'s' if len(built) == 1 else ''} "
                                             f"{' or '.join(map(str, allowed)) or 'none'}")))
    return problems


def _exposed(inventory: Inventory, refs: list[str], root: Path) -> list[Problem]:
    """A built service's Dockerfile EXPOSEs the container ports its declaration publishes (the image's own
    default PORT and the declaration must not drift apart)."""
    problems = []
    for ref, host in zip(refs, inventory.hosts):
        for decl in host.declarations:
            if decl.build is None or decl.build.by not in ROLE_SOURCES:
                continue
            dockerfile = ROLE_SOURCES[decl.build.by] / decl.build.context / "Dockerfile"
            try:
                text = (root / dockerfile).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                problems.append((f"{ref}.services[{host.services.index(decl.name)}]",
                                 f"{dockerfile}: not found (expected the build of services/{decl.name}.yml)"))
                continue
            exposed = {int(word.split("/")[0]) for line in _EXPOSE.findall(text) for word in line.split()
                       if word.split("/")[0].isdigit()}
            for port in decl.ports:
                if port.container not in exposed:
                    problems.append((f"{ref}.services[{host.services.index(decl.name)}]",
                                     (f"{dockerfile} EXPOSEs {', '.join(map(str, sorted(exposed))) or 'nothing'}, "
                                      f"but services/{decl.name}.yml publishes container port {port.container}")))
    return problems


def _second_homes(root: Path) -> list[Problem]:
    """group_vars may not hold a service's port or container: those live in services/<name>.yml alone."""
    shared = _read_vars(root / GROUP_VARS)
    return [("", (f"{GROUP_VARS}: {key} is a second home of a service's {key.rsplit('_', 1)[-1]} "
                 "(expected it in services/<name>.yml only)"))
            for key in shared if key.endswith(("_port", "_container_name"))]
