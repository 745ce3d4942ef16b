"""The deploy pipeline, declared once: its stages in the order they run, and how each is gated.

A stage is a module of suites/deploy marked `pytest.mark.stage("<name>")` (test_<nn>_<name>.py: the
number is only for people reading the directory; the order is this list's). plugins/deploy/gating.py
orders the stages' tests from this list and gates them by its flags; the work of each stage is in
plugins/deploy/stages/<name>.py. Adding a stage is one entry here, one test module and one stages module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One stage of the deploy and how it is gated."""

    name: str
    plan_only: bool = True  # part of a --plan-only run (False: skipped, it would change or check live state)
    always: bool = False  # runs even after an earlier stage failed (it reports the failure)
    sequential: bool = True  # inside the stage, a failure skips the stage's remaining tests

    @property
    def order(self) -> int:
        """The stage's place in the pipeline (0 first)."""
        return PIPELINE.index(self)


PIPELINE: tuple[Stage, ...] = (
    # every problem at once: each check is independent of the others
    Stage("preflight", sequential=False),
    # init, plan, guard: BEFORE any snapshot, so that a refused plan leaves nothing behind
    Stage("plan"),
    # a declared host found stopped is started once the guard accepted the plan, and before its snapshot
    Stage("start", plan_only=False),
    Stage("snapshot", plan_only=False),
    Stage("terraform", plan_only=False),
    # the containers exist: PVE's firewall is made to hold the inventory's (a plan lists what would change)
    Stage("firewall"),
    # the inventory's ha: hosts registered with PVE's HA manager (a plan lists what would change)
    Stage("ha"),
    # one run serves every host's test, and each host's outcome is reported
    Stage("ansible", sequential=False),
    Stage("health", plan_only=False, sequential=False),
    # after a failure the notification is sent at the end of the run, with the rollback's outcome
    Stage("notify", plan_only=False, always=True),
)
STAGES: dict[str, Stage] = {stage.name: stage for stage in PIPELINE}


def stage_named(name: str) -> Stage:
    """The pipeline's stage of that name; KeyError naming the declared ones otherwise."""
    try:
        return STAGES[name]
    except KeyError:
        raise KeyError(f"no deploy stage '{name}' in plugins/deploy/pipeline.py; stages: {', '.join(STAGES)}") from None
