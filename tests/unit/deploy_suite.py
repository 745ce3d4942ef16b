"""A deploy-like suite for pytester, run through the project's own plugins (the root conftest's list).

No lab, no GitHub: the environment's deploy lock lives in the test's directory, the GitHub variables are
unset (the notification goes to reports/deploy-result.md), the inventory is a copy of inventories/lab.yml.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab.yml"

# The suite's own plugin list, as the root conftest registers it.
PLUGINS = ast.literal_eval(next(
    node.value for node in ast.parse((ROOT / "conftest.py").read_text()).body
    if isinstance(node, ast.Assign) and node.targets[0].id == "pytest_plugins"))


def deploy_like(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, conftest: str = "") -> pytest.Pytester:
    """Prepare pytester's directory: the plugins (plus `conftest`), lab.yml, reports/, a private state dir."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("HOMELAB_SUITE_STATE_DIR", str(pytester.path / "state"))
    for name in ("GITHUB_API_URL", "GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_SHA", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(f"pytest_plugins = {PLUGINS!r}\n{conftest}")
    (pytester.path / "lab.yml").write_text(LAB.read_text())
    (pytester.path / "reports").mkdir()
    return pytester
