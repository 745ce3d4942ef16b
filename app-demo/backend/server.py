"""app-demo backend: /health (503 while warming up, then 200), /api/hello, and the static frontend."""

from __future__ import annotations

import json
import os
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
PORT = int(os.environ.get("APP_DEMO_PORT") or 8080)
WARMUP_SECONDS = float(os.environ.get("APP_DEMO_WARMUP_SECONDS") or 5)
STARTED = time.monotonic()


def health() -> tuple[HTTPStatus, dict]:
    """Status and body of /health at this moment."""
    remaining = WARMUP_SECONDS - (time.monotonic() - STARTED)
    if remaining > 0:
        return HTTPStatus.SERVICE_UNAVAILABLE, {"status": "warming up", "ready_in": round(remaining, 1)}
    return HTTPStatus.OK, {"status": "ok"}


class Handler(BaseHTTPRequestHandler):
    """Routes of the demo app."""

    server_version = "app-demo/1"

    def do_GET(self) -> None:
        """Answer one GET; an error in a route answers 500, as a web framework would."""
        try:
            self._route(self.path.split("?", 1)[0])
        except Exception as exc:  # noqa: BLE001 - a broken route must answer, not drop the connection
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})

    def _route(self, path: str) -> None:
        if path == "/health":
            self._json(*health())
        elif path == "/api/hello":
            self._json(HTTPStatus.OK, {"message": "Hello from app-demo"})
        elif path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, (FRONTEND / "index.html").read_bytes(), "text/html; charset=utf-8")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no route {path}"})

    def _json(self, status: HTTPStatus, body: dict) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args) -> None:
        """Log one line per request to stderr (docker logs)."""
        print(f"{self.address_string()} {fmt % args}", flush=True)


def main() -> None:
    """Serve until stopped."""
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
