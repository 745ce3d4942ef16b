"""A preflight that cannot start says so in one line with the fix, not in tracebacks (no lab needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"


@pytest.fixture
def kept_reports(tmp_path):
    """The checkout's latest result files as they were before the test (a deploy run rewrites them)."""
    saved = tmp_path / "saved"
    for name in ("deploy-result.md", "deploy/latest.json"):
        if (REPORTS / name).exists():
            (saved / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPORTS / name, saved / name)
    yield
    shutil.rmtree(REPORTS / "deploy" / "unitpreflight", ignore_errors=True)
    for name in ("deploy-result.md", "deploy/latest.json"):
        if (saved / name).exists():
            shutil.copy2(saved / name, REPORTS / name)
        else:
            (REPORTS / name).unlink(missing_ok=True)


def test_an_unset_token_secret_is_one_line_naming_the_variable_and_the_fix(tmp_path, kept_reports):
    """PVE_TOKEN_SECRET unset: one error, naming the variable, the CI secret and the lab's command; no traceback."""
    env = {k: v for k, v in os.environ.items() if k not in ("PVE_TOKEN_SECRET",) and not k.startswith("GITHUB_")}
    env["HOMELAB_SUITE_STATE_DIR"] = str(tmp_path / "state")
    run = subprocess.run([sys.executable, "-m", "pytest", "suites/deploy", "--inventory", "inventories/lab.yml",
                          "--run-id", "unitpreflight", "-p", "no:cacheprovider", "-q"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "Traceback" not in out and "During handling" not in out and "ProxmoxError" not in out, out
    # Once in ERRORS; pytest's short summary repeats it on the "ERROR <test> - …" line (whole on CI, cut on a tty).
    said = [line for line in out.splitlines() if "PVE_TOKEN_SECRET is unset or empty" in line]
    errors = [line for line in said if not line.startswith("ERROR ")]
    assert len(errors) == 1 and len(said) <= 2, out
    assert "repository secret PVE_TOKEN_SECRET" in errors[0] and 'eval "$(python -m lab env)"' in errors[0]
    assert "1 error" in out
