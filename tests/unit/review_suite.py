"""A small deploy + health run for pytester that writes Allure results, as `make deploy` and `make health` do.

Stages parametrized by the inventory's Host objects (as suites/deploy and suites/health are), one ansible host
failing with a task's output, a faked rollback: what a reviewer opens. No lab: the work is stubbed, the naming,
labels, attachments and the end of the run are the project's own plugins.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deploy_suite import deploy_like

FAKE_ROLLBACK = '''
def _fake_rollback(deploy, write):
    write("deploy failed: rolling back (recorded outcome)")
    return {"ok": True, "rolled_back": {"proxy": "deploy_review1"}, "task_errors": {}, "unhealthy": {},
            "excluded": [], "seconds": 2.5}


def pytest_configure(config):
    import plugins.deploy.finish.end as finish

    finish.roll_back_session = _fake_rollback


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("check"):
            item.user_properties.append(("health_cell", (item.callspec.params["health_host"].hostname, "rsync")))
'''

STAGES = '''
import pytest
from plugins.deploy.stages.ansible import host_outcome
from plugins.inventory import get_inventory
from plugins.report import allure_output
from plugins.tools.playbooks import HostStats, PlaybookResult


def pytest_generate_tests(metafunc):
    hosts = [h for h in get_inventory(metafunc.config).hosts if h.hostname in ("proxy", "app-demo")]
    if "stage_host" in metafunc.fixturenames:
        metafunc.parametrize("stage_host", hosts, ids=[h.hostname for h in hosts])
    if "health_host" in metafunc.fixturenames:
        metafunc.parametrize("health_host", hosts)


@pytest.mark.stage("plan")
def test_the_plan_is_computed(deployment):
    deployment.stage("plan").summary = "1 to add, 0 to change, 0 to destroy"
    allure_output.attach_text("terraform plan summary", "Plan: 1 to add\\n  create  module.ct[\\"proxy\\"]")


@pytest.mark.stage("snapshot")
def test_every_existing_rollback_host_has_a_snapshot_of_this_run(deployment):
    deployment.snapshots[200] = "deploy_review1"


FAILED = {"event": "runner_on_failed", "event_data": {"host": "app-demo", "task": "Start the app", "role": "app_demo",
          "res": {"msg": "non-zero return code", "cmd": "docker compose up", "rc": 1, "stderr": "port 8080 in use"}}}
RESULT = PlaybookResult("site.yml", 2, "failed", {"proxy": HostStats(ok=12, changed=2),
                        "app-demo": HostStats(ok=5, failures=1)}, events=[FAILED])


@pytest.mark.stage("ansible")
def test_the_host_is_configured(stage_host):
    outcome = host_outcome(RESULT, stage_host.hostname, "site.yml")
    assert not outcome.problem, outcome.problem
    if outcome.skip:
        pytest.skip(outcome.skip)


@pytest.mark.check("rsync_installed")
def test_rsync_is_installed(health_host):
    assert health_host.hostname
'''


def review_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, results: Path,
               *args: str) -> pytest.RunResult:
    """Run the small deploy + health suite once with --alluredir `results`; give pytester's result."""
    if not (pytester.path / "test_review.py").exists():
        deploy_like(pytester, monkeypatch, FAKE_ROLLBACK)
        pytester.makepyfile(test_review=STAGES)
    return pytester.runpytest_subprocess("--inventory", "lab.yml", "-p", "no:cacheprovider",
                                         f"--alluredir={results}", *args)


def read_results(results: Path) -> list[dict]:
    """Every *-result.json of an Allure results directory."""
    return [json.loads(path.read_text()) for path in results.glob("*-result.json")]


def attachment_texts(results: Path, result: dict) -> dict[str, str]:
    """A result's attachments (its steps' too) by name: their text."""
    found = {}
    for owner in [result, *result.get("steps", [])]:
        for attachment in owner.get("attachments", []):
            found[attachment["name"]] = (results / attachment["source"]).read_text()
    return found
