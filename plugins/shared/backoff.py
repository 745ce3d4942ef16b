"""The one retry loop: try, and until the answer is good or the deadline passes, pause a growing while.

Every wait of the suite goes through `poll` (an HTTP service warming up, a Proxmox task, hosts coming back
after a rollback); each says how its pauses grow (`Backoff`). The clock and the sleep are parameters, so a
test drives a wait without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Pauses between attempts: `first`, then each one `factor` times the last, never more than `cap` (seconds)."""

    first: float
    factor: float
    cap: float

    def pauses(self):
        """The pauses, one per attempt that was not the last."""
        pause = min(self.first, self.cap)
        while True:
            yield pause
            pause = min(pause * self.factor, self.cap)


@dataclass(frozen=True)
class Polled(Generic[T]):
    """How a wait ended: the last answer, whether it was good, how many attempts, how long it took."""

    value: T
    done: bool
    attempts: int
    elapsed: float


def poll(attempt: Callable[[float], T], done: Callable[[T], bool], *, deadline: float, backoff: Backoff,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Polled[T]:
    """Call attempt(seconds left) until done(its answer) or `deadline` seconds have passed; give the last answer.

    There is always one attempt; a pause never runs past the deadline.
    """
    pauses = backoff.pauses()
    start = clock()
    attempts = 0
    while True:
        attempts += 1
        value = attempt(deadline - (clock() - start))
        finished = done(value)
        remaining = deadline - (clock() - start)
        if finished or remaining <= 0:
            return Polled(value, finished, attempts, clock() - start)
        sleep(min(next(pauses), remaining))
