"""The lab's npm mirror: verdaccio (from npm, lab/npm-mirror/) serving lab hosts, offline, on the bridge.

Seeding happens on the machine: for each lockfile the lab's hosts will `npm ci` (SEED_GLOBS), a
verdaccio on 127.0.0.1 proxying the machine's npm registry is started, the ordinary npm client
runs `npm ci` through it (so the packuments and tarballs land in its storage), and it stops.
The mirror lab hosts see has no uplink at all: it serves what was seeded and answers 404 for
anything else — a lab host never reaches outside the lab. Plain http: a Docker build on a host
then needs nothing but the registry URL (an https mirror would need the lab CA inside every build).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lab import config, procs

ROOT = Path(__file__).resolve().parent.parent
VERDACCIO = Path(__file__).resolve().parent / "npm-mirror" / "node_modules" / "verdaccio" / "bin" / "verdaccio"
PORT = 4873
# The lockfiles lab hosts `npm ci` from (the demo app's); paths relative to the repository.
SEED_GLOBS = ("app-demo/**/package-lock.json",)


def _node() -> str:
    """The machine's node (its path is part of the process's identity for the PID check)."""
    return shutil.which("node") or "/usr/bin/node"


def lockfile_hash(lockfile: Path) -> str:
    """sha256 of a lockfile and its package.json (what one seeding covers)."""
    h = hashlib.sha256(lockfile.read_bytes())
    pkg = lockfile.with_name("package.json")
    h.update(pkg.read_bytes() if pkg.exists() else b"")
    return h.hexdigest()


def seed_lockfiles(root: Path = ROOT, globs: tuple[str, ...] = SEED_GLOBS) -> list[Path]:
    """Every lockfile matching the globs, outside node_modules."""
    found = {p for g in globs for p in root.glob(g) if "node_modules" not in p.parts}
    return sorted(found)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _machine_npm_registry() -> str:
    """The npm registry the machine's npm uses (never written into the code)."""
    res = subprocess.run(["npm", "config", "get", "registry"], check=False, capture_output=True, text=True, timeout=60)
    url = res.stdout.strip()
    if res.returncode != 0 or not url.startswith(("https://", "http://")):
        raise RuntimeError(f"npm config get registry gave {url or res.stderr.strip()!r}; expected a URL")
    return url


@dataclass(frozen=True)
class NpmMirror:
    """One verdaccio instance: where it listens, where its storage and config live."""

    host: str
    port: int
    storage: Path
    state_dir: Path

    @classmethod
    def lab(cls, paths: config.LabPaths = config.PATHS) -> NpmMirror:
        """The lab's mirror on the bridge; its storage is a cache (kept across `lab down`)."""
        return cls(config.BRIDGE_ADDRESS, PORT, paths.cache_dir / "npm-mirror" / "storage",
                   paths.lab_dir / "npm-mirror")

    @property
    def url(self) -> str:
        """The registry URL npm takes (`npm ci --registry URL`, NPM_CONFIG_REGISTRY)."""
        return f"http://{self.host}:{self.port}/"

    @property
    def seeded_dir(self) -> Path:
        """Markers of the lockfiles already seeded (by hash)."""
        return self.storage.parent / "seeded"

    def _config(self, listen: str, uplink: str = "") -> str:
        """verdaccio's config (JSON is YAML): anyone may read, nobody may publish; uplink only when seeding."""
        package = {"access": "$all", "publish": "$authenticated"}
        cfg = {
            "storage": str(self.storage),
            "listen": listen,
            "uplinks": {"npmjs": {"url": uplink, "timeout": "60s", "maxage": "30m"}} if uplink else {},
            "packages": {"**": {**package, **({"proxy": "npmjs"} if uplink else {})}},
            "auth": {"htpasswd": {"file": str(self.state_dir / "htpasswd"), "max_users": -1}},
            "web": {"enable": False},
            "log": {"type": "stdout", "format": "pretty", "level": "warn"},
        }
        return json.dumps(cfg, indent=2) + "\n"

    def service(self, name: str = "npm-mirror", cfg: Path | None = None) -> procs.Service:
        """The verdaccio process (tracked by PID like the lab's other processes)."""
        cfg = cfg or self.state_dir / "verdaccio.yaml"
        return procs.Service(name, "verdaccio", (str(VERDACCIO), "--config", str(cfg)), program=_node())

    def start(self, run_dir: Path, log_dir: Path, timeout: float = 30.0) -> int:
        """Serve the storage, no uplink, on host:port (idempotent); return its PID."""
        if not VERDACCIO.exists() or not shutil.which("node"):
            raise RuntimeError(f"{VERDACCIO} or node is missing: scripts/install.sh installs Node.js and runs "
                               "npm ci in lab/npm-mirror")
        self.storage.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.state_dir / "verdaccio.yaml"
        text = self._config(f"{self.host}:{self.port}")
        if not cfg.exists() or cfg.read_text() != text:
            self.stop(run_dir)
            cfg.write_text(text)
        pid = procs.start(run_dir, log_dir, self.service())
        _wait_ping(f"http://{self.host}:{self.port}/-/ping", timeout, log_dir / "npm-mirror.log")
        return pid

    def stop(self, run_dir: Path) -> bool:
        """Stop it by its recorded PID; True if one was stopped."""
        return procs.stop(run_dir, self.service())

    def pid(self, run_dir: Path) -> int | None:
        """Its PID when it runs."""
        return procs.running_pid(run_dir, self.service())

    def seed(self, lockfiles: list[Path], run_dir: Path, log_dir: Path, progress=lambda _: None) -> list[Path]:
        """Fetch, on the machine, what each not yet seeded lockfile needs; return the lockfiles seeded now."""
        todo = [lf for lf in lockfiles if not (self.seeded_dir / lockfile_hash(lf)).exists()]
        if not todo:
            return []
        self.storage.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.seeded_dir.mkdir(parents=True, exist_ok=True)
        was_serving = bool(self.pid(run_dir))
        self.stop(run_dir)  # one verdaccio at a time on the storage
        port = _free_port()
        cfg = self.state_dir / "verdaccio-seed.yaml"
        cfg.write_text(self._config(f"127.0.0.1:{port}", _machine_npm_registry()))
        seeder = self.service("npm-mirror-seed", cfg)
        try:
            procs.start(run_dir, log_dir, seeder)
            _wait_ping(f"http://127.0.0.1:{port}/-/ping", 30, log_dir / "npm-mirror-seed.log")
            for lockfile in todo:
                started = time.monotonic()
                _npm_ci(lockfile, f"http://127.0.0.1:{port}/")
                (self.seeded_dir / lockfile_hash(lockfile)).write_text(str(lockfile) + "\n")
                progress(f"npm mirror: seeded {lockfile.relative_to(ROOT) if lockfile.is_relative_to(ROOT) else lockfile}"
                         f" in {time.monotonic() - started:.1f} s")
        finally:
            procs.stop(run_dir, seeder)
            cfg.unlink(missing_ok=True)
        if was_serving:
            self.start(run_dir, log_dir)
        return todo

    def packages(self) -> list[str]:
        """Names of the packages in its storage."""
        if not self.storage.exists():
            return []
        names = []
        for d in sorted(self.storage.iterdir()):
            if d.name.startswith("@") and d.is_dir():
                names += [f"{d.name}/{s.name}" for s in sorted(d.iterdir()) if (s / "package.json").exists()]
            elif (d / "package.json").exists():
                names.append(d.name)
        return names


def _npm_ci(lockfile: Path, registry: str) -> None:
    """`npm ci` of the lockfile's project in a scratch dir, through the seeding verdaccio, with an empty npm cache."""
    pkg = lockfile.with_name("package.json")
    if not pkg.exists():
        raise RuntimeError(f"{lockfile}: no package.json next to it (npm ci needs both)")
    with tempfile.TemporaryDirectory(prefix="lab-npm-seed-") as tmp:
        work = Path(tmp) / "project"
        work.mkdir()
        shutil.copy2(pkg, work / "package.json")
        shutil.copy2(lockfile, work / "package-lock.json")
        # ignore-scripts: seeding fetches packages, it never runs their install scripts on the machine
        cmd = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-online",
               "--registry", registry, "--cache", str(Path(tmp) / "cache")]
        res = subprocess.run(cmd, cwd=work, check=False, capture_output=True, text=True, timeout=1200,
                             env={**os.environ, "NPM_CONFIG_UPDATE_NOTIFIER": "false"})
        if res.returncode != 0:
            raise RuntimeError(f"npm mirror: seeding {lockfile} failed: {(res.stderr or res.stdout).strip()[-1500:]}")


def _wait_ping(url: str, timeout: float, log: Path) -> None:
    """Wait until verdaccio answers /-/ping."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
    raise RuntimeError(f"npm mirror {url} not answering within {timeout:.0f} s ({last}); log {log}: {' | '.join(tail)}")
