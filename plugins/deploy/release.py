"""What a successful deploy released, recorded where a later rollback finds it: next to the run's result and on
every host it deployed (a file the next run's snapshot then contains).

A record holds, per host, the checks the release was proven healthy with, resolved from its inventory: the
host's (check, subject) pairs of the registry, its containers, its services' HTTP checks (url, accepted codes,
warm-up codes, deadlines) and its functional probes; with the run id, the commit and the inventory's digest.
A rollback reads the record back from each host it restored (plugins/deploy/finish/judgement.py): the
release it brought back is judged by its own checks, never by those of the release that failed. The host's
copy is what makes that work for a runner that lost reports/ (a new CI machine, `git clean`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plugins.health.registry import host_wanted, label, service_containers
from plugins.health.waiting import HOST_DEADLINE, RECHECK, ssh_pool
from plugins.shared.backoff import poll
from plugins.shared.fanout import fan_out

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory

RECORD_VERSION = 1
RECORD_DIR = "/var/lib/homelab-suite"
RECORD_PATH = f"{RECORD_DIR}/release.json"
RECORD_NAME = "release.json"  # next to the run's result.json
NO_RECORD = "no-release-record"  # what the read command prints when the host has none


def inventory_digest(inventory: Inventory) -> str | None:
    """sha256 of the inventory file's bytes (None when it was not loaded from a file)."""
    try:
        return "sha256:" + hashlib.sha256(Path(inventory.source).read_bytes()).hexdigest()
    except OSError:
        return None


def host_checks(host: Host) -> dict[str, Any]:
    """The checks one host was deployed with, as plain data: registry pairs, containers, services, probes."""
    containers = service_containers(host)
    return {
        "vmid": host.vmid,
        "checks": [[name, None if subject is None else label(subject)] for name, subject in host_wanted(host)],
        "containers": list(host.containers),
        "services": [{**service.model_dump(mode="json"), "container": containers.get(service.name)}
                     for service in host.endpoints],
        "probes": [probe.model_dump(mode="json") for probe in host.probes],
    }


def release_record(inventory: Inventory, run_id: str, commit: str | None, hosts: list[Host]) -> dict[str, Any]:
    """The record of a release: run id, commit, inventory and its digest, and each host's checks."""
    return {
        "version": RECORD_VERSION,
        "release": run_id,
        "commit": commit,
        "environment": inventory.environment,
        "inventory": str(inventory.source),
        "inventory_digest": inventory_digest(inventory),
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hosts": {host.hostname: host_checks(host) for host in hosts},
    }


def host_record(record: dict[str, Any], hostname: str) -> dict[str, Any]:
    """The part of a record one host keeps: the release's header and only its own checks."""
    return {**{k: v for k, v in record.items() if k != "hosts"}, "hosts": {hostname: record["hosts"][hostname]}}


def write_command(text: str) -> str:
    """A shell command writing text to RECORD_PATH as root, whole or not at all (a reader never sees half)."""
    blob = base64.b64encode(text.encode()).decode()
    partial = f"{RECORD_PATH}.partial"
    return (f"sudo -n mkdir -p {RECORD_DIR} && printf %s {blob} | base64 -d | sudo -n tee {partial} >/dev/null"
            f" && sudo -n chmod 0644 {partial} && sudo -n mv {partial} {RECORD_PATH}")


def read_command() -> str:
    """A shell command printing the host's record, or NO_RECORD when it has none (exit 0 either way)."""
    path = shlex.quote(RECORD_PATH)
    return f"if [ -e {path} ]; then cat {path}; else echo {NO_RECORD}; fi"


def record_on_hosts(inventory: Inventory, record: dict[str, Any]) -> dict[str, str]:
    """Write each host's part of the record on it (one SSH command each, side by side); {hostname: error}."""
    hosts = [inventory.host(name) for name in record["hosts"]]
    if not hosts:
        return {}
    with ssh_pool(inventory, hosts) as pool:
        def write(host: Host) -> str:
            text = json.dumps(host_record(record, host.hostname), indent=1)
            try:
                done = pool.run(host.hostname, write_command(text), timeout=30)
            except (OSError, subprocess.SubprocessError) as exc:
                return f"{type(exc).__name__}: {exc}"
            return "" if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")[:300]

        errors = fan_out(write, hosts, workers=8, name="release-record")
    return {host.hostname: error for host, error in zip(hosts, errors, strict=True) if error}


def parse_host_record(text: str, hostname: str) -> dict[str, Any] | None:
    """The release header and this host's checks from the file's text; None for NO_RECORD; ValueError if unusable."""
    if text.strip() == NO_RECORD:
        return None
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("version") != RECORD_VERSION:
        raise ValueError(f"not a version {RECORD_VERSION} release record")
    entry = (document.get("hosts") or {}).get(hostname)
    if not isinstance(entry, dict):
        raise ValueError(f"the record has no checks for {hostname}")  # noqa: TRY004 - bad file content
    return {**{k: v for k, v in document.items() if k != "hosts"}, "host": entry}


def read_records(inventory: Inventory, hosts: list[Host], deadline: float = HOST_DEADLINE,
                 on_answer: Callable[[str], None] | None = None) -> dict[str, dict[str, Any] | None | str]:
    """Each host's release record, read as soon as it answers SSH: {hostname: record, None (it has none), or
    the text of why it could not be read}. A host that was just rolled back gets until `deadline` to boot;
    on_answer gets each host's name as it answers."""
    found: dict[str, dict[str, Any] | None | str] = {}
    if not hosts:
        return found
    with ssh_pool(inventory, hosts) as pool:
        def read(host: Host) -> tuple[bool, dict[str, Any] | None | str]:
            pool.forget(host.hostname)  # a failed open (the host still booting) is tried again
            try:
                done = pool.run(host.hostname, read_command(), timeout=30)
            except (OSError, subprocess.SubprocessError) as exc:
                return False, f"no SSH answer: {type(exc).__name__}: {exc}"
            if done.returncode == 255:
                state = pool.states.get(host.hostname)
                return False, f"no SSH answer: {(state and state.error) or done.stderr.strip()[:200]}"
            if on_answer:
                on_answer(host.hostname)
            if done.returncode != 0:
                return True, f"reading {RECORD_PATH} failed (exit {done.returncode}): {done.stderr.strip()[:200]}"
            try:
                return True, parse_host_record(done.stdout, host.hostname)
            except ValueError as exc:
                return True, f"{RECORD_PATH} is unusable: {exc}"

        pending = list(hosts)

        def attempt(remaining: float) -> list[Host]:
            nonlocal pending
            answers = fan_out(read, pending, workers=8, name="release-read")
            for host, (answered, value) in zip(pending, answers, strict=True):
                found[host.hostname] = value
            pending = [h for h, (answered, _) in zip(pending, answers, strict=True) if not answered]
            return pending

        poll(attempt, lambda still: not still, deadline=deadline, backoff=RECHECK)
    return found


def write_local(run_dir: Path, record: dict[str, Any]) -> Path:
    """Write the record next to the run's result.json; give its path."""
    path = run_dir / RECORD_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(record, indent=2), encoding="utf-8")
    partial.replace(path)
    return path
