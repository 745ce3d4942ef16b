"""ssh-audit on one host's sshd: its JSON report, and the algorithms it marks as failing."""

from __future__ import annotations

import json
import subprocess
import sys

# The algorithm lists of ssh-audit's JSON report: key exchange, host key, cipher, MAC.
KINDS = {"kex": "key exchange", "key": "host key", "enc": "cipher", "mac": "MAC"}
TIMEOUT = 60


def audit_command(address: str, port: int = 22) -> list[str]:
    """The ssh-audit command line (the venv's, as a module) giving its JSON report of address:port."""
    return [sys.executable, "-m", "ssh_audit", "--json", "--timeout", "10", f"{address}:{port}"]


def run_audit(address: str, port: int = 22) -> tuple[dict | None, str]:
    """Run ssh-audit; give (its parsed report or None, its whole output for the report)."""
    try:
        done = subprocess.run(audit_command(address, port), capture_output=True, text=True, timeout=TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        return None, f"ssh-audit {address}:{port}: no report within {TIMEOUT} s"
    output = done.stdout + done.stderr
    return parse_report(done.stdout), output


def parse_report(text: str) -> dict | None:
    """ssh-audit's JSON report, or None when it gave none (no connection: its text says why)."""
    try:
        report = json.loads(text)
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def failing_algorithms(report: dict) -> list[str]:
    """Every algorithm ssh-audit marks as failing: `cipher 3des-cbc (using broken & deprecated 3DES cipher)`."""
    failing = []
    for kind, label in KINDS.items():
        for entry in report.get(kind) or []:
            fail = (entry.get("notes") or {}).get("fail") or []
            if fail:
                failing.append(f"{label} {entry.get('algorithm')} ({'; '.join(str(note) for note in fail)})")
    return failing
