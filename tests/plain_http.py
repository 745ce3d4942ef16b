"""Loopback helpers for the project's tests: a raw HTTP GET (no redirect following, no retry, no session: what a
probe sees), a free port, and waiting until a child process listens."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time


def get(host: str, port: int, path: str, timeout: float = 5, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """GET http://host:port/path without following redirects: status, headers, body."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, child: subprocess.Popen | None = None, timeout: float = 10) -> None:
    """Wait until something accepts connections on 127.0.0.1:port (fail at once if the child exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            raise AssertionError(f"{child.args} exited {child.returncode}: {child.stderr.read() if child.stderr else ''}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
