"""What one remote command tells of a host's configuration, and the controls judged from it.

Read-only: sshd's effective settings (`sshd -T`), every authorized_keys file, the unattended-upgrades package
and APT's periodic settings, dockerd's listeners and each container's privilege and mounts. The command runs as
the deploy user with sudo (the bootstrap role grants it); its sections are marked `@@<name>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from plugins.health.probes import fingerprint, key_blob
from plugins.security.findings import Finding, finding

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
ROOT_KEY_ONLY = ("prohibit-password", "without-password", "forced-commands-only", "no")
INSPECT_FORMAT = "{{.Name}}|{{.HostConfig.Privileged}}|{{range .Mounts}}{{.Source}},{{end}}"

FACTS_COMMAND = f"""\
echo @@sshd; sudo -n /usr/sbin/sshd -T 2>&1
echo @@keys; sudo -n sh -c 'for f in /root/.ssh/authorized_keys /root/.ssh/authorized_keys2 \
/home/*/.ssh/authorized_keys /home/*/.ssh/authorized_keys2; do [ -f "$f" ] && echo "file $f" && cat "$f"; done'
echo @@upgrades; dpkg-query -W -f='package ${{Status}}\\n' unattended-upgrades 2>&1; apt-config dump APT::Periodic
echo @@listeners; sudo -n ss -Hltnp 2>&1
echo @@dockerd; ps -o args= -C dockerd; cat /etc/docker/daemon.json 2>/dev/null; echo
echo @@containers; command -v docker >/dev/null && ids=$(sudo -n docker ps -q) && \
[ -n "$ids" ] && sudo -n docker inspect --format '{INSPECT_FORMAT}' $ids
true
"""


def sections(output: str) -> dict[str, str]:
    """Split the command's output into its `@@name` sections."""
    found: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("@@") and line[2:].isidentifier():
            current = line[2:]
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def sshd_settings(text: str) -> dict[str, str]:
    """`sshd -T` output as {keyword: value} (lower-case keywords, as sshd prints them)."""
    settings = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and key.islower() and key not in settings:
            settings[key] = value.strip()
    return settings


def judge_auth(host: str, settings: dict[str, str], offered: Iterable[str] | None, where: str, output: str) -> Finding:
    """ssh-auth: sshd refuses password and keyboard-interactive logins, in its settings and in what it offers."""
    problems = []
    if not settings:
        problems.append("`sudo sshd -T` gave no settings (is the deploy user a sudoer?)")
    for keyword in ("passwordauthentication", "kbdinteractiveauthentication"):
        if settings and settings.get(keyword, "yes") != "no":
            problems.append(f"sshd_config {keyword} is {settings.get(keyword, 'unset (yes)')}, expected no")
    offered = list(offered or [])
    bad = [m for m in offered if m in ("password", "keyboard-interactive")]
    if bad:
        problems.append(f"sshd offers {'/'.join(bad)} (methods: {','.join(offered)})")
    return finding(host, "ssh-auth", problems, f"public key only (sshd offers {','.join(offered) or '?'})",
                   output, where=where)


def judge_root_login(host: str, settings: dict[str, str], where: str, output: str) -> Finding:
    """root-login: root may log in with a key only (PermitRootLogin prohibit-password or stricter)."""
    value = settings.get("permitrootlogin")
    problems = [] if value in ROOT_KEY_ONLY else [
        f"PermitRootLogin is {value or 'unknown'}, expected prohibit-password (a key only) or no"]
    return finding(host, "root-login", problems, f"PermitRootLogin {value}", output, where=where)


def authorized_keys(text: str) -> dict[str, list[str]]:
    """{file: [key blob, …]} from the `file <path>` headed listing of every authorized_keys file."""
    files: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("file /"):
            current = line[5:].strip()
            files[current] = []
        elif current and line.strip() and not line.lstrip().startswith("#"):
            blob = key_blob(line)
            files[current].append(blob or "(unreadable line)")
    return files


def judge_keys(host: str, text: str, declared: Iterable[str], where: str) -> Finding:
    """keys: every authorized_keys file holds only keys the inventory declares (the runner's deploy key)."""
    declared_blobs = {key_blob(line) for line in declared if key_blob(line)}
    problems = []
    if not declared_blobs:
        problems.append("the inventory declares no key (runner.deploy_key's .pub is missing on this machine)")
    files = authorized_keys(text)
    for path, blobs in files.items():
        extra = [fingerprint(b) for b in blobs if b not in declared_blobs]
        if extra:
            problems.append(f"{path} holds keys the inventory does not declare: {', '.join(extra)}")
    return finding(host, "keys", problems, f"only the declared key in {', '.join(files) or 'no file'}", text,
                   where=where)


def judge_upgrades(host: str, text: str, where: str) -> Finding:
    """upgrades: unattended-upgrades is installed and APT runs it daily (APT::Periodic::Unattended-Upgrade)."""
    problems = []
    if "package install ok installed" not in text:
        problems.append("package unattended-upgrades is not installed")
    periodic = dict(re.findall(r'^APT::Periodic::([\w-]+) "([^"]*)";', text, re.MULTILINE))
    for key in ("Update-Package-Lists", "Unattended-Upgrade"):
        if periodic.get(key, "0") in ("0", ""):
            problems.append(f"APT::Periodic::{key} is {periodic.get(key, 'unset')}, expected 1 (apt.conf.d/20auto-upgrades)")
    return finding(host, "upgrades", problems, "unattended-upgrades installed and enabled daily", text, where=where)


def containers(text: str) -> list[tuple[str, bool, list[str]]]:
    """[(container name, privileged, [mount sources])] from the `docker inspect` listing."""
    found = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) == 3:
            found.append((parts[0].lstrip("/"), parts[1] == "true", [s for s in parts[2].split(",") if s]))
    return found


def judge_docker(host: str, facts: dict[str, str], socket_allowed: Iterable[str], where: str) -> Finding:
    """docker: no TCP listener of dockerd, no privileged container, the socket mounted only where declared."""
    problems = []
    listeners = [line for line in facts.get("listeners", "").splitlines() if '"dockerd"' in line]
    if listeners:
        ports = ", ".join(line.split()[3] for line in listeners if len(line.split()) > 3)
        problems.append(f"dockerd listens on TCP: {ports}")
    if "tcp://" in facts.get("dockerd", ""):
        problems.append("dockerd is configured with a tcp:// host (command line or /etc/docker/daemon.json)")
    allowed = set(socket_allowed)
    for name, privileged, mounts in containers(facts.get("containers", "")):
        if privileged:
            problems.append(f"container {name} is privileged")
        if any(source in DOCKER_SOCKETS for source in mounts) and name not in allowed:
            problems.append(f"container {name} mounts the Docker socket, which its declaration does not")
    output = "\n".join(f"@@{k}\n{facts.get(k, '')}" for k in ("listeners", "dockerd", "containers"))
    return finding(host, "docker", problems, "no TCP socket, no privileged container, no undeclared socket mount",
                   output, where=where)
