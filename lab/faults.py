"""Faults a test injects into the lab, each undone by the same object (on `undo()` or leaving its `with`).

    with LabFaults() as faults:
        faults.api_error("POST", SNAPSHOT, vmid=250, status=500, message="snapshot failed: ...")
        faults.cut_network(250)
        ...                                   # everything is restored here, even when the test failed

The emulator's faults go through STATE_DIR/faults.json (lab/pve/faults.py); the others act on the
lab's own pieces: a host (stopped; its disk filled by a bounded tmpfs; its veth down), the S3 state
store and the image registry (stopped by PID, started again). Nothing here is reachable from plugins/.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Self

from lab import config
from lab import s3 as s3_store
from lab.hosts import LabHosts
from lab.pve import auth as pve_auth
from lab.pve.faults import FAULTS_FILE, HITS_FILE, Rule

# Path patterns of the calls a deploy makes (after /api2/json), for the rules' `path`.
SNAPSHOT = r"/nodes/[^/]+/lxc/\d+/snapshot"
SNAPSHOT_DELETE = r"/nodes/[^/]+/lxc/\d+/snapshot/[^/]+"
ROLLBACK = r"/nodes/[^/]+/lxc/\d+/snapshot/[^/]+/rollback"
CREATE = r"/nodes/[^/]+/lxc"
ANY = r".*"


class LabFaults:
    """The lab's fault injection: every method injects one fault and records how to undo it."""

    def __init__(self, paths: config.LabPaths = config.PATHS, hosts: LabHosts | None = None):
        """Bind to the lab's paths; nothing is injected yet."""
        self.paths = paths
        self.pve_dir = paths.pve_dir
        self._hosts = hosts
        self._undo: list[tuple[str, Callable[[], None]]] = []

    @property
    def hosts(self) -> LabHosts:
        """The lab's LXC hosts (created on first use: the emulator's faults need no LXC)."""
        if self._hosts is None:
            self._hosts = LabHosts(self.paths)
        return self._hosts

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.undo()

    def undo(self) -> list[str]:
        """Undo every fault, newest first; return what could not be undone (one line each), after trying all."""
        failed = []
        while self._undo:
            what, action = self._undo.pop()
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - every other fault must still be undone
                failed.append(f"undo {what}: {exc}")
        return failed

    # ----- the emulator ------------------------------------------------------------------
    def _rules(self) -> list[dict]:
        try:
            return json.loads((self.pve_dir / FAULTS_FILE).read_text()).get("rules", [])
        except (OSError, ValueError):
            return []

    def _write_rules(self, rules: list[dict]) -> None:
        path = self.pve_dir / FAULTS_FILE
        if not rules:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rules": rules}, indent=1))
        os.replace(tmp, path)

    def rule(self, action: str, method: str = "*", path: str = ANY, **fields) -> str:
        """Add an emulator rule (see lab/pve/faults.py) and return its id; checked as the emulator will."""
        rule_id = f"{action}-{uuid.uuid4().hex[:8]}"
        raw = {"id": rule_id, "action": action, "method": method, "path": path,
               **{k: v for k, v in fields.items() if v is not None}}
        Rule.from_dict(raw)
        self._write_rules([*self._rules(), raw])
        self._undo.append((f"fault {rule_id}", lambda: self.remove(rule_id)))
        return rule_id

    def remove(self, rule_id: str) -> None:
        """Take one rule out (a hung call or task is released within a fraction of a second)."""
        self._write_rules([r for r in self._rules() if r.get("id") != rule_id])

    def api_error(self, method: str, path: str, *, vmid: int | None = None, nth: int | None = None,
                  status: int = 500, message: str = "") -> str:
        """Answer matching calls with an HTTP error (PVE puts the message in the reason phrase)."""
        return self.rule("error", method, path, vmid=vmid, nth=nth, status=status, message=message)

    def api_hang(self, method: str, path: str, *, seconds: float, vmid: int | None = None,
                 nth: int | None = None) -> str:
        """Answer matching calls only after `seconds` (past the client's timeout: it gives up first)."""
        return self.rule("hang", method, path, vmid=vmid, nth=nth, seconds=seconds)

    def api_unreachable(self, method: str = "*", path: str = ANY) -> str:
        """Close matching calls' connections unanswered: the API is unreachable for them."""
        return self.rule("drop", method, path)

    def task_error(self, method: str, path: str, *, vmid: int | None = None, nth: int | None = None,
                   message: str = "") -> str:
        """End the tasks matching calls start in error (exitstatus = message), their work not done."""
        return self.rule("task_error", method, path, vmid=vmid, nth=nth, message=message)

    def task_hang(self, method: str, path: str, *, seconds: float = 600, vmid: int | None = None,
                  nth: int | None = None) -> str:
        """Keep the tasks matching calls start running until the rule is removed (or `seconds`)."""
        return self.rule("task_hang", method, path, vmid=vmid, nth=nth, seconds=seconds)

    def fired(self, rule_id: str) -> int:
        """How many calls a rule has answered so far (0 when the emulator has not seen one)."""
        try:
            return int(json.loads((self.pve_dir / HITS_FILE).read_text())["fired"].get(rule_id, 0))
        except (OSError, ValueError, KeyError):
            return 0

    def rotate_token(self, tokenid: str = pve_auth.FULL_TOKEN_ID) -> str:
        """Give the lab's token a new secret: the old one is revoked at once; `lab status` gives the new one.

        Not undone: a revoked secret never comes back, and every caller reads the current one."""
        return pve_auth.rotate_token(self.pve_dir, tokenid)

    # ----- hosts -------------------------------------------------------------------------
    def stop_host(self, vmid: int) -> None:
        """Stop a host at once (as a power cut would); undo starts it again if it is still stopped."""
        self.hosts._stop(vmid, kill=True)  # without the host lock: a rollback may hold it for long
        self._undo.append((f"stop host {vmid}", lambda: self._start_if_stopped(vmid)))

    def _start_if_stopped(self, vmid: int) -> None:
        if self.hosts.exists(vmid) and self.hosts.status(vmid) == "stopped":
            self.hosts.start(vmid)

    def _attach(self, vmid: int, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["lxc-attach", "-P", str(self.hosts.lxc_path), "-n", self.hosts.name(vmid),
                               "--", "sh", "-c", command], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def remove_image(self, vmid: int, reference: str) -> None:
        """Untag an image on a host (what it built from it keeps the layers): the next deploy must pull it again.
        Not undone: the deploy's rollback brings the host's images back, or the next deploy pulls it."""
        done = self._attach(vmid, f"docker image rm {shlex.quote(reference)}")
        if done.returncode != 0:
            raise RuntimeError(f"docker image rm {reference} on {vmid}: {done.stderr.strip() or done.stdout.strip()}")

    def fill_disk(self, vmid: int, directory: str, slack_kb: int = 256) -> None:
        """Make writes under a host's DIRECTORY fail with ENOSPC: a tmpfs just larger than its contents, holding
        a copy of them, filled to the last byte (bounded: never the machine's disk). Undo unmounts it; a restart
        of the host (a rollback) drops it too, and the files under it were never touched."""
        quoted = _sh(directory)
        script = (f"set -e; d={quoted}; t=$(mktemp -d); cp -a \"$d\"/. \"$t\"/; "
                  f"size=$(( $(du -sk \"$t\" | cut -f1) + {int(slack_kb)} )); "
                  f"mount -t tmpfs -o size=${{size}}k lab-disk-full \"$d\"; cp -a \"$t\"/. \"$d\"/; "
                  f"rm -rf \"$t\"; dd if=/dev/zero of=\"$d\"/.lab-disk-full bs=4k 2>/dev/null || true")
        res = self._attach(vmid, script)
        if res.returncode != 0:
            raise RuntimeError(f"fill disk of {vmid} at {directory}: {res.stderr.strip()[-300:]}")
        self._undo.append((f"disk full on {vmid}", lambda: self._unmount(vmid, directory)))

    def read_only(self, vmid: int, directory: str) -> None:
        """Make a host's DIRECTORY read-only (a bind mount over itself): a task writing there fails on that host
        alone. Undo unmounts it; a restart of the host drops it too."""
        quoted = _sh(directory)
        res = self._attach(vmid, f"mount --bind {quoted} {quoted} && mount -o remount,ro,bind {quoted}")
        if res.returncode != 0:
            raise RuntimeError(f"read-only {directory} on {vmid}: {res.stderr.strip()[-300:]}")
        self._undo.append((f"read-only {directory} on {vmid}", lambda: self._unmount(vmid, directory)))

    def _unmount(self, vmid: int, directory: str) -> None:
        if self.hosts.exists(vmid) and self.hosts.status(vmid) == "running":
            quoted = _sh(directory)
            self._attach(vmid, f"while grep -q ' {directory} ' /proc/mounts; do umount -l {quoted} || break; done")

    def backup_storage_full(self, slack_kb: int = 64) -> None:
        """Make the node's backup storage full: a tmpfs just larger than its contents, holding a copy of them, filled
        to the last byte (bounded: never the machine's disk), so vzdump's writes fail with ENOSPC as on a full
        disk. Undo unmounts it: the archives under it were never touched, those written meanwhile go with it."""
        dump = self.paths.backup_dir / "dump"
        dump.mkdir(parents=True, exist_ok=True)
        quoted = _sh(str(dump))
        script = (f"set -e; d={quoted}; t=$(mktemp -d); cp -a \"$d\"/. \"$t\"/; "
                  f"size=$(( $(du -sk \"$t\" | cut -f1) + {int(slack_kb)} )); "
                  f"mount -t tmpfs -o size=${{size}}k lab-backup-full \"$d\"; cp -a \"$t\"/. \"$d\"/; "
                  f"rm -rf \"$t\"; dd if=/dev/zero of=\"$d\"/.lab-disk-full bs=4k 2>/dev/null || true")
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"fill backup storage {dump}: {done.stderr.strip()[-300:]}")
        self._undo.append(("backup storage full", lambda: _umount_all(dump)))

    def cut_network(self, vmid: int) -> None:
        """Take a host's bridge port (its veth on the machine) down; undo brings it up if it still exists."""
        link = f"vlab{int(vmid)}"
        subprocess.run(["ip", "link", "set", link, "down"], check=True, capture_output=True, timeout=10)
        self._undo.append((f"network of {vmid}", lambda: _link_up(link)))

    # ----- services ----------------------------------------------------------------------
    def hold_state_lock(self, endpoint: str, bucket: str, key: str, who: str = "another-run@lab") -> None:
        """Put a Terraform lock file (`use_lockfile`) next to the state, as a run that holds it would; undo deletes it."""
        s3 = _s3(endpoint, self.paths.keys_dir)
        info = {"ID": str(uuid.uuid4()), "Operation": "OperationTypeApply", "Info": "", "Who": who,
                "Version": "1.15.5", "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "Path": f"{bucket}/{key}"}
        s3.put_object(Bucket=bucket, Key=f"{key}.tflock", Body=json.dumps(info).encode())
        self._undo.append(("state lock", lambda: s3.delete_object(Bucket=bucket, Key=f"{key}.tflock")))

    def stop_s3(self) -> None:
        """Kill the S3 state store; undo starts it again and waits until it serves its objects (kept on disk)."""
        from lab import orchestrate  # the orchestrator imports the images, the mirror...: only when needed
        orchestrate.STATE_STORE.stop(timeout=0)
        self._undo.append(("S3 state store", orchestrate.STATE_STORE.start))

    def stop_registry(self) -> None:
        """Stop the image registry; undo starts it again and waits until /v2/ answers."""
        from lab import orchestrate
        orchestrate.REGISTRY.stop(self.paths.run_dir)
        self._undo.append(("image registry",
                           lambda: orchestrate.REGISTRY.start(self.paths.run_dir, self.paths.log_dir, 60)))


def _s3(endpoint: str, keys_dir: Path):
    import boto3  # only the lab's S3 faults need it

    key, secret = s3_store.ensure_credentials(keys_dir)
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret)


def _sh(text: str) -> str:
    if not text.startswith("/") or any(c in text for c in "'\"\\$`\n "):
        raise ValueError(f"directory {text!r}: expected an absolute path without quotes or spaces")
    return f"'{text}'"


def _umount_all(directory: Path) -> None:
    while any(line.split()[1] == str(directory) for line in Path("/proc/mounts").read_text().splitlines()):
        if subprocess.run(["umount", str(directory)], capture_output=True, timeout=60, check=False).returncode:
            break


def _link_up(link: str) -> None:
    if Path(f"/sys/class/net/{link}").exists():
        subprocess.run(["ip", "link", "set", link, "up"], check=True, capture_output=True, timeout=10)


__all__ = ["ANY", "CREATE", "ROLLBACK", "SNAPSHOT", "SNAPSHOT_DELETE", "LabFaults"]
