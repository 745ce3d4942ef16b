"""The deploy's result, as the commit comment, reports/deploy-result.md and result.json say it.

Read only from the deploy session object: stages, snapshots, plan, ansible, health, rollback.
The files at the top of reports/ (latest.json, deploy-result.md) always describe THIS run: they
say "in progress" from the run's start, its result at its end, or that the result could not be written.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from plugins.deploy.finish.judgement import judge_lines
from plugins.deploy.finish.notifier import SINK_NAME, NotifyOutcome, notify_commit
from plugins.deploy.session import DeploySession


def to_markdown(deploy: DeploySession) -> str:
    """Markdown summary: verdict, one line per stage, the rollback outcome when there was one."""
    inventory = deploy.inventory
    verdict = "failed" if deploy.failed else "succeeded"
    lines = [f"## Deploy {verdict}: {inventory.environment} (run {deploy.run_id})", ""]
    lines += ["| stage | outcome | seconds | summary |", "|---|---|---|---|"]
    for record in deploy.stages.values():
        lines.append(f"| {record.name} | {record.outcome} | {record.seconds:.1f} | {record.summary} |")
    if deploy.left_out:
        lines += ["", "### Left out of this run", *[f"- {line}" for line in deploy.left_out_lines()]]
    if deploy.failures:
        lines += ["", "### Failures", *[f"- {line}" for line in deploy.failures]]
    if deploy.rollback:
        outcome = deploy.rollback
        lines += ["", f"### Rollback {'succeeded' if outcome['ok'] else 'INCOMPLETE'} in {outcome['seconds']} s"]
        lines += [f"- rolled back {h} to `{s}`" for h, s in outcome["rolled_back"].items()]
        lines += [f"- FAILED {h}: {e}" for h, e in outcome["task_errors"].items()]
        lines += [f"- still unhealthy {h}: {m}" for h, m in outcome["unhealthy"].items()]
        lines += [f"- {x}" for x in outcome["excluded"]]
        lines += [f"- {line}" for line in judge_lines(outcome.get("judged_by") or {})]
        if outcome.get("recovery"):
            lines += [f"- the homelab may be half-deployed: once the cause is fixed, run `{outcome['recovery']}`"]
    elif deploy.failed and deploy.snapshots and not deploy.rollback_enabled:
        lines += ["", "Rollback disabled (--no-rollback): the failed state is kept."]
    if deploy.release:
        release = deploy.release
        commit = f", commit {release['commit'][:12]}" if release.get("commit") else ""
        lines += ["", (f"Release {release['release']} recorded{commit}: `{release['file']}`, and "
                      f"`{release['on_hosts']}` on {', '.join(release['recorded_on']) or 'no host'}")]
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
        "status": "failed" if deploy.failed else "succeeded",
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
        "left_out": {deploy.inventory.host(vmid).hostname: why for vmid, why in sorted(deploy.left_out.items())},
        "applied": deploy.applied,
        "ansible": {name: {"changed_total": r["changed_total"], "status": r["status"], "check": r["check"],
                           "stats": r.get("stats", {}), "changed_tasks": r.get("changed_tasks", {}),
                           "failures": r.get("failures", [])}
                    for name, r in deploy.ansible.items()},
        "failures": deploy.failures,
        "rollback": deploy.rollback,
        "release": deploy.release,
        "interrupted": deploy.interrupted or None,
        "notification": deploy.notification,
    }


def latest_paths(deploy: DeploySession) -> tuple[Path, Path]:
    """reports/deploy/latest.json and reports/deploy-result.md: what a person or a script looks at first."""
    return deploy.reports_dir / "deploy" / "latest.json", deploy.reports_dir / SINK_NAME


def write_in_progress(deploy: DeploySession) -> None:
    """Replace the previous run's latest files with "run <id> in progress", so none is taken for this run's."""
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    latest, markdown = latest_paths(deploy)
    note = (f"run {deploy.run_id} started at {started} (pid {os.getpid()}) and has not written its result: "
            "it is still running, or it ended without finishing (see its terminal output)")
    _write(latest, json.dumps({"run_id": deploy.run_id, "status": "in progress", "note": note}, indent=2))
    _write(markdown, f"## Deploy in progress: {deploy.inventory.environment} (run {deploy.run_id})\n\n{note}\n")


def write_files(deploy: DeploySession) -> tuple[list[Path], list[str]]:
    """Write result.json, latest.json and deploy-result.md for this run; give the paths written and the errors.

    A file that cannot be written is replaced by a note saying so (or removed), never left describing
    an earlier run.
    """
    written, errors = [], []
    latest, markdown = latest_paths(deploy)
    try:
        text = json.dumps(to_dict(deploy), indent=2, default=str)
        body = to_markdown(deploy)
    except Exception as exc:  # noqa: BLE001 - the end of a run must say what it could not do
        errors.append(f"the result of run {deploy.run_id} could not be rendered: {type(exc).__name__}: {exc}")
        text = body = None
    for path, content in ((deploy.run_dir / "result.json", text), (latest, text), (markdown, body)):
        try:
            if content is None:
                raise ValueError("nothing to write")
            _write(path, content)
            written.append(path)
        except (OSError, ValueError) as exc:
            errors.append(f"{path} could not be written: {getattr(exc, 'strerror', None) or exc}")
            _say_not_written(path, deploy.run_id)
    return written, errors


def _say_not_written(path: Path, run_id: str) -> None:
    """Put a note in place of a file that could not be written; remove the file if even that fails."""
    note = f"the result of run {run_id} could not be written here: see the run's terminal output\n"
    try:
        _write(path, json.dumps({"run_id": run_id, "status": "unknown", "note": note.strip()})
               if path.suffix == ".json" else f"## Deploy result unknown (run {run_id})\n\n{note}")
    except OSError:
        path.unlink(missing_ok=True)


def _write(path: Path, text: str) -> None:
    """Write a file whole or not at all (a reader never sees half a result)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
