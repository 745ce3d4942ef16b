"""Vaultwarden stand-in: /alive and / as the real server; /admin behind ADMIN_TOKEN with the real status codes.

The admin flow is Vaultwarden's (src/api/admin.rs): without the VW_ADMIN cookie every admin route answers 401
(the login page, or a JSON error to a JSON client); POST /admin with the form field `token` answers 401 for a
wrong token, 200 (the admin page) or 303 (to the form's `redirect`) with the cookie for the right one; every
POST /admin counts against ADMIN_RATELIMIT_MAX_BURST per ADMIN_RATELIMIT_SECONDS and client (429 beyond it).
Without ADMIN_TOKEN the admin panel is disabled: /admin answers 200 with the real server's notice.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
import threading
import time
from datetime import UTC, datetime
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

STANDS_IN_FOR = "1.32.7"  # the upstream tag this image is pushed under
PORT = int(os.environ.get("ROCKET_PORT") or 80)
ADMIN_TOKEN = os.environ.get("ADMIN_TOKEN", "").strip()
RATE_SECONDS = float(os.environ.get("ADMIN_RATELIMIT_SECONDS") or 300)
RATE_BURST = int(os.environ.get("ADMIN_RATELIMIT_MAX_BURST") or 3)
COOKIE = "VW_ADMIN"
SESSION_SECONDS = 20 * 60  # the real cookie's max age
DISABLED = b"The admin panel is disabled, please configure the 'ADMIN_TOKEN' variable to enable it"
LOGIN_PAGE = ("<!doctype html><title>Vaultwarden Admin Panel (lab stand-in)</title>"
              "<form method=post action=/admin>{error}<input type=password name=token>"
              "<input type=hidden name=redirect value='{redirect}'><button>Enter</button></form>")
ADMIN_PAGE = b"<!doctype html><title>Vaultwarden Admin Panel (lab stand-in)</title><h1>Settings</h1>"

_sessions: dict[str, float] = {}  # cookie value -> expiry (monotonic)
_buckets: dict[str, tuple[float, float]] = {}  # client ip -> (tokens, last refill)
_lock = threading.Lock()


def _allow_login(client: str) -> bool:
    """A token bucket per client: RATE_BURST tries, one more every RATE_SECONDS (the real limiter's shape)."""
    now = time.monotonic()
    with _lock:
        tokens, last = _buckets.get(client, (float(RATE_BURST), now))
        tokens = min(float(RATE_BURST), tokens + (now - last) / RATE_SECONDS)
        allowed = tokens >= 1
        _buckets[client] = (tokens - 1 if allowed else tokens, now)
    return allowed


def _new_session() -> str:
    value = secrets.token_urlsafe(32)
    with _lock:
        _sessions[value] = time.monotonic() + SESSION_SECONDS
    return value


def _valid_session(value: str | None) -> bool:
    with _lock:
        expiry = _sessions.get(value or "")
    return expiry is not None and expiry > time.monotonic()


class Handler(BaseHTTPRequestHandler):
    """The health, web vault and admin routes."""

    server_version = "vaultwarden-standin/1"

    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _cookie(self) -> str | None:
        jar = SimpleCookie(self.headers.get("Cookie", ""))
        return jar[COOKIE].value if COOKIE in jar else None

    def _wants_json(self) -> bool:
        return "application/json" in (self.headers.get("Accept", "") + self.headers.get("Content-Type", ""))

    def _unauthorized(self, redirect: str, error: str = "") -> None:
        if self._wants_json() and not error:
            body = json.dumps({"message": "Authorization failed.", "error": {"message": "Authorization failed."}})
            self._send(HTTPStatus.UNAUTHORIZED, body.encode(), "application/json")
            return
        shown = f"<p>Error: {error}</p>" if error else ""
        self._send(HTTPStatus.UNAUTHORIZED, LOGIN_PAGE.format(error=shown, redirect=redirect).encode())

    def do_GET(self) -> None:
        """Answer one GET."""
        path = self.path.split("?", 1)[0]
        if path == "/alive":
            self._send(HTTPStatus.OK, json.dumps(datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]).encode(),
                       "application/json")
        elif path == "/":
            self._send(HTTPStatus.OK, b"<!doctype html><title>Vaultwarden Web (lab stand-in)</title>")
        elif path == "/admin" and not ADMIN_TOKEN:
            self._send(HTTPStatus.OK, DISABLED, "text/plain; charset=utf-8")
        elif path == "/admin/logout":
            self._send(HTTPStatus.SEE_OTHER, b"", headers={
                "Location": "/admin", "Set-Cookie": f"{COOKIE}=; Path=/admin; Max-Age=0"})
        elif path in ("/admin", "/admin/users") and ADMIN_TOKEN:
            if not _valid_session(self._cookie()):
                self._unauthorized(path.removeprefix("/admin"))
            elif path == "/admin":
                self._send(HTTPStatus.OK, ADMIN_PAGE)
            else:
                self._send(HTTPStatus.OK, b"[]", "application/json")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"", "text/plain")

    def do_POST(self) -> None:
        """Answer POST /admin: the admin login form."""
        if self.path.split("?", 1)[0] != "/admin" or not ADMIN_TOKEN:
            self._send(HTTPStatus.NOT_FOUND, b"", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace")) if length else {}
        token = (form.get("token") or [""])[0].strip()
        redirect = (form.get("redirect") or [""])[0]
        if not _allow_login(self.client_address[0]):
            self._send(HTTPStatus.TOO_MANY_REQUESTS, LOGIN_PAGE.format(
                error="<p>Error: Too many requests, try again later.</p>", redirect=redirect).encode())
        elif not hmac.compare_digest(token.encode(), ADMIN_TOKEN.encode()):
            self._unauthorized(redirect, "Invalid admin token, please try again.")
        else:
            cookie = f"{COOKIE}={_new_session()}; Path=/admin; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict"
            if redirect:
                self._send(HTTPStatus.SEE_OTHER, b"", headers={"Location": f"/admin{redirect}", "Set-Cookie": cookie})
            else:
                self._send(HTTPStatus.OK, ADMIN_PAGE, headers={"Set-Cookie": cookie})


if __name__ == "__main__":
    if sys.argv[1:] == ["--version"]:
        print(f"lab stand-in for Vaultwarden {STANDS_IN_FOR}")
        sys.exit(0)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
