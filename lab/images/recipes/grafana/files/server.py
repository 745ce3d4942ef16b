"""Grafana stand-in: reads Grafana's provisioning files and answers the API routes the homelab's checks use.

Like Grafana 11: /api/health answers 503 while warming up, then 200; / redirects to /login; /login 200. It
reads the SAME files the real one mounts — $GF_PATHS_PROVISIONING/datasources/*.yaml and dashboards/*.yaml
(file providers, their options.path of dashboard JSON) — and refuses to start on a bad one, as Grafana does.
With the admin's basic auth (GF_SECURITY_ADMIN_USER / GF_SECURITY_ADMIN_PASSWORD): /api/datasources,
/api/datasources/uid/<uid>, /api/datasources/uid/<uid>/health (200 "OK" only when the datasource's URL really
answers its API — Prometheus: a query; Loki: its labels — else 400 "ERROR"), /api/search and
/api/dashboards/uid/<uid>. Not Grafana: no UI, no database, no plugins.
"""

from __future__ import annotations

import base64
import glob
import hmac
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import yaml

STANDS_IN_FOR = "11.4.0"  # the upstream tag this image is pushed under
PORT = int(os.environ.get("GF_SERVER_HTTP_PORT") or 3000)
WARMUP_SECONDS = float(os.environ.get("STANDIN_WARMUP_SECONDS") or 8)
PROVISIONING = os.environ.get("GF_PATHS_PROVISIONING") or "/etc/grafana/provisioning"
ADMIN_USER = os.environ.get("GF_SECURITY_ADMIN_USER") or "admin"
ADMIN_PASSWORD = os.environ.get("GF_SECURITY_ADMIN_PASSWORD") or "admin"  # Grafana's default
HEALTH_TIMEOUT = 5.0
# type → (API path that proves the datasource answers, Grafana's success message)
HEALTH = {
    "prometheus": ("/api/v1/query?query=1%2B1", "Successfully queried the Prometheus API."),
    "loki": ("/loki/api/v1/labels", "Data source successfully connected."),
}
STARTED = time.monotonic()


class ProvisioningError(Exception):
    """A provisioning file Grafana would refuse (the message names the file)."""


def _expand(text: str) -> str:
    """Grafana's $VAR / ${VAR} interpolation of provisioning files."""
    return re.sub(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))",
                  lambda m: os.environ.get(m.group(1) or m.group(2), ""), text)


def _documents(kind: str) -> list[tuple[str, dict]]:
    found = []
    for path in sorted(glob.glob(os.path.join(PROVISIONING, kind, "*.y*ml"))):
        try:
            with open(path) as file:
                document = yaml.safe_load(_expand(file.read())) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ProvisioningError(f"{path}: {type(exc).__name__}: {exc}") from None
        if not isinstance(document, dict):
            raise ProvisioningError(f"{path}: expected a mapping")
        found.append((path, document))
    return found


def load_datasources() -> dict[str, dict]:
    """Every provisioned datasource, by uid (a missing name, type or a duplicate uid is refused)."""
    found: dict[str, dict] = {}
    for path, document in _documents("datasources"):
        for index, source in enumerate(document.get("datasources") or []):
            if not isinstance(source, dict) or not source.get("name") or not source.get("type"):
                raise ProvisioningError(f"{path}: datasources[{index}]: needs name and type")
            uid = str(source.get("uid") or source["name"])
            if uid in found:
                raise ProvisioningError(f"{path}: datasources[{index}]: uid {uid!r} is provisioned twice")
            found[uid] = {"id": len(found) + 1, "uid": uid, "orgId": source.get("orgId", 1), "name": source["name"],
                          "type": source["type"], "access": source.get("access", "proxy"),
                          "url": str(source.get("url", "")), "isDefault": bool(source.get("isDefault", False)),
                          "readOnly": not source.get("editable", False)}
    return found


def load_dashboards() -> dict[str, dict]:
    """Every dashboard of the file providers, by uid (JSON that does not parse, or without uid, is refused)."""
    found: dict[str, dict] = {}
    for path, document in _documents("dashboards"):
        for index, provider in enumerate(document.get("providers") or []):
            if (provider or {}).get("type", "file") != "file":
                continue
            folder = ((provider.get("options") or {}).get("path")) or ""
            if not os.path.isdir(folder):
                raise ProvisioningError(f"{path}: providers[{index}].options.path {folder!r} is not a directory")
            for board_path in sorted(glob.glob(os.path.join(folder, "**", "*.json"), recursive=True)):
                try:
                    with open(board_path) as file:
                        board = json.load(file)
                except (OSError, ValueError) as exc:
                    raise ProvisioningError(f"{board_path}: {type(exc).__name__}: {exc}") from None
                uid = board.get("uid") if isinstance(board, dict) else None
                if not uid or uid in found:
                    raise ProvisioningError(f"{board_path}: expected a dashboard with a uid of its own")
                found[uid] = board
    return found


def datasource_health(source: dict) -> tuple[HTTPStatus, dict]:
    """Ask the datasource's own URL what Grafana's health check asks; 200 OK only when it answers."""
    probe = HEALTH.get(source["type"])
    if probe is None:
        return HTTPStatus.BAD_REQUEST, {"status": "ERROR", "message": f"no health check for type {source['type']}"}
    url = source["url"].rstrip("/") + probe[0]
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT) as response:
            body = json.loads(response.read() or b"{}")
        if body.get("status") != "success":
            raise ValueError("not a success")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return HTTPStatus.BAD_REQUEST, {"status": "ERROR", "message": f"{source['type']}: {url}: {reason}"}
    return HTTPStatus.OK, {"status": "OK", "message": probe[1]}


DATASOURCES: dict[str, dict] = {}
DASHBOARDS: dict[str, dict] = {}


class Handler(BaseHTTPRequestHandler):
    """Grafana's health, login and API routes."""

    server_version = "grafana-standin/1"

    def do_GET(self) -> None:
        """Answer one GET."""
        path = urlsplit(self.path).path
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
        elif not path.startswith("/api/"):
            self._send(HTTPStatus.NOT_FOUND, {"message": "Not found"})
        elif warming:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"message": "starting"})
        elif not self._authorized():
            self._send(HTTPStatus.UNAUTHORIZED, {"message": "Unauthorized"})
        else:
            self._api(path)

    def _api(self, path: str) -> None:
        parts = path.strip("/").split("/")
        if parts == ["api", "datasources"]:
            self._send(HTTPStatus.OK, list(DATASOURCES.values()))
        elif parts[:3] == ["api", "datasources", "uid"] and len(parts) in (4, 5):
            source = DATASOURCES.get(parts[3])
            if source is None:
                self._send(HTTPStatus.NOT_FOUND, {"message": "Data source not found"})
            elif len(parts) == 4:
                self._send(HTTPStatus.OK, source)
            elif parts[4] == "health":
                self._send(*datasource_health(source))
            else:
                self._send(HTTPStatus.NOT_FOUND, {"message": "Not found"})
        elif parts == ["api", "search"]:
            self._send(HTTPStatus.OK, [{"uid": uid, "title": board.get("title", ""), "type": "dash-db",
                                        "url": f"/d/{uid}", "tags": board.get("tags", [])}
                                       for uid, board in DASHBOARDS.items()])
        elif parts[:3] == ["api", "dashboards", "uid"] and len(parts) == 4:
            board = DASHBOARDS.get(parts[3])
            if board is None:
                self._send(HTTPStatus.NOT_FOUND, {"message": "Dashboard not found"})
            else:
                self._send(HTTPStatus.OK, {"dashboard": board, "meta": {"provisioned": True, "slug": parts[3]}})
        else:
            self._send(HTTPStatus.NOT_FOUND, {"message": "Not found"})

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == ADMIN_USER and hmac.compare_digest(password.encode(), ADMIN_PASSWORD.encode())

    def log_message(self, format: str, *args) -> None:
        """Log to stderr, as docker logs shows it."""
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(self, status: HTTPStatus, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str]) -> int:
    """Read the provisioning, then serve (exit 1 naming the file when the provisioning is bad)."""
    if argv == ["--version"]:
        print(f"lab stand-in for Grafana {STANDS_IN_FOR}")
        return 0
    try:
        DATASOURCES.update(load_datasources())
        DASHBOARDS.update(load_dashboards())
    except ProvisioningError as exc:
        sys.stderr.write(f"logger=provisioning level=error msg=\"Failed to provision\" error=\"{exc}\"\n")
        return 1
    sys.stderr.write(f"logger=provisioning level=info datasources={len(DATASOURCES)} dashboards={len(DASHBOARDS)}\n")
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
