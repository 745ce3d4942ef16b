"""Allure helpers: harmless without allure, redacted with it, environment and categories at session end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from plugins.report.allure_output import (
    CATEGORIES,
    INFRASTRUCTURE_PATTERN,
    attach_json,
    attach_text,
    step,
    write_categories,
    write_environment,
)
from plugins.report.redaction import Redactor

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SECRET = "0b7e9a52-5c1f-4a43-9e0d-5f2f3c1a9d77"


def test_helpers_are_harmless_when_allure_is_not_writing(tmp_path):
    """Without --alluredir the helpers do nothing and raise nothing."""
    with step(f"snapshot with {SECRET}"):
        attach_text("log", f"secret {SECRET}")
        attach_json("doc", {"a": SECRET, "b": [1, 2]})
    assert not list(tmp_path.iterdir())


def test_environment_properties_are_redacted_and_escaped(tmp_path, monkeypatch):
    """key=value lines, sorted, newlines escaped, secrets masked."""
    monkeypatch.setattr("plugins.report.redaction.REDACTOR", Redactor([SECRET]))
    path = write_environment(tmp_path, {"node": "homelab", "run id": "42", "note": f"a\nb {SECRET}"})
    assert path.read_text() == "node=homelab\nnote=a\\nb ***\nrun_id=42\n"


def test_a_later_session_keeps_the_earlier_sessions_properties(tmp_path):
    """`make health` after `make deploy`: the deploy's run id and versions stay, the health session's values win."""
    write_environment(tmp_path, {"run_id": "42", "proxmox_version": "8.2", "node": "old"})
    path = write_environment(tmp_path, {"node": "homelab", "environment": "lab"})
    assert path.read_text() == "environment=lab\nnode=homelab\nproxmox_version=8.2\nrun_id=42\n"


def test_categories_separate_infrastructure_failures_from_defects(tmp_path):
    """categories.json: infrastructure first (first match wins), then product and test defects."""
    data = json.loads(write_categories(tmp_path).read_text())
    assert [c["name"] for c in data] == ["Infrastructure failures", "Product defects", "Test defects"]
    assert data == CATEGORIES


INNER_CONFTEST = """
import os
import pytest
from plugins.report.redaction import register_secrets
from plugins.report.allure_output import set_environment

pytest_plugins = ["plugins.report.plugin"]


def pytest_configure(config):
    register_secrets(os.environ["INNER_SECRET"])
    set_environment(config, environment="lab", node="homelab", run_id="42", token=os.environ["INNER_SECRET"])
"""

INNER_TESTS = """
import logging
import os
from plugins.proxmox.tasks import ProxmoxError
from plugins.report.allure_output import attach_json, attach_text, step


def test_attaches():
    with step("snapshot " + os.environ["INNER_SECRET"]):
        attach_text("log", "secret=" + os.environ["INNER_SECRET"])
        attach_json("doc", {"secret": os.environ["INNER_SECRET"]})
    logging.getLogger("inner").warning("logged %s", os.environ["INNER_SECRET"])
    assert False, "product says no"


def test_infrastructure():
    raise ProxmoxError("node 'pve' not found on https://127.0.0.1:8006; nodes: homelab")
"""


def test_session_end_writes_environment_and_categories_with_nothing_secret(tmp_path):
    """A real pytest run with --alluredir: files written, no attachment or result contains the secret."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent(INNER_CONFTEST))
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    results = tmp_path / "allure-results"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INNER_SECRET": SECRET}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--alluredir={results}"],
                         check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    properties = dict(line.split("=", 1) for line in (results / "environment.properties").read_text().splitlines())
    assert {k: properties[k] for k in ("environment", "node", "run_id", "token")} == {
        "environment": "lab", "node": "homelab", "run_id": "42", "token": "***"}
    assert properties["ansible_version"] and properties["pytest_version"]  # what every session knows
    assert (results / "categories.json").is_file()
    written = {p.name: p.read_text(errors="replace") for p in results.iterdir()}
    leaking = [name for name, text in written.items() if SECRET in text]
    assert not leaking, f"secret found in allure results: {', '.join(leaking)}"
    assert any("secret=***" in text for text in written.values())
    outcomes = [json.loads(t) for n, t in written.items() if n.endswith("-result.json")]
    assert {o["name"]: o["status"] for o in outcomes} == {"test_attaches": "failed", "test_infrastructure": "broken"}
    infra = next(o for o in outcomes if o["name"] == "test_infrastructure")
    assert re.fullmatch(INFRASTRUCTURE_PATTERN, infra["statusDetails"]["message"])
