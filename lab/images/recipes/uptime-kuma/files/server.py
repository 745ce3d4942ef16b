"""Uptime Kuma stand-in: the HTTP routes of Uptime Kuma 1.23's Express server that need no browser.

Like it: nothing listens while it starts (its database migrations: STANDIN_WARMUP_SECONDS), then `/` answers
302 to /dashboard (the default entry page; the SPA itself moves to /setup while no user exists),
/api/entry-page the entry page as JSON, /metrics 401 without credentials, and every other GET the SPA's
index page (200). Not Uptime Kuma: no monitors, no socket.io, no database (the data volume stays empty).
"""

from __future__ import annotations

import json
import os
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STANDS_IN_FOR = "1.23.16"  # the upstream tag this image is pushed under
PORT = int(os.environ.get("UPTIME_KUMA_PORT") or os.environ.get("PORT") or 3001)
WARMUP_SECONDS = float(os.environ.get("STANDIN_WARMUP_SECONDS") or 3)
INDEX = (b"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Uptime Kuma</title></head>"
         b"<body><div id=\"app\"></div><!-- lab stand-in for Uptime Kuma --></body></html>")


class Handler(BaseHTTPRequestHandler):
    """The few routes of Uptime Kuma's Express app that answer without a browser."""

    server_version = "uptime-kuma-standin/1"

    def do_GET(self) -> None:
        """Answer one GET."""
        path = self.path.split("?", 1)[0]
        if path == "/":
            body = b"Found. Redirecting to /dashboard"
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", "/dashboard")
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path == "/api/entry-page":
            self._send(HTTPStatus.OK, "application/json; charset=utf-8",
                       json.dumps({"type": "entryPage", "entryPage": "dashboard"}).encode())
        elif path == "/metrics":
            self.send_response(HTTPStatus.UNAUTHORIZED)
            self.send_header("WWW-Authenticate", 'Basic realm="Uptime Kuma"')
            self.send_header("Content-Length", "12")
            self.end_headers()
            self.wfile.write(b"Unauthorized")
        else:
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", INDEX)

    def log_message(self, format: str, *args) -> None:
        """Quiet, as Uptime Kuma does not log requests."""

    def _send(self, status: HTTPStatus, kind: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    if sys.argv[1:] == ["--version"]:
        print(f"lab stand-in for Uptime Kuma {STANDS_IN_FOR}")
        sys.exit(0)
    sys.stderr.write(f"Welcome to Uptime Kuma (lab stand-in {STANDS_IN_FOR})\n")
    time.sleep(WARMUP_SECONDS)  # nothing listens while the real one migrates its database
    sys.stderr.write(f"Listening on {PORT}\n")
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
