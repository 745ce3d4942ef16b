"""A rollback's timeline: each host's steps in seconds from the rollback's start, marked once (the first time seen),
kept as result.json holds it and rendered whole (the bench) or as one line of milestones per host (the run's end)."""

from __future__ import annotations

import threading

import pytest
from clocks import SleepClock

from plugins.deploy.finish import timeline as tl

pytestmark = pytest.mark.unit


def test_marks_are_seconds_from_the_start_and_keep_the_first_time_seen():
    clock = SleepClock(100.0)
    timeline = tl.Timeline(clock)
    clock.now = 101.5
    timeline.mark("utilities", tl.SSH_UP)
    clock.now = 104.25
    timeline.mark("utilities", tl.SSH_UP)  # a later poll sees it again: the first time stays
    timeline.mark("proxy", tl.CONTAINER + "traefik")
    assert timeline.as_dict() == {"utilities": [{"step": tl.SSH_UP, "at": 1.5}],
                                  "proxy": [{"step": "container traefik", "at": 4.25}]}


def test_marks_come_in_time_order_per_host():
    clock = SleepClock(100.0)
    timeline = tl.Timeline(clock)
    for at, step in ((3.0, tl.HTTP + "netbox"), (0.5, tl.TASK_DONE), (1.0, tl.SSH_UP)):
        clock.now = 100.0 + at
        timeline.mark("utilities", step)
    assert [entry["step"] for entry in timeline.as_dict()["utilities"]] == [tl.TASK_DONE, tl.SSH_UP, "http netbox"]


def test_marks_from_many_threads_are_all_kept():
    timeline = tl.Timeline()
    threads = [threading.Thread(target=lambda n=n: [timeline.mark(f"h{n}", f"step {i}") for i in range(50)])
               for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(steps) for steps in timeline.as_dict().values()) == 8 * 50


SAMPLE = {
    "proxy": [{"step": tl.TASK_DONE, "at": 1.2}, {"step": tl.SSH_UP, "at": 1.9}, {"step": tl.DOCKER_UP, "at": 2.4},
              {"step": "container traefik", "at": 2.4}, {"step": "http traefik-ping", "at": 2.9},
              {"step": tl.HEALTHY, "at": 2.9}],
    "utilities": [{"step": "task: stopping CT 210 before rollback", "at": 0.3}, {"step": tl.TASK_DONE, "at": 2.0},
                  {"step": tl.SSH_UP, "at": 2.6}, {"step": "container netbox-db", "at": 5.1},
                  {"step": "container netbox", "at": 20.0}, {"step": "http netbox-redis", "at": 4.0},
                  {"step": "http netbox", "at": 21.5}],
}


def test_the_whole_timeline_names_each_host_once_and_each_step_with_its_gap():
    lines = tl.timeline_lines(SAMPLE)
    assert lines[0].startswith("timeline from the rollback's start")
    assert sum(1 for line in lines if "utilities" in line) == 1
    assert "  proxy       1.20  + 1.20  rollback task done" in lines
    assert "              1.90  + 0.70  ssh answers" in lines
    assert any(line.endswith("+ 1.50  http netbox") and "21.50" in line for line in lines)
    assert tl.timeline_lines({}) == []


def test_milestones_give_one_line_per_host_with_its_last_container_and_http_check():
    lines = tl.milestone_lines(SAMPLE)
    assert lines == [
        ("timeline of proxy: task done 1.2 s, ssh 1.9 s, docker 2.4 s, last container traefik 2.4 s, "
         "last http traefik-ping 2.9 s, healthy 2.9 s"),
        "timeline of utilities: task done 2.0 s, ssh 2.6 s, last container netbox 20.0 s, last http netbox 21.5 s",
    ]


def test_a_host_that_reached_no_step_says_so():
    assert tl.milestone_lines({"monitoring": []}) == ["timeline of monitoring: no step reached"]


def test_a_step_can_be_marked_at_the_time_of_an_earlier_one():
    """A host is healthy when its last check passed: last() finds it, mark(at=…) records it there."""
    clock = SleepClock(100.0)
    timeline = tl.Timeline(clock)
    clock.now = 102.0
    timeline.mark("proxy", tl.HOST_CHECKS)
    clock.now = 103.5
    timeline.mark("proxy", tl.HTTP + "traefik-ping")
    clock.now = 120.0
    assert timeline.last("proxy", tl.HOST_CHECKS, tl.HTTP) == 3.5
    assert timeline.last("proxy", tl.CONTAINER) is None
    timeline.mark("proxy", tl.HEALTHY, timeline.last("proxy", tl.HOST_CHECKS, tl.HTTP))
    assert timeline.as_dict()["proxy"][-1] == {"step": tl.HEALTHY, "at": 3.5}
