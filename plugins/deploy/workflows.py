"""The shipped GitHub workflows agree with the inventory's `github` section (incidents #1, #14, #15, #16).

The deploy workflow must trigger on the configured branch, run on the runner label the owner
registered, use the configured environment, and grant `contents: write` for the commit comment.
The pull requests' plan job (validate.yml) must run on that runner too, be allowed to write its
comment (`pull-requests: write`), and not use the deploy's environment, whose branch rule refuses
a pull request's branch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY_WORKFLOW = Path(".github/workflows/deploy.yml")
PLAN_WORKFLOW = Path(".github/workflows/validate.yml")
PLAN_JOB = "plan"


def _on(doc: dict) -> dict:
    # YAML 1.1 reads the key `on` as the boolean True.
    on = doc.get("on", doc.get(True, {}))
    return on if isinstance(on, dict) else {name: {} for name in ([on] if isinstance(on, str) else on or [])}


def _labels(runs_on: Any) -> list[str]:
    if isinstance(runs_on, str):
        return [runs_on]
    if isinstance(runs_on, dict):
        return list(runs_on.get("labels", []))
    return list(runs_on or [])


def _permissions(doc: dict, job: dict) -> dict:
    # A job's own `permissions` replace the workflow's entirely (GitHub does not merge them).
    granted = job.get("permissions", doc.get("permissions"))
    if granted == "write-all":
        return {"contents": "write", "pull-requests": "write"}
    return granted if isinstance(granted, dict) else {}


def _read(path: Path, what: str) -> tuple[dict, list[str]]:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        return {}, [f"{path}: cannot read the {what} workflow: {exc}"]
    if not isinstance(doc, dict):
        return {}, [f"{path}: expected a workflow (a mapping), found {type(doc).__name__}"]
    return doc, []


def workflow_problems(path: Path, github: Any, where: str) -> list[str]:
    """Mismatches between the deploy workflow and the inventory's github section, one line each."""
    doc, problems = _read(path, "deploy")
    if problems:
        return problems
    branches = (_on(doc).get("push") or {}).get("branches", [])
    if github.branch not in branches:
        problems.append(f"{path}: on.push.branches is {branches}, expected it to include '{github.branch}' "
                        f"({where}.branch): the workflow would never trigger")
    for name, job in (doc.get("jobs") or {}).items():
        if _permissions(doc, job).get("contents") != "write":
            problems.append(f"{path}: jobs.{name} is not granted permissions.contents 'write': "
                            "the commit comment would get HTTP 403")
        labels = _labels(job.get("runs-on"))
        if github.runs_on not in labels:
            problems.append(f"{path}: jobs.{name}.runs-on is {labels}, expected the runner label "
                            f"'{github.runs_on}' ({where}.runs_on): the job would wait for a runner forever")
        env = job.get("environment")
        env_name = env.get("name") if isinstance(env, dict) else env
        if env_name != github.environment:
            problems.append(f"{path}: jobs.{name}.environment is {env_name!r}, expected '{github.environment}' "
                            f"({where}.environment); its deployment branch rules must allow '{github.branch}'")
    return problems


def plan_workflow_problems(path: Path, github: Any, where: str) -> list[str]:
    """Mismatches between the pull requests' plan job and the inventory's github section, one line each."""
    doc, problems = _read(path, "plan")
    if problems:
        return problems
    branches = (_on(doc).get("pull_request") or {}).get("branches", [])
    if github.branch not in branches:
        problems.append(f"{path}: on.pull_request.branches is {branches}, expected it to include "
                        f"'{github.branch}' ({where}.branch): pull requests into it would get no plan")
    job = (doc.get("jobs") or {}).get(PLAN_JOB)
    if not isinstance(job, dict):
        return [*problems, f"{path}: no job '{PLAN_JOB}': pull requests would get no plan comment"]
    labels = _labels(job.get("runs-on"))
    if github.runs_on not in labels:
        problems.append(f"{path}: jobs.{PLAN_JOB}.runs-on is {labels}, expected the runner label "
                        f"'{github.runs_on}' ({where}.runs_on): the plan would wait for a runner forever")
    if _permissions(doc, job).get("pull-requests") != "write":
        problems.append(f"{path}: jobs.{PLAN_JOB} is not granted permissions.pull-requests 'write': "
                        "the plan comment would get HTTP 403")
    env = job.get("environment")
    env_name = env.get("name") if isinstance(env, dict) else env
    if env_name == github.environment:
        problems.append(f"{path}: jobs.{PLAN_JOB}.environment is '{env_name}' ({where}.environment), the deploy's: "
                        f"its deployment branch rule allows '{github.branch}' only, so every pull request's "
                        "plan would be refused; give the plan job an environment of its own")
    return problems
