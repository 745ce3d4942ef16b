"""scripts/test_times.py: the time per test module that CI prints after make test."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("test_times_script", ROOT / "scripts" / "test_times.py")
test_times = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(test_times)

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.e2e.test_deploy_e2e" name="test_first" time="120.5"/>
<testcase classname="tests.e2e.test_deploy_e2e" name="test_second" time="30.0"/>
<testcase classname="tests.faults.test_fault_matrix" name="test_fault[a]" time="40.25"/>
<testcase classname="tests.lab.test_hosts.TestHosts" name="test_ssh" time="2.0"/>
</testsuite></testsuites>
"""


def test_each_module_gets_its_total_and_count_classes_folded_in(tmp_path):
    (tmp_path / "lab.xml").write_text(JUNIT)
    assert test_times.module_times(tmp_path / "lab.xml") == {
        "tests/e2e/test_deploy_e2e.py": (150.5, 2),
        "tests/faults/test_fault_matrix.py": (40.25, 1),
        "tests/lab/test_hosts.py": (2.0, 1),
    }


def test_the_report_lists_modules_slowest_first_under_their_file(tmp_path):
    (tmp_path / "lab.xml").write_text(JUNIT)
    lines = test_times.report(tmp_path)
    assert lines[0] == "lab.xml: 4 tests, 193 s of test time"
    assert [line.split()[-1] for line in lines[1:]] == [
        "tests/e2e/test_deploy_e2e.py",
        "tests/faults/test_fault_matrix.py",
        "tests/lab/test_hosts.py",
    ]


def test_no_junit_file_is_one_line_not_a_traceback(tmp_path, capsys):
    assert test_times.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"test_times: no JUnit file in {tmp_path} (run make test first)"
