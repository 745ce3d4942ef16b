"""The deploy's result, as the commit comment (or reports/deploy-result.md) says it.

Read only from the deploy session object: stages, snapshots, plan, ansible, health, rollback.
"""

from __future__ import annotations

import os

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
    """Comment on the commit when GitHub's token, repository and sha are in the environment; else write a file."""
    env = os.environ if env is None else env
    return notify_commit(
        to_markdown(deploy),
        repo=env.get("GITHUB_REPOSITORY"),
        sha=env.get("GITHUB_SHA"),
        token=env.get("GITHUB_TOKEN"),
        api_url=env.get("GITHUB_API_URL", "https://api.github.com"),
        sink_dir=deploy.reports_dir,
    )
