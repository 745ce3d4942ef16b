"""Benchmark of the embedded lab: base build, `lab up` (warm), create→SSH, snapshot, rollback→SSH, 5 parallel.

Run as root: `.venv/bin/python bench/lab.py [--runs N] [--cold]`. Uses VMIDs 980-984 and cleans up.
`--cold` rebuilds the base first (minutes; refused while lab hosts exist: `python -m lab down` first).
Targets: create→SSH-ready ≤ 2 s, rollback→SSH-ready ≤ 3 s, 5 parallel rollbacks ≤ 5 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab import base, net
from lab.hosts import LabHosts

VMIDS = list(range(980, 985))


def timed(fn, *args, **kw) -> float:
    """Seconds one call takes."""
    t0 = time.monotonic()
    fn(*args, **kw)
    return time.monotonic() - t0


def report(label: str, values: list[float]) -> None:
    """Print the median (and the spread) of a measurement."""
    print(f"{label:<36} median {statistics.median(values):6.2f} s   "
          f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})", flush=True)


def main() -> int:
    """Measure and print the figures; destroy every host it made."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="rebuild the base first and time it")
    args = parser.parse_args()
    runs = args.runs
    net.bridge_up()
    hosts = LabHosts()
    if args.cold:
        if hosts.vmids():
            sys.exit(f"--cold rebuilds the base under live hosts {hosts.vmids()}: run `python -m lab down` first")
        print(f"base build (cold)                   {base.build_base(hosts.paths, force=True):.1f} s", flush=True)
    else:
        cached = base.is_cached(hosts.paths)
        t0 = time.monotonic()
        hosts.ensure_base()
        print("base build (cold)                   " +
              ("cached (--cold to rebuild and time it)" if cached else f"{time.monotonic() - t0:.1f} s"), flush=True)
    root = Path(__file__).resolve().parents[1]
    up = [timed(subprocess.run, [sys.executable, "-m", "lab", "up"], cwd=root, check=True,
                capture_output=True) for _ in range(runs)]
    report("lab up (warm)", up)
    keydir = Path(tempfile.mkdtemp(prefix="lab-bench-"))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keydir / "k")],
                   check=True)
    key = keydir / "k.pub"
    ips = {v: f"198.18.0.{v - 800}" for v in VMIDS}
    try:
        for v in VMIDS:
            if hosts.exists(v):
                hosts.destroy(v)
        create, snap, roll = [], [], []
        for i in range(runs):
            v = VMIDS[0]
            t0 = time.monotonic()
            hosts.create(v, f"bench{v}", ips[v], 24, "198.18.0.1", None, key.read_text())
            hosts.start(v)
            hosts.wait_ssh(v, 30)
            create.append(time.monotonic() - t0)
            if i < runs - 1:
                hosts.destroy(v)
        report("create -> SSH-ready", create)
        v = VMIDS[0]
        # let docker come up once so the snapshot holds a real docker dir
        time.sleep(1.5)
        for i in range(runs):
            snap.append(timed(hosts.snapshot, v, f"s{i}"))
            hosts.wait_ssh(v, 30)
        report("snapshot (running host, freeze+copy)", snap)
        for _ in range(runs):
            t0 = time.monotonic()
            hosts.rollback(v, "s0", start=True)
            hosts.wait_ssh(v, 30)
            roll.append(time.monotonic() - t0)
        report("rollback -> SSH-ready", roll)
        for w in VMIDS[1:]:
            hosts.create(w, f"bench{w}", ips[w], 24, "198.18.0.1", None, key.read_text())
            hosts.start(w)
        for w in VMIDS:
            hosts.wait_ssh(w, 60)
        time.sleep(1.5)
        for w in VMIDS[1:]:
            hosts.snapshot(w, "s0")
        par = []
        for _ in range(runs):
            for w in VMIDS:
                hosts.wait_ssh(w, 60)
            t0 = time.monotonic()

            def one(w: int) -> None:
                hosts.rollback(w, "s0", start=True)
                hosts.wait_ssh(w, 60)

            with ThreadPoolExecutor(len(VMIDS)) as pool:
                list(pool.map(one, VMIDS))
            par.append(time.monotonic() - t0)
        report(f"{len(VMIDS)} rollbacks in parallel -> SSH", par)
    finally:
        for v in VMIDS:
            if hosts.exists(v):
                hosts.destroy(v)
        shutil.rmtree(keydir, ignore_errors=True)
        left = hosts.find_leftovers(VMIDS)
        print("leftovers: " + (", ".join(left) if left else "none"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
