"""The lab's stand-in images' programs (Grafana, Vaultwarden), run as local processes on 127.0.0.1 (the demo
app: test_app_demo.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import plain_http
import pytest

from plugins.tools.playbooks import ANSIBLE_DIR

pytestmark = pytest.mark.unit

RECIPES = ANSIBLE_DIR.parent / "lab" / "images" / "recipes"
GRAFANA = RECIPES / "grafana" / "files" / "server.py"
VAULTWARDEN = RECIPES / "vaultwarden" / "files" / "server.py"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str) -> tuple[int, dict, bytes]:
    """GET http://127.0.0.1:port/path without following redirects: status, headers, body."""
    return plain_http.get("127.0.0.1", port, path)


def wait_listening(port: int, timeout: float = 10) -> None:
    """Wait until something accepts connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@pytest.fixture
def serve() -> Iterator:
    """Start a program of the roles as a child process; every child is stopped afterwards."""
    children: list[subprocess.Popen] = []

    def start(script: Path, port: int, env: dict, *args: str) -> subprocess.Popen:
        child = subprocess.Popen(
            [sys.executable, str(script), *args],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        children.append(child)
        wait_listening(port)
        return child

    yield start
    for child in children:
        child.terminate()
        child.wait(timeout=10)


def test_grafana_stand_in_warms_up_like_grafana(serve):
    """/api/health 503 then 200; / redirects to /login (302)."""
    port = free_port()
    serve(GRAFANA, port, {"GF_SERVER_HTTP_PORT": str(port), "STANDIN_WARMUP_SECONDS": "1"})
    assert get(port, "/api/health")[0] == 503
    status, headers, _ = get(port, "/")
    assert (status, headers["Location"]) == (302, "/login")
    time.sleep(1.1)
    assert get(port, "/api/health")[0] == 200


def test_vaultwarden_stand_in_admin_needs_the_token(serve):
    """/alive 200; /admin 401 without the admin token, 200 with it."""
    port = free_port()
    serve(VAULTWARDEN, port, {"ROCKET_PORT": str(port), "ADMIN_TOKEN": "lab-admin-token-value"})
    assert get(port, "/alive")[0] == 200
    assert get(port, "/admin")[0] == 401
    status, _, _ = plain_http.get("127.0.0.1", port, "/admin", headers={"Authorization": "Bearer lab-admin-token-value"})
    assert status == 200
