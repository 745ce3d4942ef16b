"""The plan of a pull request as ONE comment on it, updated in place on every push (the Atlantis habit).

`python -m plugins.github.pr_comment` reads what `pytest suites/deploy --plan-only` left in
reports/deploy/latest.json (plugins/deploy/finish/run_result.py: to_dict) and writes the Terraform plan, the plan
guard's verdict and Ansible's check-mode summary into the pull request's comment that carries this
environment's hidden marker: found by the marker and PATCHed, created only when there is none yet.
Every GitHub answer is explained in one line; the token never appears in any message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from plugins.deploy.finish.notifier import NotifyOutcome
from plugins.deploy.session import new_run_id
from plugins.github import api as github_api
from plugins.inventory import InventoryError, load_inventory
from plugins.report.redaction import REDACTOR, Redactor

RESULT_FILE = Path("reports/deploy/latest.json")
MAX_BODY = 65536  # GitHub refuses a longer comment body with 422
MAX_PAGES = 50  # 100 comments a page: a pull request with more than 5000 comments is not looked through
MAX_CHANGES = 200  # resource rows; the rest is counted, so the comment stays under MAX_BODY
MAX_TASKS = 15  # changed tasks listed per host


def marker(environment: str) -> str:
    """The hidden line that tells this environment's plan comment from every other comment."""
    return f"<!-- homelab-suite:plan-comment environment={environment} -->"


def render(result: Mapping[str, Any] | None, *, environment: str, head_sha: str | None = None,
           run_url: str | None = None, problem: str = "") -> str:
    """The comment's markdown: marker, verdict, Terraform plan, plan guard, Ansible check mode, stages."""
    lines = [marker(environment)]
    if result is None:
        lines += [f"### ❌ Plan for {environment}: no result", "", problem or "the plan run left no result"]
        return "\n".join([*lines, "", _footer(head_sha, run_url)]) + "\n"
    failed = bool(result.get("failed"))
    lines += [f"### {'❌' if failed else '✅'} {_headline(result, environment)}", ""]
    lines += _plan_section(result)
    lines += _guard_section(result)
    lines += _ansible_section(result)
    lines += _stages_section(result)
    if result.get("failures"):
        lines += ["#### Failures", *[f"- {_cell(line, 500)}" for line in result["failures"]], ""]
    lines.append(_footer(head_sha, run_url, result.get("run_id")))
    return _fit("\n".join(lines) + "\n")


def _headline(result: Mapping[str, Any], environment: str) -> str:
    plan = result.get("plan")
    parts = [f"Plan for {environment}: " + (plan["summary"] if plan else "no Terraform plan")]
    parts.append(f"guard {_guard_verdict(result)[0]}")
    changed = sum(r.get("changed_total", 0) for r in (result.get("ansible") or {}).values())
    if result.get("ansible"):
        parts.append(f"Ansible would change {changed} task(s)")
    failed_stage = next((name for name, s in (result.get("stages") or {}).items() if s.get("outcome") == "failed"), None)
    if failed_stage:
        parts.append(f"failed at {failed_stage}")
    return " · ".join(parts)


def _plan_section(result: Mapping[str, Any]) -> list[str]:
    plan = result.get("plan")
    lines = ["#### Terraform plan"]
    if plan is None:
        return [*lines, "Not computed: the run stopped before the plan (see the stages below).", ""]
    if plan.get("errored"):
        lines.append("⚠️ Terraform failed while planning: this plan must not be applied.")
    changes = plan.get("changes") or []
    if not changes:
        return [*lines, f"No changes ({plan['summary']}).", ""]
    lines += ["| action | resource |", "|---|---|"]
    lines += [f"| {'/'.join(c['actions'])} | `{_cell(c['address'], 300)}` |" for c in changes[:MAX_CHANGES]]
    if len(changes) > MAX_CHANGES:
        lines.append(f"| … | {len(changes) - MAX_CHANGES} more change(s), in the job's log |")
    return [*lines, ""]


def _guard_verdict(result: Mapping[str, Any]) -> tuple[str, str]:
    plan, refusals = result.get("plan"), result.get("plan_refusals") or []
    stage = ((result.get("stages") or {}).get("plan") or {}).get("outcome")
    if refusals:
        return "REFUSED", "the plan would delete or replace a protected container: it would never be applied"
    if plan is None:
        return "not reached", "no plan to judge"
    if plan.get("errored"):
        return "no verdict", "Terraform failed while planning"
    if stage != "passed":
        return "no verdict", f"the plan stage ended {stage or 'without an outcome'}"
    return "accepted", "no protected container is deleted or replaced"


def _guard_section(result: Mapping[str, Any]) -> list[str]:
    verdict, why = _guard_verdict(result)
    lines = ["#### Plan guard", f"**{verdict}**: {why}."]
    lines += [f"- {_cell(line, 500)}" for line in result.get("plan_refusals") or []]
    return [*lines, ""]


def _ansible_section(result: Mapping[str, Any]) -> list[str]:
    runs = result.get("ansible") or {}
    if not runs:
        return ["#### Ansible check mode", "Not run (see the stages below).", ""]
    lines = []
    for playbook, run in runs.items():
        mode = "check mode" if run.get("check") else "NOT check mode"
        changed = run.get("changed_total", 0)
        lines.append(f"#### Ansible {mode}: {playbook}.yml — {run.get('status')}, {changed} task(s) would change")
        stats = run.get("stats") or {}
        tasks = run.get("changed_tasks") or {}
        if stats:
            lines += ["| host | would change | failed | unreachable | tasks that would change |", "|---|---|---|---|---|"]
            for host, s in stats.items():
                names = tasks.get(host) or []
                shown = ", ".join(f"`{_cell(t, 120)}`" for t in names[:MAX_TASKS])
                if len(names) > MAX_TASKS:
                    shown += f", … {len(names) - MAX_TASKS} more"
                lines.append(f"| {host} | {s.get('changed', 0)} | {s.get('failures', 0)} | {s.get('dark', 0)} | "
                             f"{shown or '—'} |")
        for failure in run.get("failures") or []:
            lines.append(f"- FAILED {failure.get('host')} · {_cell(failure.get('task'), 200)}: "
                         f"{_cell(failure.get('message'), 400)}")
        lines.append("")
    return lines


def _stages_section(result: Mapping[str, Any]) -> list[str]:
    stages = result.get("stages") or {}
    lines = ["<details><summary>Stages</summary>", "", "| stage | outcome | seconds | summary |", "|---|---|---|---|"]
    lines += [f"| {name} | {s.get('outcome')} | {s.get('seconds', 0)} | {_cell(s.get('summary'), 300)} |"
              for name, s in stages.items()]
    return [*lines, "", "</details>", ""]


def _footer(head_sha: str | None, run_url: str | None, run_id: str | None = None) -> str:
    bits = ["`pytest suites/deploy --plan-only`: nothing was changed"]
    if head_sha:
        bits.append(f"commit {head_sha[:12]}")
    if run_id:
        bits.append(f"run {run_id}")
    if run_url:
        bits.append(f"[job log]({run_url})")
    return "<sub>" + " · ".join(bits) + ". This comment is updated in place on every push.</sub>"


def _cell(value: Any, limit: int) -> str:
    """One table-safe line: no newlines or pipes, at most `limit` characters."""
    text = " ".join(str(value if value is not None else "").split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fit(body: str) -> str:
    if len(body) <= MAX_BODY:
        return body
    note = "\n\n…(cut to GitHub's comment limit; the whole plan is in the job's log)\n"
    return body[: MAX_BODY - len(note)] + note


def upsert(body: str, *, repo: str, pr: int, token: str, api_url: str, environment: str,
           timeout: float = github_api.HTTP_TIMEOUT) -> NotifyOutcome:
    """PATCH the pull request's comment that carries the environment's marker, or create it; never raises."""
    redactor = Redactor([token])
    try:
        outcome = _upsert(body, repo=repo, pr=pr, token=token, api_url=api_url, environment=environment,
                          timeout=timeout)
    except requests.RequestException as exc:
        outcome = NotifyOutcome(False, f"could not reach the GitHub API at {api_url}: {type(exc).__name__}: {exc}")
    return NotifyOutcome(outcome.ok, REDACTOR.redact(redactor.redact(outcome.message)), outcome.url)


def _upsert(body: str, *, repo: str, pr: int, token: str, api_url: str, environment: str,
            timeout: float) -> NotifyOutcome:
    tag = marker(environment)
    existing = None
    for page in range(1, MAX_PAGES + 1):
        response = github_api.call("GET", api_url, f"/repos/{repo}/issues/{pr}/comments", token,
                                   params={"per_page": 100, "page": page}, timeout=timeout)
        if response.status_code != 200:
            return NotifyOutcome(False, _refused(response, f"the comment list of pull request #{pr}", repo, pr))
        comments = github_api.json_of(response)
        existing = next((c for c in comments or [] if isinstance(c, dict) and tag in str(c.get("body") or "")), None)
        if existing or not github_api.next_page(response):
            break
    if existing:
        response = github_api.call("PATCH", api_url, f"/repos/{repo}/issues/comments/{existing['id']}", token,
                                   body={"body": body}, timeout=timeout)
        done, verb, what = 200, "updated", f"the plan comment {existing['id']} on pull request #{pr}"
    else:
        response = github_api.call("POST", api_url, f"/repos/{repo}/issues/{pr}/comments", token,
                                   body={"body": body}, timeout=timeout)
        done, verb, what = 201, "created", f"a new plan comment on pull request #{pr}"
    if response.status_code != done:
        return NotifyOutcome(False, _refused(response, what, repo, pr))
    data = github_api.json_of(response)
    link = data.get("html_url") if isinstance(data, dict) else None
    return NotifyOutcome(True, f"{verb} the plan comment on pull request #{pr} of {repo}" + (f": {link}" if link else ""),
                         link)


def _refused(response: requests.Response, what: str, repo: str, pr: int) -> str:
    said = github_api.error_text(response)
    code = response.status_code
    if code in (403, 429) and "rate limit" in said.lower():
        why = "the token's API rate limit is used up: retry later"
    else:
        why = {
            401: "the token is invalid or expired",
            403: "the token lacks `pull-requests: write` (the plan job's `permissions:`); "
                 "a pull request from a fork only ever gets a read-only token",
            404: f"repository {repo} or pull request #{pr} not found, or the token cannot see the repository",
            422: "GitHub refused the comment's body",
        }.get(code, "unexpected answer")
    return f"GitHub answered {code} to {what} of {repo}: {why}" + (f" (GitHub: {said})" if said else "")


def load_result(path: Path, env: Mapping[str, str]) -> tuple[dict | None, str]:
    """The plan run's result and '' — or None and why it cannot be used (missing, unreadable, stale, not a plan)."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"the plan run left no {path}: it stopped before its session ended (see the job's log)"
    except (OSError, ValueError) as exc:
        return None, f"{path} cannot be read as the plan run's result: {exc}"
    if not isinstance(result, dict):
        return None, f"{path}: expected a JSON object (plugins/deploy/finish/run_result.py: to_dict), found {type(result).__name__}"
    expected = new_run_id(dict(env)) if env.get("GITHUB_RUN_ID") else None
    if expected and result.get("run_id") != expected:
        return None, (f"{path} is from run {result.get('run_id')}, not this run ({expected}): "
                      "the plan run of this push left no result (see the job's log)")
    if not result.get("plan_only"):
        return None, f"{path} is the result of a deploy, not of a --plan-only run: nothing is posted"
    return result, ""


def _event(env: Mapping[str, str]) -> dict:
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """CLI: post or update the plan comment; 0 when GitHub took it, 1 when it refused, 2 on bad input."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(prog="python -m plugins.github.pr_comment", description=__doc__.splitlines()[0])
    parser.add_argument("--result", type=Path, default=RESULT_FILE, help=f"the plan run's result (default {RESULT_FILE})")
    parser.add_argument("--pr", type=int, help="pull request number (default: from $GITHUB_EVENT_PATH)")
    parser.add_argument("--inventory", type=Path, required=True,
                        help="the inventory the plan ran against: its environment names the comment's marker")
    parser.add_argument("--print", dest="print_only", action="store_true", help="print the comment, post nothing")
    args = parser.parse_args(argv)
    try:
        environment = load_inventory(args.inventory).environment
    except InventoryError as exc:
        print(f"pr_comment: nothing posted: {exc}", file=sys.stderr)
        return 2
    pull = _event(env).get("pull_request") or {}
    result, problem = load_result(args.result, env)
    if result is not None and result.get("environment") != environment:
        result, problem = None, (f"{args.result} is a plan of environment {result.get('environment')!r}, "
                                 f"not of {environment!r} ({args.inventory}): nothing of it is posted")
    body = render(result, environment=environment, head_sha=(pull.get("head") or {}).get("sha"),
                  run_url=_run_url(env), problem=problem)
    token = env.get("GITHUB_TOKEN")
    body = REDACTOR.redact(Redactor([token]).redact(body))
    if args.print_only:
        print(body, end="")
        return 0
    pr = args.pr or pull.get("number")
    missing = [name for name, value in (("$GITHUB_API_URL", env.get("GITHUB_API_URL")), ("$GITHUB_TOKEN", token),
                                        ("$GITHUB_REPOSITORY", env.get("GITHUB_REPOSITORY")),
                                        ("a pull request number (--pr or $GITHUB_EVENT_PATH)", pr)) if not value]
    if missing:
        print(f"pr_comment: nothing posted, missing {', '.join(missing)}", file=sys.stderr)
        return 2
    outcome = upsert(body, repo=env["GITHUB_REPOSITORY"], pr=int(pr), token=token, api_url=env["GITHUB_API_URL"],
                     environment=environment)
    print(f"pr_comment: {outcome.message}", file=sys.stdout if outcome.ok else sys.stderr)
    if problem:
        print(f"pr_comment: {problem}", file=sys.stderr)
    return 0 if outcome.ok else 1


def _run_url(env: Mapping[str, str]) -> str | None:
    server, repo, run = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run}" if server and repo and run else None


if __name__ == "__main__":
    sys.exit(main())
