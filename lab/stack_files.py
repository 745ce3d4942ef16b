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


def new_secret(name: str) -> str:
    """A fresh value for the variable: 32 URL-safe characters; 64 for a *_SECRET_KEY (Django's, NetBox's: at
    least 50) — short enough elsewhere for a NetBox v1 API token (at most 40)."""
    return secrets.token_urlsafe(48 if name.endswith("SECRET_KEY") else 24)


def backup_password_names(inventory: Path = LAB_INVENTORY) -> list[str]:
    """The variable backup.offsite.password names (the restic repository's password), if any: the lab makes it
    as it makes the services' secrets; the S3 keys beside it are the state store's, which `lab env` exports."""
    document = yaml.safe_load(inventory.read_text(encoding="utf-8")) or {}
    password = ((document.get("backup") or {}).get("offsite") or {}).get("password") or {}
    return [password["env"]] if "env" in password else []


def ensure_service_secrets(paths: config.LabPaths = config.PATHS, inventory: Path = LAB_INVENTORY) -> dict[str, str]:
    """A value for every environment variable stack.secrets and backup.offsite.password name, generated once and
    kept; {name: value}."""
    names = [source["env"] for source in (stack_section(inventory).get("secrets") or {}).values() if "env" in source]
    names += backup_password_names(inventory)
    path = secrets_file(paths)
    kept = json.loads(path.read_text()) if path.is_file() else {}
    # every value kept, also those this lab.yml does not name: a lab.yml of another branch, run in between, must
    # not change the password a database volume was initialised with
    values = {name: kept.get(name) or new_secret(name) for name in names}
    merged = {**kept, **values}
    if merged != kept:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(merged, indent=2) + "\n")
        os.chmod(temporary, 0o600)
        temporary.replace(path)
    return values  # only the names this inventory gives: `lab env` exports what its stack uses


def images_no_lab_host_runs(inventory: Path = LAB_INVENTORY, catalog_dir: Path = LAB_INVENTORY.parents[1] / "services") -> set[str]:
    """The image references of declared services that no host of the lab inventory runs (their recipes need
    not be built for the lab: NetBox's cold build alone takes minutes)."""
    document = yaml.safe_load(inventory.read_text(encoding="utf-8")) or {}
    placed = {name for host in document.get("hosts") or [] for name in host.get("services") or []}
    declared = {path.stem: (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) for path in catalog_dir.glob("*.yml")}
    used = {d.get("image") for name, d in declared.items() if name in placed}
    return {d.get("image") for name, d in declared.items() if name not in placed} - used - {None}
