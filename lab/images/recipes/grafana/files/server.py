"""Grafana stand-in: /api/health answers 503 while warming up, then 200; / redirects to /login."""

from __future__ import annotations

import json
import os
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STANDS_IN_FOR = "11.4.0"  # the upstream tag this image is pushed under
PORT = int(os.environ.get("GF_SERVER_HTTP_PORT") or 3000)
WARMUP_SECONDS = float(os.environ.get("STANDIN_WARMUP_SECONDS") or 8)
STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    """The few routes the health checks use."""

    server_version = "grafana-standin/1"

    def do_GET(self) -> None:
        """Answer one GET."""
        path = self.path.split("?", 1)[0]
        warming = time.monotonic() - STARTED < WARMUP_SECONDS
        if path == "/api/health":
            if warming:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"database": "starting"})
            else:
                self._send(HTTPStatus.OK, {"database": "ok", "version": f"{STANDS_IN_FOR}-lab-standin"})
        elif path == "/":
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", "/login")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/login":
            self._send(HTTPStatus.OK, {"page": "login"})
        else:
            self._send(HTTPStatus.NOT_FOUND, {"message": "Not found"})

    def log_message(self, format: str, *args) -> None:
        """Log to stderr, as docker logs shows it."""
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(self, status: HTTPStatus, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    if sys.argv[1:] == ["--version"]:
        print(f"lab stand-in for Grafana {STANDS_IN_FOR}")
        sys.exit(0)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
