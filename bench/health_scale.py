"""Benchmark `pytest suites/health` at 5, 20, 50 lab hosts against the naive sequential sweep it replaces.

    .venv/bin/python bench/health_scale.py --sizes 5,20,50

For each size: creates the hosts (VMIDs 830.., 198.18.0.130..), prepares them as the bootstrap role would
(deploy user with the runner's key, docker group, one healthchecked container, an HTTP service on :8080),
writes an inventory, times `pytest suites/health` (its peak RSS too), then the owner's health-check.sh way:
one fresh `ssh` per check per host and one `curl` per service, sequentially, then the floor: one bare SSH
login per host, in parallel (the hosts' sshd runs on the same cores as the suite). Every host is destroyed
at the end.
Also gives HealthFleet to tests/lab/test_health_*.py.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plugins.health.hosts import HOST_WORKERS

FIRST_VMID, FIRST_OCTET = 830, 130  # VMIDs 830.., 198.18.0.130.. by default
LAST_OCTET = 199  # the lab inventory's hosts start at 198.18.0.200
PYTHON = ROOT / ".venv" / "bin" / "python"

PREPARE = r"""set -e
id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash deploy
usermod -aG docker deploy
install -d -m 700 -o deploy -g deploy /home/deploy/.ssh
printf '%s\n' {key} > /home/deploy/.ssh/authorized_keys
chown deploy:deploy /home/deploy/.ssh/authorized_keys && chmod 600 /home/deploy/.ssh/authorized_keys
timeout 60 sh -c 'until docker info >/dev/null 2>&1; do sleep 0.2; done'
docker image inspect hc-tiny >/dev/null 2>&1 || tar -C / -cf - bin lib lib64 usr/bin/sh usr/bin/dash usr/lib64/ld-linux-x86-64.so.2 \
  usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 usr/lib/x86_64-linux-gnu/libc.so.6 usr/bin/sleep usr/bin/true \
  | docker import - hc-tiny >/dev/null
docker inspect web >/dev/null 2>&1 || docker run -d --name web --init --restart unless-stopped \
  {health} hc-tiny /usr/bin/sleep infinity >/dev/null
mkdir -p /srv/www && echo ok > /srv/www/health
systemctl is-active --quiet hc-http || systemd-run --quiet --unit hc-http python3 -m http.server 8080 \
  --bind 0.0.0.0 --directory /srv/www
timeout 60 sh -c 'until [ "$(docker inspect -f "{ready}" web)" = {ready_word} ]; do sleep 0.2; done'
timeout 30 sh -c 'until python3 -c "import urllib.request as u; u.urlopen(\"http://127.0.0.1:8080/health\")" \
  2>/dev/null; do sleep 0.2; done'
"""
HEALTHCHECK = "--health-cmd /usr/bin/true --health-interval 20s"


def prepare_script(key: str, healthcheck: bool = True) -> str:
    """PREPARE for one host: the deploy user with this (quoted) key, the container with or without a healthcheck."""
    if healthcheck:
        return PREPARE.format(key=key, health=HEALTHCHECK, ready="{{.State.Health.Status}}", ready_word="healthy")
    return PREPARE.format(key=key, health="--no-healthcheck", ready="{{.State.Status}}", ready_word="running")


def _ssh_base(key: Path, known_hosts: Path) -> list[str]:
    return ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"]


class HealthFleet:
    """N lab hosts prepared like the bootstrap role leaves them; destroy() removes every one it created."""

    def __init__(self, lab_hosts, count: int, workdir: Path, first_vmid: int = FIRST_VMID,
                 first_octet: int = FIRST_OCTET):
        """Plan the hosts and generate the admin (root) and runner (deploy) keys; nothing is created yet."""
        if first_octet < 2 or first_octet + count - 1 > LAST_OCTET:
            raise ValueError(f"{count} hosts from 198.18.0.{first_octet} do not fit in 198.18.0.2-{LAST_OCTET} "
                             f"(the lab inventory's hosts start at .{LAST_OCTET + 1})")
        self.lab, self.workdir = lab_hosts, Path(workdir)
        self.hosts = [(first_vmid + i, f"hc{first_vmid + i}", f"198.18.0.{first_octet + i}") for i in range(count)]
        self.created: list[int] = []
        self.admin_key, self.deploy_key = self.workdir / "admin_ed25519", self.workdir / "deploy_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        for key in (self.admin_key, self.deploy_key):
            if not key.exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)

    def create(self) -> None:
        """Create, start and prepare every host (in parallel); refuse an address another lab host holds."""
        ours = {vmid for vmid, _, _ in self.hosts}
        taken = {info.ip: info.vmid for info in self.lab.list() if info.vmid not in ours}
        clash = [ip for _, _, ip in self.hosts if ip in taken]
        if clash:
            raise RuntimeError(f"lab hosts already hold {', '.join(clash)}: refusing to create duplicates")
        admin_pub = self.admin_key.with_suffix(".pub").read_text()
        for vmid, hostname, ip in self.hosts:
            if self.lab.exists(vmid):  # left over by a killed run: ours by VMID range
                self.lab.destroy(vmid)
            self.created.append(vmid)
            self.lab.create(vmid, hostname, ip, 24, "198.18.0.1", None, admin_pub)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._start_and_prepare, self.hosts))

    def _start_and_prepare(self, host: tuple[int, str, str]) -> None:
        vmid, _, ip = host
        self.lab.start(vmid)
        self.lab.wait_ssh(vmid, timeout=120)
        key = shlex.quote(self.deploy_key.with_suffix(".pub").read_text().strip())
        self.root(ip, prepare_script(key), timeout=300)

    def root(self, ip: str, command: str, timeout: float = 60) -> str:
        """Run a command as root on a host (the lab's admin key); raise with its output on failure."""
        done = subprocess.run([*_ssh_base(self.admin_key, self.known_hosts), f"root@{ip}", command],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"root@{ip}: {command.splitlines()[0]!r} exited {done.returncode}: "
                               f"{(done.stderr or done.stdout).strip()[-500:]}")
        return done.stdout

    def inventory(self, path: Path, runner_host: str | None = None) -> Path:
        """Write an inventory of these hosts (the lab's proxmox/backend sections) for `pytest --inventory`."""
        document = yaml.safe_load((ROOT / "inventories" / "lab.yml").read_text())
        document["runner"] = {"host": runner_host, "deploy_key": str(self.deploy_key), "deploy_user": "deploy"}
        # the fleet's hosts are no backup job's: the lab's policy would have the health suite judge their backups
        document.pop("backup", None)
        document["hosts"] = [
            {"vmid": vmid, "hostname": hostname, "ip": ip, "roles": ["bench"], "packages": ["rsync", "python3"],
             "rollback": hostname != runner_host,
             "services": ["bench-web"]}  # services/bench-web.yml: container web, /health on 8080
            for vmid, hostname, ip in self.hosts
        ]
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def destroy(self) -> None:
        """Destroy every host this fleet created (also after a failure)."""
        errors = []
        for vmid in self.created:
            try:
                if self.lab.exists(vmid):
                    self.lab.destroy(vmid)
            except Exception as exc:  # noqa: BLE001 - keep destroying the others, report at the end
                errors.append(f"{vmid}: {exc}")
        self.created.clear()
        if errors:
            raise RuntimeError("could not destroy lab hosts: " + "; ".join(errors))


def run_suite(inventory: Path, known_hosts: Path, *extra: str, tree: Path = ROOT) -> tuple[float, int, str, int]:
    """Time `pytest suites/health` in a child (of this checkout, or another `tree`: a baseline); give (seconds, exit
    code, output, peak RSS of the child in MiB)."""
    command = [str(PYTHON), "-m", "pytest", "suites/health", f"--inventory={inventory}",
               f"--known-hosts={known_hosts}", "-q", "-p", "no:cacheprovider", *extra]
    # A user's run reads its modules' cached bytecode; PYTHONDONTWRITEBYTECODE (set in some shells) would have every
    # run compile the suite and its plugins from source, and the warm-up run warm nothing.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    started = time.monotonic()
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024  # largest child so far (KiB -> MiB)
    return seconds, done.returncode, done.stdout + done.stderr, peak


def run_sequential(fleet: HealthFleet) -> float:
    """The owner's health-check.sh way: per host one fresh ssh per check, one curl per service, in sequence."""
    base = [*_ssh_base(fleet.deploy_key, fleet.known_hosts), "-o", "ControlPath=none"]
    checks = ["true", "command -v rsync", "docker info >/dev/null", "docker inspect -f '{{.State.Status}}' web",
              "grep -c . ~/.ssh/authorized_keys", "dpkg-query -W rsync python3"]
    started = time.monotonic()
    for _, _, ip in fleet.hosts:
        for check in checks:
            subprocess.run([*base, f"deploy@{ip}", check], capture_output=True, check=False, timeout=60)
        subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "10", f"http://{ip}:8080/health"],
                       capture_output=True, check=False)
    return time.monotonic() - started


def run_login_floor(fleet: HealthFleet, workers: int = HOST_WORKERS) -> float:
    """The least any SSH-based check can cost: one fresh login (`true`) per host, hosts in parallel, as the suite
    opens them (same key exchange, same concurrency), no check at all."""
    base = [*_ssh_base(fleet.deploy_key, fleet.known_hosts), "-o", "ControlPath=none",
            "-o", "KexAlgorithms=curve25519-sha256"]

    def login(ip: str) -> None:
        subprocess.run([*base, f"deploy@{ip}", "true"], capture_output=True, check=False, timeout=60)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(login, [ip for _, _, ip in fleet.hosts]))
    return time.monotonic() - started


def main(argv: list[str]) -> int:
    """Create each size of fleet, time the suite and the sequential sweep, print the figures, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,20,50", help="comma-separated host counts (at most 70: 198.18.0.130-199)")
    parser.add_argument("--xdist", action="store_true", help="also time the suite with -n 2")
    parser.add_argument("--repeat", type=int, default=5,
                        help="suite runs per size; the median is reported (this machine's speed drifts by "
                             "a quarter from minute to minute: 5 runs steady it)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    from lab import net
    from lab.hosts import LabHosts

    net.bridge_up()
    lab = LabHosts()
    lab.ensure_base()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hc-bench-") as tmp:
        for size in sizes:
            workdir = Path(tmp) / f"size{size}"  # recreated hosts have new host keys: a known_hosts per fleet
            workdir.mkdir()
            fleet = HealthFleet(lab, size, workdir)
            try:
                t0 = time.monotonic()
                fleet.create()
                setup = time.monotonic() - t0
                inventory = fleet.inventory(workdir / "inventory.yml")
                known = workdir / "known_hosts_suite"
                run_suite(inventory, known, "--co")  # warm the import caches, not the SSH side
                runs = [run_suite(inventory, known) for _ in range(args.repeat)]
                seconds = statistics.median(r[0] for r in runs)
                code, output, peak = max(r[1] for r in runs), runs[-1][2], runs[-1][3]
                if code != 0:
                    print(output[-3000:], file=sys.stderr)
                    raise SystemExit(f"pytest suites/health failed on {size} healthy hosts (exit {code})")
                xdist = run_suite(inventory, known, "-n", "2")[0] if args.xdist else None
                sequential = run_sequential(fleet)
                floor = statistics.median(run_login_floor(fleet) for _ in range(args.repeat))
                rows.append((size, setup, seconds, xdist, sequential, peak, floor))
                print(f"{size:3d} hosts: setup {setup:6.1f} s | pytest suites/health {seconds:5.2f} s (median of "
                      f"{', '.join(f'{r[0]:.2f}' for r in runs)}; load {os.getloadavg()[0]:.1f})"
                      + (f" (-n 2: {xdist:5.2f} s)" if xdist else "")
                      + f" | sequential ssh+curl {sequential:6.1f} s | x{sequential / seconds:4.1f} faster"
                      f" | bare logins {floor:5.2f} s | peak RSS so far {peak} MiB", flush=True)
            finally:
                fleet.destroy()
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"scale: {last[0]} hosts take {last[2] / first[2]:.2f}x the time of {first[0]} hosts (target <= 2.5); "
              f"at {last[0]} hosts the suite is {last[4] / last[2]:.1f}x faster than sequential (target >= 8)")
        # What the hosts' own sshd costs on this machine: the fleet shares its cores with the suite.
        print(f"floor: {last[0]} bare logins in parallel take {last[6]:.2f} s, {first[0]} take {first[6]:.2f} s; "
              f"a suite that only logged in would need {first[2] - first[6] + last[6]:.2f} s at {last[0]} hosts = "
              f"{(first[2] - first[6] + last[6]) / first[2]:.2f}x its {first[0]}-host time")
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench/health_scale.py needs root (it creates LXC lab hosts)")
    sys.exit(main(sys.argv[1:]))
