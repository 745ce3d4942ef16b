"""The plan comment against a local server answering as GitHub does: one comment per pull request,
updated in place on every push; 401, 403, 404 and 422 each explained in one line, the token in none."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from github_fake import MAX_BODY, FakeGitHub, Repo

from plugins.deploy.finish import run_result
from plugins.deploy.session import DeploySession
from plugins.github import pr_comment
from plugins.inventory import load_inventory
from plugins.tools.playbooks import HostStats, PlaybookResult
from plugins.tools.terraform import Plan

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "homelab.yml"
TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
REPO = "owner/homelab"
PR = 7
HEAD = "89abcdef0123456789abcdef0123456789abcdef"
MARKER = pr_comment.marker("homelab")


@pytest.fixture
def github():
    """A FakeGitHub knowing REPO and pull request #7; the token may write pull-request comments."""
    with FakeGitHub(TOKEN, {REPO: Repo(pulls={PR})}) as server:
        yield server


def _upsert(server, body="plan", **overrides):
    kwargs = {"repo": REPO, "pr": PR, "token": TOKEN, "api_url": server.url, "environment": "homelab"}
    kwargs.update(overrides)
    return pr_comment.upsert(f"{MARKER}\n{body}", **kwargs)


def test_the_first_push_creates_the_comment_and_the_next_ones_update_it(github):
    """First push: GET finds no marker, POST → 201. Second push: GET finds it, PATCH → 200; still one comment."""
    first = _upsert(github, "plan one")
    assert first.ok and first.message.startswith(f"created the plan comment on pull request #{PR} of {REPO}: ")
    second = _upsert(github, "plan two")
    (comment,) = github.comments_on(REPO, PR)
    assert second.ok and second.message.startswith(f"updated the plan comment on pull request #{PR} of {REPO}: ")
    assert second.url == first.url == comment["html_url"] and comment["body"].endswith("plan two")
    assert [r["method"] for r in github.requests] == ["GET", "POST", "GET", "PATCH"]
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in github.requests)


def test_the_marker_is_found_past_the_first_page_and_other_comments_are_left_alone(github):
    """A busy pull request: the marked comment is on page 2; people's comments and another environment's stay."""
    for n in range(120):
        github.seed_comment(REPO, PR, f"review remark {n}")
    lab = github.seed_comment(REPO, PR, f"{pr_comment.marker('lab')}\nlab plan", login="github-actions[bot]")
    ours = github.seed_comment(REPO, PR, f"{MARKER}\nold plan", login="github-actions[bot]")
    outcome = _upsert(github, "new plan")
    assert outcome.ok and outcome.url == ours["html_url"]
    assert github.issue_comments[ours["id"]]["body"].endswith("new plan")
    assert github.issue_comments[lab["id"]]["body"].endswith("lab plan")
    assert len(github.comments_on(REPO, PR)) == 122
    gets = [r for r in github.requests if r["method"] == "GET"]
    assert [g["query"]["page"] for g in gets] == [["1"], ["2"]] and github.requests[-1]["method"] == "PATCH"


def test_401_says_the_token_is_invalid(github):
    """A token GitHub does not know: 401, explained; neither token is in the message."""
    wrong = "ghs_" + "y" * 36
    outcome = _upsert(github, token=wrong)
    assert not outcome.ok
    assert outcome.message == (f"GitHub answered 401 to the comment list of pull request #{PR} of {REPO}: "
                               "the token is invalid or expired (GitHub: Bad credentials)")
    assert wrong not in outcome.message and TOKEN not in outcome.message


def test_403_names_the_missing_pull_requests_write_permission(github):
    """Incident #14's twin: a token with read access lists the comments, then gets 403 on the POST."""
    github.permissions = {"contents": "read", "pull_requests": "read"}
    outcome = _upsert(github)
    assert not outcome.ok
    assert outcome.message == (
        f"GitHub answered 403 to a new plan comment on pull request #{PR} of {REPO}: the token lacks "
        "`pull-requests: write` (the plan job's `permissions:`); a pull request from a fork only ever gets a "
        "read-only token (GitHub: Resource not accessible by integration)")
    assert not github.comments_on(REPO, PR)


def test_403_on_the_update_is_explained_too(github):
    """The comment exists, the PATCH is refused: the message says which call and why."""
    existing = github.seed_comment(REPO, PR, f"{MARKER}\nold plan")
    github.permissions = {"pull_requests": "read"}
    outcome = _upsert(github)
    assert outcome.message.startswith(f"GitHub answered 403 to the plan comment {existing['id']} on pull request #{PR} "
                                      f"of {REPO}: the token lacks `pull-requests: write`")


def test_404_names_the_repository_and_pull_request(github):
    """A pull request GitHub does not know: 404, naming repository and number."""
    outcome = _upsert(github, pr=99)
    assert outcome.message == (f"GitHub answered 404 to the comment list of pull request #99 of {REPO}: repository "
                               f"{REPO} or pull request #99 not found, or the token cannot see the repository "
                               "(GitHub: Not Found)")


def test_422_gives_githubs_validation_errors(github):
    """A body over GitHub's limit: 422 with GitHub's `errors[]` in the one line."""
    outcome = _upsert(github, "x" * MAX_BODY)
    assert outcome.message == (
        f"GitHub answered 422 to a new plan comment on pull request #{PR} of {REPO}: GitHub refused the comment's "
        f"body (GitHub: Validation Failed: body is too long (maximum is {MAX_BODY} characters))")


def test_an_unreachable_api_is_explained_not_raised():
    """Nothing listens on the API url: one line, no exception, no token."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = pr_comment.upsert("b", repo=REPO, pr=PR, token=TOKEN, api_url=f"http://127.0.0.1:{port}",
                                environment="homelab", timeout=5)
    assert not outcome.ok and outcome.message.startswith(f"could not reach the GitHub API at http://127.0.0.1:{port}: ")
    assert TOKEN not in outcome.message


# -- what the comment says, from a real deploy session's result -----------------------------------------------

def _plan_session(tmp_path, *, refusals=(), run_id="gh42_1") -> Path:
    """A --plan-only session as the stages leave it, written by run_result.write_files; gives latest.json."""
    deploy = DeploySession(run_id=run_id, inventory=load_inventory(INVENTORY), plan_only=True, reports_dir=tmp_path)
    for name in ("preflight", "plan", "ansible"):
        deploy.stage(name).outcome = "failed" if refusals and name == "plan" else "passed"
    deploy.plan = Plan.from_json({"resource_changes": [
        {"address": 'module.container["proxy"].proxmox_lxc.this', "change": {"actions": ["update"]}},
        {"address": 'module.container["monitoring"].proxmox_lxc.this', "change": {"actions": ["create"]}},
        {"address": "proxmox_lxc.ci_runner", "change": {"actions": ["no-op"]}},
    ]})
    deploy.plan_refusals = list(refusals)
    events = [{"event": "runner_on_ok", "event_data": {"host": "proxy", "task": "Render the routes",
                                                       "role": "proxy", "res": {"changed": True}}}]
    site = PlaybookResult("site", 0, "successful", {"proxy": HostStats(ok=9, changed=1), "monitoring": HostStats(ok=7)},
                          events=events, check=True)
    deploy.ansible["site"] = site.as_dict()
    run_result.write_files(deploy)
    return tmp_path / "deploy" / "latest.json"


def _env(server, tmp_path, **extra) -> dict:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": PR, "head": {"sha": HEAD}}}))
    return {"GITHUB_API_URL": server.url, "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPO,
            "GITHUB_EVENT_PATH": str(event), "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "1", **extra}


def test_the_cli_posts_plan_guard_and_check_mode_and_updates_on_the_next_push(github, tmp_path, capsys):
    """`python -m plugins.github.pr_comment` twice: one comment, with the plan per resource, the verdict, the hosts."""
    result = _plan_session(tmp_path)
    argv = ["--result", str(result), "--inventory", str(INVENTORY)]
    assert pr_comment.main(argv, env=_env(github, tmp_path)) == 0
    assert pr_comment.main(argv, env=_env(github, tmp_path)) == 0
    (comment,) = github.comments_on(REPO, PR)
    body = comment["body"]
    assert body.startswith(MARKER + "\n### ✅ Plan for homelab: 1 to add, 1 to change, 0 to destroy · guard accepted")
    assert '| update | `module.container["proxy"].proxmox_lxc.this` |' in body
    assert '| create | `module.container["monitoring"].proxmox_lxc.this` |' in body
    assert "ci_runner" not in body  # a no-op is not a change
    assert "**accepted**: no protected container is deleted or replaced." in body
    assert "| proxy | 1 | 0 | 0 | `proxy : Render the routes` |" in body and "| monitoring | 0 | 0 | 0 | — |" in body
    assert f"commit {HEAD[:12]}" in body and "run gh42_1" in body
    out = capsys.readouterr()
    assert out.out.splitlines()[-1].startswith(f"pr_comment: updated the plan comment on pull request #{PR}")
    assert TOKEN not in out.out + out.err


def test_a_refused_plan_shows_the_refusal(github, tmp_path):
    """The guard's refusal is the headline and its reason is listed."""
    why = "plan would replace protected container proxy (200): ostemplate changed; refusing to apply"
    text = pr_comment.render(json.loads(_plan_session(tmp_path, refusals=[why]).read_text()), environment="homelab")
    assert "### ❌ Plan for homelab: 1 to add, 1 to change, 0 to destroy · guard REFUSED" in text
    assert f"- {why}" in text


def test_a_stale_result_is_not_posted_as_this_runs_plan(github, tmp_path, capsys):
    """latest.json from another run (the plan of this push died early): the comment says so, not the old plan."""
    result = _plan_session(tmp_path, run_id="gh41_1")
    code = pr_comment.main(["--result", str(result), "--inventory", str(INVENTORY)], env=_env(github, tmp_path))
    (comment,) = github.comments_on(REPO, PR)
    assert code == 0 and "### ❌ Plan for homelab: no result" in comment["body"]
    assert "is from run gh41_1, not this run (gh42_1)" in comment["body"] and "proxmox_lxc" not in comment["body"]
    assert "is from run gh41_1" in capsys.readouterr().err


def test_without_a_token_nothing_is_posted_and_one_line_says_why(github, tmp_path, capsys):
    """No $GITHUB_TOKEN: exit 2 before any request, naming what is missing."""
    env = _env(github, tmp_path)
    del env["GITHUB_TOKEN"]
    assert pr_comment.main(["--result", str(_plan_session(tmp_path)), "--inventory", str(INVENTORY)], env=env) == 2
    assert capsys.readouterr().err == "pr_comment: nothing posted, missing $GITHUB_TOKEN\n"
    assert github.requests == []


def test_a_403_makes_the_cli_fail_with_the_explanation(github, tmp_path, capsys):
    """The job fails visibly when the comment cannot be written (the plan itself may be fine)."""
    github.permissions = {"pull_requests": "read"}
    code = pr_comment.main(["--result", str(_plan_session(tmp_path)), "--inventory", str(INVENTORY)],
                           env=_env(github, tmp_path))
    err = capsys.readouterr().err
    assert code == 1 and "the token lacks `pull-requests: write`" in err and TOKEN not in err


def test_a_huge_plan_stays_under_githubs_limit(tmp_path):
    """Thousands of changes: rows are capped and the body fits GitHub's 65536 characters (no 422)."""
    result = json.loads(_plan_session(tmp_path).read_text())
    result["plan"]["changes"] = [{"address": f"module.container[\"h{n}\"].proxmox_lxc.this" + "x" * 200,
                                  "actions": ["create"]} for n in range(5000)]
    text = pr_comment.render(result, environment="homelab")
    assert len(text) <= pr_comment.MAX_BODY and "4800 more change(s), in the job's log" in text


def test_the_token_in_a_failure_message_is_masked(tmp_path, github):
    """A failure line that happens to hold the token never reaches the comment."""
    result = _plan_session(tmp_path)
    data = json.loads(result.read_text())
    data["failures"] = [f"env dump: GITHUB_TOKEN={TOKEN}"]
    result.write_text(json.dumps(data))
    assert pr_comment.main(["--result", str(result), "--inventory", str(INVENTORY)], env=_env(github, tmp_path)) == 0
    (comment,) = github.comments_on(REPO, PR)
    assert TOKEN not in comment["body"] and "GITHUB_TOKEN=***" in comment["body"]
