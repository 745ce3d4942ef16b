"""The health run's start: a run of the whole suite starts its checks at the session's start; a later start submits
only what is not submitted yet; every test still gets its own result."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from plugins.health.registry import REGISTRY
from plugins.health.run import HealthRun, every_need
from plugins.inventory import load_inventory
from plugins.proxmox.power import HostState

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAB = load_inventory(ROOT / "inventories" / "lab.yml")


def stopped() -> dict[str, HostState]:
    """Every lab host stopped: the run answers from the states alone, no SSH or HTTP is tried."""
    return {h.hostname: HostState(h.hostname, h.vmid, h.node, "stopped", "", h.hostname) for h in LAB.hosts}


def health_conftest():
    """suites/health/conftest.py as a module (it is no package: loaded by its path)."""
    spec = importlib.util.spec_from_file_location("health_conftest_under_test", ROOT / "suites/health/conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_need_is_every_check_of_every_host_with_its_subjects():
    needs = every_need(LAB.hosts)
    for host in LAB.hosts:
        mine = [(name, subject) for h, name, subject in needs if h is host]
        assert mine == [(name, subject) for name, check in REGISTRY.items() for subject in check.subjects_of(host)]


def test_a_later_start_submits_only_the_needs_not_submitted_yet():
    run = HealthRun(LAB, list(LAB.hosts), "/nonexistent/known_hosts", stopped())
    host = next(h for h in LAB.hosts if h.hostname == "proxy")
    first = [(host, "ssh_reachable", None)]
    later = [*first, (host, "rsync_installed", None)]
    try:
        run.start(first)
        run.start(later)
        tasks = run.hosts["proxy"]
        assert [sorted(wanted) for wanted, _ in tasks] == [[("ssh_reachable", None)], [("rsync_installed", None)]]
        assert run.result(host, "ssh_reachable", None).check == "ssh_reachable"
        assert run.result(host, "rsync_installed", None).check == "rsync_installed"
        run.start(later)
        assert len(run.hosts["proxy"]) == 2
    finally:
        run.close()


def config_of(*args: str, keyword: str = "", markexpr: str = "", deselect=None, lf: bool = False):
    """What _whole_suite reads of a pytest.Config, for a run started in the repository's root."""
    option = SimpleNamespace(keyword=keyword, markexpr=markexpr, deselect=deselect, lf=lf, stepwise=False)
    return SimpleNamespace(option=option, args=list(args), invocation_params=SimpleNamespace(dir=ROOT))


@pytest.mark.parametrize(("args", "options", "whole"), [
    (("suites/health",), {}, True),
    (("suites/health/",), {}, True),
    (("suites/health",), {"keyword": "docker"}, False),
    (("suites/health",), {"markexpr": "check"}, False),
    (("suites/health",), {"deselect": ["suites/health/test_http.py"]}, False),
    (("suites/health",), {"lf": True}, False),
    (("suites/health/test_ssh.py",), {}, False),
    (("suites/health/test_ssh.py::test_ssh",), {}, False),
    (("suites/health", "tests/unit"), {}, False),
])
def test_only_a_run_of_the_whole_suite_starts_before_collection(args, options, whole):
    assert health_conftest()._whole_suite(config_of(*args, **options)) is whole


def collect_in_process(*paths: str) -> str:
    """`pytest PATHS --collect-only` on the owner's inventory (no connection) through pytest.main in a child; its
    last line: `EXIT <code> HYPOTHESIS <imported> FROZEN <objects frozen when pytest.main returned>`."""
    code = ("import gc, sys, pytest; code = pytest.main([*sys.argv[1:], '--collect-only', '-q', '-p', "
            "'no:cacheprovider', '--inventory=inventories/homelab.yml']); "
            "print('EXIT', int(code), 'HYPOTHESIS', 'hypothesis' in sys.modules, 'FROZEN', gc.get_freeze_count())")
    done = subprocess.run([sys.executable, "-c", code, *paths], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert "EXIT 0 " in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def imports_hypothesis(*paths: str) -> bool:
    """Whether a collection of these paths imports hypothesis itself."""
    return "HYPOTHESIS True" in collect_in_process(*paths)


def test_a_run_of_this_suite_alone_leaves_hypothesis_out_a_mixed_run_keeps_it():
    """Hypothesis's plugin imports all of hypothesis in its terminal summary: not in a health-only run."""
    assert imports_hypothesis("suites/health") is False
    assert imports_hypothesis("suites/health", "tests/unit/test_validation_properties.py") is True


def test_the_collector_is_frozen_at_exit_only_a_caller_of_pytest_main_keeps_it():
    """gc.freeze waits for the interpreter's exit: nothing is frozen when pytest.main returns to its caller."""
    assert collect_in_process("suites/health").endswith("FROZEN 0")
