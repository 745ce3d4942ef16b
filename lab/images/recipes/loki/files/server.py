"""Loki stand-in: the push API (JSON), /ready (503 while warming up, then 200), and log queries over what it stored.

Not Loki: one process, streams kept in memory and appended to a JSON-lines file on the data volume (/loki), so
what was pushed survives a restart. LogQL is a subset: a stream selector with =, !=, =~, !~ matchers and
line filters |= != |~ !~ (enough for "what did host X send"). Everything else answers 400 with Loki's shape.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STANDS_IN_FOR = "3.3.2"  # the upstream tag this image is pushed under
PORT = int(os.environ.get("LOKI_HTTP_PORT") or 3100)
# Loki's ingester waits min_ready_duration (15 s) after start; the stand-in keeps the behaviour, shorter, so a
# rollback restarting it stays within the tests' capped waits (deploy.max_health_wait).
WARMUP_SECONDS = float(os.environ.get("STANDIN_WARMUP_SECONDS") or 5)
DATA = os.environ.get("LOKI_DATA_FILE") or "/loki/standin-streams.jsonl"
STARTED = time.monotonic()
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
FILTER = re.compile(r'\s*(\|=|!=|\|~|!~)\s*"((?:[^"\\]|\\.)*)"')


class Store:
    """Every stream (its labels) and its entries (ns timestamp, line), guarded by one lock."""

    def __init__(self, path: str):
        """Load what an earlier run stored at path."""
        self.path = path
        self.lock = threading.Lock()
        self.streams: dict[tuple, list[tuple[int, str]]] = {}
        try:
            with open(path) as file:
                for line in file:
                    record = json.loads(line)
                    self._add(record["stream"], record["values"])
        except (OSError, ValueError, KeyError):
            pass

    def _add(self, labels: dict, values: list) -> int:
        key = tuple(sorted(labels.items()))
        entries = self.streams.setdefault(key, [])
        entries.extend((int(ts), str(line)) for ts, line in values)
        return len(values)

    def push(self, streams: list) -> int:
        """Store pushed streams (Loki's JSON body: streams[].stream, streams[].values); give the lines stored."""
        stored = 0
        with self.lock, open(self.path, "a") as file:
            for stream in streams:
                labels = {str(k): str(v) for k, v in stream["stream"].items()}
                values = [[str(ts), line] for ts, line in stream["values"]]
                stored += self._add(labels, values)
                file.write(json.dumps({"stream": labels, "values": values}) + "\n")
        return stored

    def select(self, matchers: list, filters: list, start: int, end: int, limit: int, forward: bool) -> list:
        """Streams matching the selector, their entries in [start, end] passing the filters (newest first)."""
        found = []
        with self.lock:
            items = [(dict(key), list(entries)) for key, entries in self.streams.items()]
        for labels, entries in items:
            if not all(_matches(labels.get(name, ""), op, value) for name, op, value in matchers):
                continue
            kept = sorted((e for e in entries if start <= e[0] <= end and _passes(e[1], filters)),
                          reverse=not forward)[:limit]
            if kept:
                found.append({"stream": labels, "values": [[str(ts), line] for ts, line in kept]})
        return found

    def labels(self) -> list[str]:
        """Every label name stored."""
        with self.lock:
            return sorted({name for key in self.streams for name, _ in key})

    def values(self, name: str) -> list[str]:
        """Every value of one label."""
        with self.lock:
            return sorted({value for key in self.streams for label, value in key if label == name})


def _matches(actual: str, op: str, value: str) -> bool:
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    found = re.fullmatch(value, actual) is not None
    return found if op == "=~" else not found


def _passes(line: str, filters: list) -> bool:
    for op, value in filters:
        if op == "|=" and value not in line or op == "!=" and value in line:
            return False
        if op in ("|~", "!~") and (re.search(value, line) is None) == (op == "|~"):
            return False
    return True


def parse_query(query: str) -> tuple[list, list]:
    """LogQL's stream selector and line filters; ValueError with Loki's kind of message otherwise."""
    query = query.strip()
    if not (query.startswith("{") and "}" in query):
        raise ValueError(f"parse error : only log stream selectors are supported by this stand-in: {query!r}")
    selector, rest = query[1:query.index("}")], query[query.index("}") + 1:]
    matchers, position = [], 0
    while position < len(selector.strip()):
        found = MATCHER.match(selector, position)
        if not found:
            raise ValueError(f"parse error : unexpected matcher at {selector[position:]!r}")
        name, op, value = found.groups()
        matchers.append((name, op, json.loads(f'"{value}"')))
        position = found.end()
    if not matchers:
        raise ValueError("parse error : queries require at least one matcher")
    filters, position = [], 0
    while rest[position:].strip():
        found = FILTER.match(rest, position)
        if not found:
            raise ValueError(f"parse error : unsupported pipeline stage {rest[position:].strip()!r}")
        filters.append((found.group(1), json.loads(f'"{found.group(2)}"')))
        position = found.end()
    return matchers, filters


STORE: Store | None = None


class Handler(BaseHTTPRequestHandler):
    """Loki's HTTP API routes the shippers, Grafana and the health checks use."""

    server_version = "loki-standin/1"

    def do_GET(self) -> None:
        """Answer one GET."""
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path == "/ready":
            if time.monotonic() - STARTED < WARMUP_SECONDS:
                self._text(HTTPStatus.SERVICE_UNAVAILABLE, f"Ingester not ready: waiting for {WARMUP_SECONDS:g}s after being ready")
            else:
                self._text(HTTPStatus.OK, "ready")
        elif url.path in ("/loki/api/v1/query_range", "/loki/api/v1/query"):
            self._query(query, ranged=url.path.endswith("_range"))
        elif url.path == "/loki/api/v1/labels":
            self._json(HTTPStatus.OK, {"status": "success", "data": STORE.labels()})
        elif re.fullmatch(r"/loki/api/v1/label/[A-Za-z_][A-Za-z0-9_]*/values", url.path):
            self._json(HTTPStatus.OK, {"status": "success", "data": STORE.values(url.path.split("/")[5])})
        elif url.path == "/loki/api/v1/status/buildinfo":
            self._json(HTTPStatus.OK, {"version": f"{STANDS_IN_FOR}-lab-standin"})
        else:
            self._text(HTTPStatus.NOT_FOUND, "404 page not found")

    def do_POST(self) -> None:
        """Accept a push (application/json); anything else is refused as Loki refuses it."""
        url = urlsplit(self.path)
        if url.path != "/loki/api/v1/push":
            self._text(HTTPStatus.NOT_FOUND, "404 page not found")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self._text(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "this stand-in accepts JSON pushes only")
            return
        try:
            STORE.push(json.loads(body)["streams"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._text(HTTPStatus.BAD_REQUEST, f"error parsing push request: {type(exc).__name__}")
            return
        self.send_response(HTTPStatus.NO_CONTENT)
        self.end_headers()

    def _query(self, query: dict, ranged: bool) -> None:
        now = time.time_ns()
        try:
            matchers, filters = parse_query(query.get("query", ""))
            limit = int(query.get("limit", 100))
            end = _ns(query.get("end") or query.get("time"), now)
            start = _ns(query.get("start"), end - 3600 * 10**9) if ranged else 0
        except ValueError as exc:
            self._text(HTTPStatus.BAD_REQUEST, str(exc))
            return
        streams = STORE.select(matchers, filters, start, end, limit, query.get("direction") == "forward")
        self._json(HTTPStatus.OK, {"status": "success", "data": {"resultType": "streams", "result": streams,
                                                                  "stats": {}}})

    def log_request(self, code="-", size="-") -> None:
        """Log refused requests only: like Loki, a push is not a log line (the shipper would ship it back)."""
        if isinstance(code, int) and code >= 400 or str(code).startswith(("4", "5")):
            super().log_request(code, size)

    def log_message(self, format: str, *args) -> None:
        """Log to stderr, as docker logs shows it."""
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _text(self, status: HTTPStatus, text: str) -> None:
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: HTTPStatus, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _ns(value: str | None, default: int) -> int:
    """A Loki time parameter: nanoseconds, or seconds with a fraction."""
    if not value:
        return default
    number = float(value)
    return int(number) if number > 1e15 else int(number * 1e9)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--version"]:
        print(f"lab stand-in for Loki {STANDS_IN_FOR}")
        sys.exit(0)
    os.makedirs(os.path.dirname(DATA), exist_ok=True)
    STORE = Store(DATA)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
