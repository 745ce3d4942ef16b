"""The fault matrix's table: one row per fault, from reports/faults/<row>.json (written by tests/faults/).

    sudo .venv/bin/python bench/faults.py --run      run the matrix (pytest -m faults, the lab up), then print
    .venv/bin/python bench/faults.py                 print the rows recorded by the last run
    .venv/bin/python bench/faults.py -k "ansible"    --run only the rows pytest's -k selects

Target: every row "as expected": the outcome expected (restored / refused before side effects / reported
incomplete with the exact command, which then restores), no snapshot lost or left beyond the retention,
the runner untouched, a failing exit status, 0 hits of the run's secret values.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROWS_DIR = ROOT / "reports" / "faults"
COLUMNS = [
    ("row", "row"), ("stage", "stage"), ("expected", "expected"), ("happened", "what happened"),
    ("exit_status", "exit"), ("deploy_seconds", "deploy s"), ("seconds_to_healthy", "to healthy s"),
    ("snapshots", "snapshots before → after"), ("runner_untouched", "runner untouched"),
    ("secret_hits", "secret hits"), ("verdict", "verdict"),
]


def load_rows(directory: Path = ROWS_DIR) -> list[dict]:
    """Every recorded row, in the matrix's order (the test ids' order of tests/faults)."""
    rows = []
    for path in sorted(directory.glob("*.json")):
        try:
            rows.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            rows.append({"row": path.stem, "verdict": f"unreadable: {exc}"})
    order = ("proxmox", "terraform", "ansible", "health")
    return sorted(rows, key=lambda r: (next((i for i, p in enumerate(order) if r["row"].startswith(p)), 9), r["row"]))


def cell(row: dict, key: str) -> str:
    """One cell's text (markdown-safe)."""
    if key == "snapshots":
        value = f"{row.get('snapshots_before', '?')} → {row.get('snapshots_after', '?')}"
        extra = row.get("snapshots_lost") or row.get("beyond_retention")
        value += f" (lost/beyond: {extra})" if extra else ""
    elif key == "happened":
        value = row.get("happened", "")
        value += f"; then {row['recovery']}" if row.get("recovery") else ""
        value += f" — {row['error']}" if row.get("error") else ""
    elif key == "seconds_to_healthy":
        value = row.get(key)
        failing = row.get("health_failing_before") or []
        if failing:  # the health runs that failed first, and the tests the last of them still failed
            value = f"{value if value is not None else 'never'} (after {len(failing)} failed health run(s); last: " \
                    f"{', '.join(failing[-1]['failed'][:3]) or 'no test named'})"
    else:
        value = row.get(key, "")
    if isinstance(value, bool):
        value = "yes" if value else "NO"
    return str("—" if value is None or value == "" else value).replace("|", "/")


def table(rows: list[dict]) -> str:
    """The markdown table of the rows, then one line of totals."""
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r, key) for key, _ in COLUMNS) + " |" for r in rows]
    good = sum(r.get("verdict") == "as expected" for r in rows)
    seconds = sum(float(r.get("row_seconds") or 0) for r in rows)
    lines += ["", f"{good}/{len(rows)} rows as expected; matrix time {seconds:.0f} s"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Run the matrix when asked, then print the table; exit 1 when a row is not as expected."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run tests/faults first (root, the lab up)")
    parser.add_argument("-k", default="", help="with --run: pytest -k expression selecting rows")
    args = parser.parse_args(argv)
    if args.run:
        for old in ROWS_DIR.glob("*.json") if not args.k else []:
            old.unlink()
        cmd = [sys.executable, "-m", "pytest", "tests/faults", "-m", "faults", "-q", "-p", "no:cacheprovider"]
        subprocess.run(cmd + (["-k", args.k] if args.k else []), cwd=ROOT, check=False)
    rows = load_rows()
    if not rows:
        print(f"no row recorded in {ROWS_DIR}: run `sudo .venv/bin/python bench/faults.py --run`", file=sys.stderr)
        return 1
    print(table(rows))
    return 0 if all(r.get("verdict") == "as expected" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
