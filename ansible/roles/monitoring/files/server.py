"""Grafana stand-in: /api/health answers 503 while warming up, then 200; / redirects to /login."""

from __future__ import annotations

import json
import os
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("MONITORING_PORT") or 3000)
WARMUP_SECONDS = float(os.environ.get("MONITORING_WARMUP_SECONDS") or 8)
STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    """The few routes the health checks use."""

    server_version = "monitoring-standin/1"

    def do_GET(self) -> None:
        """Answer one GET."""
        path = self.path.split("?", 1)[0]
        warming = time.monotonic() - STARTED < WARMUP_SECONDS
        if path == "/api/health":
            if warming:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"database": "starting"})
            else:
                self._send(HTTPStatus.OK, {"database": "ok", "version": "lab-standin"})
        elif path == "/":
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", "/login")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/login":
            self._send(HTTPStatus.OK, {"page": "login"})
        else:
            self._send(HTTPStatus.NOT_FOUND, {"message": "Not found"})

    def _send(self, status: HTTPStatus, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
