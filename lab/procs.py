"""Background processes of the lab (emulator, S3 store, STS rejector, registry): started detached, tracked by PID file, stopped by PID.

Only a PID this module recorded is ever signalled, and only after checking that the process
still runs the command it started (a PID can be reused after a reboot or a crash).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Service:
    """A lab process: its name, the Python module it runs (or a program, when given) and its arguments."""

    name: str
    module: str
    args: tuple[str, ...]
    program: str = ""

    @property
    def argv(self) -> list[str]:
        """The command line that starts it."""
        if self.program:
            return [self.program, *self.args]
        return [sys.executable, "-m", self.module, *self.args]

    def runs_in(self, cmdline: str) -> bool:
        """True when a process's command line is this service's."""
        if self.program:
            return cmdline.startswith(" ".join(self.argv) + " ")
        return f"-m {self.module}" in cmdline


MARKER = "HOMELAB_LAB_SERVICE"


def _pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _marked(pid: int, name: str) -> bool:
    """True when the process was started by start() for this service (its environment says so)."""
    try:
        return f"{MARKER}={name}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def running_pid(run_dir: Path, service: Service) -> int | None:
    """Return the PID of the service if its PID file names a live process running its command.

    A program that renames itself (verdaccio's title is `verdaccio`) is still known by the marker
    start() put in its environment."""
    pid_file = _pid_file(run_dir, service.name)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if _is_zombie(pid):
        return None
    if service.runs_in(_cmdline(pid)) or _marked(pid, service.name):
        return pid
    return None


def start(run_dir: Path, log_dir: Path, service: Service, env: dict[str, str] | None = None) -> int:
    """Start the service detached (own session, log file) unless it already runs; return its PID.

    env adds variables to the process's environment (a secret there stays off its command line)."""
    pid = running_pid(run_dir, service)
    if pid:
        return pid
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parent.parent
    with open(log_dir / f"{service.name}.log", "ab") as log:
        proc = subprocess.Popen(
            service.argv,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", MARKER: service.name},
        )
    _pid_file(run_dir, service.name).write_text(f"{proc.pid}\n")
    _await_exec(proc, service)
    return proc.pid


def _await_exec(proc: subprocess.Popen, service: Service, timeout: float = 5.0) -> None:
    """Wait until the new process shows its command line (or has exited).

    Popen returns once the child's close-on-exec pipe closes, which the kernel does before it sets up the new
    program's arguments and environment: for that moment /proc/PID/cmdline and environ read empty, and a
    caller asking running_pid() at once (a loaded machine makes it likely) would take the store for dead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if service.runs_in(_cmdline(proc.pid)) or _marked(proc.pid, service.name):
            return
        time.sleep(0.01)


def stop(run_dir: Path, service: Service, timeout: float = 10.0) -> bool:
    """Stop the service by its recorded PID (SIGTERM, then SIGKILL after timeout); True if one was stopped."""
    pid = running_pid(run_dir, service)
    _pid_file(run_dir, service.name).unlink(missing_ok=True)
    if not pid:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5  # the kernel still closes its sockets: wait so a caller sees it gone
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and not _is_zombie(pid):
        time.sleep(0.05)
    return True


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True
