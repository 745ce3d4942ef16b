"""What a person watching a deploy reads: a line per stage as it ends, each host's Ansible progress, a plan's
changes, the final table; -q terse, no control characters in a log; the notification says notify passed."""

from __future__ import annotations

import pytest
from deploy_suite import deploy_like

from plugins.deploy import progress
from plugins.deploy.session import DeploySession
from plugins.deploy.stages import notify
from plugins.inventory import load_inventory

pytestmark = pytest.mark.unit

STAGES = '''
import pytest


@pytest.mark.stage("preflight")
def test_one(deployment):
    pass


@pytest.mark.stage("preflight")
def test_two(deployment):
    pass


@pytest.mark.stage("plan")
def test_the_plan(deployment):
    record = deployment.stage("plan")
    record.summary = "1 to add, 0 to change, 0 to destroy; guard accepted"
    record.details = ["  terraform create         terraform_data.ct[\\"proxy\\"]"]


@pytest.mark.stage("ansible")
def test_configured(deployment):
    deployment.say("  ansible  proxy: bootstrap done (ok=3 changed=1 failed=0 skipped=0)")
    deployment.stage("ansible").summary = "site.yml: successful"
'''


@pytest.fixture
def suite(pytester, monkeypatch):
    """A deploy-like suite of three stages that record summaries and details."""
    deploy_like(pytester, monkeypatch)
    pytester.makepyfile(test_stages=STAGES)
    return pytester


def _run(suite, *args):
    run = suite.runpytest_subprocess("--inventory", "lab.yml", "--run-id", "prog1", "-p", "no:cacheprovider",
                                     "--plan-only", *args)
    return run, run.stdout.str() + run.stderr.str()


def test_each_stage_prints_one_line_as_it_ends_then_the_table(suite):
    """`[deploy] <stage> <outcome> <seconds> s <summary>` in order, details under it, the table at the end."""
    run, out = _run(suite)
    assert run.ret == 0, out
    lines = out.splitlines()
    stage_lines = [line for line in lines if line.startswith("[deploy] ")]
    assert [line.split()[1:3] for line in stage_lines] == [["preflight", "passed"], ["plan", "passed"],
                                                          ["ansible", "passed"]], out
    assert stage_lines[0].endswith("s  2 passed") and "guard accepted" in stage_lines[1]
    plan_at = lines.index(stage_lines[1])
    assert lines[plan_at + 1] == '  terraform create         terraform_data.ct["proxy"]'
    assert "  ansible  proxy: bootstrap done (ok=3 changed=1 failed=0 skipped=0)" in lines
    end = out[out.index("end of the deploy run"):]
    assert "stage      outcome  seconds  summary" in end and "plan       passed" in end
    assert "\x1b" not in out and "\r" not in out, "control characters in a log that is not a terminal"


def test_q_keeps_only_the_stage_lines(suite):
    """-q: the stage lines stay, their details go."""
    run, out = _run(suite, "-q")
    assert run.ret == 0, out
    assert sum(line.startswith("[deploy] ") for line in out.splitlines()) == 3, out
    assert "terraform_data.ct" not in out


def test_host_progress_prints_a_line_per_finished_role_and_at_once_for_a_failure():
    """Each host: a line when it moves to its next role and at the end; a failed task the moment it fails."""
    said = []
    handler = progress.HostProgress(said.append)

    def event(kind, host, role, task, **res):
        return {"event": kind, "event_data": {"host": host, "role": role, "task": task, "res": res}}

    handler(event("runner_on_ok", "proxy", "bootstrap", "Install rsync", changed=True))
    handler(event("runner_on_ok", "proxy", "bootstrap", "Add the key"))
    handler(event("runner_on_ok", "proxy", "proxy", "Write the routes"))
    handler(event("runner_on_failed", "proxy", "proxy", "Start traefik", msg="image not found\nmore"))
    handler({"event": "playbook_on_stats", "event_data": {}})
    assert said == [
        "  ansible  proxy: bootstrap done (ok=2 changed=1 failed=0 skipped=0)",
        "  ansible  proxy: FAILED proxy : Start traefik: image not found",
        "  ansible  proxy: done (ok=3 changed=1 failed=1 skipped=0)",
    ]


def test_check_mode_lines_list_what_would_change_per_host_with_diffs_on_demand():
    """Per host the tasks check mode reports changed; --show-diff adds their diff, long ones cut."""
    events = [
        {"event": "runner_on_ok", "event_data": {"host": "proxy", "role": "proxy", "task": "Write the routes",
                                                 "res": {"changed": True, "diff": [{"before": "a\n", "after": "b\n",
                                                                                    "before_header": "routes.yml"}]}}},
        {"event": "runner_on_ok", "event_data": {"host": "proxy", "task": "Gather facts", "res": {"changed": False}}},
    ]
    terse = progress.check_mode_lines(events, ["proxy", "app-demo"], show_diff=False)
    assert terse == ["  ansible  proxy: 1 task(s) would change:", "    ~ proxy : Write the routes",
                     "  ansible  app-demo: 0 task(s) would change"]
    with_diff = progress.check_mode_lines(events, ["proxy"], show_diff=True)
    assert with_diff[2:] == ["        --- routes.yml", "        +++ after", "        - a", "        + b"]


def test_the_notification_sent_during_notify_says_notify_passed(monkeypatch, tmp_path):
    """The comment is written while notify runs: its row is 'passed' (a delivered comment is the proof), not 'running'."""
    from plugins.deploy.finish import run_result
    from plugins.deploy.finish.notifier import NotifyOutcome

    deploy = DeploySession(run_id="n1", inventory=load_inventory("inventories/lab.yml"), reports_dir=tmp_path)
    deploy.stage("preflight").outcome = "passed"
    deploy.stage("notify").outcome = "running"
    sent = []
    monkeypatch.setattr(run_result, "send", lambda d: sent.append(run_result.to_markdown(d)) or
                        NotifyOutcome(True, "commented on commit abc"))
    notify.notify(deploy)
    assert "| notify | passed |" in sent[0], sent[0]
    assert deploy.stage("notify").summary == "commented on commit abc"

    monkeypatch.setattr(run_result, "send", lambda d: NotifyOutcome(False, "GitHub answered 403"))
    deploy.stage("notify").outcome = "running"
    notify.notify(deploy)
    assert deploy.stage("notify").outcome == "running"  # not delivered: the test's skip decides
