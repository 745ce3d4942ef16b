"""The few GitHub REST calls the notifiers make: one request helper and GitHub's error bodies, read.

There is no default API url: GitHub Actions sets $GITHUB_API_URL and nothing else is ever contacted.
The token goes in the Authorization header only; callers mask it in every message they build.
"""

from __future__ import annotations

from typing import Any

import requests

HTTP_TIMEOUT = 15.0
API_VERSION = "2022-11-28"


def call(method: str, api_url: str, path: str, token: str, *, body: dict | None = None,
         params: dict | None = None, timeout: float = HTTP_TIMEOUT) -> requests.Response:
    """One authenticated request to GitHub's REST API (api_url + path); raises requests' errors as they come."""
    return requests.request(
        method,
        f"{api_url.rstrip('/')}{path}",
        json=body,
        params=params,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        },
        timeout=timeout,
    )


def json_of(response: requests.Response) -> Any:
    """The response's JSON document, or None when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def error_text(response: requests.Response) -> str:
    """GitHub's own words for a refused call: `message`, then each `errors[]` entry (422), on one line."""
    data = json_of(response)
    if not isinstance(data, dict):
        return ""
    parts = [str(data.get("message") or "")]
    for error in data.get("errors") or ():
        if isinstance(error, dict):
            parts.append(str(error.get("message") or error.get("code") or ""))
        else:
            parts.append(str(error))
    return " ".join(": ".join(p for p in parts if p).split())[:300]


def next_page(response: requests.Response) -> str | None:
    """The `rel="next"` url of GitHub's Link header, or None on the last page."""
    return (response.links.get("next") or {}).get("url")
