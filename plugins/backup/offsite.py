"""The off-site copy: a restic repository in the policy's S3 bucket, encrypted with its password.

restic runs on the runner (the machine the suite runs on), never on the hosts: the password and the S3 keys stay
on the one machine that already holds the deploy's secrets, the hosts need neither restic nor a route to the
store, and one repository deduplicates every host's dumps. Secrets reach restic through its environment only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from plugins.backup.credentials import BackupProblem

RESTIC = "restic"
TAG = "homelab-suite"
ARCHIVE_TAG = "vzdump"  # a host's vzdump archive (with its .log and .notes), apart from its dumps
# restic retries a store that does not answer for minutes; a copy that takes longer than this is a failure
RESTIC_TIMEOUT = 1800.0
PROBE_TIMEOUT = 5.0
_NO_REPOSITORY = "Is there a repository at the following location?"


@dataclass(frozen=True)
class Snapshot:
    """One restic backup of a host: its id and what it added and holds."""

    snapshot_id: str
    bytes_added: int
    bytes_total: int


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class Repository:
    """A restic repository in S3; every method raises BackupProblem with one line when restic fails."""

    def __init__(self, repository: str, endpoint: str, environment: dict[str, str], cache_dir: Path,
                 timeout: float = RESTIC_TIMEOUT):
        self.repository = repository
        self.endpoint = endpoint
        self.timeout = timeout
        self._env = {**os.environ, **environment, "RESTIC_REPOSITORY": repository,
                     "RESTIC_CACHE_DIR": str(cache_dir)}

    def __repr__(self) -> str:
        return f"Repository({self.repository})"

    def _restic(self, *args: str, what: str) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run([RESTIC, *args], env=self._env, capture_output=True, text=True, check=False,
                                  stdin=subprocess.DEVNULL, timeout=self.timeout)
        except FileNotFoundError:
            raise BackupProblem("restic is not installed on this machine (expected Debian's restic: "
                                "sudo make install)") from None
        except subprocess.TimeoutExpired:
            raise BackupProblem(f"restic {what} in {self.repository} did not finish within {self.timeout:g} s") \
                from None
        return done

    def _checked(self, *args: str, what: str) -> subprocess.CompletedProcess:
        done = self._restic(*args, what=what)
        if done.returncode != 0:
            raise BackupProblem(f"restic {what} in {self.repository} failed: {_last_line(done.stderr)}")
        return done

    def reachable(self) -> None:
        """BackupProblem at once when the S3 store does not accept a connection (restic would retry for minutes)."""
        parts = urlsplit(self.endpoint)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT):
                return
        except OSError as error:
            reason = (error.strerror or str(error)).lower()
            raise BackupProblem(f"the S3 store {parts.scheme}://{parts.netloc} does not answer ({reason})") from None

    def exists(self) -> bool:
        """Whether the repository exists (restic cat config); BackupProblem when restic cannot tell."""
        done = self._restic("cat", "config", what="open")
        if done.returncode == 0:
            return True
        if _NO_REPOSITORY not in done.stderr:
            raise BackupProblem(f"restic cannot open {self.repository}: {_last_line(done.stderr)}")
        return False

    def ensure(self) -> bool:
        """Make the repository unless it exists (restic init); True when it was made now."""
        if self.exists():
            return False
        self._checked("init", what="init")
        return True

    def backup(self, directory: Path, host: str, *files: Path, tags: tuple[str, ...] = (),
               compress: bool = True) -> Snapshot:
        """Back the directory (or those of its files named) up as host's snapshot; what it added and holds.
        compress=False for data compressed already (a .tar.zst): restic's zstd would spend CPU for nothing."""
        paths = [str(path) for path in files] or [str(directory)]
        tagged = [part for tag in (TAG, *tags) for part in ("--tag", tag)]
        done = self._checked("backup", "--json", "--host", host, *tagged, *([] if compress else ["--compression",
                             "off"]), *paths, what=f"backup of {host}")
        for line in reversed(done.stdout.splitlines()):
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("message_type") == "summary":
                return Snapshot(message.get("snapshot_id", ""), int(message.get("data_added", 0)),
                                int(message.get("total_bytes_processed", 0)))
        raise BackupProblem(f"restic backup of {host} in {self.repository} gave no summary")

    def forget(self, keep_flags: list[str]) -> None:
        """Forget the snapshots the retention does not keep, per host and kind (dumps, archives), and prune their
        data."""
        self._checked("forget", "--prune", "--tag", TAG, "--group-by", "host,tags", *keep_flags, what="forget --prune")

    def check(self) -> None:
        """Verify the repository's structure (restic check); BackupProblem with restic's last line otherwise."""
        self._checked("check", what="check")

    def snapshots(self, host: str | None = None) -> list[dict]:
        """The repository's snapshots (restic's JSON), of one host or all."""
        args = ["snapshots", "--json", *(["--host", host] if host else [])]
        return json.loads(self._checked(*args, what="snapshots").stdout or "[]")

    def archives(self, host: str) -> list[dict]:
        """The host's snapshots of vzdump archives, oldest first."""
        return sorted((s for s in self.snapshots(host) if ARCHIVE_TAG in (s.get("tags") or [])),
                      key=lambda s: s.get("time", ""))

    def dumps(self, host: str) -> list[dict]:
        """The host's snapshots of dumps, oldest first."""
        return sorted((s for s in self.snapshots(host) if ARCHIVE_TAG not in (s.get("tags") or [])),
                      key=lambda s: s.get("time", ""))

    def restore(self, snapshot: str, target: Path, host: str | None = None, include: str | None = None) -> None:
        """Restore a snapshot ('latest' with host: that host's newest) into target (only the files matching the
        include pattern, when given)."""
        args = ["restore", snapshot, "--target", str(target), *(["--host", host] if host else []),
                *(["--include", include] if include else [])]
        self._checked(*args, what=f"restore of {snapshot}")
