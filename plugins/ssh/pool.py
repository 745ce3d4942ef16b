"""SSH connection reuse for checks: one OpenSSH ControlMaster per host, opened concurrently, closed at the end.

Why OpenSSH masters rather than one paramiko connection per host: a fresh handshake is CPU-bound, a
command over an open master is cheap and runs in its own process (no GIL), and testinfra's `ssh` backend
reuses the master through the generated ssh_config. `KexAlgorithms curve25519-sha256` costs the client
a fraction of OpenSSH 9's default sntrup761x25519 (docs/reference/figures.md has the measures).

Host keys: `StrictHostKeyChecking accept-new` into a dedicated UserKnownHostsFile (never "no").
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import testinfra

from plugins.shared.fanout import fan_out
from plugins.ssh.mux import MuxError, terminate_master

KEX = "curve25519-sha256"
CONNECT_TIMEOUT = 10
# Masters outlive an idle gap between tests, and die on their own if the process is killed before close_all.
CONTROL_PERSIST = 600
OPEN_WORKERS = 16
FIRST_COMMAND_TIMEOUT = 120
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
_METHODS = re.compile(r"Authentications that can continue: ([\w,@.-]+)")
_DENIED = re.compile(r"Permission denied \(([\w,@.-]+)\)")


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom to connect: the inventory hostname is the ssh alias, the address its HostName."""

    name: str
    address: str
    user: str
    identity_file: str
    port: int = 22


@dataclass
class MasterState:
    """The outcome of opening one host's master: open or the error ssh gave, and the methods sshd offered."""

    target: SshTarget
    is_open: bool = False
    error: str | None = None
    auth_methods: tuple[str, ...] | None = None
    seconds: float = 0.0
    log: Path | None = field(default=None, repr=False)
    first_output: str | None = field(default=None, repr=False)

    @property
    def auth_refused(self) -> bool:
        """True when sshd answered but refused the key (as opposed to an unreachable host)."""
        return bool(self.error and "Permission denied" in self.error)


def ssh_config_text(targets: Iterable[SshTarget], control_dir: Path, known_hosts: Path,
                    persist: int | None = CONTROL_PERSIST, connect_timeout: int = CONNECT_TIMEOUT) -> str:
    """Write the ssh_config that makes every ssh (ours, testinfra's) reuse the host's master (persist None: a master
    ends with its own first session, `ControlPersist no`)."""
    lines = []
    for target in targets:
        lines += [
            f"Host {target.name}",
            f"  HostName {target.address}",
            f"  Port {target.port}",
            f"  User {target.user}",
            f"  IdentityFile {target.identity_file}",
        ]
    lines += [
        "Host *",
        "  IdentitiesOnly yes",
        "  BatchMode yes",
        f"  KexAlgorithms {KEX}",
        "  ControlMaster auto",
        # %n, the alias we pass: close() finds the socket without asking ssh to compute a %C hash
        f"  ControlPath {control_dir}/%n",
        f"  ControlPersist {'no' if persist is None else persist}",
        f"  UserKnownHostsFile {known_hosts}",
        "  StrictHostKeyChecking accept-new",
        "  HashKnownHosts no",
        f"  ConnectTimeout {connect_timeout}",
        "  ServerAliveInterval 5",
        "  ServerAliveCountMax 3",
        "  LogLevel ERROR",
    ]
    return "\n".join(lines) + "\n"


class SshPool:
    """One ControlMaster per host for a session: open_all() concurrently, run()/host(), close_all()."""

    def __init__(self, targets: Iterable[SshTarget], *, known_hosts: str | Path = DEFAULT_KNOWN_HOSTS,
                 persist: int | None = CONTROL_PERSIST, connect_timeout: int = CONNECT_TIMEOUT):
        """Write the ssh_config in a short private dir under /tmp; no connection is opened yet."""
        self.targets = {t.name: t for t in targets}
        # A unix socket path is limited to 108 bytes: /tmp/hc-XXXXXXXX/<40 hex> fits, a pytest tmp_path may not.
        self.control_dir = Path(tempfile.mkdtemp(prefix="hc-", dir="/tmp"))  # nosec B108 # mkdtemp: a new 0700 dir
        self.known_hosts = Path(os.path.expanduser(str(known_hosts)))
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ssh_config = self.control_dir / "ssh_config"
        self.ssh_config.write_text(ssh_config_text(self.targets.values(), self.control_dir, self.known_hosts,
                                                   persist, connect_timeout))
        self.states: dict[str, MasterState] = {}
        self._lock = threading.Lock()
        self._hosts: dict[str, object] = {}

    def __enter__(self) -> Self:
        """Use the pool as a context manager that closes every master on exit."""
        return self

    def __exit__(self, *exc) -> None:
        """Close every master and remove the control dir."""
        self.close_all()

    def ssh_args(self, name: str, *options: str) -> list[str]:
        """The ssh command line for a host through this pool's config (append the remote command)."""
        return ["ssh", "-F", str(self.ssh_config), *options, "--", name]

    def open(self, name: str, command: str | None = None) -> MasterState:
        """Open (once) the master of one host; give its state, with ssh's own error when it failed.

        With a command, the master's own first session runs it (its stdout lands in `first_output`): one
        session fewer per host than opening then running. The command must not exit 255 (ssh's failure code).
        """
        with self._lock:
            if name in self.states:
                return self.states[name]
        target = self.targets[name]
        log = self.control_dir / f"{name}.log"
        started = time.monotonic()
        # -v into a log file: the server's "Authentications that can continue" tells whether sshd offers
        # passwords, without a second connection.
        options = ["-M", "-o", "LogLevel=DEBUG1", "-E", str(log)]
        args = [*self.ssh_args(name, *options), command] if command else self.ssh_args(name, *options, "-N", "-f")
        timeout = CONNECT_TIMEOUT * 3 + (FIRST_COMMAND_TIMEOUT if command else 0)
        try:
            done = subprocess.run(args, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout)
            rc, stdout, stderr = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired:
            rc, stdout, stderr = 255, None, f"ssh did not finish within {timeout:g} s"
        text = _read(log) + stderr
        state = MasterState(target, is_open=rc != 255, seconds=time.monotonic() - started, log=log,
                            auth_methods=auth_methods_in(text), first_output=stdout if command and rc != 255 else None)
        if rc == 255:
            state.error = last_error(text) or "ssh exited 255"
        with self._lock:
            self.states.setdefault(name, state)
            return self.states[name]

    def open_all(self, names: Iterable[str] | None = None, workers: int = OPEN_WORKERS) -> dict[str, MasterState]:
        """Open the masters of these hosts (default all) concurrently from threads; give each state."""
        names = list(self.targets if names is None else names)
        fan_out(self.open, names, workers=workers, name="ssh-open")
        return {name: self.states[name] for name in names}

    def run(self, name: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run one command on a host over its master (opened if needed); rc 255 means ssh itself failed."""
        self.open(name)
        try:
            return subprocess.run([*self.ssh_args(name), command], check=False, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(command, 255, "", f"no answer within {timeout:g} s")

    def host(self, name: str):
        """A pytest-testinfra Host for this host, whose every command goes over the master."""
        with self._lock:
            if name not in self._hosts:
                self._hosts[name] = testinfra.get_host(
                    f"ssh://{name}", ssh_config=str(self.ssh_config),
                    # naming ControlMaster keeps testinfra from adding its own ControlPersist=60s
                    ssh_extra_args="-o ControlMaster=auto",
                )
            return self._hosts[name]

    def auth_methods(self, name: str) -> tuple[str, ...] | None:
        """The authentication methods sshd offers this host's user, from the master's log or a probe."""
        state = self.open(name)
        if state.auth_methods is not None:
            return state.auth_methods
        if not state.is_open and never_answered(state.error):
            # sshd never spoke to the master: a second connection meets the same wall (a cut network: one more
            # ConnectTimeout in every round of a wait)
            return None
        probe = subprocess.run(
            self.ssh_args(name, "-o", "ControlPath=none", "-o", "PubkeyAuthentication=no",
                          "-o", "PreferredAuthentications=keyboard-interactive,password",
                          "-o", "NumberOfPasswordPrompts=0", "-o", "LogLevel=DEBUG1") + ["true"],
            check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CONNECT_TIMEOUT * 3)
        return auth_methods_in(probe.stderr)

    def forget(self, name: str) -> None:
        """Drop a failed open so that the next open() tries again (an open master is kept)."""
        with self._lock:
            if name in self.states and not self.states[name].is_open:
                del self.states[name]

    def reset(self, name: str) -> None:
        """Stop one host's master and forget it, so that the next command opens a new one (a master whose
        sessions all fail: its connection did not survive what the deploy did to the host)."""
        self.close(name)
        with self._lock:
            self.states.pop(name, None)
            self._hosts.pop(name, None)

    def control_path(self, name: str) -> Path:
        """The control socket of one host's master (ControlPath %n: the inventory hostname)."""
        return self.control_dir / name

    def close(self, name: str) -> None:
        """Ask one host's master to exit, over its control socket (`ssh -O exit` if the socket will not say)."""
        path = self.control_path(name)
        if not path.exists():
            return  # no master was started for it, or it has exited already
        try:
            terminate_master(path)
        except (MuxError, TimeoutError):  # the master answered otherwise, or not in time: let ssh ask it
            subprocess.run(self.ssh_args(name, "-O", "exit"), check=False, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
        except OSError:
            pass  # a socket nobody listens on any more: nothing left to stop

    def close_all(self) -> None:
        """Close every master this pool opened, then remove its control dir."""
        # every host we touched: testinfra's ControlMaster=auto may have opened a master after a failed open()
        opened = sorted(set(self.states) | set(self._hosts))
        # all at once, unlike opening: a close is a few bytes on a local socket and a wait for the master to answer
        fan_out(self.close, opened, workers=max(1, len(opened)), name="ssh-close")
        self.states.clear()
        shutil.rmtree(self.control_dir, ignore_errors=True)


def auth_methods_in(text: str) -> tuple[str, ...] | None:
    """The methods sshd offered, from ssh's debug output or its final `Permission denied (...)`."""
    found = _METHODS.findall(text) or _DENIED.findall(text)
    return tuple(found[0].split(",")) if found else None


def never_answered(error: str | None) -> bool:
    """True when ssh's error says no SSH server answered at all (no TCP connection, the name unknown)."""
    return bool(error) and ("connect to host" in error or "Could not resolve hostname" in error)


def last_error(text: str) -> str | None:
    """The line of ssh's output that says why it failed (not a debug line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("debug")]
    return lines[-1] if lines else None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
