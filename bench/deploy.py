"""Benchmark the deploy on the lab: first deploy, no-change redeploy, failure → rolled back → healthy.

Run as root with the lab up:  sudo .venv/bin/python bench/deploy.py [--runs 3]
Each cycle EMPTIES the lab's deployed containers (the inventory's VMIDs), deploys, deploys again; the
first deploy varies by ±15 % here, so the figures are medians of the cycles.
Targets: no-change redeploy ≤ 40 % of the first deploy; rollback of every lab container to healthy ≤ 15 s
(the owner's script waited 45 s blind).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import scenarios


def _short_deadlines(document: dict) -> None:
    document.setdefault("deploy", {})["max_health_wait"] = 20


def main(argv: list[str]) -> int:
    """Run the scenarios (first deploy and redeploy --runs times, then the failure once); print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3,
                        help="empty lab -> first deploy -> redeploy cycles; medians are reported (default 3)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    try:
        firsts, agains = [], []
        for cycle in range(1, args.runs + 1):
            scenarios.empty_lab()
            first = scenarios.run_suite("deploy")
            again = scenarios.run_suite("deploy")
            firsts.append(first.seconds)
            agains.append(again.seconds)
            print(f"cycle {cycle}: first deploy {first.seconds:5.1f} s rc={first.rc}, no-change redeploy "
                  f"{again.seconds:5.1f} s rc={again.rc} ({again.seconds / first.seconds:.0%})", flush=True)
            if first.rc or again.rc:
                print((again if again.rc else first).tail(), file=sys.stderr)
                return 1
        first_s, again_s = statistics.median(firsts), statistics.median(agains)
        print(f"first deploy (empty lab → healthy):      {first_s:6.1f} s  (median of {args.runs})")
        print(f"no-change redeploy:                       {again_s:6.1f} s  (median of {args.runs}) "
              f"= {again_s / first_s:.0%} of the first (target ≤ 40 %)")
        source = scenarios.broken_app_copy(work)
        inventory = scenarios.inventory_variant(work, "short", _short_deadlines)
        broken = scenarios.run_suite("deploy", "--ansible-var", f"app_demo_src={source}/", inventory=inventory)
        rollback = (broken.result or {}).get("rollback") or {}
        print(f"failed deploy, end to end:                {broken.seconds:6.1f} s  rc={broken.rc}")
        print(f"rollback of {len(rollback.get('rolled_back', {}))} containers → healthy:       "
              f"{rollback.get('seconds', float('nan')):6.1f} s  ok={rollback.get('ok')} (target ≤ 15 s)")
        return 0 if rollback.get("ok") else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
