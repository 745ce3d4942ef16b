"""Clocks the unit tests drive in place of the machine's."""

from __future__ import annotations

import time


class SleepClock:
    """A clock that moves only when the code under test sleeps (`clock=clock, sleep=clock.sleep`) or the test sets it."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Move the clock on instead of waiting."""
        self.now += seconds


class AheadClock:
    """The machine's time, moved on by the test (the HA manager's fence delays and retries)."""

    def __init__(self):
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead
