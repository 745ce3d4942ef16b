"""Run a graph of jobs on a few threads: a job starts once the jobs it needs have finished, the longest
remaining chain first, so the slowest image's chain overlaps with everything else.

The jobs are subprocess-bound (buildah, debootstrap, skopeo), so threads are enough. After a failure no
job starts; the running ones finish (each writes its result atomically), so nothing is left half-written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Job:
    """One unit of work: what it needs finished first, and its weight (a relative cost, for the order only)."""

    key: Hashable
    needs: tuple[Hashable, ...] = ()
    weight: float = 1.0


@dataclass
class Result:
    """What run() did: the jobs in the order they started, the failed ones, the ones never started."""

    started: list[Hashable] = field(default_factory=list)
    failed: dict[Hashable, BaseException] = field(default_factory=dict)
    not_started: list[Hashable] = field(default_factory=list)


def chain_weights(jobs: Iterable[Job]) -> dict[Hashable, float]:
    """Each job's weight plus the heaviest chain of jobs that wait for it (its critical path)."""
    by_key = {job.key: job for job in jobs}
    waiting_on: dict[Hashable, list[Hashable]] = {key: [] for key in by_key}
    for job in by_key.values():
        for need in job.needs:
            if need in by_key:
                waiting_on[need].append(job.key)
    memo: dict[Hashable, float] = {}

    def chain(key: Hashable, seen: tuple = ()) -> float:
        if key in seen:
            raise ValueError(f"jobs need each other in a circle: {' -> '.join(map(str, (*seen, key)))}")
        if key not in memo:
            memo[key] = by_key[key].weight + max((chain(k, (*seen, key)) for k in waiting_on[key]), default=0.0)
        return memo[key]

    return {key: chain(key) for key in by_key}


def run(jobs: list[Job], work: Callable[[Hashable], None], workers: int, stop: threading.Event | None = None) -> Result:
    """Call work(key) for every job on `workers` threads, each after its needs, heaviest chain first; once
    `stop` is set, no job starts (the running ones finish), as after a failure."""
    if workers < 1:
        raise ValueError(f"workers={workers}: expected 1 or more")
    rank = chain_weights(jobs)
    given = {job.key: i for i, job in enumerate(jobs)}  # ties keep the caller's order
    waiting = {job.key: {n for n in job.needs if n in given} for job in jobs}
    result = Result()
    running: dict[Future, Hashable] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lab-images") as pool:
        while True:
            if not result.failed and not (stop and stop.is_set()):
                ready = sorted((k for k, needs in waiting.items() if not needs), key=lambda k: (-rank[k], given[k]))
                for key in ready[:workers - len(running)]:
                    del waiting[key]
                    result.started.append(key)
                    running[pool.submit(work, key)] = key
            if not running:
                break
            # a stop is seen within a second even while a long job runs
            done, _ = wait(running, timeout=1.0 if stop else None, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                error = future.exception()
                if error is not None:
                    result.failed[key] = error
                    continue
                for needs in waiting.values():
                    needs.discard(key)
    result.not_started = sorted(waiting, key=given.__getitem__)
    return result
