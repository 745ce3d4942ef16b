"""The end of a deploy run, in one place: rollback → notification → result files → Allure, then the account.

A successful run records its release instead (plugins/deploy/release.py): the checks it deployed, which a later
rollback to a snapshot of this state is judged by.

Runs at session finish, after every test (plugins/deploy/plugin.py calls it). After a failed or
interrupted deploy that took snapshots it rolls back (unless --no-rollback); it then notifies with the
rollback's outcome, writes this run's result files and, when Allure results are being written, a result
of its own for the end of the run (there is no running test to attach to by then). Each step is
guarded: a step that breaks is reported and never hides the rollback's outcome, the original failure, or
the steps after it. The exit status stays a failure, and the environment's deploy lock is let go.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field

import pytest

from plugins.deploy import recorded_state
from plugins.deploy.finish import run_result
from plugins.deploy.finish.rollback import (
    changed_nothing,
    describe,
    discard_snapshots,
    left_to_recover,
    recovery_lines,
    roll_back_session,
)
from plugins.deploy.finish.timeline import timeline_lines
from plugins.deploy.progress import result_table
from plugins.deploy.release import RECORD_PATH, record_on_hosts, release_record, write_local
from plugins.deploy.run_lock import RunLock, recovery_command
from plugins.deploy.session import DeploySession
from plugins.report import allure_output
from plugins.report.run_facts import git_commit

PASSING = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)


@dataclass
class RunEnd:
    """What the end of the run did, for the terminal summary: one line each."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def finish_run(deploy: DeploySession, *, failed: bool, alluredir, write) -> RunEnd:
    """Roll back (when the run failed), notify, write the result files and the Allure result; never raises."""
    end = RunEnd()
    started = time.time()
    if failed:
        deploy.ended_failing = True
        _guarded(end, "the rollback", lambda: _rollback(deploy, end, write))
        if not deploy.plan_only:
            _guarded(end, "the notification", lambda: _notify(deploy, end))
    elif not deploy.plan_only and deploy.stage("health").outcome == "passed":
        _guarded(end, "the release record", lambda: _record_release(deploy, end))
    end.lines += deploy.left_out_lines()
    written, errors = run_result.write_files(deploy)
    end.problems += errors
    if written:
        end.lines.append("result: " + ", ".join(str(p) for p in written))
    if alluredir is not None and failed:
        _guarded(end, "the Allure result of the end of the run",
                 lambda: _allure_result(deploy, end, alluredir, started))
    return end


def _rollback(deploy: DeploySession, end: RunEnd, write) -> None:
    """Roll back this run's snapshots, or say why nothing is rolled back."""
    if not deploy.snapshots:
        end.lines.append("no snapshot was taken in this run: nothing to roll back"
                         + (" (the run stopped before changing anything)" if not deploy.applied else ""))
        return
    if changed_nothing(deploy):
        # A rollback would restart every snapshotted host for nothing (an outage of each service) and leave
        # this run's snapshots beyond the retention: delete them instead.
        end.lines += discard_snapshots(deploy)
        return
    if not deploy.rollback_enabled:
        kept = ", ".join(f"{deploy.inventory.host(v).hostname}:{n}" for v, n in deploy.snapshots.items())
        end.lines.append(f"--no-rollback: the failed state is kept for debugging; snapshots of this run: {kept}")
        return
    deploy.rollback = roll_back_session(deploy, write)
    end.lines += describe(deploy.rollback)
    if not deploy.rollback["ok"]:
        # The run is over but the homelab is not back: say the one command that finishes the rollback (the
        # lock's record is kept for it, and the next deploy refuses until it ran).
        deploy.rollback["recovery"] = recovery_command(str(deploy.inventory.source))
        end.lines += recovery_lines(deploy.rollback, deploy.snapshots, deploy.inventory)
        end.lines.append(f"the homelab may be half-deployed: once the cause is fixed, run "
                         f"`{deploy.rollback['recovery']}` (the next deploy refuses until then)")


def _record_release(deploy: DeploySession, end: RunEnd) -> None:
    """Record the checks this successful run deployed, next to its result and on every host of the rollback set
    (the next run's snapshots then hold them: a rollback to one is judged by them)."""
    inventory = deploy.inventory
    hosts = [host for host in inventory.rollback_set if host.vmid not in deploy.left_out]  # not deployed: no record
    record = release_record(inventory, deploy.run_id, git_commit(deploy.reports_dir.parent), hosts)
    path = write_local(deploy.run_dir, record)
    errors = record_on_hosts(inventory, record)
    deploy.release = {"release": deploy.run_id, "commit": record["commit"],
                      "inventory_digest": record["inventory_digest"], "file": str(path), "on_hosts": RECORD_PATH,
                      "recorded_on": [h.hostname for h in hosts if h.hostname not in errors],
                      "not_recorded": errors}
    recorded = ", ".join(deploy.release["recorded_on"]) or "no host"
    end.lines.append(f"release {deploy.run_id} recorded: {path}, and {RECORD_PATH} on {recorded}")
    end.problems += [f"the release record could not be written on {hostname}: {error} (a rollback to its next "
                     "snapshot will judge it by the checks both releases share)" for hostname, error in errors.items()]


def _notify(deploy: DeploySession, end: RunEnd) -> None:
    """Send the notification, which carries the rollback's outcome."""
    outcome = run_result.send(deploy)
    deploy.notification = outcome.message
    end.lines.append(f"notification: {outcome.message}")


def _allure_result(deploy: DeploySession, end: RunEnd, alluredir, started: float) -> None:
    """One Allure result 'deploy › rollback' with the rollback's outcome and the notification."""
    outcome = deploy.rollback
    if outcome is None:
        status, message = "skipped", next((line for line in end.lines if "roll" in line), "no rollback")
    else:
        status = "passed" if outcome["ok"] else "failed"
        message = describe(outcome)[0]
    attachments = {"rollback": "\n".join(describe(outcome)) if outcome else message,
                   "failures": "\n".join(deploy.failures) or "(none recorded by a stage)"}
    if outcome and outcome.get("timeline"):
        attachments["rollback timeline"] = "\n".join(timeline_lines(outcome["timeline"]))
    if deploy.notification:
        attachments["notification"] = deploy.notification
    allure_output.write_result(
        alluredir, name="deploy › rollback", full_name="suites.deploy#rollback", status=status, message=message,
        labels={"epic": "deploy", "feature": "rollback", "suite": "deploy", "story": deploy.run_id},
        attachments=attachments, started=started, stopped=time.time())
    end.lines.append(f"Allure: the rollback's result is in {alluredir}")


def _guarded(end: RunEnd, what: str, step) -> None:
    """Run one step of the end of the run; a failure is reported and the next steps still run."""
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - no step may hide the others or the original failure
        end.problems.append(f"{what} broke: {type(exc).__name__}: {exc}")


def end_session(session: pytest.Session, deploy: DeploySession, exitstatus: int, lock: RunLock | None) -> RunEnd:
    """End a deploy run at session finish: finish_run, the lock let go, and the exit status a failure after one."""
    write = deploy.say  # a line of its own, after pytest's progress
    failed = deploy.failed or exitstatus not in PASSING
    previous = {}
    if failed and threading.current_thread() is threading.main_thread():
        # A CI cancel sends SIGINT, then SIGTERM: the rollback goes on; only SIGKILL stops it, and then
        # the lock's record tells the next run (python -m plugins.deploy.recover).
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(
                number, lambda n, f: write(f"{signal.Signals(n).name} during the rollback: it goes on"))
    try:
        end = finish_run(deploy, failed=failed, alluredir=allure_output.alluredir(session.config), write=write)
    finally:  # the rollback is over: Ctrl-C means Ctrl-C again (a process that goes on, tests, must stop on it)
        for number, handler in previous.items():
            signal.signal(number, handler)
    if lock is not None and deploy.rollback is not None and not deploy.rollback["ok"]:
        # the record keeps only what is left: a host rolled back and healthy serves again, and is not rolled back twice
        left, restores = left_to_recover(deploy.rollback, deploy.snapshots, recorded_state.to_record(deploy),
                                         deploy.inventory)
        lock.keep_unfinished(describe(deploy.rollback)[0], left, restores)
    elif lock is not None:
        lock.release()
    if failed and session.exitstatus in PASSING:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return end


def write_account(terminalreporter, end: RunEnd, deploy: DeploySession, alluredir=None) -> None:
    """After the failures: what the end of the run did, the stages' final table, where the report is."""
    terminalreporter.write_sep("=", "end of the deploy run")
    for line in end.lines:
        terminalreporter.write_line(line)
    for problem in end.problems:
        terminalreporter.write_line(f"PROBLEM: {problem}", red=True)
    terminalreporter.write_line("")
    for line in result_table(deploy):
        terminalreporter.write_line(line)
    if alluredir is not None:
        terminalreporter.write_line(f"report: Allure results in {alluredir}; `make report` renders them into "
                                    "reports/allure-report (index.html)")
