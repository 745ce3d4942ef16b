"""What the lab inventory's stack section names and `lab up` must provide: the proxy's certificate and the
services' secrets.

inventories/lab.yml is the home of the domain, the certificate paths and the secrets' variable names; this
module reads them there (plain YAML: lab/ never imports plugins/), makes a wildcard certificate for the domain
signed by the lab CA, and generates each secret once (kept 0600 in LAB_DIR/secrets), for `lab env` to export.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import yaml

from lab import config
from lab.pve import ca as lab_ca

LAB_INVENTORY = Path(__file__).resolve().parents[1] / "inventories" / "lab.yml"


def stack_section(inventory: Path = LAB_INVENTORY) -> dict:
    """The lab inventory's stack section ({} when it has none)."""
    document = yaml.safe_load(inventory.read_text(encoding="utf-8")) or {}
    return document.get("stack") or {}


def ensure_proxy_cert(paths: config.LabPaths = config.PATHS, inventory: Path = LAB_INVENTORY) -> str:
    """Create (or keep) the wildcard certificate of the lab's domain at the inventory's paths; return its path."""
    stack = stack_section(inventory)
    if not stack:
        return ""
    domain, tls = stack["domain"], stack["tls"]
    lab_ca.ensure_server_cert(paths.pve_dir, tls["cert_file"], tls["key_file"], ips=(),
                              dns=(f"*.{domain}", domain))
    return tls["cert_file"]


def secrets_file(paths: config.LabPaths = config.PATHS) -> Path:
    """Where the lab keeps its generated service secrets."""
    return paths.lab_dir / "secrets" / "services.json"


def ensure_service_secrets(paths: config.LabPaths = config.PATHS, inventory: Path = LAB_INVENTORY) -> dict[str, str]:
    """A value for every environment variable stack.secrets names, generated once and kept; {name: value}."""
    names = [source["env"] for source in (stack_section(inventory).get("secrets") or {}).values() if "env" in source]
    path = secrets_file(paths)
    kept = json.loads(path.read_text()) if path.is_file() else {}
    values = {name: kept.get(name) or secrets.token_urlsafe(24) for name in names}
    # A name this inventory does not list keeps its value: volumes made with it (by a branch or checkout whose
    # inventory names it) still hold it, and a new value on its return would lock the service out of its data.
    merged = {**kept, **values}
    if merged != kept:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(merged, indent=2) + "\n")
        os.chmod(temporary, 0o600)
        temporary.replace(path)
    return values
