"""plugins/startup: Python's collector paused while a run imports and collects, given back before the tests."""

from __future__ import annotations

import gc
import sys
from types import SimpleNamespace

import pytest

from plugins.startup import plugin as startup

pytestmark = pytest.mark.unit


@pytest.fixture
def paused(monkeypatch):
    """The collector as the plugin leaves it at its import: off, and the plugin's to give back."""
    monkeypatch.setattr(startup, "_PAUSED", True)
    gc.disable()
    yield
    gc.enable()
    gc.unfreeze()


def config_of(args: tuple[str, ...]) -> SimpleNamespace:
    """A config whose command line is these arguments."""
    return SimpleNamespace(invocation_params=SimpleNamespace(args=args))


def test_the_collector_runs_while_the_tests_run():
    """This session's own collection ended: the plugin gave the collector back."""
    assert gc.isenabled()


def test_a_process_of_its_own_freezes_what_collection_left_then_collects_again(paused, monkeypatch):
    """Collection over in a process that is the run: the session's objects frozen, the collector on."""
    monkeypatch.setattr(sys, "argv", ["pytest", "suites/health", "-q"])
    frozen = gc.get_freeze_count()
    startup.pytest_collection_finish(SimpleNamespace(config=config_of(("suites/health", "-q"))))
    assert gc.isenabled() and gc.get_freeze_count() > frozen


def test_a_callers_run_gives_the_collector_back_without_freezing(paused, monkeypatch):
    """pytest.main from a program that goes on (its arguments are not the process's): nothing frozen."""
    monkeypatch.setattr(sys, "argv", ["tool", "--its-own"])
    frozen = gc.get_freeze_count()
    startup.pytest_collection_finish(SimpleNamespace(config=config_of(("suites/health",))))
    assert gc.isenabled() and gc.get_freeze_count() == frozen


@pytest.mark.parametrize("hook", ["pytest_runtestloop", "pytest_unconfigure"])
def test_a_run_that_never_finishes_collecting_here_gives_the_collector_back(paused, hook):
    """xdist's controller (its workers collect) and a run cut before collection ended: the collector comes back."""
    getattr(startup, hook)(SimpleNamespace())
    assert gc.isenabled() and startup._PAUSED is False
