"""The programs the roles ship (proxy, monitoring stand-in), run as local processes on 127.0.0.1 (app-demo: test_app_demo.py)."""

from __future__ import annotations

import json
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

PROXY = ANSIBLE_DIR / "roles" / "proxy" / "files" / "proxy.py"
MONITORING = ANSIBLE_DIR / "roles" / "monitoring" / "files" / "server.py"


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


def test_proxy_redirects_routes_and_answers_502_for_a_dead_upstream(serve, tmp_path):
    """/ → 302 /app/; /app → 301 /app/; /app/x reaches the upstream's /x; a closed upstream gives 502."""
    app_port, proxy_port, dead_port = free_port(), free_port(), free_port()
    serve(MONITORING, app_port, {"MONITORING_PORT": str(app_port), "MONITORING_WARMUP_SECONDS": "0"})
    routes = tmp_path / "routes.json"
    routes.write_text(
        json.dumps(
            {
                "redirects": [{"path": "/", "location": "/app/", "status": 302}],
                "routes": [
                    {"prefix": "/app/", "upstream": f"http://127.0.0.1:{app_port}/"},
                    {"prefix": "/grafana/", "upstream": f"http://127.0.0.1:{dead_port}/"},
                ],
                "upstream_timeout": 2,
            }
        )
    )
    serve(PROXY, proxy_port, {"PROXY_PORT": str(proxy_port)}, str(routes))
    status, headers, _ = get(proxy_port, "/")
    assert (status, headers["Location"]) == (302, "/app/")
    status, headers, _ = get(proxy_port, "/app")
    assert (status, headers["Location"]) == (301, "/app/")
    assert get(proxy_port, "/app/api/health")[0] == 200
    status, _, body = get(proxy_port, "/grafana/api/health")
    assert status == 502 and b"unreachable" in body
    assert get(proxy_port, "/nowhere")[0] == 404


def test_monitoring_stand_in_warms_up_like_grafana(serve):
    """/api/health 503 then 200; / redirects to /login (302)."""
    port = free_port()
    serve(MONITORING, port, {"MONITORING_PORT": str(port), "MONITORING_WARMUP_SECONDS": "1"})
    assert get(port, "/api/health")[0] == 503
    status, headers, _ = get(port, "/")
    assert (status, headers["Location"]) == (302, "/login")
    time.sleep(1.1)
    assert get(port, "/api/health")[0] == 200
