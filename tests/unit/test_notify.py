"""The notifier against a local server answering as GitHub does: 201, 401, 403, 404 and 422, each explained."""

from __future__ import annotations

import socket

import pytest
from github_fake import FakeGitHub, Repo

from plugins.deploy.finish.notifier import NotifyOutcome, notify_commit, render_markdown

pytestmark = pytest.mark.unit

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
REPO = "owner/homelab"
SHA = "0123456789abcdef0123456789abcdef01234567"
RESULT = {"ok": False, "run_id": "42", "failed": ["test_health::test_grafana"], "stages": {"snapshot": "ok"}}


@pytest.fixture
def github():
    """A FakeGitHub on 127.0.0.1 that knows REPO and its commit SHA; the token may comment on commits."""
    with FakeGitHub(TOKEN, {REPO: Repo(commits={SHA})}) as server:
        yield server


def _notify(server, tmp_path, **overrides):
    kwargs = {"repo": REPO, "sha": SHA, "token": TOKEN, "api_url": server.url, "sink_dir": tmp_path / "reports"}
    kwargs.update(overrides)
    return notify_commit(RESULT, **kwargs)


def test_201_comments_on_the_commit(github, tmp_path):
    """The comment is POSTed to /repos/{repo}/commits/{sha}/comments with the markdown body."""
    outcome = _notify(github, tmp_path)
    assert outcome.ok and outcome.url.endswith("#commitcomment-1")
    assert outcome.message.startswith(f"commented on commit {SHA[:12]} of {REPO}")
    (sent,) = github.requests
    assert sent["method"] == "POST" and sent["path"] == f"/repos/{REPO}/commits/{SHA}/comments"
    assert sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert "## Deploy failure" in sent["body"]["body"] and "test_health::test_grafana" in sent["body"]["body"]
    assert not (tmp_path / "reports" / "deploy-result.md").exists()


def test_403_is_explained_as_the_missing_contents_write_permission(github, tmp_path):
    """Incident #14: a 403 names the missing permission and the workflow fix; the result still lands in a file."""
    github.permissions = {"contents": "read", "pull_requests": "write"}
    outcome = _notify(github, tmp_path)
    assert not outcome.ok
    assert outcome.message.startswith(
        "GitHub answered 403 to the commit comment: the token lacks `contents: write` "
        "(workflow `permissions: contents: write`) (GitHub: Resource not accessible by integration)"
    )
    assert outcome.path == tmp_path / "reports" / "deploy-result.md" and outcome.path.is_file()
    assert TOKEN not in outcome.message


def test_404_names_the_repository_and_commit(github, tmp_path):
    """A 404 (a repository GitHub does not know, or cannot show this token) names repository and commit."""
    outcome = _notify(github, tmp_path, repo="owner/elsewhere")
    assert not outcome.ok
    assert outcome.message.startswith(
        f"GitHub answered 404 to the commit comment: repository owner/elsewhere or commit {SHA[:12]} not found")
    assert outcome.message.endswith("(GitHub: Not Found); result written to " + str(outcome.path))


def test_401_says_the_token_is_invalid(github, tmp_path):
    """A 401 (GitHub does not know the token) says the token is invalid or expired, never the token itself."""
    wrong = "ghs_" + "x" * 36
    outcome = _notify(github, tmp_path, token=wrong)
    assert outcome.message.startswith("GitHub answered 401 to the commit comment: the token is invalid or expired "
                                      "(GitHub: Bad credentials)")
    assert wrong not in outcome.message and TOKEN not in outcome.message


def test_422_says_the_commit_is_not_in_the_repository(github, tmp_path):
    """A 422 (a commit GitHub does not have: not pushed) is explained with GitHub's own words."""
    other = "f" * 40
    outcome = _notify(github, tmp_path, sha=other)
    assert not outcome.ok
    assert outcome.message.startswith(
        f"GitHub answered 422 to the commit comment: commit {other[:12]} is not in {REPO} (not pushed yet?), "
        f"or the body was refused (GitHub: No commit found for SHA: {other})")
    assert outcome.path.is_file()


def test_without_token_the_result_goes_to_a_markdown_file(tmp_path):
    """No token: reports/deploy-result.md is written and the message says where."""
    outcome = notify_commit(RESULT, repo=REPO, sha=SHA, token=None, api_url="http://127.0.0.1:9", sink_dir=tmp_path / "reports")
    path = tmp_path / "reports" / "deploy-result.md"
    assert outcome == NotifyOutcome(True, f"no GitHub token given; result written to {path}", None, path)
    assert path.read_text().startswith("## Deploy failure")


def test_unreachable_api_never_raises_and_keeps_the_result(tmp_path):
    """Nothing listening on the API URL: an explained outcome, the result in the file, no exception."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = notify_commit(RESULT, repo=REPO, sha=SHA, token=TOKEN, api_url=f"http://127.0.0.1:{port}",
                            sink_dir=tmp_path, timeout=5)
    assert not outcome.ok and outcome.message.startswith(f"could not reach the GitHub API at http://127.0.0.1:{port}")
    assert outcome.path.is_file() and TOKEN not in outcome.message


def test_the_token_is_masked_in_the_body_too(tmp_path):
    """A result that happens to contain the token never writes it anywhere."""
    outcome = notify_commit(f"env dump: GITHUB_TOKEN={TOKEN}", repo=None, sha=None, token=TOKEN, api_url="http://127.0.0.1:9", sink_dir=tmp_path)
    assert TOKEN not in outcome.path.read_text() and "***" in outcome.path.read_text()
    assert "no GitHub repository, commit sha given" in outcome.message


def test_render_markdown_shapes():
    """Strings pass through, objects with to_markdown are asked, mappings become a list."""
    assert render_markdown("# done\n") == "# done\n"
    assert render_markdown(type("R", (), {"to_markdown": lambda self: "custom"})()) == "custom"
    text = render_markdown({"ok": True, "run_id": "7", "hosts": []})
    assert text.splitlines()[0] == "## Deploy success" and "- **run_id**: 7" in text and "  - (none)" in text
