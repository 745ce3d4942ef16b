"""The remote probes: each is a shell command whose output decides a check, and the judge that reads it.

Every probe is READ-ONLY. The probes of one host run as ONE remote command (plugins/health/remote.py).
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plugins.health.dockerd import docker_containers, docker_problem, docker_ps_command, down_for_good, restart_policies
from plugins.health.results import FAIL, PASS, SKIP, CheckResult, result, where

if TYPE_CHECKING:
    from plugins.inventory import Host


@dataclass(frozen=True)
class Probe:
    """A remote check: the command whose output decides it (a shell function's body: plugins/health/remote.py), and
    the judge reading that output."""

    check: str
    subject: str | None
    command: str
    judge: Callable[[Host, int, str], CheckResult]


def rsync_probe() -> Probe:
    """rsync is on the deploy user's PATH (Ansible's synchronize runs it on the target)."""

    def judge(host, rc: int, out: str) -> CheckResult:
        if rc == 0:
            return result(host, "rsync_installed", PASS, f"{where(host)}: rsync at {out.strip().splitlines()[-1]}")
        return result(host, "rsync_installed", FAIL,
                      f"{where(host)}: rsync is not installed (`command -v rsync` found nothing); Ansible's "
                      "synchronize needs it on the target (incident #11; the bootstrap role installs it)")

    return Probe("rsync_installed", None, "command -v rsync", judge)


def docker_probe() -> Probe:
    """dockerd answers the deploy user (Engine API on its socket, or `docker ps`)."""

    def judge(host, rc: int, out: str) -> CheckResult:
        if rc != 0:
            return result(host, "docker_running", FAIL, f"{where(host)}: {docker_problem(rc, out)}")
        try:
            count = len(docker_containers(out))
        except ValueError as exc:
            return result(host, "docker_running", FAIL, f"{where(host)}: dockerd gave an unreadable container "
                                                        f"list ({exc}); `docker ps -a`")
        return result(host, "docker_running", PASS, f"{where(host)}: dockerd answers ({count} containers)")

    return Probe("docker_running", None, docker_ps_command(), judge)


def container_probe(name: str) -> Probe:
    """The container exists, is running, and is healthy if it has a healthcheck."""

    def judge(host, rc: int, out: str) -> CheckResult:
        if rc != 0:
            return result(host, "container_running", SKIP,
                          f"not checked: {docker_problem(rc, out)} on {where(host)}", name)
        try:
            rows = docker_containers(out)
        except ValueError as exc:
            return result(host, "container_running", SKIP,
                          f"not checked: dockerd gave an unreadable container list on {where(host)} ({exc})", name)
        if name not in rows:
            present = ", ".join(sorted(rows)) or "none"
            return result(host, "container_running", FAIL,
                          f"{where(host)}: container {name} does not exist; containers there: {present} "
                          "(inventory: containers)", name)
        state, status = rows[name][0], rows[name][1]
        policy = restart_policies(out).get(name) if state != "running" else None
        if down_for_good(state, policy):
            return result(host, "container_running", FAIL,
                          f"{where(host)}: container {name} is {state} ({status}) and its restart policy is "
                          f"{policy or 'no'}: nothing starts it again; expected running (`docker logs {name}`)",
                          name, final=True)
        if state != "running":
            return result(host, "container_running", FAIL,
                          f"{where(host)}: container {name} is {state} ({status}); expected running "
                          f"(`docker logs {name}`)", name)
        if "(unhealthy)" in status or "(health: starting)" in status:
            return result(host, "container_running", FAIL,
                          f"{where(host)}: container {name} is running but not healthy ({status}); "
                          f"`docker inspect --format '{{{{json .State.Health}}}}' {name}`", name)
        health = "healthy" if "(healthy)" in status else "no healthcheck"
        return result(host, "container_running", PASS, f"{where(host)}: container {name} running ({health})", name)

    return Probe("container_running", name, docker_ps_command(), judge)


def packages_command(names: Iterable[str]) -> str:
    """One dpkg-query for all of a host's packages (shared by their probes)."""
    quoted = " ".join(shlex.quote(n) for n in names)
    return f"dpkg-query -W -f='${{Package}}\\t${{Status}}\\t${{Version}}\\n' -- {quoted}"


def package_probe(name: str, all_names: Iterable[str] | None = None) -> Probe:
    """The Debian package is installed (dpkg status `install ok installed`)."""

    def judge(host, rc: int, out: str) -> CheckResult:
        for line in out.splitlines():
            cols = line.split("\t")
            if len(cols) == 3 and cols[0] == name.split(":")[0]:
                if cols[1].endswith(" installed"):
                    return result(host, "package_installed", PASS, f"{where(host)}: {name} {cols[2]} installed", name)
                return result(host, "package_installed", FAIL,
                              f"{where(host)}: package {name} is not installed (dpkg status: {cols[1]}); "
                              "expected installed (inventory: packages)", name)
        if rc == 127 or "command not found" in out:
            return result(host, "package_installed", FAIL,
                          f"{where(host)}: cannot check package {name}: no dpkg-query (not a Debian host?)", name)
        return result(host, "package_installed", FAIL,
                      f"{where(host)}: package {name} is not installed (dpkg-query knows no such package); "
                      "expected installed (inventory: packages)", name)

    return Probe("package_installed", name, packages_command(all_names or [name]), judge)


def runner_key_probe(user: str, public_key_file: str | Path) -> Probe:
    """The runner's public key (deploy_key + .pub) is in ~user/.ssh/authorized_keys (incident #9)."""
    wanted = key_blob(_read(public_key_file))
    # $HOME when we are that user: getent goes through NSS (systemd-userdb), costly CPU on a lab host
    command = (f'if [ "$USER" = {shlex.quote(user)} ]; then h=$HOME; '
               f"else h=$(getent passwd {shlex.quote(user)} | cut -d: -f6); fi; "
               # the shell's own read: `cat` would be a fork and an exec on the host
               'echo "file $h/.ssh/authorized_keys" && while IFS= read -r line || [ -n "$line" ]; '
               'do printf "%s\\n" "$line"; done < "$h/.ssh/authorized_keys"')

    def judge(host, rc: int, out: str) -> CheckResult:
        if wanted is None:
            return result(host, "runner_key_authorized", FAIL,
                          f"cannot read the runner's public key {public_key_file} (inventory: runner.deploy_key + .pub)")
        lines = out.splitlines()
        path = lines[0][5:] if lines and lines[0].startswith("file ") else f"~{user}/.ssh/authorized_keys"
        keys = [blob for blob in map(key_blob, lines[1:]) if blob]
        label = f"runner key {fingerprint(wanted)} ({public_key_file})"
        if wanted in keys:
            return result(host, "runner_key_authorized", PASS, f"{where(host)}: {label} is in {path}")
        found = f"{len(keys)} other key(s) there" if rc == 0 else "cannot read it: " + " ".join(lines[1:])[:160]
        return result(host, "runner_key_authorized", FAIL,
                      f"{where(host)}: {label} is not in {path} ({found}); the bootstrap role installs it (incident #9)")

    return Probe("runner_key_authorized", None, command, judge)


def key_blob(line: str) -> str | None:
    """The base64 key of an authorized_keys or .pub line (options and comment ignored), or None."""
    for index, word in enumerate(line.split()):
        if word.startswith(("ssh-", "ecdsa-", "sk-")) and index + 1 < len(line.split()):
            return line.split()[index + 1]
    return None


def fingerprint(blob: str) -> str:
    """OpenSSH's SHA256 fingerprint of a base64 key blob (named in messages instead of the key)."""
    try:
        digest = hashlib.sha256(base64.b64decode(blob)).digest()
    except ValueError:
        return "(unreadable key)"
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _read(path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
