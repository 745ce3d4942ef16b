"""What a stage's work means for one of its tests: a problem to assert on, or a reason to skip, or neither."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostOutcome:
    """One host's outcome in a stage: its own problem, or why its test is skipped (others failed), or neither."""

    problem: str = ""
    skip: str = ""
