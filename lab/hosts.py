"""LXC host driver of the embedded lab: overlay clones of one cached base, real snapshots.

A host is container `ct<vmid>` in LXC_PATH: an overlay clone of the stopped container `base`
(whose rootfs is the cached base rootfs), plus a per-host docker dir LAB_DIR/docker/<vmid>
bind-mounted at /var/lib/docker. A snapshot holds both pieces:
LAB_DIR/snapshots/<vmid>/<name>/{delta,docker}, the docker dir without its image layers, which are
immutable: each is hard-linked once into the host's layer store LAB_DIR/snapshots/<vmid>/.layers/
and shared by every snapshot that lists it. Operations on one vmid are serialised by a file
lock (threads and processes); different vmids run in parallel.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from lab import base, config, docker_layers, freezer, host_archive, net, registry

ALLOWED = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("198.18.0.0/15"))
# --modify-window=-1: compare mtimes to the nanosecond. rsync's default quick check (size and whole seconds) takes a
# file rewritten at the same size in the snapshot's second for unchanged, and a rollback would keep the new one.
RSYNC = ("rsync", "-aHAX", "--numeric-ids", "--modify-window=-1")
META = "lab.json"
SNAP_META = "snapshot.json"
TRASH_PREFIX = ".del-"  # a deleted snapshot's dir while its files are removed
LAYER_STORE = ".layers"  # a host's image layers, linked once, shared by its snapshots (dot: never a snapshot name)
FREEZE_TIMEOUT, FREEZE_ATTEMPTS = 20, 2  # a freeze takes 0.1-1.2 s here; a stalled one is retried, not waited on


class HostError(RuntimeError):
    """A lab host operation failed (the message says what and why)."""


class HostExists(HostError):
    """The host (vmid) already exists."""


class HostNotFound(HostError):
    """No host with this vmid."""


class SnapshotExists(HostError):
    """A snapshot of this name already exists."""


class SnapshotNotFound(HostError):
    """No snapshot of this name."""


@dataclass(frozen=True)
class HostInfo:
    """One lab host as listed by LabHosts.list()."""

    vmid: int
    hostname: str
    ip: str
    mac: str
    state: str

    def as_dict(self) -> dict:
        """Plain dict (for JSON)."""
        return asdict(self)


def default_mac(vmid: int) -> str:
    """Stable locally-administered MAC derived from the vmid."""
    if not 0 <= vmid < 1 << 24:
        raise HostError(f"vmid {vmid} out of range for a derived MAC")
    return f"02:4c:41:{vmid >> 16 & 0xFF:02x}:{vmid >> 8 & 0xFF:02x}:{vmid & 0xFF:02x}"


def docker_bip(vmid: int) -> str:
    """Docker bridge address of a host: 198.18.(100 + vmid % 100).1/24."""
    return f"198.18.{config.DOCKER_BIP_BASE + vmid % 100}.1/24"


def daemon_json(vmid: int, mirror: str = registry.Registry.lab().url) -> str:
    """/etc/docker/daemon.json of a host: every Docker network inside 198.18.0.0/15, Docker Hub via the lab registry."""
    return json.dumps({
        "bip": docker_bip(vmid),
        "default-address-pools": [{"base": config.DOCKER_POOL, "size": config.DOCKER_POOL_SIZE}],
        "dns": [config.BRIDGE_ADDRESS],
        # dockerd asks the mirror first for every docker.io image: the roles' references are upstream's
        "registry-mirrors": [mirror],
        "storage-driver": "overlay2",
        "log-driver": "json-file",
        "log-opts": {"max-size": "1m", "max-file": "2"},
    }, indent=2) + "\n"


def _allowed(addr: str, what: str) -> str:
    """Refuse an address outside 127.0.0.0/8 and 198.18.0.0/15."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError as exc:
        raise HostError(f"{what} {addr!r} is not an IPv4 address") from exc
    if not any(ip in net for net in ALLOWED):
        raise HostError(f"{what} {addr} is outside the lab's ranges (198.18.0.0/15)")
    return addr


def _run(cmd: list[str] | tuple[str, ...], what: str, timeout: float = 120) -> str:
    """Run a command; raise HostError naming `what` with its output on failure."""
    try:
        res = subprocess.run(list(cmd), check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise HostError(f"{what}: `{' '.join(cmd)}` timed out after {timeout}s") from exc
    if res.returncode != 0:
        out = (res.stderr.strip() or res.stdout.strip())[-2000:]
        raise HostError(f"{what}: `{' '.join(cmd)}` exited {res.returncode}: {out}")
    return res.stdout


def _remover_alive(trash_name: str) -> bool:
    """Tell whether the process that named this trash dir (.del-<name>-<pid>-<thread>) still runs."""
    try:
        pid = int(trash_name.rsplit("-", 2)[-2])
    except (ValueError, IndexError):
        return False
    return pid == os.getpid() or Path(f"/proc/{pid}").exists()


def _remove_trees(trees: list[Path]) -> None:
    """Remove each tree (a deleted snapshot's files; another remover may be at it too)."""
    for tree in trees:
        shutil.rmtree(tree, ignore_errors=True)


class LabHosts:
    """Real LXC hosts on the lab bridge (lxcpath = LAB_DIR/lxc)."""

    def __init__(self, paths: config.LabPaths = config.PATHS, bridge: str = config.BRIDGE):
        """Bind to the lab's paths and bridge; nothing is touched yet."""
        self.paths = paths
        self.bridge = bridge
        self.lxc_path = paths.lxc_path
        self._clone_lock = threading.Lock()

    # ----- naming, locking -------------------------------------------------------------------
    @staticmethod
    def name(vmid: int) -> str:
        """LXC container name of a vmid."""
        return f"{config.CT_PREFIX}{int(vmid)}"

    def ct_dir(self, vmid: int) -> Path:
        """The container's directory in the lxcpath."""
        return self.lxc_path / self.name(vmid)

    def delta_dir(self, vmid: int) -> Path:
        """The clone's overlay upper dir (its whole difference to the base)."""
        return self.ct_dir(vmid) / "overlay" / "delta"

    @contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        """Exclusive file lock (serialises threads and processes on one key)."""
        self.paths.lock_dir.mkdir(parents=True, exist_ok=True)
        with open(self.paths.lock_dir / f"{key}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _lxc(self, tool: str, vmid_or_name: int | str, *args: str, what: str,
             timeout: float = 120) -> str:
        """Run lxc-<tool> -P LXC_PATH -n NAME ARGS."""
        name = vmid_or_name if isinstance(vmid_or_name, str) else self.name(vmid_or_name)
        return _run([f"lxc-{tool}", "-P", str(self.lxc_path), "-n", name, *args], what, timeout)

    # ----- base ----------------------------------------------------------------------------
    def ensure_base(self) -> None:
        """Build (or reuse) the cached base rootfs and define the stopped `base` container."""
        with self._lock("base"):
            if not base.is_cached(self.paths) and self.vmids():
                raise HostError(
                    "the base rootfs must be (re)built but lab hosts still use it as their lower "
                    f"layer ({', '.join(map(str, self.vmids()))}): run `python -m lab down` first")
            try:
                base.build_base(self.paths)
            except Exception as exc:
                raise HostError(f"base rootfs build failed: {exc}") from exc
            cfg = self.lxc_path / config.BASE_NAME / "config"
            text = self._base_config()
            if not cfg.exists() or cfg.read_text() != text:
                cfg.parent.mkdir(parents=True, exist_ok=True)
                cfg.write_text(text)
            for sub in (self.paths.docker_root, self.paths.snapshots_root, self.paths.log_dir):
                sub.mkdir(parents=True, exist_ok=True)

    def _common_config(self) -> str:
        """LXC settings shared by base and hosts (what the lab needs: bridge, apparmor, docker)."""
        return (
            "lxc.arch = linux64\n"
            "lxc.tty.dir = lxc\n"
            "lxc.tty.max = 1\n"
            "lxc.pty.max = 1024\n"
            "lxc.autodev = 1\n"
            "lxc.apparmor.profile = unconfined\n"
            "lxc.cap.drop =\n"
            "lxc.cgroup.devices.allow = a\n"
            "lxc.mount.auto = proc:rw sys:rw cgroup:rw\n"
            "lxc.signal.halt = SIGRTMIN+3\n"
            "lxc.net.0.type = veth\n"
            f"lxc.net.0.link = {self.bridge}\n"
            "lxc.net.0.flags = up\n"
            "lxc.net.0.name = eth0\n"
        )

    def _base_config(self) -> str:
        """Config of the stopped base container (never started; the clones' source)."""
        return (
            f"lxc.uts.name = {config.BASE_NAME}\n"
            f"lxc.rootfs.path = dir:{self.paths.base_rootfs}\n" + self._common_config()
        )

    def _host_config(self, vmid: int, rootfs: str, meta: dict) -> str:
        """Full LXC config of one host."""
        brd = ipaddress.ip_interface(f"{meta['ip']}/{meta['prefix']}").network.broadcast_address
        cfg = (
            f"lxc.uts.name = {meta['hostname']}\n"
            f"lxc.rootfs.path = {rootfs}\n" + self._common_config() +
            f"lxc.net.0.hwaddr = {meta['mac']}\n"
            f"lxc.net.0.veth.pair = vlab{vmid}\n"
            f"lxc.net.0.ipv4.address = {meta['ip']}/{meta['prefix']} {brd}\n"
            f"lxc.net.0.ipv4.gateway = {meta['gateway']}\n"
            f"lxc.mount.entry = {self.paths.docker_dir(vmid)} var/lib/docker none bind,create=dir 0 0\n"
            f"lxc.cgroup.memory.limit_in_bytes = {int(meta['memory'])}M\n"
            "lxc.cgroup.cpu.cfs_period_us = 100000\n"
            f"lxc.cgroup.cpu.cfs_quota_us = {int(meta['cores']) * 100000}\n"
            f"lxc.log.file = {self.ct_dir(vmid) / 'lxc.log'}\n"
            "lxc.log.level = WARN\n"
        )
        return cfg

    # ----- queries -------------------------------------------------------------------------
    def exists(self, vmid: int) -> bool:
        """True when host vmid is defined."""
        return (self.ct_dir(vmid) / "config").exists()

    def _require(self, vmid: int) -> None:
        """Raise HostNotFound unless the host exists."""
        if not self.exists(vmid):
            raise HostNotFound(f"lab host {vmid} ({self.name(vmid)}) does not exist in {self.lxc_path}")

    def meta(self, vmid: int) -> dict:
        """The host's creation parameters (hostname, ip, prefix, gateway, mac, memory, cores)."""
        self._require(vmid)
        return json.loads((self.ct_dir(vmid) / META).read_text())

    def status(self, vmid: int) -> str:
        """"running" or "stopped"."""
        self._require(vmid)
        out = self._lxc("info", vmid, "-sH", what=f"status of {vmid}", timeout=30).strip()
        return "stopped" if out in ("STOPPED", "") else "running"

    def _running_names(self) -> set[str]:
        """Names of running containers in the lxcpath (one lxc-ls call)."""
        if not self.lxc_path.exists():
            return set()
        out = _run(["lxc-ls", "-P", str(self.lxc_path), "--running", "-1"], "lxc-ls", 30)
        return set(out.split())

    def vmids(self) -> list[int]:
        """Vmids of every defined host, sorted."""
        if not self.lxc_path.exists():
            return []
        found = []
        for d in self.lxc_path.glob(f"{config.CT_PREFIX}*"):
            suffix = d.name[len(config.CT_PREFIX):]
            if suffix.isdigit() and (d / "config").exists():
                found.append(int(suffix))
        return sorted(found)

    def list(self) -> list[HostInfo]:
        """Every lab host with its state."""
        running = self._running_names()
        hosts = []
        for vmid in self.vmids():
            try:
                meta = json.loads((self.ct_dir(vmid) / META).read_text())
            except (OSError, ValueError):
                meta = {"hostname": "", "ip": "", "mac": ""}
            state = "running" if self.name(vmid) in running else "stopped"
            hosts.append(HostInfo(vmid, meta["hostname"], meta["ip"], meta["mac"], state))
        return hosts

    def ip(self, vmid_or_ip: int | str) -> str:
        """Address of a host given its vmid (or an address, returned as is)."""
        if isinstance(vmid_or_ip, int):
            return self.meta(vmid_or_ip)["ip"]
        return _allowed(vmid_or_ip, "address")

    def wait_ssh(self, vmid_or_ip: int | str, timeout: float = 30.0) -> float:
        """Wait until sshd answers with its banner; return seconds waited."""
        addr = self.ip(vmid_or_ip)
        start = time.monotonic()
        last = ""
        while True:
            try:
                with socket.create_connection((addr, 22), timeout=0.5) as sock:
                    sock.settimeout(1.0)
                    if sock.recv(64).startswith(b"SSH-"):
                        return time.monotonic() - start
            except OSError as exc:
                last = str(exc)
            if time.monotonic() - start > timeout:
                raise HostError(f"ssh on {addr} not answering after {timeout}s ({last})")
            time.sleep(0.05)

    # ----- create / lifecycle --------------------------------------------------------------
    def create(self, vmid: int, hostname: str, ip: str, prefix: int, gateway: str,
               mac: str | None, ssh_public_keys: str, memory: int = 512, cores: int = 1) -> None:
        """Create host vmid (stopped): overlay clone of base, static net, own SSH host keys."""
        vmid = int(vmid)
        _allowed(ip, "ip")
        _allowed(gateway, "gateway")
        if not hostname or not all(c.isalnum() or c in "-." for c in hostname):
            raise HostError(f"invalid hostname {hostname!r}")
        mac = (mac or default_mac(vmid)).lower()
        meta = {"vmid": vmid, "hostname": hostname, "ip": ip, "prefix": int(prefix),
                "gateway": gateway, "mac": mac, "memory": int(memory), "cores": int(cores)}
        with self._lock(str(vmid)):
            if self.exists(vmid) or self.ct_dir(vmid).exists():
                raise HostExists(f"lab host {vmid} ({self.name(vmid)}) already exists")
            if not (self.lxc_path / config.BASE_NAME / "config").exists():
                raise HostError("the base container is not defined: call ensure_base() first")
            try:
                self._create(vmid, meta, ssh_public_keys)
            except BaseException as exc:
                self._remove(vmid)
                if isinstance(exc, HostError):
                    raise
                raise HostError(f"create {vmid}: {exc}") from exc

    def _create(self, vmid: int, meta: dict, keys: str) -> None:
        """Clone, configure, seed the host's files into its overlay delta."""
        with self._clone_lock, self._lock("clone"):
            self._lxc("copy", config.BASE_NAME, "-N", self.name(vmid), "-s", "-B", "overlay",
                      what=f"clone base to {self.name(vmid)}")
        cfg_path = self.ct_dir(vmid) / "config"
        rootfs = next(
            line.split("=", 1)[1].strip() for line in cfg_path.read_text().splitlines()
            if line.replace(" ", "").startswith("lxc.rootfs.path=")
        )
        (self.ct_dir(vmid) / META).write_text(json.dumps(meta, indent=2) + "\n")
        cfg_path.write_text(self._host_config(vmid, rootfs, meta))
        docker = self.paths.docker_dir(vmid)
        shutil.rmtree(docker, ignore_errors=True)
        docker.mkdir(mode=0o710, parents=True)
        self._seed(vmid, meta, keys)

    def _upper(self, vmid: int, rel: str) -> Path:
        """Path in the delta, creating parent dirs with the base's owner and mode."""
        delta, lower = self.delta_dir(vmid), self.paths.base_rootfs
        parts = Path(rel).parts[:-1]
        for i in range(1, len(parts) + 1):
            sub = Path(*parts[:i])
            if not (delta / sub).exists():
                st = (lower / sub).stat() if (lower / sub).exists() else None
                (delta / sub).mkdir()
                if st:
                    os.chown(delta / sub, st.st_uid, st.st_gid)
                    (delta / sub).chmod(st.st_mode & 0o7777)
        return delta / rel

    def _put(self, vmid: int, rel: str, text: str, mode: int = 0o644) -> None:
        """Write one file into the host's delta."""
        path = self._upper(vmid, rel)
        path.write_text(text)
        path.chmod(mode)

    def _seed(self, vmid: int, meta: dict, keys: str) -> None:
        """Hostname, /etc/hosts, machine-id, SSH host keys, root's keys, daemon.json + the registry's CA."""
        host, ip = meta["hostname"], meta["ip"]
        self._put(vmid, "etc/hostname", f"{host}\n")
        self._put(vmid, "etc/hosts", f"127.0.0.1\tlocalhost\n{ip}\t{host}\n"
                  "::1\tlocalhost ip6-localhost ip6-loopback\n")
        self._put(vmid, "etc/machine-id", os.urandom(16).hex() + "\n", 0o444)
        lab_registry = registry.Registry.lab(self.paths)
        self._put(vmid, "etc/docker/daemon.json", daemon_json(vmid, lab_registry.url))
        for rel, text in registry.mirror_files(lab_registry).items():
            self._put(vmid, rel, text)
        for kind in ("ed25519", "ecdsa"):
            key = self._upper(vmid, f"etc/ssh/ssh_host_{kind}_key")
            _run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"root@{host}", "-f", str(key)],
                 f"ssh host key for {vmid}")
        self._upper(vmid, "root/.ssh/x").parent.chmod(0o700)
        keys = keys.strip()
        self._put(vmid, "root/.ssh/authorized_keys", keys + "\n" if keys else "", 0o600)

    def start(self, vmid: int) -> None:
        """Start the host (no-op when running)."""
        with self._lock(str(vmid)):
            self._start(vmid)

    def _start(self, vmid: int) -> None:
        """Start without taking the lock."""
        self._require(vmid)
        if self.status(vmid) == "running":
            return
        if not net.bridge_exists(self.bridge):
            raise HostError(f"bridge {self.bridge} is down: run `python -m lab up` (lab.net.bridge_up)")
        self.paths.docker_dir(vmid).mkdir(mode=0o710, parents=True, exist_ok=True)
        try:
            self._lxc("start", vmid, "-d", what=f"start {vmid}", timeout=60)
        except HostError as exc:
            log = self.ct_dir(vmid) / "lxc.log"
            tail = log.read_text()[-1500:] if log.exists() else ""
            raise HostError(f"{exc}\n{tail}") from exc

    def stop(self, vmid: int, timeout: int = 10) -> None:
        """Stop the host: clean shutdown, killed after timeout seconds (no-op when stopped)."""
        with self._lock(str(vmid)):
            self._stop(vmid, timeout)

    def _stop(self, vmid: int, timeout: int = 10, kill: bool = False) -> None:
        """Stop without taking the lock; kill=True stops at once."""
        self._require(vmid)
        if self.status(vmid) == "stopped":
            return
        args = ["-k"] if kill else ["-t", str(int(timeout))]
        try:
            self._lxc("stop", vmid, *args, what=f"stop {vmid}", timeout=timeout + 30)
        except HostError:
            if self.status(vmid) != "stopped":
                raise

    def kill(self, vmid: int) -> None:
        """Stop the host at once (`lxc-stop -k`), as a power cut or PVE's rollback does: no shutdown inside."""
        with self._lock(str(vmid)):
            self._stop(vmid, kill=True)


    # ----- snapshots -----------------------------------------------------------------------
    def _snap_root(self, vmid: int) -> Path:
        """Parent of a host's snapshots."""
        return self.paths.snapshots_root / str(vmid)

    def snapshots(self, vmid: int) -> list[str]:
        """Names of the host's snapshots, oldest first."""
        root = self._snap_root(vmid)
        if not root.exists():
            return []
        found = []
        for d in root.iterdir():
            meta = d / SNAP_META
            if d.is_dir() and not d.name.startswith(".") and meta.exists():  # .tmp-/.del-: being made or removed
                found.append((json.loads(meta.read_text()).get("created", 0), d.name))
        return [n for _, n in sorted(found)]

    @staticmethod
    def _check_snapname(name: str) -> None:
        """Refuse names that are not plain file names."""
        if not name or "/" in name or name.startswith(".") or len(name) > 64:
            raise HostError(f"invalid snapshot name {name!r}")

    @contextmanager
    def _frozen(self, vmid: int) -> Iterator[None]:
        """Freeze a running host's processes for the block and flush its writes (what PVE does for a
        running CT's snapshot): the copy is crash-consistent and its services keep running after."""
        running = self.status(vmid) == "running"
        if running:
            self._freeze(vmid)
        try:
            _run(["sync", "-f", str(self.delta_dir(vmid))], f"sync {vmid}", 120)
            yield
        finally:
            if running:
                self._set_frozen(vmid, False, 60)

    def _freeze(self, vmid: int) -> None:
        """Freeze the host; a stalled freeze is thawed (never left half-frozen) and tried once more."""
        for attempt in range(1, FREEZE_ATTEMPTS + 1):
            try:
                self._set_frozen(vmid, True, FREEZE_TIMEOUT)
                return
            except HostError:
                # cgroup v1 can stall in FREEZING (a task caught mid-fork or in uninterruptible IO)
                self._set_frozen(vmid, False, 60)
                if attempt == FREEZE_ATTEMPTS:
                    raise

    def _set_frozen(self, vmid: int, frozen: bool, timeout: float) -> None:
        """Freeze or thaw through the cgroup freezer (10 ms polls), else lxc-freeze / lxc-unfreeze."""
        path = freezer.state_file(self.name(vmid))
        what = f"{'freeze' if frozen else 'thaw'} {vmid}"
        if path is None:
            self._lxc("freeze" if frozen else "unfreeze", vmid, what=what, timeout=timeout)
            return
        try:
            done = freezer.set_state(path, "FROZEN" if frozen else "THAWED", timeout)
        except OSError as exc:
            raise HostError(f"{what}: {path}: {exc}") from exc
        if not done:
            raise HostError(f"{what}: {path} did not reach {'FROZEN' if frozen else 'THAWED'} within {timeout:g} s")

    def snapshot(self, vmid: int, name: str) -> None:
        """Take a whole snapshot (overlay delta + docker dir); a running host is frozen, not stopped.

        Image layers are not copied (lab/docker_layers.py): the snapshot lists them, and a layer not yet in the
        host's layer store is hard-linked into it once; the rest is copied, hard-linked to the previous
        snapshot where unchanged."""
        self._check_snapname(name)
        with self._lock(str(vmid)):
            self._require(vmid)
            dest = self._snap_root(vmid) / name
            if dest.exists():
                raise SnapshotExists(f"snapshot {name!r} of {vmid} already exists")
            previous = self.snapshots(vmid)
            tmp = self._snap_root(vmid) / f".tmp-{name}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            try:
                with self._frozen(vmid):
                    docker = self.paths.docker_dir(vmid)
                    layers = docker_layers.image_layer_dirs(docker)
                    for part, src, skip in (("delta", self.delta_dir(vmid), []),
                                            ("docker", docker, docker_layers.rsync_excludes(layers))):
                        cmd = [*RSYNC, *skip]
                        if previous:
                            cmd.append(f"--link-dest={self._snap_root(vmid) / previous[-1] / part}")
                        _run([*cmd, f"{src}/", f"{tmp / part}/"], f"snapshot {vmid} {part}", 600)
                    self._store_layers(vmid, docker, layers)
                (tmp / SNAP_META).write_text(json.dumps({"name": name, "created": time.time(), "layers": layers}))
                tmp.rename(dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    def rollback(self, vmid: int, name: str, start: bool = True) -> None:
        """Restore the host to snapshot name (delta + docker dir); start it after if start."""
        with self._lock(str(vmid)):
            self._require(vmid)
            snap = self._snap_root(vmid) / name
            if not (snap / SNAP_META).exists():
                raise SnapshotNotFound(f"snapshot {name!r} of {vmid} does not exist")
            self._stop(vmid, kill=True)
            docker = self.paths.docker_dir(vmid)
            # The snapshot's image layers are immutable: a live layer of the same id is the same
            # files; only layers removed since the snapshot come back (linked). Newer layers are
            # not excluded, so --delete removes them.
            layers, source = self._snapshot_layers(vmid, snap)
            for part, dst, skip in (("delta", self.delta_dir(vmid), []),
                                    ("docker", docker, docker_layers.rsync_excludes(layers))):
                _run([*RSYNC, "--delete", *skip, f"{snap / part}/", f"{dst}/"],
                     f"rollback {vmid} {part}", 600)
            gone = [name for name in layers if not (docker / "overlay2" / name).is_dir()]
            missing = [name for name in gone if not (source / "overlay2" / name).is_dir()]
            if missing:
                raise HostError(f"rollback {vmid}: image layer(s) {', '.join(missing)} of snapshot {name!r} "
                                f"missing from {source}")
            try:
                docker_layers.link_layers(source, docker, gone)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise HostError(f"rollback {vmid}: {exc}") from exc
            work = self.ct_dir(vmid) / "overlay" / "work" / "work"
            if work.exists():
                for entry in work.iterdir():
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
            if start:
                self._start(vmid)

    def delete_snapshot(self, vmid: int, name: str) -> None:
        """Delete one snapshot: gone at once, its files removed in the background (later snapshots keep their
        hard-linked files).

        A copy-on-write storage destroys a snapshot without walking its files (ZFS frees the blocks after
        `zfs destroy` returns: async_destroy); removing a hard-linked copy is one unlink per file, so it runs
        after the delete returns, in a thread the process waits for before it exits."""
        with self._lock(str(vmid)):
            snap = self._snap_root(vmid) / name
            if not (snap / SNAP_META).exists():
                raise SnapshotNotFound(f"snapshot {name!r} of {vmid} does not exist")
            trash = snap.with_name(f"{TRASH_PREFIX}{name}-{os.getpid()}-{threading.get_ident()}")
            snap.rename(trash)
            self._drop_unlisted_layers(vmid, trash / LAYER_STORE)
            # a process killed while removing (a power cut of the lab) left its trash: removed with this one
            orphans = [d for d in self._snap_root(vmid).glob(f"{TRASH_PREFIX}*") if not _remover_alive(d.name)]
        threading.Thread(target=_remove_trees, args=([trash, *orphans],), name=f"remove {trash.name}").start()

    def layer_store(self, vmid: int) -> Path:
        """The host's image layers that its snapshots list ({store}/overlay2/<cache-id>, hard links)."""
        return self._snap_root(vmid) / LAYER_STORE

    def _store_layers(self, vmid: int, docker: Path, layers: list[str]) -> None:
        """Link the image layers the store lacks into it; a layer appears whole or not at all."""
        store = self.layer_store(vmid) / "overlay2"
        new = [layer for layer in layers if not (store / layer).is_dir()]
        if not new:
            return
        tmp = self.layer_store(vmid) / f".tmp-{os.getpid()}-{threading.get_ident()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            docker_layers.link_layers(docker, tmp, new)
            store.mkdir(parents=True, exist_ok=True)
            for layer in new:
                (tmp / "overlay2" / layer).rename(store / layer)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise HostError(f"snapshot {vmid}: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _snapshot_layers(self, vmid: int, snap: Path) -> tuple[list[str], Path]:
        """A snapshot's image layers and the docker dir that holds them (the store; its own copy when it was
        taken before the store existed)."""
        layers = json.loads((snap / SNAP_META).read_text()).get("layers")
        if layers is None:
            return docker_layers.image_layer_dirs(snap / "docker"), snap / "docker"
        return list(layers), self.layer_store(vmid)

    def _complete_layers(self, vmid: int, snap: Path) -> None:
        """Link the snapshot's image layers from the store into its own docker dir: an archive of it is whole."""
        with self._lock(str(vmid)):
            layers, source = self._snapshot_layers(vmid, snap)
            lacking = [layer for layer in layers if not (snap / "docker" / "overlay2" / layer).is_dir()]
            try:
                docker_layers.link_layers(source, snap / "docker", lacking)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise HostError(f"archive of {vmid}: {exc}") from exc

    def _drop_unlisted_layers(self, vmid: int, trash: Path) -> None:
        """Move the store's layers that no snapshot lists any more into trash (removed with it)."""
        store = self.layer_store(vmid) / "overlay2"
        if not store.is_dir():
            return
        listed = set()
        for name in self.snapshots(vmid):
            listed.update(self._snapshot_layers(vmid, self._snap_root(vmid) / name)[0])
        unlisted = [d for d in store.iterdir() if d.name not in listed]
        if unlisted:
            (trash / "overlay2").mkdir(parents=True, exist_ok=True)
            for layer in unlisted:
                layer.rename(trash / "overlay2" / layer.name)

    # ----- backups (vzdump archives) --------------------------------------------------------
    def archive(self, vmid: int, snapshot: str | None, extra: Path, target: Path,
                compressor: list[str] | None, log=print) -> None:
        """Write the host's whole rootfs (from a snapshot, or the stopped host's own files) as a vzdump tar."""
        self._require(vmid)
        if snapshot is None:
            delta, docker = self.delta_dir(vmid), self.paths.docker_dir(vmid)
        else:
            snap = self._snap_root(vmid) / snapshot
            if not (snap / SNAP_META).exists():
                raise SnapshotNotFound(f"snapshot {snapshot!r} of {vmid} does not exist")
            delta, docker = snap / "delta", snap / "docker"
            self._complete_layers(vmid, snap)
        try:
            with host_archive.rootfs_view(self.paths.base_rootfs, delta, docker) as view:
                host_archive.write_tar(view, extra, target, compressor, log)
        except host_archive.ArchiveError as exc:
            raise HostError(str(exc)) from exc

    def restore_files(self, vmid: int, tree: Path) -> None:
        """Make the stopped host's files (rootfs and docker dir) those of an extracted archive."""
        with self._lock(str(vmid)):
            self._require(vmid)
            if self.status(vmid) != "stopped":
                raise HostError(f"restore of {vmid}: the host is running")
            work = self.ct_dir(vmid) / "overlay" / "work"
            work.mkdir(parents=True, exist_ok=True)
            try:
                host_archive.restore_tree(self.paths.base_rootfs, self.delta_dir(vmid), work,
                                          self.paths.docker_dir(vmid), tree)
            except host_archive.ArchiveError as exc:
                raise HostError(str(exc)) from exc

    # ----- destroy / leftovers -------------------------------------------------------------
    def destroy(self, vmid: int) -> None:
        """Remove the host, its docker dir and its snapshots."""
        with self._lock(str(vmid)):
            self._require(vmid)
            self._remove(vmid)

    def _remove(self, vmid: int) -> None:
        """Kill and remove everything of one host (idempotent, no lock)."""
        if self.exists(vmid):
            if self.status(vmid) != "stopped":
                self._stop(vmid, kill=True)
            with self._clone_lock, self._lock("clone"):
                try:
                    self._lxc("destroy", vmid, what=f"destroy {vmid}", timeout=60)
                except HostError:
                    pass
        shutil.rmtree(self.ct_dir(vmid), ignore_errors=True)
        shutil.rmtree(self.paths.docker_dir(vmid), ignore_errors=True)
        shutil.rmtree(self._snap_root(vmid), ignore_errors=True)
        if self.ct_dir(vmid).exists():
            raise HostError(f"could not remove {self.ct_dir(vmid)}")

    def destroy_all(self) -> None:
        """Remove every lab host and the base container's definition (keeps the cache)."""
        errors = []
        for vmid in self.vmids():
            try:
                self.destroy(vmid)
            except HostError as exc:
                errors.append(str(exc))
        for d in self.lxc_path.glob(f"{config.CT_PREFIX}*") if self.lxc_path.exists() else []:
            shutil.rmtree(d, ignore_errors=True)
        for d in (self.paths.docker_root, self.paths.snapshots_root):
            if d.exists():
                for sub in d.iterdir():
                    shutil.rmtree(sub, ignore_errors=True)
        # The base's rootfs is the cache: never lxc-destroy it, drop only its definition.
        shutil.rmtree(self.lxc_path / config.BASE_NAME, ignore_errors=True)
        if errors:
            raise HostError("destroy_all: " + "; ".join(errors))

    def find_leftovers(self, vmids: Iterable[int] | None = None) -> list[str]:
        """Lab containers, running hosts, veths, mounts, docker/snapshot dirs still present."""
        only = None if vmids is None else {int(v) for v in vmids}
        names = None if only is None else {self.name(v) for v in only}
        found = []
        if self.lxc_path.exists():
            for d in sorted(self.lxc_path.iterdir()):
                if names is None or d.name in names:
                    found.append(f"container {d.name} ({d})")
            for name in sorted(self._running_names()):
                if names is None or name in names:
                    found.append(f"running container {name}")
        for link in sorted(Path("/sys/class/net").glob("vlab*")):
            suffix = link.name[4:]
            if only is None or (suffix.isdigit() and int(suffix) in only):
                found.append(f"veth {link.name}")
        roots = (str(self.paths.lab_dir), str(self.paths.cache_dir))
        for line in Path("/proc/mounts").read_text().splitlines():
            target = line.split()[1]
            if target.startswith(roots) and (
                    only is None or any(f"/{v}" in target or self.name(v) in target for v in only)):
                found.append(f"mount {target}")
        for root in (self.paths.docker_root, self.paths.snapshots_root):
            if root.exists():
                for d in sorted(root.iterdir()):
                    if only is None or (d.name.isdigit() and int(d.name) in only):
                        found.append(f"dir {d}")
        return found
