"""Task polling: short tasks are seen early, long ones polled at most every poll_interval, timeouts say so."""

from __future__ import annotations

import pytest

from plugins.proxmox.tasks import TaskTimeout, wait_for_task

pytestmark = pytest.mark.unit

UPID = "UPID:homelab:0000CD0E:000EFA04:6B092F8E:vzsnapshot:250:root@pam!lab:"


class FakeClock:
    """A clock that only moves when the poller sleeps; records each sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def task_ending_at(clock: FakeClock, at: float):
    """get_status of a task that stops OK at time `at`."""
    return lambda: {"status": "stopped", "exitstatus": "OK"} if clock.now >= at else {"status": "running"}


def test_polls_grow_from_first_poll_to_the_interval():
    """0.1 s, then half again each time, capped at poll_interval."""
    clock = FakeClock()
    result = wait_for_task(task_ending_at(clock, 3.0), list, upid=UPID, node="homelab", timeout=60,
                           poll_interval=0.5, clock=clock, sleep=clock.sleep)
    assert result.exitstatus == "OK"
    assert clock.sleeps[:4] == pytest.approx([0.1, 0.15, 0.225, 0.3375])
    assert max(clock.sleeps) == 0.5
    assert clock.now < 3.5, "the end of the task was noticed more than one interval late"


def test_a_short_task_is_seen_within_a_tenth_of_a_second():
    """A task done in 50 ms costs one 0.1 s poll, not a full interval."""
    clock = FakeClock()
    wait_for_task(task_ending_at(clock, 0.05), list, upid=UPID, node="homelab", timeout=60,
                  poll_interval=0.5, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [0.1]


def test_a_task_still_running_at_the_deadline_times_out_with_its_upid():
    """The timeout names the task type, the CT and the node."""
    clock = FakeClock()
    with pytest.raises(TaskTimeout, match=r"task vzsnapshot 250 on homelab still running after 2 s"):
        wait_for_task(lambda: {"status": "running"}, list, upid=UPID, node="homelab", timeout=2,
                      clock=clock, sleep=clock.sleep)
    assert clock.now == pytest.approx(2.0)
