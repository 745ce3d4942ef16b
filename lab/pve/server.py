"""HTTPS front: ThreadingHTTPServer + ssl, PVE headers, one log line per request."""

from __future__ import annotations

import json
import ssl
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .app import Emulator, Reply

SERVER = "pve-api-daemon/3.0"
MAX_BODY = 1 << 20


def _reason(text: str) -> str:
    return " ".join(text.replace("\r", " ").split("\n")).strip()


def _merge(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """Parameters by name; a name given more than once is a list (an array parameter, as PVE reads it)."""
    params: dict[str, str | list[str]] = {}
    for key, value in pairs:
        if key in params:
            held = params[key]
            params[key] = [*held, value] if isinstance(held, list) else [held, value]
        else:
            params[key] = value
    return params


class Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into Emulator.handle calls."""

    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK of the headers, on every call of a keep-alive client (docs/reference/figures.md). pveproxy sends
    # a reply in one write and has no such stall.
    disable_nagle_algorithm = True
    server_version = SERVER
    sys_version = ""

    def version_string(self) -> str:
        """Return the Server header PVE sends."""
        return SERVER

    def log_message(self, format, *args):
        """Silence the default access log (we log one line per request ourselves)."""

    def _params(self) -> dict[str, str | list[str]] | None:
        url = urllib.parse.urlsplit(self.path)
        pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        raw = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if raw and ctype == "application/json":
            body = json.loads(raw)
            for key, value in body.items():
                for item in value if isinstance(value, list) else [value]:
                    pairs.append((key, str(int(item)) if isinstance(item, bool) else str(item)))
        elif raw:
            pairs += urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True)
        return _merge(pairs)

    def _serve(self) -> None:
        started = time.monotonic()
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        try:
            params = self._params()
        except (ValueError, UnicodeDecodeError):
            params = None
        app: Emulator = self.server.app  # type: ignore[attr-defined]
        if params is None:
            reply = Reply(400, "Bad Request", {"data": None})
        else:
            reply = app.handle(self.command, path, params, self.headers.get("Authorization"))
        if reply.drop:
            self.close_connection = True
            print(f"pve: {self.command} {path} dropped (injected fault)", file=sys.stderr, flush=True)
            return
        if reply.status == 401:
            time.sleep(self.server.auth_delay)  # type: ignore[attr-defined]
        self._send(reply)
        ms = (time.monotonic() - started) * 1000
        print(f"pve: {self.command} {path} {reply.status} {ms:.1f}ms", file=sys.stderr, flush=True)

    def _send(self, reply: Reply) -> None:
        body = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status, _reason(reply.reason))
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=0")
        self.send_header("Pragma", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class PveServer(ThreadingHTTPServer):
    """The TLS server; `app` answers, `auth_delay` seconds pass before each 401."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, app: Emulator | None, cert_file: str, key_file: str, auth_delay: float = 0.05):
        """Listen on `address` (OSError when it cannot); `app` may be set after, before serve_forever."""
        super().__init__(address, Handler)
        self.app = app
        self.auth_delay = auth_delay
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert_file, key_file)
        self.socket = ctx.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request, client_address):
        """Log a failed connection in one line (TLS handshakes of probes are common)."""
        exc = sys.exc_info()[1]
        print(f"pve: connection error from {client_address[0]}: {exc!r}", file=sys.stderr, flush=True)
