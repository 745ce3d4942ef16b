"""The start and the end of a deploy run: the lock, then rollback → notification → result files → Allure.

At the start, the environment's deploy lock (plugins/run_lock.py): a second deploy of the same
environment is refused before any side effect, naming the holder.

Runs at session finish, after every test. After a failed or interrupted deploy that took snapshots it
rolls back (unless --no-rollback); it then notifies with the rollback's outcome, writes this run's
result files and, when Allure results are being written, a result of its own for the end of the run
(there is no running test to attach to by then). Each step is guarded: a step that breaks is reported
and never hides the rollback's outcome, the original failure, or the steps after it. The exit status
stays a failure.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field

import pytest

from plugins import deploy_result, reporting
from plugins.deploy_session import DeploySession, get_session, start_session
from plugins.inventory import get_inventory
from plugins.rollback import describe, roll_back_session
from plugins.run_lock import LockHeld, RunLock, UnfinishedRun

END_KEY = pytest.StashKey["RunEnd"]()
LOCK_KEY = pytest.StashKey[RunLock]()
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
    written, errors = deploy_result.write_files(deploy)
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
    if not deploy.rollback_enabled:
        kept = ", ".join(f"{deploy.inventory.host(v).hostname}:{n}" for v, n in deploy.snapshots.items())
        end.lines.append(f"--no-rollback: the failed state is kept for debugging; snapshots of this run: {kept}")
        return
    deploy.rollback = roll_back_session(deploy, write)
    end.lines += describe(deploy.rollback)


def _notify(deploy: DeploySession, end: RunEnd) -> None:
    """Send the notification, which carries the rollback's outcome."""
    outcome = deploy_result.send(deploy)
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
    if deploy.notification:
        attachments["notification"] = deploy.notification
    reporting.write_result(
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


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session):
    """Before the first stage: take the environment's deploy lock, then mark this run in progress."""
    stages = [item for item in session.items if item.get_closest_marker("stage")]
    if stages and not session.config.option.collectonly:
        _start(session)
    return (yield)


def _start(session: pytest.Session) -> None:
    """One run of an environment at a time; a CI cancel (SIGTERM) ends the run like Ctrl-C, with its rollback."""
    inventory = get_inventory(session.config)
    deploy = start_session(session.config, inventory)
    lock = RunLock(inventory.environment)
    try:
        lock.acquire(deploy.run_id, inventory=str(inventory.source))
    except (LockHeld, UnfinishedRun, OSError) as exc:
        deploy.refused = str(exc)
        pytest.exit(str(exc), returncode=pytest.ExitCode.INTERRUPTED)
    session.config.stash[LOCK_KEY] = lock
    if lock.taken_over is not None:
        _say(session, f"took over the deploy lock of {lock.taken_over.holder()}: that run is gone and took no "
                      "snapshot")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    try:
        deploy_result.write_in_progress(deploy)
    except OSError as exc:
        pytest.exit(f"cannot write this run's result files under {deploy.reports_dir}: {exc.strerror}",
                    returncode=pytest.ExitCode.USAGE_ERROR)


def _terminated(number, frame) -> None:
    """SIGTERM (a CI cancel, a timeout): stop the tests as Ctrl-C does, so the rollback still runs."""
    raise KeyboardInterrupt("SIGTERM")


def _say(session: pytest.Session, line: str) -> None:
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    (terminal.write_line if terminal else print)(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """After each step, the lock's record carries the snapshots taken so far (for a run killed with SIGKILL)."""
    report = yield
    lock = item.config.stash.get(LOCK_KEY, None)
    deploy = get_session(item.config)
    if lock is not None and deploy is not None and lock.record is not None:
        current = {str(vmid): name for vmid, name in deploy.snapshots.items()}
        if current != lock.record.snapshots or deploy.applied != lock.record.applied:
            lock.note_snapshots(deploy.snapshots, applied=deploy.applied)
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """End a deploy run: rollback after a failure, notification, result files, Allure."""
    deploy = get_session(session.config)
    if deploy is None or deploy.refused:
        return  # a refused run changed nothing and must not overwrite the running one's files
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    write = (lambda line: terminal.write_line(line)) if terminal else print
    failed = deploy.failed or exitstatus not in PASSING
    if failed and threading.current_thread() is threading.main_thread():
        # A CI cancel sends SIGINT, then SIGTERM: the rollback goes on; only SIGKILL stops it, and then
        # the lock's record tells the next run (python -m plugins.recover).
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda n, f: write(f"{signal.Signals(n).name} during the rollback: it goes on"))
    end = finish_run(deploy, failed=failed, alluredir=reporting.alluredir(session.config), write=write)
    session.config.stash[END_KEY] = end
    lock = session.config.stash.get(LOCK_KEY, None)
    if lock is not None:
        lock.release()
    if failed and session.exitstatus in PASSING:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """After the failures: what the end of the run did (rollback, notification, result files)."""
    end = config.stash.get(END_KEY, None)
    if end is None or not (end.lines or end.problems):
        return
    terminalreporter.write_sep("=", "end of the deploy run")
    for line in end.lines:
        terminalreporter.write_line(line)
    for problem in end.problems:
        terminalreporter.write_line(f"PROBLEM: {problem}", red=True)
