"""Asking dockerd for its containers, once per host for docker_running and every container_running.

The Engine API on dockerd's socket where it can: through perl's core (on every Debian host: perl-base is
Essential), else through curl. The `docker` CLI, a Go binary, costs the host several times the CPU, and curl's start
(tens of shared libraries) several times perl's (docs/reference/figures.md). The CLI answers where neither is there,
DOCKER_HOST points elsewhere, or the socket does not answer, and its errors say what is wrong.

The container list carries no restart policy: only when some container is not running, the probe also reads
those containers' policies (the Engine API's inspect, or `docker inspect`). A container stopped with policy
"no" is down for good: nothing restarts it, so a wait for it ends at once. Any other policy is still waited
for: a dockerd that just booted lists as exited the containers it is about to restart.
"""

from __future__ import annotations

import json
import re

PROBE_TIMEOUT = 20  # seconds dockerd may take to list its containers (a wedged dockerd must not hang the suite)
DOCKER_SOCKET = "/var/run/docker.sock"
DOCKER_API_MARK = "docker-api"
DOCKER_PS_FORMAT = "{{.Names}}\t{{.State}}\t{{.Status}}"
POLICIES_MARK = "docker-restart-policies"
NOT_RUNNING = ("exited", "created", "dead")  # the states in which only a restart policy (or a person) starts it
NO_RESTART = ("no", "")  # "" is what an older dockerd says for the default, "no"
_STOPPED_FILTER = "%7B%22status%22%3A%5B%22exited%22%2C%22created%22%2C%22dead%22%5D%7D"  # {"status":[...NOT_RUNNING]}
# One GET on a unix socket with perl's built-ins alone: the Socket module would cost the host more than the request
# (AF_UNIX and SOCK_STREAM are 1 on Linux). Exits as curl --fail does: 28 no answer in time, 7 no connection,
# 22 an HTTP error. Arguments: the timeout, the socket, the path. No single quote: it is quoted for the shell.
_PERL_GET = (
    r'$SIG{ALRM} = sub { print STDERR "no answer\n"; exit 28 }; alarm $ARGV[0]; '
    r'socket(S, 1, 1, 0) && connect(S, pack("S a108", 1, $ARGV[1])) or do { print STDERR "$ARGV[1]: $!\n"; exit 7 }; '
    r'syswrite S, "GET $ARGV[2] HTTP/1.0\r\nHost: docker\r\n\r\n"; local $/; '
    r'my ($head, $body) = split /\r\n\r\n/, <S>, 2; '
    r'$head =~ m{^HTTP/\S+ 2\d\d } or do { print STDERR ((split /\r\n/, $head)[0], "\n"); exit 22 }; print $body'
)


def docker_ps_command(socket: str = DOCKER_SOCKET, timeout: int | None = None) -> str:
    """The containers of a host for docker_running and every container_running (shared: run once).

    Asks dockerd's socket with perl, or curl, where it can; falls back to `docker ps` when neither is there,
    DOCKER_HOST points elsewhere, or the socket does not answer. A wedged dockerd is cut at the timeout either
    way (exit 124; PROBE_TIMEOUT unless given). When the list shows a container not running, the restart
    policies of the containers not running follow it, after POLICIES_MARK (the list does not carry them). A
    probe's body (plugins/health/remote.py): it ends with `return`; alone, run it through `as_script`.
    """
    timeout = PROBE_TIMEOUT if timeout is None else timeout
    get = (f"docker_api_get() {{ if command -v perl >/dev/null 2>&1; then perl -e '{_PERL_GET}' {timeout} {socket} "
           f'"$1"; else curl -sS --fail --max-time {timeout} --unix-socket {socket} "http://docker$1"; fi; }}; ')
    api = "docker_api_get '/containers"
    # a quick test on the list (a container's name may match it too): the filtered list decides which are read
    api_states = "|".join(f"*'\"{state}\"'*" for state in NOT_RUNNING)
    cli_states = "|".join(f"*'\t{state}\t'*" for state in NOT_RUNNING)
    return (
        'if [ -z "$DOCKER_HOST" ] && { command -v perl || command -v curl; } >/dev/null 2>&1; then '
        f"{get}out=$({api}/json?all=1' 2>&1); rc=$?; "
        f"if [ $rc = 0 ]; then printf '{DOCKER_API_MARK}\\n%s\\n' \"$out\"; "
        f'case "$out" in {api_states}) echo {POLICIES_MARK}; '
        f"for id in $({api}/json?all=1&filters={_STOPPED_FILTER}' 2>/dev/null "
        """| grep -o '"Id": *"[0-9a-f]*"' | cut -d'"' -f4); do """
        f"""{api}'/"$id"/json 2>/dev/null; echo; done;; esac; return 0; fi; """
        f"if [ $rc = 28 ]; then echo 'no answer on {socket}'; return 124; fi; "
        "fi; "
        f"out=$(timeout {timeout} docker ps -a --no-trunc --format '{DOCKER_PS_FORMAT}' 2>&1); rc=$?; "
        """printf '%s\\n' "$out"; [ $rc = 0 ] || return $rc; """
        f'case "$out" in {cli_states}) '
        f"ids=$(timeout {timeout} docker ps -aq --no-trunc "
        + " ".join(f"--filter status={state}" for state in NOT_RUNNING) + " 2>/dev/null); "
        f'[ -n "$ids" ] && echo {POLICIES_MARK} && '
        f"timeout {timeout} docker inspect --format '{{{{.Name}}}}\t{{{{.HostConfig.RestartPolicy.Name}}}}' "
        "$ids 2>/dev/null;; esac; return 0"
    )


def docker_containers(out: str) -> dict[str, tuple[str, str]]:
    """{name: (state, status)} from the probe's output: the Engine API's JSON or `docker ps` rows.

    Raises ValueError when the API's answer is not the JSON list it documents.
    """
    listing = _sections(out)[0]
    if listing.startswith(DOCKER_API_MARK + "\n"):
        listed = json.loads(listing[len(DOCKER_API_MARK) + 1:])
        if not isinstance(listed, list):
            raise ValueError(f"expected a JSON list of containers, got {type(listed).__name__}")
        # Names holds "/web", plus "/other/alias" entries for legacy links: only the container's own names
        return {name[1:]: (str(c.get("State", "")), str(c.get("Status", "")))
                for c in listed for name in c.get("Names") or [] if name.count("/") == 1}
    rows = (line.split("\t") for line in listing.splitlines())
    return {cols[0]: (cols[1], cols[2]) for cols in rows if len(cols) >= 3}


def restart_policies(out: str) -> dict[str, str]:
    """{name: restart policy} of the containers not running, from the probe's output (none when all run).

    Reads the Engine API's inspect answers (one JSON object a line) or `docker inspect` rows (/name, tab,
    policy); a line it cannot read leaves that container out: not knowing its policy means waiting for it.
    """
    policies = {}
    for line in _sections(out)[1].splitlines():
        if line.startswith("{"):
            try:
                found = json.loads(line)
                name, policy = found["Name"], found["HostConfig"]["RestartPolicy"]["Name"]
            except (ValueError, KeyError, TypeError):
                continue
        elif line.count("\t") == 1:
            name, policy = line.split("\t")
        else:
            continue
        if isinstance(name, str) and isinstance(policy, str):
            policies[name.removeprefix("/")] = policy
    return policies


def down_for_good(state: str, policy: str | None) -> bool:
    """True when a container in this state with this restart policy comes back only if a person starts it.

    An unknown policy (None) is not down for good, nor is any policy but "no": after a host boots, dockerd
    lists the containers it is about to restart as exited.
    """
    return state in NOT_RUNNING and policy in NO_RESTART


def _sections(out: str) -> tuple[str, str]:
    """The probe's output split at the POLICIES_MARK line: (the container list, the policies; '' when none)."""
    parts = re.split(f"^{POLICIES_MARK}$", out, maxsplit=1, flags=re.MULTILINE)
    return parts[0], parts[1] if len(parts) > 1 else ""


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
