"""The homelab's reverse proxy: redirects, prefix routes to upstreams, 502 when an upstream is down.

Usage: proxy.py ROUTES_JSON. The routes file (rendered by the proxy role from the inventory):
{"redirects": [{"path": "/", "location": "/app/", "status": 302}],
 "routes": [{"prefix": "/app/", "upstream": "http://198.18.0.250:8080/"}],
 "upstream_timeout": 10}
A request under a prefix goes to the upstream with the prefix replaced by the upstream's path.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import urlsplit

PORT = int(os.environ.get("PROXY_PORT") or 80)
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "content-length",
}


def load_routes(path: str) -> dict:
    """Read the routes file; routes sorted longest prefix first."""
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    config["routes"] = sorted(config.get("routes", []), key=lambda r: len(r["prefix"]), reverse=True)
    config.setdefault("redirects", [])
    config.setdefault("upstream_timeout", 10)
    return config


class Proxy(BaseHTTPRequestHandler):
    """One request: a redirect, a proxied call, or 404."""

    server_version = "homelab-proxy/1"
    protocol_version = "HTTP/1.1"
    config: ClassVar[dict] = {}

    def do_GET(self) -> None:
        """Answer a GET."""
        self._dispatch()

    def do_HEAD(self) -> None:
        """Answer a HEAD."""
        self._dispatch()

    def do_POST(self) -> None:
        """Answer a POST."""
        self._dispatch()

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        for redirect in self.config["redirects"]:
            if path == redirect["path"]:
                self._reply(redirect.get("status", 302), b"", {"Location": redirect["location"]})
                return
        for route in self.config["routes"]:
            prefix = route["prefix"]
            if path == prefix.rstrip("/") and prefix.endswith("/"):
                self._reply(HTTPStatus.MOVED_PERMANENTLY, b"", {"Location": prefix})
                return
            if self.path.startswith(prefix):
                self._forward(route, self.path[len(prefix):])
                return
        self._reply(HTTPStatus.NOT_FOUND, f"no route for {path}\n".encode(), {"Content-Type": "text/plain"})

    def _forward(self, route: dict, rest: str) -> None:
        upstream = urlsplit(route["upstream"])
        target = (upstream.path or "/").rstrip("/") + "/" + rest
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-For"] = self.client_address[0]
        headers["X-Forwarded-Prefix"] = route["prefix"].rstrip("/")
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port or 80, timeout=self.config["upstream_timeout"])
        try:
            conn.request(self.command, target, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            message = f"bad gateway: upstream {route['upstream']} unreachable ({exc.__class__.__name__}: {exc})\n"
            self._reply(HTTPStatus.BAD_GATEWAY, message.encode(), {"Content-Type": "text/plain"})
            return
        finally:
            conn.close()
        kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
        self._reply(response.status, payload, kept)

    def _reply(self, status: int, body: bytes, headers: dict) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, fmt: str, *args) -> None:
        """Log one line per request to stdout (docker logs)."""
        print(f"{self.address_string()} {fmt % args}", flush=True)


def main() -> None:
    """Serve the routes file given as the only argument."""
    Proxy.config = load_routes(sys.argv[1])
    ThreadingHTTPServer(("0.0.0.0", PORT), Proxy).serve_forever()


if __name__ == "__main__":
    main()
