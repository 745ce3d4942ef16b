"""The deploy's result, as the commit comment (or reports/deploy-result.md) says it.

Read only from the deploy session object: stages, snapshots, plan, ansible, health, rollback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from plugins.deploy_session import DeploySession
from plugins.notify import NotifyOutcome, notify_commit


def to_markdown(deploy: DeploySession) -> str:
    """Markdown summary: verdict, one line per stage, the rollback outcome when there was one."""
    inventory = deploy.inventory
    verdict = "failed" if deploy.failed else "succeeded"
    lines = [f"## Deploy {verdict}: {inventory.environment} (run {deploy.run_id})", ""]
    lines += ["| stage | outcome | seconds | summary |", "|---|---|---|---|"]
    for record in deploy.stages.values():
        lines.append(f"| {record.name} | {record.outcome} | {record.seconds:.1f} | {record.summary} |")
    if deploy.failures:
        lines += ["", "### Failures", *[f"- {line}" for line in deploy.failures]]
    if deploy.rollback:
        outcome = deploy.rollback
        lines += ["", f"### Rollback {'succeeded' if outcome['ok'] else 'INCOMPLETE'} in {outcome['seconds']} s"]
        lines += [f"- rolled back {h} to `{s}`" for h, s in outcome["rolled_back"].items()]
        lines += [f"- FAILED {h}: {e}" for h, e in outcome["task_errors"].items()]
        lines += [f"- still unhealthy {h}: {m}" for h, m in outcome["unhealthy"].items()]
        lines += [f"- {x}" for x in outcome["excluded"]]
    elif deploy.failed and deploy.snapshots and not deploy.rollback_enabled:
        lines += ["", "Rollback disabled (--no-rollback): the failed state is kept."]
    return "\n".join(lines) + "\n"


def send(deploy: DeploySession, env: dict[str, str] | None = None) -> NotifyOutcome:
    """Comment on the commit when GitHub's API url, token, repository and sha are in the environment (as in
    GitHub Actions); else write reports/deploy-result.md."""
    env = os.environ if env is None else env
    return notify_commit(
        to_markdown(deploy),
        repo=env.get("GITHUB_REPOSITORY"),
        sha=env.get("GITHUB_SHA"),
        token=env.get("GITHUB_TOKEN"),
        api_url=env.get("GITHUB_API_URL"),
        sink_dir=deploy.reports_dir,
    )


def to_dict(deploy: DeploySession) -> dict:
    """JSON-able summary of the run, for scripts, benchmarks and the project's end-to-end tests."""
    plan = deploy.plan
    return {
        "run_id": deploy.run_id,
        "environment": deploy.inventory.environment,
        "plan_only": deploy.plan_only,
        "failed": deploy.failed,
        "stages": {r.name: {"outcome": r.outcome, "seconds": round(r.seconds, 2), "summary": r.summary}
                   for r in deploy.stages.values()},
        "plan": None if plan is None else {
            "summary": plan.summary(), "empty": plan.is_empty, "errored": plan.errored,
            "changes": [{"address": c.address, "actions": list(c.actions)} for c in plan.changes
                        if c.actions != ("no-op",)]},
        "plan_refusals": deploy.plan_refusals,
        "snapshot_name": deploy.snapshot_name,
        "snapshots": {str(vmid): name for vmid, name in deploy.snapshots.items()},
        "first_deploy": deploy.first_deploy,
        "applied": deploy.applied,
        "ansible": {name: {"changed_total": r["changed_total"], "status": r["status"], "check": r["check"],
                           "stats": r.get("stats", {}), "changed_tasks": r.get("changed_tasks", {}),
                           "failures": r.get("failures", [])}
                    for name, r in deploy.ansible.items()},
        "failures": deploy.failures,
        "rollback": deploy.rollback,
    }


def write_json(deploy: DeploySession) -> Path:
    """Write reports/deploy/<run id>/result.json and reports/deploy/latest.json; give the run's path."""
    run_dir = deploy.reports_dir / "deploy" / deploy.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_dict(deploy), indent=2, default=str)
    (run_dir / "result.json").write_text(text)
    (deploy.reports_dir / "deploy" / "latest.json").write_text(text)
    return run_dir / "result.json"
