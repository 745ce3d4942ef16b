"""Benchmark the deploy on the lab: first deploy, no-change redeploy, failure → rolled back → healthy.

Run as root with the lab up:  sudo .venv/bin/python bench/deploy.py
It EMPTIES the lab's deployed containers first (the inventory's VMIDs), then deploys again.
Targets: no-change redeploy ≤ 40 % of the first deploy; rollback of every lab container to healthy ≤ 15 s
(the owner's script waited 45 s blind).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import scenarios


def _short_deadlines(document: dict) -> None:
    for host in document["hosts"]:
        for service in host.get("services", []):
            service["deadline"] = min(service["deadline"], 20)


def main() -> int:
    """Run the three scenarios and print their figures."""
    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    try:
        scenarios.empty_lab()
        first = scenarios.run_suite("deploy")
        print(f"first deploy (empty lab → healthy):      {first.seconds:6.1f} s  rc={first.rc}")
        again = scenarios.run_suite("deploy")
        ratio = again.seconds / first.seconds
        print(f"no-change redeploy:                       {again.seconds:6.1f} s  rc={again.rc}  "
              f"= {ratio:.0%} of the first (target ≤ 40 %)")
        source = work / "app-demo"
        shutil.copytree(scenarios.ROOT / "app-demo", source)
        (source / "README.md").write_text("changed by the broken deploy\n")
        inventory = scenarios.inventory_variant(work, "short", _short_deadlines)
        broken = scenarios.run_suite("deploy", "--ansible-var", "app_demo_fault_inject=health_500",
                                     "--ansible-var", f"app_demo_src={source}/", inventory=inventory)
        rollback = (broken.result or {}).get("rollback") or {}
        print(f"failed deploy, end to end:                {broken.seconds:6.1f} s  rc={broken.rc}")
        print(f"rollback of {len(rollback.get('rolled_back', {}))} containers → healthy:       "
              f"{rollback.get('seconds', float('nan')):6.1f} s  ok={rollback.get('ok')} (target ≤ 15 s)")
        return 0 if first.rc == 0 and again.rc == 0 and rollback.get("ok") else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
