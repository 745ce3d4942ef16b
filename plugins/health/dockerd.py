"""Asking dockerd for its containers, once per host for docker_running and every container_running.

The Engine API on dockerd's socket, through curl, where it can: the `docker` CLI, a Go binary, costs the
host several times the CPU (docs/reference/figures.md). The CLI answers where curl is absent, DOCKER_HOST
points elsewhere, or the socket does not answer, and its errors say what is wrong.
"""

from __future__ import annotations

import json

PROBE_TIMEOUT = 20  # seconds dockerd may take to list its containers (a wedged dockerd must not hang the suite)
DOCKER_SOCKET = "/var/run/docker.sock"
DOCKER_API_MARK = "docker-api"
DOCKER_PS_FORMAT = "{{.Names}}\t{{.State}}\t{{.Status}}"


def docker_ps_command() -> str:
    """The containers of a host for docker_running and every container_running (shared: run once).

    Asks dockerd's socket with curl where it can; falls back to `docker ps` when curl is absent,
    DOCKER_HOST points elsewhere, or the socket does not answer. A wedged dockerd is cut at
    PROBE_TIMEOUT either way (exit 124).
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
