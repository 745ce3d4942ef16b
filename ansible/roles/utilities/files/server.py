"""Vaultwarden stand-in: /alive answers 200 with the time; everything else 404."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("UTILITIES_PORT") or 8081)


class Handler(BaseHTTPRequestHandler):
    """The health route only."""

    server_version = "utilities-standin/1"

    def do_GET(self) -> None:
        """Answer one GET."""
        if self.path.split("?", 1)[0] == "/alive":
            status, body = HTTPStatus.OK, f'"{datetime.now(UTC).isoformat()}"'.encode()
        else:
            status, body = HTTPStatus.NOT_FOUND, b'"not found"'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
