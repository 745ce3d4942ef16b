"""A local HTTP server on 127.0.0.1 that answers the notifiers' calls as GitHub's REST API does.

It keeps state (repositories, commits, pull requests, comments) and decides every answer the way
GitHub does: 401 for a wrong token, 403 when the token lacks the permission (with GitHub's
`x-accepted-github-permissions` header), 404 for an unknown repository, pull request or comment,
422 for an unknown commit or a body over 65536 characters, with GitHub's JSON error bodies.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import parse_qs, urlsplit

DOCS = "https://docs.github.com/rest"
MAX_BODY = 65536


@dataclass
class Repo:
    """What the fake knows of one repository."""

    commits: set[str] = field(default_factory=set)
    pulls: set[int] = field(default_factory=set)


class FakeGitHub(http.server.ThreadingHTTPServer):
    """GitHub's API for commit comments and issue (pull-request) comments; records every request."""

    def __init__(self, token: str, repos: dict[str, Repo], permissions: dict[str, str] | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.token = token
        self.repos = repos
        self.permissions = {"contents": "write", "pull_requests": "write"} if permissions is None else permissions
        self.requests: list[dict] = []
        self.issue_comments: dict[int, dict] = {}
        self.commit_comments: list[dict] = []
        self.lock = threading.Lock()
        self._next_id = 1000

    @property
    def url(self) -> str:
        """The API url to give the notifier (http://127.0.0.1:PORT)."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def seed_comment(self, repo: str, number: int, body: str, login: str = "someone") -> dict:
        """Add a comment to a pull request as if somebody had written it."""
        with self.lock:
            return self._new_comment(repo, number, body, login)

    def comments_on(self, repo: str, number: int) -> list[dict]:
        """The comments of one pull request, oldest first."""
        return [c for c in self.issue_comments.values() if c["repo"] == repo and c["issue"] == number]

    def _new_comment(self, repo: str, number: int, body: str, login: str) -> dict:
        self._next_id += 1
        comment = {"id": self._next_id, "repo": repo, "issue": number, "body": body, "user": {"login": login},
                   "html_url": f"https://github.com/{repo}/pull/{number}#issuecomment-{self._next_id}"}
        self.issue_comments[comment["id"]] = comment
        return comment

    def __enter__(self) -> Self:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


ROUTES = (
    ("POST", re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/commits/(?P<sha>[0-9a-f]+)/comments$"), "create_commit_comment"),
    ("GET", re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<number>\d+)/comments$"), "list_issue_comments"),
    ("POST", re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<number>\d+)/comments$"), "create_issue_comment"),
    ("PATCH", re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<comment_id>\d+)$"), "update_issue_comment"),
)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeGitHub

    def do_GET(self):
        """Answer a GET."""
        self._dispatch("GET")

    def do_POST(self):
        """Answer a POST."""
        self._dispatch("POST")

    def do_PATCH(self):
        """Answer a PATCH."""
        self._dispatch("PATCH")

    def log_message(self, *args):
        """Keep the test output quiet."""

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self.server.lock:
            self.server.requests.append({"method": method, "path": url.path, "query": parse_qs(url.query),
                                         "headers": dict(self.headers), "body": body})
            if self.headers.get("Authorization") != f"Bearer {self.server.token}":
                return self._error(401, "Bad credentials")
            for verb, pattern, name in ROUTES:
                match = pattern.match(url.path)
                if verb == method and match:
                    args = match.groupdict()
                    if args["repo"] not in self.server.repos:
                        return self._error(404, "Not Found")
                    return getattr(self, name)(body, parse_qs(url.query), **args)
            return self._error(404, "Not Found")

    # -- routes ----------------------------------------------------------------------------------------

    def create_commit_comment(self, body, query, repo, sha):
        """POST /repos/{repo}/commits/{sha}/comments (needs contents: write)."""
        if self.server.permissions.get("contents") != "write":
            return self._forbidden("contents=write", "commits/comments#create-a-commit-comment")
        if sha not in self.server.repos[repo].commits:
            return self._error(422, f"No commit found for SHA: {sha}")
        if not self._body_ok(body, "CommitComment"):
            return None
        comment = {"id": len(self.server.commit_comments) + 1, "body": body["body"],
                   "html_url": f"https://github.com/{repo}/commit/{sha}#commitcomment-{len(self.server.commit_comments) + 1}"}
        self.server.commit_comments.append(comment)
        return self._json(201, comment)

    def list_issue_comments(self, body, query, repo, number):
        """GET /repos/{repo}/issues/{number}/comments?per_page&page, with GitHub's Link header."""
        if int(number) not in self.server.repos[repo].pulls:
            return self._error(404, "Not Found")
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        everything = self.server.comments_on(repo, int(number))
        chunk = everything[(page - 1) * per_page: page * per_page]
        links = {}
        if page * per_page < len(everything):
            links["next"] = f"{self.server.url}/repos/{repo}/issues/{number}/comments?per_page={per_page}&page={page + 1}"
        return self._json(200, [self._public(c) for c in chunk], links=links)

    def create_issue_comment(self, body, query, repo, number):
        """POST /repos/{repo}/issues/{number}/comments (pull-requests: write or issues: write)."""
        if int(number) not in self.server.repos[repo].pulls:
            return self._error(404, "Not Found")
        if not self._can_write_comments():
            return self._forbidden("issues=write; pull_requests=write", "issues/comments#create-an-issue-comment")
        if not self._body_ok(body, "IssueComment"):
            return None
        return self._json(201, self._public(self.server._new_comment(repo, int(number), body["body"], "github-actions[bot]")))

    def update_issue_comment(self, body, query, repo, comment_id):
        """PATCH /repos/{repo}/issues/comments/{id}."""
        comment = self.server.issue_comments.get(int(comment_id))
        if comment is None or comment["repo"] != repo:
            return self._error(404, "Not Found")
        if not self._can_write_comments():
            return self._forbidden("issues=write; pull_requests=write", "issues/comments#update-an-issue-comment")
        if not self._body_ok(body, "IssueComment"):
            return None
        comment["body"] = body["body"]
        return self._json(200, self._public(comment))

    # -- answers ---------------------------------------------------------------------------------------

    def _can_write_comments(self) -> bool:
        perms = self.server.permissions
        return perms.get("pull_requests") == "write" or perms.get("issues") == "write"

    def _body_ok(self, body, resource: str) -> bool:
        text = (body or {}).get("body")
        if not isinstance(text, str) or not text:
            self._error(422, "Invalid request.\n\n\"body\" wasn't supplied.")
            return False
        if len(text) > MAX_BODY:
            self._json(422, {"message": "Validation Failed",
                             "errors": [{"resource": resource, "code": "custom", "field": "body",
                                         "message": f"body is too long (maximum is {MAX_BODY} characters)"}],
                             "documentation_url": DOCS, "status": "422"})
            return False
        return True

    @staticmethod
    def _public(comment: dict) -> dict:
        return {k: v for k, v in comment.items() if k not in ("repo", "issue")}

    def _forbidden(self, accepted: str, doc: str) -> None:
        self._json(403, {"message": "Resource not accessible by integration", "documentation_url": f"{DOCS}/{doc}",
                         "status": "403"}, headers={"X-Accepted-GitHub-Permissions": accepted})

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"message": message, "documentation_url": DOCS, "status": str(status)})

    def _json(self, status: int, payload, links: dict | None = None, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if links:
            self.send_header("Link", ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
