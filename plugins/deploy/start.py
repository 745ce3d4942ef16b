"""The start of a deploy run: the environment's deploy lock, then the latest result files say "in progress".

One run of an environment at a time (plugins/deploy/run_lock.py): a second deploy of the same environment
is refused before any side effect, naming the holder. A CI cancel (SIGTERM) ends the run like Ctrl-C, so
that its rollback still runs. While it runs, the lock's record carries the snapshots taken so far, for a
run killed with SIGKILL (python -m plugins.deploy.recover).
"""

from __future__ import annotations

import signal
import threading

import pytest

from plugins.deploy import recorded_state
from plugins.deploy.finish import run_result
from plugins.deploy.run_lock import LockHeld, RunLock, UnfinishedRun
from plugins.deploy.session import DeploySession


def start_run(session: pytest.Session, deploy: DeploySession) -> RunLock:
    """Take the environment's deploy lock and mark this run in progress; stop the session when either fails."""
    inventory = deploy.inventory
    lock = RunLock(inventory.environment)
    try:
        lock.acquire(deploy.run_id, inventory=str(inventory.source))
    except (LockHeld, UnfinishedRun, OSError) as exc:
        deploy.refused = str(exc)
        pytest.exit(str(exc), returncode=pytest.ExitCode.INTERRUPTED)
    if lock.taken_over is not None:
        _say(session, f"took over the deploy lock of {lock.taken_over.holder()}: that run is gone and took no "
                      "snapshot")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    try:
        run_result.write_in_progress(deploy)
    except OSError as exc:
        lock.release()
        pytest.exit(f"cannot write this run's result files under {deploy.reports_dir}: {exc.strerror}",
                    returncode=pytest.ExitCode.USAGE_ERROR)
    return lock


def note_progress(lock: RunLock, deploy: DeploySession) -> None:
    """After each step: the lock's record carries the snapshots taken so far, whether anything was applied, and the
    firewall and HA resources recorded before the run changed them."""
    if lock.record is None:
        return
    current = {str(vmid): name for vmid, name in deploy.snapshots.items()}
    if current != lock.record.snapshots or deploy.applied != lock.record.applied:
        lock.note_snapshots(deploy.snapshots, applied=deploy.applied)
    restores = recorded_state.to_record(deploy)
    if restores != lock.record.restores:
        lock.note_restores(restores)


def _terminated(number, frame) -> None:
    """SIGTERM (a CI cancel, a timeout): stop the tests as Ctrl-C does, so the rollback still runs."""
    raise KeyboardInterrupt("SIGTERM")


def _say(session: pytest.Session, line: str) -> None:
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    (terminal.write_line if terminal else print)(line)
