"""The host checks, written once: called by suites/health, the deploy's health stage and the rollback's wait.

Every check is READ-ONLY. A check on one host gives a CheckResult whose message is a diagnosis
(host, what was expected, what was found, where to look). `check_host` runs all the remote checks of
one host as ONE command over its SSH master; `check_hosts` does every host concurrently from threads
(LAB-NOTES: handshakes are CPU-bound, per-session costs add up; one process, threads, one session per host).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shlex
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import testinfra

from plugins.self_host import is_this_machine

PASS, FAIL, SKIP = "pass", "fail", "skip"
SSH_CHECKS = ("ssh_reachable", "sshd_refuses_passwords", "runner_key_authorized")
REMOTE_CHECKS = ("rsync_installed", "docker_running", "container_running", "package_installed")
CHECKS = SSH_CHECKS + REMOTE_CHECKS
PROBE_TIMEOUT = 20  # seconds one remote probe may take (a wedged dockerd must not hang the suite)
HOST_WORKERS = 16
PASSWORD_METHODS = ("password", "keyboard-interactive")


DOCKER_SOCKET = "/var/run/docker.sock"
DOCKER_API_MARK = "docker-api"
DOCKER_PS_FORMAT = "{{.Names}}\t{{.State}}\t{{.Status}}"


def docker_ps_command() -> str:
    """The containers of a host for docker_running and every container_running (shared: run once).

    Asks dockerd's socket with curl where it can (~17 ms of the host's CPU against ~47 ms for the
    `docker` CLI, a Go binary: at 50 hosts that is the largest part of the checks); falls back to
    `docker ps`, whose errors say what is wrong, when curl is absent, DOCKER_HOST points elsewhere,
    or the socket does not answer. A wedged dockerd is cut at PROBE_TIMEOUT either way (exit 124).
    """
    return (
        'if [ -z "$DOCKER_HOST" ] && command -v curl >/dev/null 2>&1; then '
        f"out=$(curl -sS --fail --max-time {PROBE_TIMEOUT} --unix-socket {DOCKER_SOCKET} "
        "'http://docker/containers/json?all=1' 2>&1); rc=$?; "
        f"if [ $rc = 0 ]; then printf '{DOCKER_API_MARK}\\n%s\\n' \"$out\"; exit 0; fi; "
        f"if [ $rc = 28 ]; then echo 'no answer on {DOCKER_SOCKET}'; exit 124; fi; "
        "fi; "
        f"timeout {PROBE_TIMEOUT} docker ps -a --no-trunc --format '{DOCKER_PS_FORMAT}'"
    )


def docker_containers(out: str) -> dict[str, tuple[str, str]]:
    """{name: (state, status)} from the probe's output: the Engine API's JSON or `docker ps` rows.

    Raises ValueError when the API's answer is not the JSON list it documents.
    """
    if out.startswith(DOCKER_API_MARK + "\n"):
        listed = json.loads(out[len(DOCKER_API_MARK) + 1:])
        if not isinstance(listed, list):
            raise ValueError(f"expected a JSON list of containers, got {type(listed).__name__}")
        # Names holds "/web", plus "/other/alias" entries for legacy links: only the container's own names
        return {name[1:]: (str(c.get("State", "")), str(c.get("Status", "")))
                for c in listed for name in c.get("Names") or [] if name.count("/") == 1}
    rows = (line.split("\t") for line in out.splitlines())
    return {cols[0]: (cols[1], cols[2]) for cols in rows if len(cols) >= 3}


@dataclass(frozen=True)
class CheckResult:
    """One check on one host (subject: the container or package name, if any): pass/fail/skip and why."""

    host: str
    check: str
    outcome: str
    message: str
    subject: str | None = None

    @property
    def passed(self) -> bool:
        """True when the check passed."""
        return self.outcome == PASS

    def __bool__(self) -> bool:
        """A result is true when the check passed."""
        return self.passed


@dataclass(frozen=True)
class Probe:
    """A remote check: the command whose output decides it, and the judge reading that output."""

    check: str
    subject: str | None
    command: str
    judge: Callable[[object, int, str], CheckResult]


def where(host) -> str:
    """Name a host in a message: `app-demo (198.18.0.250)`."""
    return f"{host.hostname} ({host.ip})"


def result(host, check: str, outcome: str, message: str, subject: str | None = None) -> CheckResult:
    """Build a CheckResult for an inventory host."""
    return CheckResult(host.hostname, check, outcome, message, subject)


# --- checks answered by the connection itself -------------------------------------------------------------


def ssh_reachable(host, pool) -> CheckResult:
    """SSH to the host as the deploy user with the deploy key works (its master is open)."""
    state = pool.open(host.hostname)
    target = state.target
    if state.is_open:
        return result(host, "ssh_reachable", PASS, f"ssh {target.user}@{host.ip} with {target.identity_file}: ok")
    if state.auth_refused:
        hint = "the runner's key is not authorized for this user (incident #9; inventory: runner.deploy_key)"
    elif "Host key verification failed" in (state.error or ""):
        hint = (f"its host key differs from the one pinned in {pool.known_hosts}; if the container was "
                f"re-created, forget the old key: ssh-keygen -R {host.ip} -f {pool.known_hosts}")
    else:
        hint = "is the host up and sshd listening?"
    return result(host, "ssh_reachable", FAIL,
                  f"{where(host)}: ssh as {target.user} with {target.identity_file} failed: {state.error}; {hint}")


def sshd_refuses_passwords(host, pool) -> CheckResult:
    """sshd offers no password authentication to the deploy user (methods as the server announces them)."""
    methods = pool.auth_methods(host.hostname)
    if methods is None:
        return result(host, "sshd_refuses_passwords", FAIL,
                      f"{where(host)}: sshd did not announce its authentication methods (ssh: "
                      f"{pool.open(host.hostname).error or 'no answer'})")
    offered = [m for m in methods if m in PASSWORD_METHODS]
    if offered:
        return result(host, "sshd_refuses_passwords", FAIL,
                      f"{where(host)}: sshd offers {'/'.join(offered)} authentication (methods: {','.join(methods)}); "
                      "expected publickey only (sshd_config: PasswordAuthentication no, KbdInteractiveAuthentication no)")
    return result(host, "sshd_refuses_passwords", PASS, f"{where(host)}: sshd offers {','.join(methods)} only")


# --- remote probes ------------------------------------------------------------------------------------------


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


def docker_problem(rc: int, out: str) -> str:
    """Say why `docker ps` failed: not installed, daemon down, no permission, timeout."""
    text = " ".join(out.split())
    if rc == 127 or "command not found" in text:
        return "docker is not installed (no `docker` on PATH)"
    if rc == 124:
        return f"docker is not answering: no container list within {PROBE_TIMEOUT} s"
    if "permission denied" in text.lower():
        return f"the deploy user may not use docker (permission denied on {DOCKER_SOCKET}; add it to group docker)"
    if "Cannot connect to the Docker daemon" in text or "Is the docker daemon running" in text:
        return "docker is not running (`docker ps`: Cannot connect to the Docker daemon); `systemctl status docker`"
    return f"`docker ps` failed (exit {rc}): {text[:200]}"


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
    # $HOME when we are that user: getent goes through NSS (systemd-userdb), ~200 ms of CPU on a lab host
    command = (f'if [ "$USER" = {shlex.quote(user)} ]; then h=$HOME; '
               f"else h=$(getent passwd {shlex.quote(user)} | cut -d: -f6); fi; "
               'echo "file $h/.ssh/authorized_keys" && cat -- "$h/.ssh/authorized_keys"')

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


# --- running probes -------------------------------------------------------------------------------------------


def probe_script(commands: list[str], nonce: str) -> str:
    """One shell script running each command in a subshell, its output framed by markers with its exit code."""
    parts = []
    for index, command in enumerate(commands):
        # a subshell is a fork, not an exec: per-command isolation at almost no cost on the host
        parts.append(f"echo '@@{nonce} begin {index}'; ( {command}\n) </dev/null 2>&1; "
                     f"rc=$?; echo; echo \"@@{nonce} end {index} $rc\"")
    return "\n".join(parts)


def parse_script_output(text: str, count: int, nonce: str) -> list[tuple[int, str]]:
    """Split the script's output back into (exit code, output) per command; missing ones get 255."""
    found: dict[int, tuple[int, str]] = {}
    pattern = re.compile(rf"@@{nonce} begin (\d+)\n(.*?)\n?\n@@{nonce} end \1 (\d+)", re.DOTALL)
    for match in pattern.finditer(text):
        found[int(match.group(1))] = (int(match.group(3)), match.group(2))
    return [found.get(index, (255, "no output from the host")) for index in range(count)]


def run_probes(host, conn, probes: list[Probe], first_run: Callable[[str], str | None] | None = None
               ) -> list[CheckResult]:
    """Run these probes on one host in ONE remote command (identical commands run once); judge each.

    first_run, if given, may run the script itself (e.g. as the SSH master's first session) and give its
    stdout, or None to let conn run it.
    """
    commands = list(dict.fromkeys(p.command for p in probes))
    if not commands:
        return []
    nonce = secrets.token_hex(6)
    script = probe_script(commands, nonce)
    try:
        stdout = first_run(script) if first_run else None
        if stdout is None:
            stdout = conn().run(script).stdout if callable(conn) else conn.run(script).stdout
        outcomes = parse_script_output(stdout, len(commands), nonce)
    except RuntimeError as exc:  # testinfra raises when ssh itself fails (exit 255)
        error = getattr(exc.args[0], "stderr", "") if exc.args else ""
        text = " ".join(str(error).split())[-200:] or "ssh failed"
        return [result(host, p.check, FAIL, f"{where(host)}: cannot run the check over ssh: {text}", p.subject)
                for p in probes]
    by_command = dict(zip(commands, outcomes, strict=True))
    return [p.judge(host, *by_command[p.command]) for p in probes]


def rsync_installed(host, conn) -> CheckResult:
    """rsync is installed on the host (conn: a testinfra Host, e.g. SshPool.host(name))."""
    return run_probes(host, conn, [rsync_probe()])[0]


def docker_running(host, conn) -> CheckResult:
    """dockerd is running and answers the deploy user."""
    return run_probes(host, conn, [docker_probe()])[0]


def container_running(host, conn, name: str) -> CheckResult:
    """The container is running (and healthy if it has a healthcheck)."""
    return run_probes(host, conn, [container_probe(name)])[0]


def package_installed(host, conn, name: str) -> CheckResult:
    """The Debian package is installed."""
    return run_probes(host, conn, [package_probe(name)])[0]


def runner_key_authorized(host, conn, user: str, public_key_file: str | Path) -> CheckResult:
    """The runner's public key is in ~user/.ssh/authorized_keys."""
    return run_probes(host, conn, [runner_key_probe(user, public_key_file)])[0]


# --- one host, every host --------------------------------------------------------------------------------------


def self_check_reason(inventory, host) -> str | None:
    """Why SSH checks make no sense on this host (it is the runner or this machine), or None (incident #13)."""
    if inventory.runner.host == host.hostname:
        return (f"{host.hostname} is the runner the suite runs on (inventory: runner.host): "
                "no SSH check of itself (incident #13)")
    if is_this_machine(host):
        return f"{host.hostname} is the machine running the suite: no SSH check of itself (incident #13)"
    return None


def host_probes(host, wanted: Iterable[tuple[str, str | None]], user: str, public_key_file) -> list[Probe]:
    """The probes for the wanted (check, subject) pairs of a host; packages share one dpkg-query."""
    wanted = list(wanted)
    packages = [s for c, s in wanted if c == "package_installed"]
    makers = {
        "rsync_installed": lambda s: rsync_probe(),
        "docker_running": lambda s: docker_probe(),
        "container_running": container_probe,
        "package_installed": lambda s: package_probe(s, packages),
        "runner_key_authorized": lambda s: runner_key_probe(user, public_key_file),
    }
    return [makers[c](s) for c, s in wanted if c in makers]


def check_host(host, pool, wanted: Iterable[tuple[str, str | None]], *, user: str, public_key_file,
               self_reason: str | None = None) -> list[CheckResult]:
    """Run the wanted (check, subject) pairs on one host: its master's first session runs every remote probe."""
    wanted = list(dict.fromkeys(wanted))
    name, local = host.hostname, is_this_machine(host)
    results: list[CheckResult] = []
    if self_reason or local:
        reason = self_reason or f"{name} is the machine running the suite: no SSH check of itself (incident #13)"
        results = [result(host, c, SKIP, reason, s) for c, s in wanted if c in SSH_CHECKS]
        wanted = [(c, s) for c, s in wanted if c not in SSH_CHECKS]
    connection = [(c, s) for c, s in wanted if c in ("ssh_reachable", "sshd_refuses_passwords")]
    probes = host_probes(host, [w for w in wanted if w not in connection], user, public_key_file)
    if local:
        return results + run_probes(host, testinfra.get_host("local://"), probes)

    def first_run(script: str) -> str | None:
        state = pool.open(name, command=script)
        if not state.is_open:
            raise RuntimeError(state.error)
        return state.first_output  # None when the master was already open: conn runs the script

    remote = run_probes(host, lambda: pool.host(name), probes, first_run) if probes else []
    checks_by_name = {"ssh_reachable": ssh_reachable, "sshd_refuses_passwords": sshd_refuses_passwords}
    results += [checks_by_name[c](host, pool) for c, _ in connection]
    state = pool.open(name)
    if state.is_open:
        return results + remote
    for probe in probes:
        if probe.check == "runner_key_authorized" and state.auth_refused:
            # sshd refusing the runner's key IS the answer: the key is not authorized for the deploy user
            results.append(result(host, probe.check, FAIL,
                                  f"{where(host)}: sshd refused the runner key {public_key_file} for {user} "
                                  f"({state.error}); it is not in ~{user}/.ssh/authorized_keys (incident #9)"))
        else:
            results.append(result(host, probe.check, SKIP, f"not checked: ssh to {where(host)} failed ({state.error})",
                                  probe.subject))
    return results


def check_hosts(plan: Iterable[tuple[object, list]], pool, *, user: str, public_key_file,
                self_reasons: dict | None = None,
                workers: int = HOST_WORKERS) -> dict[tuple[str, str, str | None], CheckResult]:
    """Check every (host, [(check, subject)]) of the plan concurrently; give {(hostname, check, subject): result}."""
    plan = list(plan)
    self_reasons = self_reasons or {}

    def one(entry):
        host, wanted = entry
        try:
            return check_host(host, pool, wanted, user=user, public_key_file=public_key_file,
                              self_reason=self_reasons.get(host.hostname))
        except Exception as exc:  # noqa: BLE001 - one host's surprise must not hide the others' results
            return [result(host, c, FAIL, f"{where(host)}: check crashed: {type(exc).__name__}: {exc}", s)
                    for c, s in wanted]

    results: dict[tuple[str, str, str | None], CheckResult] = {}
    if not plan:
        return results
    with ThreadPoolExecutor(max_workers=min(workers, len(plan)), thread_name_prefix="check") as executor:
        for host_results in executor.map(one, plan):
            for item in host_results:
                results[(item.host, item.check, item.subject)] = item
    return results


def _read(path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
