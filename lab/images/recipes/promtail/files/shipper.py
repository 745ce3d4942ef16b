"""Promtail stand-in: reads Promtail's config file, tails the files its scrape configs name, pushes to Loki (JSON).

Not Promtail: the subset the homelab's generated config uses — server.http_listen_port, positions.filename,
clients[].url, scrape_configs[].static_configs[].labels (with __path__, a glob) and the `docker` pipeline stage
(the json-file driver's {"log", "stream", "time"}: the line, a `stream` label, the entry's time). Labels as
Promtail gives them: the static ones and `filename`. /ready answers 200 once it tails at least one file, 503
before (Promtail's "Not ready: Unable to find any logs to tail").
"""

from __future__ import annotations

import glob
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

STANDS_IN_FOR = "3.3.2"  # the upstream tag this image is pushed under
PUSH_EVERY = 1.0  # seconds between batches (Promtail's batchwait default)
BATCH_LINES = 1000


class Shipper:
    """The tailing loop: per file an offset (kept in the positions file), per batch one push per client."""

    def __init__(self, config: dict):
        """Take the config's clients, scrape targets and positions file."""
        self.clients = [client["url"] for client in config.get("clients") or []]
        self.positions_file = (config.get("positions") or {}).get("filename", "/tmp/positions.yaml")
        self.targets = []
        for job in config.get("scrape_configs") or []:
            docker = any("docker" in (stage or {}) for stage in job.get("pipeline_stages") or [])
            for static in job.get("static_configs") or []:
                labels = {str(k): str(v) for k, v in (static.get("labels") or {}).items()}
                path = labels.pop("__path__", None)
                if path:
                    self.targets.append((path, labels, docker))
        self.offsets = self._load_positions()
        self.tailing = 0
        self.pushed = 0
        self.errors = 0

    def _load_positions(self) -> dict[str, int]:
        try:
            with open(self.positions_file) as file:
                found = yaml.safe_load(file) or {}
            return {str(k): int(v) for k, v in (found.get("positions") or {}).items()}
        except (OSError, ValueError, AttributeError, yaml.YAMLError):
            return {}

    def _save_positions(self) -> None:
        tmp = self.positions_file + ".tmp"
        with open(tmp, "w") as file:
            yaml.safe_dump({"positions": {k: str(v) for k, v in self.offsets.items()}}, file)
        os.replace(tmp, self.positions_file)

    def collect(self) -> list[dict]:
        """New complete lines of every matched file, as Loki streams."""
        streams: dict[tuple, list] = {}
        tailing = 0
        for pattern, labels, docker in self.targets:
            for path in sorted(glob.glob(pattern)):
                tailing += 1
                offset = self.offsets.get(path, 0)
                try:
                    size = os.path.getsize(path)
                    if size < offset:  # rotated or truncated: start over
                        offset = 0
                    with open(path, "rb") as file:
                        file.seek(offset)
                        chunk = file.read(4 * 1024 * 1024)
                except OSError:
                    continue
                complete = chunk[:chunk.rfind(b"\n") + 1]
                self.offsets[path] = offset + len(complete)
                for raw in complete.decode("utf-8", "replace").splitlines():
                    line, extra, stamp = raw, {}, time.time_ns()
                    if docker:
                        line, extra, stamp = _docker_entry(raw, stamp)
                    key = tuple(sorted({**labels, "filename": path, **extra}.items()))
                    streams.setdefault(key, []).append([str(stamp), line])
        self.tailing = tailing
        return [{"stream": dict(key), "values": values[:BATCH_LINES]} for key, values in streams.items()]

    def push(self, streams: list[dict]) -> None:
        """One JSON push per client; a failed push is counted and said on stderr (its lines are not retried)."""
        body = json.dumps({"streams": streams}).encode()
        for url in self.clients:
            request = urllib.request.Request(url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                self.pushed += sum(len(s["values"]) for s in streams)
            except (urllib.error.URLError, OSError) as exc:
                self.errors += 1
                sys.stderr.write(f"level=warn msg=\"error sending batch\" host={url} error=\"{exc}\"\n")

    def run(self) -> None:
        """Collect and push forever."""
        while True:
            streams = self.collect()
            if streams and self.clients:
                self.push(streams)
            self._save_positions()
            time.sleep(PUSH_EVERY)


def _docker_entry(raw: str, default: int) -> tuple[str, dict, int]:
    """The docker stage: the entry's log line, its stream label and its time."""
    try:
        entry = json.loads(raw)
        line = str(entry["log"]).rstrip("\n")
        stamp = entry.get("time")
        when = default
        if stamp:  # RFC 3339 with nanoseconds, in UTC: 2026-12-01T19:08:00.123456789Z
            whole, _, fraction = str(stamp).rstrip("Z").partition(".")
            seconds = int(datetime.fromisoformat(whole + "+00:00").timestamp())
            when = seconds * 10**9 + int((fraction + "000000000")[:9])
        return line, {"stream": str(entry.get("stream", "stdout"))}, when
    except (ValueError, KeyError, TypeError):
        return raw, {}, default


SHIPPER: Shipper | None = None


class Handler(BaseHTTPRequestHandler):
    """Promtail's /ready and /metrics-like counters."""

    server_version = "promtail-standin/1"

    def do_GET(self) -> None:
        """Answer one GET."""
        path = self.path.split("?", 1)[0]
        if path == "/ready":
            ready = SHIPPER.tailing > 0
            self._text(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE,
                       "Ready" if ready else "Not ready: Unable to find any logs to tail. Please verify permissions, "
                       "volumes, scrape_config, etc.")
        elif path == "/metrics":
            self._text(HTTPStatus.OK, f"promtail_files_active_total {SHIPPER.tailing}\n"
                       f"promtail_sent_entries_total {SHIPPER.pushed}\npromtail_request_errors_total {SHIPPER.errors}")
        else:
            self._text(HTTPStatus.NOT_FOUND, "404 page not found")

    def log_message(self, format: str, *args) -> None:
        """Quiet: its own lines would be shipped back."""

    def _text(self, status: HTTPStatus, text: str) -> None:
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str]) -> int:
    """`-config.file=PATH` (Promtail's flag), or --version."""
    global SHIPPER
    if argv[:1] == ["--version"]:
        print(f"lab stand-in for Promtail {STANDS_IN_FOR}")
        return 0
    path = next((a.split("=", 1)[1] for a in argv if a.startswith(("-config.file=", "--config.file="))),
                "/etc/promtail/config.yml")
    try:
        with open(path) as file:
            config = yaml.safe_load(file) or {}
    except (OSError, yaml.YAMLError) as exc:
        sys.stderr.write(f"level=error msg=\"error loading config file {path}\" error=\"{type(exc).__name__}\"\n")
        return 1
    SHIPPER = Shipper(config)
    port = int((config.get("server") or {}).get("http_listen_port", 9080))
    threading.Thread(target=SHIPPER.run, daemon=True).start()
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
