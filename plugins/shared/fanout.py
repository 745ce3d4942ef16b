"""The one fan-out: the same work on many items from threads, every item's outcome given back in order.

The work is I/O or another process (an SSH master, a PVE task, an HTTP wait): threads of one process,
with a bound on how many run at once where each costs CPU on the other side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def fan_out(work: Callable[[T], R], items: Iterable[T], *, workers: int, name: str,
            keep_errors: bool = False) -> list[R | Exception]:
    """Run work(item) for every item, at most `workers` at once; give the results in the items' order.

    keep_errors: an item whose work raised gets its exception in its place (one failure must not hide the
    others); without it, the first exception is raised once every item has ended.
    """
    items = list(items)
    if not items:
        return []

    def one(item: T) -> R | Exception:
        try:
            return work(item)
        except Exception as exc:  # noqa: BLE001 - kept per item, raised below unless the caller keeps them
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))), thread_name_prefix=name) as pool:
        outcomes = list(pool.map(one, items))
    if not keep_errors:
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome
    return outcomes
