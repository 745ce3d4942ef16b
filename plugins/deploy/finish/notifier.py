"""Deploy notification: a comment on the commit through the GitHub API, or a markdown file.

Never raises and never fails the deploy: the outcome says what happened and why (incident #14,
a silent 403). The token never appears in any message or file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.github import api as github_api
from plugins.report.redaction import REDACTOR, Redactor

SINK_NAME = "deploy-result.md"
HTTP_TIMEOUT = 15.0


@dataclass(frozen=True)
class NotifyOutcome:
    """What the notifier did: ok, a one-line message, and where the result went."""

    ok: bool
    message: str
    url: str | None = None
    path: Path | None = None


def render_markdown(result: Any) -> str:
    """The deploy result as markdown (a str as is, .to_markdown() if it has one, a mapping as a list)."""
    if isinstance(result, str):
        return result
    if callable(getattr(result, "to_markdown", None)):
        return str(result.to_markdown())
    data = dict(result) if isinstance(result, Mapping) else dict(getattr(result, "__dict__", {}) or {"result": result})
    ok = data.pop("ok", None)
    status = data.pop("status", None) or ("success" if ok else "failure" if ok is not None else "unknown")
    lines = [f"## Deploy {status}", ""]
    for key, value in data.items():
        if isinstance(value, Mapping):
            lines.append(f"- **{key}**:")
            lines += [f"  - {k}: {v}" for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            lines.append(f"- **{key}**:")
            lines += [f"  - {v}" for v in value] or ["  - (none)"]
        else:
            lines.append(f"- **{key}**: {value}")
    return "\n".join(lines) + "\n"


def notify_commit(result: Any, *, repo: str | None, sha: str | None, token: str | None,
                  api_url: str | None, sink_dir: str | Path = "reports",
                  timeout: float = HTTP_TIMEOUT) -> NotifyOutcome:
    """Comment the result on the commit (API url, token, repo and sha given) or write it to sink_dir; never raises.

    There is no default API url: GitHub Actions sets $GITHUB_API_URL, and nothing else is ever contacted.
    """
    redactor = Redactor()
    redactor.add(token)
    try:
        body = _masked(render_markdown(result), redactor)
    except Exception as exc:  # noqa: BLE001 - a notifier must not fail the deploy it reports on
        body = f"## Deploy result\n\n(the result could not be rendered: {type(exc).__name__})\n"
    missing = [name for name, value in (("API url", api_url), ("token", token), ("repository", repo),
                                        ("commit sha", sha)) if not value]
    if missing:
        return _write_sink(body, sink_dir, f"no GitHub {', '.join(missing)} given", ok=True)
    try:
        outcome = _post_comment(body, repo=repo, sha=sha, token=token, api_url=api_url, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - unreachable API, TLS, fence: explained, never raised
        outcome = NotifyOutcome(False, f"could not reach the GitHub API at {api_url}: {type(exc).__name__}: {exc}")
    outcome = NotifyOutcome(outcome.ok, _masked(outcome.message, redactor), outcome.url, outcome.path)
    if outcome.ok:
        return outcome
    return _write_sink(body, sink_dir, outcome.message, ok=False)


def _post_comment(body: str, *, repo: str, sha: str, token: str, api_url: str, timeout: float) -> NotifyOutcome:
    response = github_api.call("POST", api_url, f"/repos/{repo}/commits/{sha}/comments", token,
                               body={"body": body}, timeout=timeout)
    short = sha[:12]
    if response.status_code == 201:
        data = github_api.json_of(response)
        link = data.get("html_url") if isinstance(data, dict) else None
        return NotifyOutcome(True, f"commented on commit {short} of {repo}" + (f": {link}" if link else ""), link)
    said = github_api.error_text(response)
    explanations = {
        401: "GitHub answered 401 to the commit comment: the token is invalid or expired",
        403: "GitHub answered 403 to the commit comment: the token lacks `contents: write` "
             "(workflow `permissions: contents: write`)",
        404: f"GitHub answered 404 to the commit comment: repository {repo} or commit {short} not found, "
             "or the token cannot see the repository",
        422: f"GitHub answered 422 to the commit comment: commit {short} is not in {repo} (not pushed yet?), "
             "or the body was refused",
    }
    text = explanations.get(response.status_code,
                            f"GitHub answered {response.status_code} to the commit comment on {repo}@{short}")
    return NotifyOutcome(False, text + (f" (GitHub: {said})" if said else ""))


def _write_sink(body: str, sink_dir: str | Path, reason: str, *, ok: bool) -> NotifyOutcome:
    path = Path(sink_dir) / SINK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    except OSError as exc:
        return NotifyOutcome(False, f"{reason}; and the result could not be written to {path}: {exc.strerror}")
    return NotifyOutcome(ok, f"{reason}; result written to {path}", None, path)


def _masked(text: str, redactor: Redactor) -> str:
    return REDACTOR.redact(redactor.redact(text))

