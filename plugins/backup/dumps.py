"""The hosts' dumps, taken now and pulled to the runner: the program the backup role installs, run over SSH,
then rsync of the dumps directory into the runner's copy of it (what restic backs up)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from plugins.backup.credentials import BackupProblem

if TYPE_CHECKING:
    from plugins.inventory import Host
    from plugins.ssh.pool import SshPool

DUMP_PROGRAM = "/usr/local/sbin/homelab-dumps"
DUMP_TIMEOUT = 1800.0
PULL_TIMEOUT = 1800.0
_NOT_INSTALLED = 127  # the shell's "command not found"


@dataclass
class HostDumps:
    """What one host's dump run did: each dump's outcome ({name, file, ok, bytes, seconds, error | note})."""

    host: str
    outcomes: list[dict] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """The size of the host's dumps."""
        return sum(o.get("bytes", 0) for o in self.outcomes)

    @property
    def errors(self) -> list[str]:
        """One line per dump that failed."""
        return [o.get("error", f"{o['name']}: failed") for o in self.outcomes if not o.get("ok")]


def take_dumps(pool: SshPool, host: Host, timeout: float = DUMP_TIMEOUT) -> HostDumps:
    """Run the host's dump program now (as root: it reads Docker's volumes); its outcomes, or BackupProblem."""
    done = pool.run(host.hostname, f"sudo -n {DUMP_PROGRAM}", timeout=timeout)
    if done.returncode == 255:
        raise BackupProblem(f"{host.hostname} ({host.ip}): ssh failed: {_last(done.stderr)}")
    if done.returncode == _NOT_INSTALLED or "No such file" in done.stderr and DUMP_PROGRAM in done.stderr:
        raise BackupProblem(f"{host.hostname}: {DUMP_PROGRAM} is not installed (expected the deploy's backup role: "
                            "run make deploy once the inventory has a backup section)")
    try:
        status = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BackupProblem(f"{host.hostname}: the dump program failed (exit {done.returncode}): "
                            f"{_last(done.stderr)}") from None
    return HostDumps(host.hostname, status.get("dumps", []))


def pull(pool: SshPool, host: Host, directory: str, into: Path, timeout: float = PULL_TIMEOUT) -> None:
    """Copy the host's dumps directory into `into` (rsync over the pool's SSH master, as the deploy user)."""
    into.mkdir(parents=True, exist_ok=True, mode=0o700)
    ssh = " ".join(pool.ssh_args(host.hostname)[:-2])  # `ssh -F <config>`: the alias comes from rsync
    args = ["rsync", "--archive", "--delete", "--exclude", "*.partial", "-e", ssh,
            f"{host.hostname}:{directory.rstrip('/')}/", f"{into}/"]
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BackupProblem(f"{host.hostname}: copying its dumps took more than {timeout:g} s") from None
    if done.returncode != 0:
        raise BackupProblem(f"{host.hostname}: copying its dumps failed: {_last(done.stderr)}")


def _last(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
