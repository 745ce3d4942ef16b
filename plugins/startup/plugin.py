"""The startup package's pytest entry: Python's collector paused while the session starts (imported first by the root
conftest), resumed once pytest has collected.

While the plugins import and pytest collects, Python's cyclic collector runs dozens of times over objects that live as
long as the session (modules, classes, test items): a tenth of a second and more of one core before the health
suite's first check, more with every host (docs/reference/figures.md). Paused at this module's import, it resumes
when collection ends; in a process that is the run itself, what collection left is frozen first (kept out of every
later collection, as at exit). A run that never finishes collecting resumes it when it ends.
"""

from __future__ import annotations

import gc
import sys

import pytest

_PAUSED = gc.isenabled()
if _PAUSED:
    gc.disable()


def resume(freeze: bool) -> None:
    """Turn the collector back on if this module paused it (after freezing what exists, when asked)."""
    global _PAUSED
    if not _PAUSED:
        return
    if freeze:
        gc.freeze()
    gc.enable()
    _PAUSED = False


def own_process(config: pytest.Config) -> bool:
    """Whether this config is the process's own command line (not a caller's pytest.main that goes on)."""
    return config.invocation_params.args == tuple(sys.argv[1:])


def pytest_collection_finish(session: pytest.Session) -> None:
    """Collection is over: resume the collector, after freezing the session's objects in a process of its own."""
    resume(freeze=own_process(session.config))


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """The tests start: resume the collector where collection never finished here (xdist's controller does not
    collect, its workers do)."""
    resume(freeze=False)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A run that ended before collection finished (a usage error, an interrupt) gives the collector back."""
    resume(freeze=False)
