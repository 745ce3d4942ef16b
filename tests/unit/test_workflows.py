"""The shipped workflows agree with both inventories' `github` section; each mismatch is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plugins.deploy.workflows import DEPLOY_WORKFLOW, PLAN_WORKFLOW, plan_workflow_problems, workflow_problems
from plugins.inventory import load_inventory

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = sorted((ROOT / "inventories").glob("*.yml"))


@pytest.mark.parametrize("path", INVENTORIES, ids=lambda p: p.name)
def test_the_shipped_workflows_match_the_inventory(path):
    """deploy.yml and validate.yml's plan job match every inventory's branch, runner label and environment."""
    inventory = load_inventory(path)
    where = inventory.where("github")
    assert workflow_problems(ROOT / DEPLOY_WORKFLOW, inventory.github, where) == []
    assert plan_workflow_problems(ROOT / PLAN_WORKFLOW, inventory.github, where) == []


def _plan_workflow(tmp_path, **job_changes) -> Path:
    doc = yaml.safe_load((ROOT / PLAN_WORKFLOW).read_text())
    doc["jobs"]["plan"].update(job_changes)
    path = tmp_path / "validate.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def github():
    """The homelab inventory's github section and where it lives."""
    inventory = load_inventory(ROOT / "inventories" / "homelab.yml")
    return inventory.github, inventory.where("github")


def test_a_plan_job_on_another_runner_label_is_named(tmp_path, github):
    """Incident #15 for pull requests: the plan job would wait for a runner forever."""
    (problem,) = plan_workflow_problems(_plan_workflow(tmp_path, **{"runs-on": ["self-hosted", "pve"]}), *github)
    assert problem.endswith("jobs.plan.runs-on is ['self-hosted', 'pve'], expected the runner label "
                            "'self-hosted-proxmox' (inventories/homelab.yml: github.runs_on): "
                            "the plan would wait for a runner forever")


def test_a_plan_job_without_pull_requests_write_is_named(tmp_path, github):
    """Incident #14 for pull requests: the comment would get a 403."""
    (problem,) = plan_workflow_problems(_plan_workflow(tmp_path, permissions={"contents": "read"}), *github)
    assert problem.endswith("jobs.plan is not granted permissions.pull-requests 'write': "
                            "the plan comment would get HTTP 403")


def test_a_plan_job_in_the_deploy_environment_is_named(tmp_path, github):
    """Incident #16 for pull requests: production's branch rule would refuse every pull request's branch."""
    (problem,) = plan_workflow_problems(_plan_workflow(tmp_path, environment="production"), *github)
    assert "jobs.plan.environment is 'production' (inventories/homelab.yml: github.environment), the deploy's" in problem


def test_a_deploy_job_granted_too_little_is_named(tmp_path, github):
    """Job-level permissions replace the workflow's: a job granted contents: read cannot comment on the commit."""
    doc = yaml.safe_load((ROOT / DEPLOY_WORKFLOW).read_text())
    doc["permissions"] = {"contents": "write"}
    doc["jobs"]["deploy"]["permissions"] = {"contents": "read"}
    path = tmp_path / "deploy.yml"
    path.write_text(yaml.safe_dump(doc))
    (problem,) = workflow_problems(path, *github)
    assert problem == (f"{path}: jobs.deploy is not granted permissions.contents 'write': "
                       "the commit comment would get HTTP 403")


def test_a_missing_plan_job_is_named(tmp_path, github):
    """Without a job named plan, pull requests get no comment: said, not a KeyError."""
    doc = yaml.safe_load((ROOT / PLAN_WORKFLOW).read_text())
    del doc["jobs"]["plan"]
    path = tmp_path / "validate.yml"
    path.write_text(yaml.safe_dump(doc))
    assert plan_workflow_problems(path, *github) == [f"{path}: no job 'plan': pull requests would get no plan comment"]


def deploy_steps() -> list[dict]:
    """The deploy job's steps, in order."""
    return yaml.safe_load((ROOT / DEPLOY_WORKFLOW).read_text())["jobs"]["deploy"]["steps"]


def step_index(steps: list[dict], uses: str = "", run: str = "") -> int:
    """The position of the step using `uses` or running `run` (fails when absent)."""
    found = [i for i, s in enumerate(steps) if (uses and s.get("uses", "").startswith(uses)) or (run and s.get("run") == run)]
    assert len(found) == 1, f"expected one step {uses or run}, found {len(found)}"
    return found[0]


def test_the_report_history_survives_the_checkout_of_each_deploy():
    """deploy.yml restores reports/allure-history, renders the report (which appends this run), then saves the
    history, each step run also when the deploy failed: the trend spans runs although checkout cleans reports/."""
    steps = deploy_steps()
    deploy = step_index(steps, run=next(s["run"] for s in steps if "suites/deploy" in s.get("run", "")))
    restore = step_index(steps, uses="actions/cache/restore@")
    render = step_index(steps, run="make report")
    save = step_index(steps, uses="actions/cache/save@")
    assert deploy < restore < render < save
    for index in (restore, render, save):
        assert steps[index].get("if") == "always()", steps[index]
    assert steps[restore]["with"]["path"] == steps[save]["with"]["path"] == "reports/allure-history"
    assert steps[save]["with"]["key"].startswith(steps[restore]["with"]["restore-keys"])
    for index in (restore, save):
        assert len(steps[index]["uses"].split("@")[1].split()[0]) == 40, "actions are pinned to a commit SHA"


def test_the_vault_password_reaches_the_deploy_as_a_file_and_is_removed():
    """The CI secret is written to a 0600 file before the deploy, given as ANSIBLE_VAULT_PASSWORD_FILE, removed
    after it whatever happened."""
    steps = deploy_steps()
    write = next(i for i, s in enumerate(steps) if "ANSIBLE_VAULT_PASSWORD" in (s.get("env") or {}))
    deploy = next(i for i, s in enumerate(steps) if "suites/deploy" in s.get("run", ""))
    remove = next(i for i, s in enumerate(steps) if "rm -f" in s.get("run", "") and "vault-password" in s["run"])
    assert write < deploy < remove and steps[remove]["if"] == "always()"
    assert "umask 077" in steps[write]["run"]
    assert steps[deploy]["env"]["ANSIBLE_VAULT_PASSWORD_FILE"] == "${{ runner.temp }}/vault-password"
    assert "ANSIBLE_VAULT_PASSWORD" not in steps[deploy]["env"], "the password itself stays out of the deploy's env"
