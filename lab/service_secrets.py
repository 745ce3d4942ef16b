"""The lab's service secrets (database passwords): generated once by `lab up`, exported by `lab env`.

The homelab keeps its own in Ansible Vault (ansible/README.md); the lab makes random ones so that no
secret value is ever written in the repository. They live in LAB_DIR/keys/service-secrets.json (mode
0600), kept across `lab down` like the deploy key, removed by `lab down --purge`.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from lab import config

FILE_NAME = "service-secrets.json"
# Environment name → what it is; the app_demo role reads APP_DEMO_DB_PASSWORD from the environment.
SECRETS = {"APP_DEMO_DB_PASSWORD": "the demo app's PostgreSQL password"}


def secrets_file(paths: config.LabPaths = config.PATHS) -> Path:
    """Where the lab keeps its service secrets."""
    return paths.keys_dir / FILE_NAME


def ensure(paths: config.LabPaths = config.PATHS) -> dict[str, str]:
    """Generate every missing secret (kept ones never change: a volume's database holds the old value)."""
    path = secrets_file(paths)
    current = load(paths)
    wanted = {name: current.get(name) or secrets.token_urlsafe(24) for name in SECRETS}
    if wanted != current:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(wanted, handle, indent=2)
        tmp.replace(path)
    return wanted


def load(paths: config.LabPaths = config.PATHS) -> dict[str, str]:
    """The secrets `lab up` generated ({} before the first `lab up`)."""
    try:
        data = json.loads(secrets_file(paths).read_text())
    except (OSError, ValueError):
        return {}
    return {name: value for name, value in data.items() if name in SECRETS and isinstance(value, str)}
