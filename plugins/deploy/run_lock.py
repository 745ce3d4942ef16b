"""One deploy of an environment at a time, and a record of the run that holds it.

The lock is a file per environment under the suite's state directory, held with flock(2) for the
whole run: the kernel lets go of it when the holder dies, however it dies, so a lock nobody holds is
stale by definition (no guessing from PIDs). The file also records the holder (run id, pid, host,
since when) and the snapshots it took, so that a run killed with SIGKILL — which nothing in its own
process can roll back — is found by the next run, which says what to do:
`python -m plugins.deploy.recover rollback` puts that run's containers back to its snapshots.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_DIR_ENV = "HOMELAB_SUITE_STATE_DIR"


def state_dir(env: dict[str, str] | None = None) -> Path:
    """Where the suite keeps what must outlive a checkout: $HOMELAB_SUITE_STATE_DIR or ~/.local/state/homelab-suite.

    Not under reports/: a CI checkout cleans the work tree, and the record of a killed run must survive it.
    """
    env = os.environ if env is None else env
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV])
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "homelab-suite"


RESTORED = {"firewall": "firewall", "ha": "HA resources", "ha_rules": "HA rules"}  # recorded_state.py's keys


@dataclass
class RunRecord:
    """Who holds (or held) an environment's deploy lock, and what that run changed so far."""

    environment: str
    run_id: str
    pid: int
    host: str
    since: str
    inventory: str = ""
    snapshots: dict[str, str] = field(default_factory=dict)  # vmid (as text) -> snapshot name
    applied: bool = False
    rollback_incomplete: str = ""  # the run ended, but its rollback did not finish: why
    # what the rollback restores that no snapshot holds (PVE's firewall, HA resources): plugins/deploy/recorded_state.py
    restores: dict = field(default_factory=dict)

    def holder(self) -> str:
        """The holder in words: run id, pid, host, since when."""
        return f"run {self.run_id} (pid {self.pid} on {self.host}, since {self.since})"

    def changed_something(self) -> bool:
        """Whether the run may have left the homelab half-deployed (it took snapshots, or an incomplete rollback
        left PVE's firewall or HA resources to put back)."""
        return bool(self.snapshots) or bool(self.restores)

    def pending(self) -> str:
        """What a recovery would put back, in words: the snapshots, and the firewall or HA resources it recorded."""
        parts = [", ".join(f"CT {vmid}: {name}" for vmid, name in sorted(self.snapshots.items()))]
        if self.restores:
            parts.append(f"PVE's {', '.join(RESTORED[key] for key in sorted(self.restores) if key in RESTORED)} "
                         "as the run found them")
        return "; ".join(part for part in parts if part)


class LockHeld(Exception):
    """Another run of the same environment holds the lock."""


class UnfinishedRun(Exception):
    """A run died after it took snapshots: its containers may be half-deployed."""

    def __init__(self, message: str, record: RunRecord) -> None:
        super().__init__(message)
        self.record = record


def lock_path(environment: str, directory: Path | None = None) -> Path:
    """The lock file of an environment."""
    return (directory or state_dir()) / f"deploy-{environment}.lock"


def read_record(path: Path) -> RunRecord | None:
    """The record in a lock file, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(path.read_text())
        return RunRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def recovery_command(inventory: str = "") -> str:
    """The command that rolls back an unfinished run of the environment of this inventory."""
    return "python -m plugins.deploy.recover rollback" + (f" --inventory {inventory}" if inventory else "")


def recovery_hint(record: RunRecord) -> str:
    """The commands that end an unfinished run: roll it back, or keep the state as it is."""
    inventory = f" --inventory {record.inventory}" if record.inventory else ""
    return (f"roll it back with `{recovery_command(record.inventory)}`, or keep the homelab as it is "
            f"with `python -m plugins.deploy.recover forget{inventory}`")


class RunLock:
    """The deploy lock of one environment, held from acquire() to release()."""

    def __init__(self, environment: str, directory: Path | None = None) -> None:
        self.path = lock_path(environment, directory)
        self.environment = environment
        self.record: RunRecord | None = None
        self.taken_over: RunRecord | None = None
        self._fd: int | None = None

    def acquire(self, run_id: str, inventory: str = "") -> RunRecord:
        """Take the lock or raise LockHeld (a live holder) / UnfinishedRun (a dead holder that took snapshots)."""
        fd = self._lock_current_file()
        previous = read_record(self.path)
        if previous is not None and previous.changed_something():
            os.close(fd)
            how = (f"its rollback was incomplete ({previous.rollback_incomplete})" if previous.rollback_incomplete
                   else "it was killed after taking snapshots")
            raise UnfinishedRun(
                f"{previous.holder()} did not finish: {how} ({previous.pending()}), so "
                f"'{self.environment}' may be half-deployed; {recovery_hint(previous)}", previous)
        self._fd = fd
        self.taken_over = previous
        self.record = RunRecord(environment=self.environment, run_id=run_id, pid=os.getpid(),
                                host=socket.gethostname(), since=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                                inventory=inventory)
        self._save()
        return self.record

    def _lock_current_file(self) -> int:
        """flock the lock file that is at the path now (a releasing holder may unlink the one we opened)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                held = read_record(self.path)
                who = held.holder() if held else "another run"
                raise LockHeld(f"another deploy of '{self.environment}' is running: {who}; "
                               f"this run stopped before any change (lock {self.path})") from None
            try:
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def adopt(self) -> RunRecord | None:
        """Hold the lock of a run that is gone, keeping its record (to recover it); LockHeld if it still runs."""
        self._fd = self._lock_current_file()
        self.record = read_record(self.path)
        return self.record

    def abandon(self) -> None:
        """Let go of the lock and keep the record as it is (the recovery failed: the next run must still see it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def keep_unfinished(self, why: str, snapshots: dict[int, str] | None = None, restores: dict | None = None) -> None:
        """The run ended but its rollback did not finish: keep the record (the next run refuses, naming the
        recovery) and let go of the lock; snapshots and restores, when given: only what is left to put back."""
        if self.record is not None and self._fd is not None:
            self.record.rollback_incomplete = why
            if snapshots is not None:
                self.record.snapshots = {str(vmid): name for vmid, name in snapshots.items()}
            if restores is not None:
                self.record.restores = restores
            self._save()
        self.abandon()

    def note_snapshots(self, snapshots: dict[int, str], applied: bool = False) -> None:
        """Record the snapshots taken so far (and whether anything was applied), before going on."""
        if self.record is None:
            return
        self.record.snapshots = {str(vmid): name for vmid, name in snapshots.items()}
        self.record.applied = applied
        self._save()

    def note_restores(self, restores: dict) -> None:
        """Record what the run's rollback would restore besides its snapshots (firewall, HA resources)."""
        if self.record is None:
            return
        self.record.restores = restores
        self._save()

    def release(self) -> None:
        """The run ended and said how: remove the record and let go of the lock."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # whoever opened this inode before the unlink finds no record
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def _save(self) -> None:
        """Write the record in place (the lock is on this file's inode: never replace it by rename)."""
        data = json.dumps(asdict(self.record), indent=2).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)


def forget(environment: str, directory: Path | None = None) -> RunRecord | None:
    """Drop the record of a dead run (its lock is free); give it. Refuses while a live run holds the lock."""
    lock = RunLock(environment, directory)
    record = lock.adopt()
    lock.release()
    return record
