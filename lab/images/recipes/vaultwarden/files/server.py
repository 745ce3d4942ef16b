"""Vaultwarden stand-in: /alive answers 200 with the time, / a page; /admin only with the admin token."""

from __future__ import annotations

import hmac
import os
import sys
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STANDS_IN_FOR = "1.32.7"  # the upstream tag this image is pushed under
PORT = int(os.environ.get("ROCKET_PORT") or 80)
ADMIN_TOKEN = os.environ.get("ADMIN_TOKEN", "")


class Handler(BaseHTTPRequestHandler):
    """The health, web vault and admin routes."""

    server_version = "vaultwarden-standin/1"

    def do_GET(self) -> None:
        """Answer one GET."""
        path = self.path.split("?", 1)[0]
        if path == "/alive":
            status, body = HTTPStatus.OK, f'"{datetime.now(UTC).isoformat()}"'.encode()
        elif path == "/":
            status, body = HTTPStatus.OK, b"<!doctype html><title>Vaultwarden Web (lab stand-in)</title>"
        elif path == "/admin":
            given = self.headers.get("Authorization", "").removeprefix("Bearer ")
            allowed = bool(ADMIN_TOKEN) and hmac.compare_digest(given.encode(), ADMIN_TOKEN.encode())
            status, body = (HTTPStatus.OK, b'"admin"') if allowed else (HTTPStatus.UNAUTHORIZED, b'"unauthorized"')
        else:
            status, body = HTTPStatus.NOT_FOUND, b'"not found"'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    if sys.argv[1:] == ["--version"]:
        print(f"lab stand-in for Vaultwarden {STANDS_IN_FOR}")
        sys.exit(0)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
