"""make lint's code scans: the audited secrets baseline, checkov's and bandit's accepted findings each with a
reason, and the three tools finding what they are there to find (plugins/tools/code_scan.py, scripts/lint.py)."""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest

from plugins.tools import code_scan

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
_spec = importlib.util.spec_from_file_location("lint_script_scans", ROOT / "scripts" / "lint.py")
lint = importlib.util.module_from_spec(_spec)
sys.modules["lint_script_scans"] = lint  # dataclasses look their module up in sys.modules
_spec.loader.exec_module(lint)

needs_checkov = pytest.mark.skipif(not lint.CHECKOV.exists(), reason="no .venv-checkov: make install creates it")
needs = {tool: pytest.mark.skipif(not (BIN / tool).exists(), reason=f"{tool} not installed (requirements.txt)")
         for tool in ("detect-secrets", "bandit")}


def _token(prefix: str, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    """A secret-shaped value made at run time: no literal in this file for the scanners to find."""
    return prefix + "".join(random.Random(24).choice(alphabet) for _ in range(length))  # nosec B311 # a fake


# -- detect-secrets -------------------------------------------------------------------------------------

def test_every_finding_in_the_secrets_baseline_is_audited_as_a_false_positive():
    """.secrets.baseline holds no new finding and no real secret: a real one is removed, not baselined."""
    baseline = json.loads((ROOT / ".secrets.baseline").read_text())
    assert code_scan.baseline_count(baseline) > 0, ".secrets.baseline has no result: was it generated?"
    assert not code_scan.unaudited_secrets(baseline), "\n".join(f.line() for f in code_scan.unaudited_secrets(baseline))


def test_a_new_or_real_finding_is_reported_by_file_line_and_type_never_by_value():
    """Missing is_secret means not audited; is_secret true means a real secret to remove; false passes."""
    baseline = {"results": {"a.py": [{"type": "Secret Keyword", "line_number": 3},
                                     {"type": "Private Key", "line_number": 9, "is_secret": True},
                                     {"type": "Hex High Entropy String", "line_number": 12, "is_secret": False}]}}
    lines = [f.line() for f in code_scan.unaudited_secrets(baseline)]
    assert lines == [f"a.py:3: Secret Keyword {code_scan.NOT_AUDITED}", f"a.py:9: Private Key {code_scan.MARKED_REAL}"]


@needs["detect-secrets"]
def test_detect_secrets_with_the_baselines_settings_finds_a_token_added_to_a_tracked_file(tmp_path):
    """The scan make lint runs (scan --baseline on a copy) reports a GitHub token in a newly tracked file."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "settings.py").write_text(f'TOKEN = "{_token("ghp_", 36)}"\n')
    subprocess.run(["git", "-C", str(tmp_path), "add", "settings.py"], check=True)
    baseline = tmp_path / "baseline.json"
    baseline.write_text((ROOT / ".secrets.baseline").read_text())
    subprocess.run([str(BIN / "detect-secrets"), "scan", "--baseline", str(baseline)], cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    found = code_scan.unaudited_secrets(json.loads(baseline.read_text()))
    assert [(f.where, f.rule) for f in found] == [("settings.py:1", "GitHub Token")]


# -- checkov ---------------------------------------------------------------------------------------------

def test_checkovs_concatenated_json_documents_are_all_read():
    """checkov -o json prints one document per directory, objects or lists: every framework's report counts."""
    text = (json.dumps({"passed": 0, "failed": 0, "skipped": 0}) + "\n"
            + json.dumps({"check_type": "ansible", "results": {}, "summary": {"passed": 2, "failed": 0, "skipped": 0}})
            + "\n" + json.dumps([{"check_type": "github_actions", "results": {},
                                  "summary": {"passed": 90, "failed": 1, "skipped": 1}}]))
    assert code_scan.checkov_counts(code_scan.checkov_reports(text)) == {"passed": 92, "failed": 1, "skipped": 1}


def test_a_checkov_skip_without_a_reason_fails_and_one_with_a_reason_passes():
    """An inline skip needs `:why`; checkov gives a bare skip the comment "No comment provided"."""
    def skipped(comment):
        return {"check_id": "CKV_GHA_7", "file_abs_path": str(ROOT / ".github/workflows/x.yml"),
                "file_line_range": [5, 8], "check_result": {"result": "SKIPPED", "suppress_comment": comment}}
    report = {"results": {"skipped_checks": [skipped("No comment provided"), skipped("inputs are validated")]}}
    found = code_scan.checkov_findings([report], ROOT)
    assert [(f.where, f.rule) for f in found] == [(".github/workflows/x.yml:5-8", "CKV_GHA_7")]


def test_every_checkov_skip_in_the_repository_says_why():
    """.checkov.yaml's skip-check entries carry a comment; inline `checkov:skip=` in the scanned trees a reason."""
    assert not code_scan.skips_without_reason((ROOT / ".checkov.yaml").read_text(), "skip-check")
    bare = {str(p.relative_to(ROOT)): lines for tree in ("terraform", "ansible", ".github/workflows")
            for p in (ROOT / tree).rglob("*") if p.is_file() and p.suffix in (".tf", ".yml", ".yaml")
            if (lines := code_scan.inline_checkov_skips_without_reason(p.read_text()))}
    assert not bare, f"checkov:skip without `:reason`: {bare}"


def test_a_skip_list_entry_without_a_comment_is_named():
    """Block lists need `# why` per entry; a non-empty inline list cannot carry one, so it fails whole."""
    text = "skip-check:\n  - CKV_A_1  # why\n  - CKV_A_2\nother: 1\n  - CKV_A_3\n"
    assert code_scan.skips_without_reason(text, "skip-check") == ["CKV_A_2"]
    assert code_scan.skips_without_reason("skip-check: [CKV_A_1, CKV_A_2]\n", "skip-check") == ["CKV_A_1", "CKV_A_2"]
    assert code_scan.skips_without_reason("skip-check: []\n", "skip-check") == []
    assert code_scan.inline_checkov_skips_without_reason("# checkov:skip=CKV_A_1\n# checkov:skip=CKV_A_2:why\n") == [1]


@needs_checkov
def test_checkov_as_lint_runs_it_fails_a_workflow_with_write_all_permissions(tmp_path):
    """checkov (its own venv, offline) finds CKV2_GHA_1 on a workflow that grants write-all."""
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text("name: bad\non: push\npermissions: write-all\njobs:\n  a:\n"
                                       "    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n")
    done = subprocess.run([str(lint.CHECKOV), "-d", ".github/workflows", "--framework", "github_actions",
                           "--skip-download", "--compact", "-o", "json"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False, env=lint.tool_env())
    found = code_scan.checkov_findings(code_scan.checkov_reports(done.stdout), tmp_path)
    assert done.returncode == 1 and "CKV2_GHA_1" in {f.rule for f in found}


# -- bandit ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", ["bandit.yaml", "bandit-lab.yaml", "bandit-tests.yaml"])
def test_every_bandit_skip_says_why(config):
    """Each test a bandit configuration skips has its reason on its line."""
    text = (ROOT / config).read_text()
    assert "skips:" in text
    assert not code_scan.skips_without_reason(text, "skips"), f"{config}: skip without a reason"


def test_a_nosec_must_name_its_rule_and_why():
    """`# nosec B108 # why` passes; a bare nosec, or one without a reason, is named by its line."""
    source = ("a = 1  # nosec\nb = 2  # nosec B108\nc = 3  # nosec B108 # mkdtemp: a new 0700 dir\n"
              "d = '# nosec in a string is no comment'\ne = 4  # nosec B105, B106 # test values\n")
    assert code_scan.nosec_without_reason(source) == [1, 2]


@needs["bandit"]
def test_bandit_with_the_projects_settings_finds_a_shell_and_only_tests_may_assert(tmp_path):
    """shell=True (B602) is found under every configuration; assert (B101) only outside tests/ and suites/."""
    (tmp_path / "tool.py").write_text("import subprocess\n\n\ndef go(cmd):\n"
                                      "    assert cmd\n    subprocess.run(cmd, shell=True)\n")

    def rules(config):
        out = tmp_path / f"{config}.json"
        subprocess.run([str(BIN / "bandit"), "-q", "-c", str(ROOT / config), "-r", "tool.py", "-f", "json",
                        "-o", str(out)], cwd=tmp_path, capture_output=True, timeout=120, check=False)
        return {f.rule for f in code_scan.bandit_findings(json.loads(out.read_text()))}

    assert rules("bandit.yaml") == {"B101", "B602"}
    assert rules("bandit-tests.yaml") == {"B602"}


def test_lint_lists_the_three_code_scans_before_the_unit_tests():
    """make lint runs detect-secrets, checkov and bandit, and the slow unit tests last."""
    names = list(lint.CHECKS)
    assert {"detect-secrets", "checkov", "bandit"} <= set(names) and names[-1] == "unit-tests"


@pytest.mark.skipif(not shutil.which("git"), reason="git not installed")
def test_the_bandit_runs_cover_every_tracked_python_file():
    """No tracked .py file escapes bandit: each lies under one of BANDIT_RUNS' paths."""
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    covered = [p for _, paths in lint.BANDIT_RUNS for p in paths]
    missed = [f for f in tracked.stdout.split() if not any(f == p or f.startswith(p + "/") for p in covered)]
    assert not missed, f"tracked Python no bandit run reads: {missed} (scripts/lint.py BANDIT_RUNS)"
