"""The end of a deploy run, with and without --alluredir: rollback outcome, result files, notification.

A small deploy-like suite runs in a subprocess through the project's own plugins; its Proxmox rollback is
replaced by a recorded outcome (no lab here), everything else is the product's code path.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from deploy_suite import LAB, deploy_like

from plugins.deploy.finish import run_result
from plugins.deploy.finish.end import finish_run
from plugins.deploy.session import DeploySession
from plugins.inventory import load_inventory

pytestmark = pytest.mark.unit

FAKE_ROLLBACK = '''
def _fake_rollback(deploy, write):
    write("deploy failed: rolling back (recorded outcome)")
    return {"ok": True, "rolled_back": {"app-demo": "deploy_unit1"}, "task_errors": {}, "unhealthy": {},
            "excluded": ["ci-runner has rollback: false: not rolled back"], "seconds": 1.5}


def pytest_configure(config):
    import plugins.deploy.finish.end as finish

    finish.roll_back_session = _fake_rollback
'''

STAGES = '''
import pytest

pytestmark = [pytest.mark.stage("snapshot")]


def test_snapshot(deployment):
    deployment.snapshots[250] = "deploy_unit1"


@pytest.mark.stage("health")
def test_the_service_answers(deployment):
    assert False, "app-demo-health http://198.18.0.250:8080/health: got 500 after 20 s; accepted 200"
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A deploy-like suite whose health stage fails after its snapshot stage took one snapshot."""
    deploy_like(pytester, monkeypatch, FAKE_ROLLBACK)
    pytester.makepyfile(test_stages=STAGES)
    (pytester.path / "reports" / "deploy-result.md").write_text("## Deploy succeeded: lab (run old)\n")
    return pytester


def _run(suite: pytest.Pytester, *args: str) -> pytest.RunResult:
    return suite.runpytest_subprocess("--inventory", "lab.yml", "--run-id", "unit1", "-p", "no:cacheprovider", *args)


@pytest.mark.parametrize("allure", [False, True], ids=["without-alluredir", "with-alluredir"])
def test_a_failed_run_ends_with_the_failure_its_rollback_and_this_runs_result(suite, allure):
    """No INTERNALERROR; FAILURES names the failing check; the rollback follows; the files say 'failed'."""
    results = suite.path / "allure-results"
    run = _run(suite, *(["--alluredir", str(results)] if allure else []))
    out = run.stdout.str() + run.stderr.str()
    assert "INTERNALERROR" not in out, out
    assert run.ret == pytest.ExitCode.TESTS_FAILED, out
    failures_at = out.index("FAILURES")
    end_at = out.index("end of the deploy run")
    assert failures_at < end_at, out
    assert "got 500 after 20 s" in out[failures_at:end_at]
    assert "where" not in out[failures_at:end_at] and "deployment = " not in out[failures_at:end_at], out
    assert "FAILED test_stages.py::test_the_service_answers - app-demo-health" in out
    assert "warnings summary" not in out, out
    assert "rollback succeeded in 1.5 s" in out[end_at:] and "rolled back app-demo to deploy_unit1" in out[end_at:]
    assert "notification: no GitHub API url" in out[end_at:], out

    result = json.loads((suite.path / "reports" / "deploy" / "unit1" / "result.json").read_text())
    latest = json.loads((suite.path / "reports" / "deploy" / "latest.json").read_text())
    assert result == latest and result["status"] == "failed" and result["rollback"]["ok"]
    assert result["notification"].startswith("no GitHub API url")
    markdown = (suite.path / "reports" / "deploy-result.md").read_text()
    assert markdown.startswith("## Deploy failed: lab (run unit1)")
    assert "### Rollback succeeded in 1.5 s" in markdown and "rolled back app-demo to `deploy_unit1`" in markdown

    if allure:
        written = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
        ends = [r for r in written if r["name"] == "deploy › rollback"]
        assert len(ends) == 1 and ends[0]["status"] == "passed", written
        labels = {label["name"]: label["value"] for label in ends[0]["labels"]}
        assert labels["epic"] == "deploy" and labels["feature"] == "rollback"
        texts = [(results / a["source"]).read_text() for a in ends[0]["attachments"]]
        assert any("rolled back app-demo to deploy_unit1" in text for text in texts)
        assert any("got 500 after 20 s" in text for text in texts)


def test_a_passing_run_leaves_no_rollback_and_says_it_succeeded(suite):
    """Snapshots taken, nothing failed: no rollback, the files say 'succeeded' for this run."""
    suite.makepyfile(test_stages='''
import pytest

pytestmark = [pytest.mark.stage("snapshot")]


def test_snapshot(deployment):
    deployment.snapshots[250] = "deploy_unit1"
''')
    run = _run(suite, "--alluredir", str(suite.path / "allure-results"))
    assert run.ret == pytest.ExitCode.OK, run.stdout.str()
    result = json.loads((suite.path / "reports" / "deploy" / "latest.json").read_text())
    assert result["status"] == "succeeded" and result["rollback"] is None
    assert (suite.path / "reports" / "deploy-result.md").read_text().startswith("## Deploy succeeded: lab (run unit1)")


def test_a_successful_run_records_its_release_next_to_its_result_and_on_the_hosts(tmp_path, monkeypatch):
    """The checks it deployed go to reports/deploy/<run>/release.json and to each host of the rollback set; the
    result and the closing lines say where; a host it could not write on is a problem, not a failure."""
    import plugins.deploy.finish.end as finish

    written = {}

    def on_hosts(inventory, record):
        written.update(record["hosts"])
        return {"utilities": "sudo: a password is required"}

    monkeypatch.setattr(finish, "record_on_hosts", on_hosts)
    monkeypatch.setattr(finish, "git_commit", lambda root: "0123456789abcdef0123")
    deploy = DeploySession(run_id="unit5", inventory=load_inventory(LAB), reports_dir=tmp_path / "reports")
    deploy.stage("health").outcome = "passed"  # a no-change redeploy too: Terraform applied nothing
    end = finish_run(deploy, failed=False, alluredir=None, write=lambda line: None)
    record = json.loads((deploy.run_dir / "release.json").read_text())
    assert record["release"] == "unit5" and record["commit"] == "0123456789abcdef0123"
    assert set(written) == set(record["hosts"]) == {h.hostname for h in deploy.inventory.rollback_set}
    result = json.loads((deploy.run_dir / "result.json").read_text())
    assert result["release"]["recorded_on"] == ["proxy", "monitoring", "app-demo"]
    assert result["release"]["inventory_digest"].startswith("sha256:")
    assert any(line.startswith("release unit5 recorded: ") for line in end.lines), end.lines
    assert end.problems == [("the release record could not be written on utilities: sudo: a password is required (a "
                            "rollback to its next snapshot will judge it by the checks both releases share)")]
    assert "Release unit5 recorded, commit 0123456789ab" in (deploy.reports_dir / "deploy-result.md").read_text()


def test_a_plan_records_no_release(tmp_path, monkeypatch):
    """--plan-only (its health stage skipped): the hosts' records stay those of what they run."""
    import plugins.deploy.finish.end as finish

    monkeypatch.setattr(finish, "record_on_hosts", lambda inventory, record: pytest.fail("recorded a release"))
    deploy = DeploySession(run_id="unit6", inventory=load_inventory(LAB), reports_dir=tmp_path / "reports",
                           plan_only=True)
    deploy.stage("health").outcome = "skipped"
    finish_run(deploy, failed=False, alluredir=None, write=lambda line: None)
    assert not (deploy.run_dir / "release.json").exists()
    assert json.loads((deploy.run_dir / "result.json").read_text())["release"] is None


def _session(tmp_path: Path) -> DeploySession:
    deploy = DeploySession(run_id="unit2", inventory=load_inventory(LAB), reports_dir=tmp_path / "reports")
    deploy.stage("health").outcome = "failed"
    deploy.snapshots[250] = "deploy_unit2"
    return deploy


def test_a_broken_notifier_hides_neither_the_rollback_nor_the_result(tmp_path, monkeypatch):
    """The notifier raising is reported as a problem; the rollback's outcome and the files are still there."""
    import plugins.deploy.finish.end as finish

    monkeypatch.setattr(finish, "roll_back_session", lambda deploy, write: {
        "ok": False, "rolled_back": {}, "task_errors": {"app-demo": "snapshot 'deploy_unit2' does not exist"},
        "unhealthy": {}, "excluded": [], "seconds": 0.4})

    def broken(deploy):
        raise RuntimeError("notifier exploded")

    monkeypatch.setattr(run_result, "send", broken)
    deploy = _session(tmp_path)
    end = finish_run(deploy, failed=True, alluredir=None, write=lambda line: None)
    assert "rollback INCOMPLETE in 0.4 s" in end.lines
    assert any("the notification broke: RuntimeError: notifier exploded" in p for p in end.problems)
    result = json.loads((deploy.reports_dir / "deploy" / "latest.json").read_text())
    assert result["status"] == "failed" and result["rollback"]["task_errors"]


def test_a_result_that_cannot_be_written_never_leaves_the_previous_one_in_place(tmp_path, monkeypatch):
    """In progress from the start; a result that cannot be written says so instead of the last run's."""
    deploy = _session(tmp_path)
    latest, markdown = run_result.latest_paths(deploy)
    markdown.parent.mkdir(parents=True)
    markdown.write_text("## Deploy succeeded: lab (run old)\n")
    run_result.write_in_progress(deploy)
    assert "in progress" in markdown.read_text() and json.loads(latest.read_text())["status"] == "in progress"

    monkeypatch.setattr(run_result, "to_markdown", lambda deploy: (_ for _ in ()).throw(ValueError("bad")))
    written, errors = run_result.write_files(deploy)
    assert not written and any("could not be rendered" in e for e in errors)
    assert "could not be written" in markdown.read_text()
    assert json.loads(latest.read_text())["status"] == "unknown"


def test_a_second_deploy_of_the_environment_is_refused_before_any_side_effect(suite):
    """While a run holds the lab's lock, a deploy stops at once naming it, and leaves the result files alone."""
    from plugins.deploy.run_lock import RunLock

    holder = RunLock("lab", suite.path / "state")
    holder.acquire("first1")
    try:
        before = (suite.path / "reports" / "deploy-result.md").read_text()
        run = _run(suite)
        out = run.stdout.str() + run.stderr.str()
        assert run.ret == pytest.ExitCode.INTERRUPTED, out
        assert f"another deploy of 'lab' is running: run first1 (pid {os.getpid()} on" in out, out
        assert "no tests ran" in out, out
        assert (suite.path / "reports" / "deploy-result.md").read_text() == before
        assert not (suite.path / "reports" / "deploy" / "unit1").exists()
    finally:
        holder.release()


def test_sigterm_during_a_stage_still_rolls_back_and_fails(suite):
    """A CI cancel (SIGTERM) after the snapshots: the rollback runs, the files say failed, exit non-zero."""
    suite.makepyfile(test_stages='''
import os, signal
import pytest

pytestmark = [pytest.mark.stage("snapshot")]


def test_snapshot(deployment):
    deployment.snapshots[250] = "deploy_unit1"


@pytest.mark.stage("ansible")
def test_ansible_is_cancelled(deployment):
    import time
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
''')
    run = _run(suite)
    out = run.stdout.str() + run.stderr.str()
    assert run.ret == pytest.ExitCode.INTERRUPTED, out
    before_end, _, end = out.partition("end of the deploy run")
    assert "rollback succeeded in 1.5 s" in end, out
    result = json.loads((suite.path / "reports" / "deploy" / "latest.json").read_text())
    assert result["status"] == "failed" and result["rollback"]["ok"] and result["interrupted"] == "SIGTERM"
    # the stage that was cut says so, with the time it ran: in result.json, the table, the markdown, the live line
    ansible = result["stages"]["ansible"]
    assert ansible["outcome"] == "interrupted (SIGTERM)" and 0.3 <= ansible["seconds"] < 5, ansible
    seconds = r"[1-4]\.\d|0\.[3-9]"  # the sleep before the signal, at least
    assert re.search(rf"^ansible +interrupted \(SIGTERM\) +({seconds}) ", end, re.MULTILINE), end
    assert re.search(rf"^\[deploy\] ansible +interrupted \(SIGTERM\) +({seconds}) s", before_end, re.MULTILINE), out
    markdown = (suite.path / "reports" / "deploy-result.md").read_text()
    assert re.search(rf"\| ansible \| interrupted \(SIGTERM\) \| ({seconds}) \|", markdown), markdown
    assert "| ansible | running |" not in markdown
    assert not list((suite.path / "state").glob("*.lock")), "the lock was not released"


def test_a_run_killed_with_sigkill_is_found_by_the_next_which_says_what_to_do(suite):
    """SIGKILL after the snapshots: nothing rolls back in that process; the next deploy refuses, naming the fix."""
    suite.makepyfile(test_stages='''
import os, signal
import pytest

pytestmark = [pytest.mark.stage("snapshot")]


def test_snapshot(deployment):
    deployment.snapshots[250] = "deploy_unit1"


@pytest.mark.stage("ansible")
def test_ansible_is_killed(deployment):
    os.kill(os.getpid(), signal.SIGKILL)
''')
    killed = _run(suite)
    assert killed.ret == -signal.SIGKILL
    assert json.loads((suite.path / "reports" / "deploy" / "latest.json").read_text())["status"] == "in progress"
    again = suite.runpytest_subprocess("--inventory", "lab.yml", "--run-id", "unit2", "-p", "no:cacheprovider")
    out = again.stdout.str() + again.stderr.str()
    assert again.ret == pytest.ExitCode.INTERRUPTED, out
    assert "run unit1 (pid" in out and "did not finish" in out and "CT 250: deploy_unit1" in out, out
    assert "python -m plugins.deploy.recover rollback --inventory lab.yml" in out, out


def test_a_run_that_failed_before_changing_a_host_restarts_none_and_deletes_its_snapshots(tmp_path, monkeypatch):
    """Snapshot of one host failed, nothing after it ran: no rollback (it would restart every snapshotted host
    for nothing), and this run's snapshots are deleted so that none is left beyond the retention."""
    import plugins.deploy.finish.end as finish
    from plugins.deploy.finish import rollback

    deleted = {}

    class Client:
        def delete_snapshots_many(self, node, targets):
            deleted.update(targets)
            return {vmid: names for vmid, names in targets.items() if vmid != 201} | {201: RuntimeError("busy")}

    monkeypatch.setattr(finish, "roll_back_session", lambda deploy, write: pytest.fail("rolled back for nothing"))
    monkeypatch.setattr(rollback.ProxmoxClient, "from_inventory", staticmethod(lambda inventory: Client()))
    deploy = DeploySession(run_id="unit3", inventory=load_inventory(LAB), reports_dir=tmp_path / "reports",
                           snapshot_name="deploy_unit3")
    deploy.stage("snapshot").outcome = "failed"
    for name in ("terraform", "ansible", "health"):
        deploy.stage(name).outcome = "skipped"
    deploy.snapshots.update({200: "deploy_unit3", 201: "deploy_unit3"})
    end = finish_run(deploy, failed=True, alluredir=None, write=lambda line: None)
    assert deleted == {200: ["deploy_unit3"], 201: ["deploy_unit3"]}
    assert "the run stopped before changing any host: nothing to roll back (no host restarted)" in end.lines
    assert "  deleted this run's snapshot deploy_unit3 on proxy" in end.lines
    assert any(line.startswith("  could not delete deploy_unit3 on utilities") for line in end.lines), end.lines
    result = json.loads((deploy.reports_dir / "deploy" / "latest.json").read_text())
    assert result["rollback"] is None and result["snapshots"] == {"201": "deploy_unit3"}


def test_a_run_whose_ansible_stage_began_is_rolled_back(tmp_path, monkeypatch):
    """Once a stage after the snapshot began, the hosts may have changed: the rollback runs."""
    import plugins.deploy.finish.end as finish

    ran = []
    monkeypatch.setattr(finish, "roll_back_session", lambda deploy, write: ran.append(1) or {
        "ok": True, "rolled_back": {"proxy": "deploy_unit4"}, "task_errors": {}, "unhealthy": {}, "excluded": [],
        "seconds": 0.1})
    deploy = DeploySession(run_id="unit4", inventory=load_inventory(LAB), reports_dir=tmp_path / "reports")
    deploy.stage("snapshot").outcome = "passed"
    deploy.stage("terraform").outcome = "passed"
    deploy.stage("ansible").outcome = "failed"
    deploy.snapshots[200] = "deploy_unit4"
    finish_run(deploy, failed=True, alluredir=None, write=lambda line: None)
    assert ran == [1]


def test_an_incomplete_rollback_names_the_command_that_finishes_it_and_keeps_the_record(tmp_path, monkeypatch):
    """The fault matrix's API-unreachable row: the rollback fails; the run names `recover rollback`, in the
    terminal and the result, and the lock's record stays so that the next deploy refuses until it ran."""
    import plugins.deploy.finish.end as finish
    from plugins.deploy.run_lock import RunLock, UnfinishedRun

    monkeypatch.setattr(finish, "roll_back_session", lambda deploy, write: {
        "ok": False, "rolled_back": {}, "task_errors": {"*": "ProxmoxError: https://127.0.0.1:8006 unreachable"},
        "unhealthy": {}, "excluded": [], "seconds": 0.2})
    monkeypatch.setattr(run_result, "send", lambda deploy: run_result.NotifyOutcome(True, "written"))
    deploy = _session(tmp_path)
    lock = RunLock("lab", tmp_path / "state")
    lock.acquire(deploy.run_id, inventory=str(deploy.inventory.source))
    lock.note_snapshots(deploy.snapshots)
    end = finish_run(deploy, failed=True, alluredir=None, write=lambda line: None)
    command = f"python -m plugins.deploy.recover rollback --inventory {deploy.inventory.source}"
    assert any(f"run `{command}`" in line for line in end.lines), end.lines
    assert command in (deploy.reports_dir / "deploy-result.md").read_text()
    lock.keep_unfinished(finish.describe(deploy.rollback)[0])
    with pytest.raises(UnfinishedRun, match="its rollback was incomplete"):
        RunLock("lab", tmp_path / "state").acquire("next")


def test_the_end_of_a_failed_run_gives_ctrl_c_back(monkeypatch):
    """During the rollback SIGINT/SIGTERM are reported and ignored; after it the handlers are what they were, so a
    process that goes on (the project's own test session) still stops on Ctrl-C."""
    from types import SimpleNamespace

    from plugins.deploy.finish import end

    during = {}

    def fake_finish_run(deploy, **_):
        during["int"] = signal.getsignal(signal.SIGINT)
        return end.RunEnd()

    monkeypatch.setattr(end, "finish_run", fake_finish_run)
    monkeypatch.setattr(end.allure_output, "alluredir", lambda config: None)
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    deploy = SimpleNamespace(say=lambda line: None, failed=True, rollback=None)
    session = SimpleNamespace(config=None, exitstatus=pytest.ExitCode.TESTS_FAILED)
    end.end_session(session, deploy, exitstatus=1, lock=None)
    assert during["int"] not in (before[0], signal.SIG_DFL), "the rollback was not protected from SIGINT"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
