"""The shipped GitHub workflows agree with the inventory's `github` section (incidents #1, #14, #15, #16).

The deploy workflow must trigger on the configured branch, run on the runner label the owner
registered, use the configured environment, and grant `contents: write` for the commit comment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY_WORKFLOW = Path(".github/workflows/deploy.yml")


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


def workflow_problems(path: Path, github: Any, where: str) -> list[str]:
    """Mismatches between the deploy workflow and the inventory's github section, one line each."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        return [f"{path}: cannot read the deploy workflow: {exc}"]
    problems = []
    branches = (_on(doc).get("push") or {}).get("branches", [])
    if github.branch not in branches:
        problems.append(f"{path}: on.push.branches is {branches}, expected it to include '{github.branch}' "
                        f"({where}.branch): the workflow would never trigger")
    if (doc.get("permissions") or {}).get("contents") != "write":
        problems.append(f"{path}: permissions.contents is not 'write': the commit comment would get HTTP 403")
    for name, job in (doc.get("jobs") or {}).items():
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
