"""Benchmark `make security` on the deployed lab (issue 24): the whole suite's wall time, and without lynis.

Run as root with the lab up and deployed:  sudo .venv/bin/python bench/security.py [--runs 2]
Target: the whole suite under 60 s on the lab (docs/reference/figures.md has the measures).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import scenarios


def seconds(*args: str) -> float:
    """One `make security` (plus pytest args); it must pass; its wall time."""
    run = scenarios.run_suite("security", *args)
    if run.rc != 0:
        sys.exit(f"make security {' '.join(args)}: rc {run.rc}\n{run.tail()}")
    return run.seconds


def main() -> None:
    """Time the suite `--runs` times, whole and without lynis; print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    runs = parser.parse_args().runs
    for label, args in (("make security (every control)", ()), ("make security -k 'not lynis'", ("-k", "not lynis"))):
        values = [seconds(*args) for _ in range(runs)]
        print(f"{label:<40} median {statistics.median(values):6.1f} s   (min {min(values):.1f}, "
              f"max {max(values):.1f}, n={len(values)})", flush=True)


if __name__ == "__main__":
    main()
