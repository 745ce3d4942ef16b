"""The check registry is the one declaration of a check: the health suite asserts each once, the waits read it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from plugins.health.registry import CHECKS, COLUMNS, REGISTRY, check_named, host_wanted, services_of
from plugins.inventory import load_inventory

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAB = load_inventory(ROOT / "inventories" / "lab.yml")


def _health_tests() -> dict[str, tuple[str, list[str]]]:
    """{check name: (test function, its arguments)} from the check(...) markers of suites/health."""
    found: dict[str, tuple[str, list[str]]] = {}
    for path in sorted((ROOT / "suites" / "health").glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            for decorator in getattr(node, "decorator_list", []):
                if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "pytest.mark.check":
                    name = ast.literal_eval(decorator.args[0])
                    assert name not in found, f"check {name} is asserted by {found[name][0]} and {node.name}"
                    found[name] = (node.name, [a.arg for a in node.args.args])
    return found


def test_every_check_has_one_test_taking_the_argument_the_registry_gives():
    """One registry entry, one test function: marked with its name, taking its parameters' argument."""
    tests = _health_tests()
    assert sorted(tests) == sorted(REGISTRY), "checks without a test, or tests naming no check"
    for name, (function, arguments) in tests.items():
        assert REGISTRY[name].argument in arguments, f"{function} must take {REGISTRY[name].argument}"
    assert len(set(COLUMNS)) == len(CHECKS), "two checks in one column of the summary table"


def test_a_host_owes_the_checks_that_apply_to_it_in_registry_order():
    """The deploy's health stage and the rollback's wait: a host without containers owes no docker check."""
    runner = LAB.host("ci-runner").model_copy(update={"services": []})  # lab.yml's runs a node exporter
    runner._declarations = []
    app = LAB.host("app-demo")
    assert [c for c, _ in host_wanted(app)] == [
        "ssh_reachable", "sshd_refuses_passwords", "runner_key_authorized", "rsync_installed", "docker_running",
        *["container_running"] * len(app.containers), *["package_installed"] * len(app.packages)]
    assert ("container_running", app.containers[0]) in host_wanted(app)
    assert not runner.containers
    assert "docker_running" not in [c for c, _ in host_wanted(runner)]
    assert "no containers expected on ci-runner" in REGISTRY["docker_running"].applies(runner)
    assert services_of(LAB.hosts) == LAB.endpoints


def test_an_unknown_check_is_a_usage_error_naming_the_known_ones():
    """A marker naming no check stops the collection with the registry's names."""
    with pytest.raises(pytest.UsageError, match="no health check 'rsync' in plugins/health/registry.py; checks: ssh_"):
        check_named("rsync")
