"""The lab's background processes: a started service is recognised at once, a dead one is not."""

from __future__ import annotations

import time

import pytest

from lab import procs

pytestmark = pytest.mark.unit


def test_a_started_service_is_recognised_as_soon_as_start_returns(tmp_path):
    """start() returns once the child shows its command: running_pid() right after it names the process."""
    service = procs.Service("sleeper", "", ("30",), program="/bin/sleep")
    for _ in range(20):  # the window between exec's pipe closing and the new arguments is short: try often
        pid = procs.start(tmp_path / "run", tmp_path / "log", service)
        try:
            assert procs.running_pid(tmp_path / "run", service) == pid
        finally:
            procs.stop(tmp_path / "run", service, timeout=5)
        assert procs.running_pid(tmp_path / "run", service) is None


def test_a_service_that_exits_at_once_is_not_waited_for(tmp_path):
    """A program that exits straight away makes start() return promptly, and it is not taken as running."""
    service = procs.Service("quitter", "", (), program="/bin/false")
    started = time.monotonic()
    procs.start(tmp_path / "run", tmp_path / "log", service)
    assert time.monotonic() - started < 4
    # start() may return while /bin/false still runs (its command line shown): once it has exited, within a
    # moment, its PID file must not pass for a running service (an exited child stays a zombie, unreaped).
    deadline = time.monotonic() + 5
    while procs.running_pid(tmp_path / "run", service) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert procs.running_pid(tmp_path / "run", service) is None
