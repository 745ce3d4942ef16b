"""Benchmark of the lab's image builds: cold build per image, refill of a fresh registry, warm check.

Run as root: `.venv/bin/python bench/images.py [--runs N] [--workers N] [--only RECIPE] [--lab]`. The cold builds go into
a temporary cache and a temporary registry on 127.0.0.1 on a free port (stopped by PID, both removed after,
also on a failure or SIGTERM), so the lab's own cache stays warm and the lab is not needed. `--workers`:
how many builds run at once (default: what `lab up` uses, lab/config.py image_builds). `--only netbox`: that
recipe and its parents alone (NetBox's chain, the longest of a cold `lab up`), each build's steps timed. `--lab` also times the warm image step
of `lab up` against the lab's registry (run it under the lab lock, with the lab up).
Target: warm image work of `lab up` ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab import config, orchestrate
from lab.images import build, publish
from lab.images import recipe as image_recipes
from lab.registry import Registry


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def temp_registry(root: Path) -> Registry:
    """A registry on 127.0.0.1 with its own storage and CA under root."""
    return Registry("127.0.0.1", free_port(), root / "storage", root / "conf", root / "ca")


def timed_ensure(registry: Registry, cache: Path, progress=lambda _: None, workers: int | None = None,
                 recipes: dict[str, image_recipes.Recipe] | None = None) -> tuple[float, list[publish.Outcome]]:
    """Seconds one ensure() takes, and what it did."""
    t0 = time.monotonic()
    out = publish.ensure(registry, cache, progress, recipes=recipes, workers=workers)
    return time.monotonic() - t0, out


def chain(name: str, recipes: dict[str, image_recipes.Recipe]) -> dict[str, image_recipes.Recipe]:
    """The recipe and its parents, parents first."""
    if name not in recipes:
        raise SystemExit(f"bench/images.py: --only {name}: no such recipe; expected one of {', '.join(recipes)}")
    names = [name]
    while recipes[names[-1]].parent in recipes:
        names.append(recipes[names[-1]].parent)
    return {n: recipes[n] for n in reversed(names)}


def main() -> int:
    """Measure and print the figures; remove the temporary cache and registries."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="warm checks to take the median of")
    parser.add_argument("--lab", action="store_true", help="also time the warm check against the lab's registry")
    parser.add_argument("--quiet", action="store_true", help="no build progress lines")
    parser.add_argument("--workers", type=int, default=None, help="builds at once (default: lab up's)")
    parser.add_argument("--only", metavar="RECIPE", help="build this recipe and its parents alone")
    args = parser.parse_args()
    recipes = image_recipes.load_all()
    recipes = chain(args.only, recipes) if args.only else recipes
    workers = config.image_builds() if args.workers is None else args.workers
    if workers < 1:
        parser.error(f"--workers {workers}: expected 1 or more")

    def stop(signum, _frame):  # SIGTERM unwinds like Ctrl-C: the registry is stopped and the temp dirs go
        raise SystemExit(f"bench/images.py: stopped by signal {signum}")
    signal.signal(signal.SIGTERM, stop)
    work = Path(tempfile.mkdtemp(prefix="bench-images-", dir="/var/tmp"))  # nosec B108 # mkdtemp: a new 0700 dir
    started = time.monotonic()

    def progress(line: str) -> None:
        if not args.quiet:
            print(f"  [{time.monotonic() - started:6.1f} s] {line}", flush=True)

    registries = []
    try:
        cache = work / "cache"
        first = temp_registry(work / "reg1")
        registries.append(first)
        first.start(work / "run1", work / "log1")
        load_before = os.getloadavg()
        print(f"cold build of every recipe, {workers} at once; load average {load_before[0]:.1f} "
              f"{load_before[1]:.1f} {load_before[2]:.1f} on {os.cpu_count()} cores", flush=True)
        total, cold = timed_ensure(first, cache, progress, workers, recipes)
        load_after = os.getloadavg()
        print(f"{'image':<34} {'cold build':>10} {'compressed':>11}  version")
        for o in cold:
            print(f"{o.references[0]:<34} {o.built_seconds:>8.1f} s {o.compressed_bytes / 2**20:>7.0f} MiB  {o.version}")
        for o in cold:
            steps = json.loads((build.entry_dir(cache, recipes[o.recipe], o.hash) / build.META).read_text())
            print(f"  {o.recipe}: " + ", ".join(f"{what} {sec:.1f} s" for what, sec in steps["step_seconds"].items()))
        print(f"{'all images, cold (build + push)':<34} {total:>8.1f} s  ({workers} at once)")
        print(f"{'the builds own times, summed':<34} {sum(o.built_seconds for o in cold):>8.1f} s")
        print(f"{'load average after the cold build':<34} {load_after[0]:>8.1f}   (1, 5, 15 min: "
              f"{load_after[0]:.1f} {load_after[1]:.1f} {load_after[2]:.1f}; before: {load_before[0]:.1f})")
        print(f"{'image cache on disk':<34} {publish.cache_bytes(cache) / 2**20:>8.0f} MiB")
        print(f"{'registry storage':<34} {publish.cache_bytes(first.storage) / 2**20:>8.0f} MiB")
        second = temp_registry(work / "reg2")
        registries.append(second)
        second.start(work / "run2", work / "log2")
        refill, out = timed_ensure(second, cache, recipes=recipes)
        if any(o.built_seconds for o in out):  # an assert would vanish under python -O
            raise SystemExit("bench/images.py: a fresh registry was refilled by building, not from the cache")
        print(f"{'fresh registry refilled from cache':<34} {refill:>8.2f} s")
        warm = [timed_ensure(second, cache, recipes=recipes)[0] for _ in range(args.runs)]
        print(f"{'warm check (temp registry)':<34} {statistics.median(warm):>8.3f} s  (median of {args.runs})")
        if args.lab:
            if not orchestrate.REGISTRY.pid(orchestrate.PATHS.run_dir):
                sys.exit("--lab: the lab registry is not running: `python -m lab up` first (under the lab lock)")
            lab = [timed_ensure(orchestrate.REGISTRY, orchestrate.IMAGE_CACHE)[0] for _ in range(args.runs)]
            print(f"{'warm lab up image step (lab)':<34} {statistics.median(lab):>8.3f} s  (median of {args.runs})")
        print(f"{'recipes':<34} {len(recipes):>8}")
    finally:
        for i, reg in enumerate(registries, 1):
            reg.stop(work / f"run{i}")
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
