"""A raw HTTP GET for the project's tests: no redirect following, no retry, no session (what a probe sees)."""

from __future__ import annotations

import http.client


def get(host: str, port: int, path: str, timeout: float = 5, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """GET http://host:port/path without following redirects: status, headers, body."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
