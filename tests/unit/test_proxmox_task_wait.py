"""Task polling: short tasks are seen early, long ones polled at most every poll_interval, timeouts say so."""

from __future__ import annotations

import pytest

from plugins.proxmox.tasks import ProxmoxError, TaskTimeout, wait_for_task

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


def test_on_log_gets_each_line_once_as_it_appears():
    """The rollback's timeline: with on_log, each poll reads the log and gives only the lines not given before."""
    clock = FakeClock()
    script = [(0.0, "stopping CT 250 before rollback"), (0.2, "rollback to snapshot 'deploy_1'"),
              (0.5, "starting CT 250")]

    def log():
        return [{"n": n + 1, "t": text} for n, (at, text) in enumerate(script) if clock.now >= at]

    seen: list[tuple[float, str]] = []
    wait_for_task(task_ending_at(clock, 0.6), log, upid=UPID, node="homelab", timeout=60, poll_interval=0.5,
                  clock=clock, sleep=clock.sleep, on_log=lambda line: seen.append((clock.now, line)))
    assert [line for _, line in seen] == [text for _, text in script]
    assert [at for at, _ in seen] == pytest.approx([0.0, 0.25, 0.8125])  # the poll that first saw each line


def test_a_log_that_cannot_be_read_is_tried_again_at_the_next_poll():
    """A failed log read never fails the wait; the lines come with a later poll."""
    clock = FakeClock()
    reads = iter([ProxmoxError("read log: 500"), [{"n": 1, "t": "starting CT 250"}]])

    def log():
        answer = next(reads, [{"n": 1, "t": "starting CT 250"}])
        if isinstance(answer, Exception):
            raise answer
        return answer

    seen: list[str] = []
    result = wait_for_task(task_ending_at(clock, 0.3), log, upid=UPID, node="homelab", timeout=60,
                           clock=clock, sleep=clock.sleep, on_log=seen.append)
    assert result.exitstatus == "OK" and seen == ["starting CT 250"]
