"""The deploy runs the same way everywhere: the Makefile's commands and the workflow's carry the same options.

The end-to-end tests run the Makefile's commands (lab/scenarios.py reads them with `make -n`); the
deploy workflow must pass the same options, or CI would deploy in a way nobody tested.
"""

from __future__ import annotations

import pytest

from lab import scenarios

pytestmark = pytest.mark.unit


def options(argv: list[str]) -> set[str]:
    """The option names of a command line, values left out."""
    return {arg.split("=", 1)[0] for arg in argv if arg.startswith("-")}


def test_make_deploy_runs_the_deploy_suite_with_the_allure_results():
    """`make deploy` runs pytest suites/deploy on the chosen inventory and writes Allure results."""
    argv = scenarios.make_command("deploy", INVENTORY="inventories/homelab.yml")
    assert argv[:2] == [".venv/bin/pytest", "suites/deploy"], argv
    assert argv[argv.index("--inventory") + 1] == "inventories/homelab.yml"
    assert "--alluredir" in argv


def test_the_deploy_workflow_runs_what_make_deploy_runs():
    """deploy.yml's pytest command = `make deploy`'s, options included (inventory: the homelab's)."""
    make = scenarios.make_command("deploy", INVENTORY="inventories/homelab.yml")
    workflow = scenarios.workflow_command("deploy.yml", "deploy")
    assert workflow[:2] == make[:2], f"deploy.yml runs {workflow[:2]}, make deploy runs {make[:2]}"
    assert options(workflow) == options(make), (
        f"deploy.yml passes {sorted(options(workflow))}, make deploy {sorted(options(make))}")
    assert workflow[workflow.index("--inventory") + 1] == "inventories/homelab.yml"


def test_make_plan_is_make_deploy_with_plan_only():
    """`make plan` is the deploy command plus --plan-only (no Allure results: a dry run reports nothing)."""
    deploy = options(scenarios.make_command("deploy"))
    plan = options(scenarios.make_command("plan"))
    assert plan - deploy == {"--plan-only"}, f"make plan adds {sorted(plan - deploy)}"


def test_with_option_replaces_a_value_and_refuses_to_add_an_option():
    """The e2e tests may point --alluredir elsewhere, never add an option users do not pass."""
    argv = [".venv/bin/pytest", "suites/deploy", "--alluredir", "reports/allure-results"]
    assert scenarios.with_option(argv, "--alluredir", "/tmp/r")[-1] == "/tmp/r"
    with pytest.raises(RuntimeError, match="has no --no-rollback"):
        scenarios.with_option(argv, "--no-rollback", "x")
