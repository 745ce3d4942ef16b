"""Where the test run's time went: seconds per test module from the JUnit files `make test` writes.

    .venv/bin/python scripts/test_times.py [reports/tests]

One line per module, slowest first, with its test count, then each file's total. CI prints it after
`make test` so that a run's breakdown (unit, each end-to-end module, the fault matrix) is in its log.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET  # nosec B405 # reads the JUnit files this run wrote itself
from collections import defaultdict
from pathlib import Path


def module_times(junit: Path) -> dict[str, tuple[float, int]]:
    """Seconds and test count per test module (the file part of each test case's class name)."""
    times: dict[str, list[float]] = defaultdict(list)
    for case in ET.parse(junit).getroot().iter("testcase"):  # nosec B314 # our own file, written by this run
        times[_module(case.get("classname", ""))].append(float(case.get("time", 0) or 0))
    return {module: (sum(values), len(values)) for module, values in times.items()}


def _module(classname: str) -> str:
    """tests.e2e.test_x.TestY → tests/e2e/test_x.py: the path up to the test_ module, classes dropped."""
    parts = classname.split(".")
    for index, part in enumerate(parts):
        if part.startswith("test_"):
            return "/".join(parts[: index + 1]) + ".py"
    return classname or "?"


def report(folder: Path) -> list[str]:
    """The breakdown's lines for every JUnit file in folder (none when there is no file)."""
    lines = []
    for junit in sorted(folder.glob("*.xml")):
        per_module = module_times(junit)
        total = sum(seconds for seconds, _ in per_module.values())
        count = sum(n for _, n in per_module.values())
        lines.append(f"{junit.name}: {count} tests, {total:.0f} s of test time")
        for module, (seconds, n) in sorted(per_module.items(), key=lambda item: -item[1][0]):
            lines.append(f"  {seconds:7.1f} s  {n:4d}  {module}")
    return lines


def main(argv: list[str]) -> int:
    """Print the breakdown; say so in one line when there is nothing to read."""
    folder = Path(argv[0] if argv else "reports/tests")
    lines = report(folder)
    print("\n".join(lines) if lines else f"test_times: no JUnit file in {folder} (run make test first)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
