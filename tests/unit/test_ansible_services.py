"""The lab's stand-in images' programs (Grafana, Vaultwarden), run as local processes on 127.0.0.1 (the demo
app: test_app_demo.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import plain_http
import pytest
from plain_http import free_port, wait_listening

from plugins.tools.playbooks import ANSIBLE_DIR

pytestmark = pytest.mark.unit

RECIPES = ANSIBLE_DIR.parent / "lab" / "images" / "recipes"
GRAFANA = RECIPES / "grafana" / "files" / "server.py"
VAULTWARDEN = RECIPES / "vaultwarden" / "files" / "server.py"
SNIPEIT = RECIPES / "snipeit" / "files" / "server.py"


def get(port: int, path: str) -> tuple[int, dict, bytes]:
    """GET http://127.0.0.1:port/path without following redirects: status, headers, body."""
    return plain_http.get("127.0.0.1", port, path)


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
    """/alive 200; /admin 401 without the admin session (as Vaultwarden), a wrong token 401, the right one logs in."""
    import requests

    port = free_port()
    serve(VAULTWARDEN, port, {"ROCKET_PORT": str(port), "ADMIN_TOKEN": "lab-admin-token-value"})
    base = f"http://127.0.0.1:{port}"
    assert get(port, "/alive")[0] == 200
    assert get(port, "/")[0] == 200
    assert get(port, "/admin")[0] == 401
    assert get(port, "/admin/users")[0] == 401
    with requests.Session() as session:
        session.trust_env = False
        wrong = session.post(f"{base}/admin", data={"token": "not-the-token"}, allow_redirects=False)
        assert wrong.status_code == 401 and "VW_ADMIN" not in wrong.cookies
        right = session.post(f"{base}/admin", data={"token": "lab-admin-token-value", "redirect": "/users"},
                             allow_redirects=False)
        assert (right.status_code, right.headers["Location"]) == (303, "/admin/users")
        assert session.get(f"{base}/admin/users").json() == []


def test_vaultwarden_stand_in_limits_admin_logins_and_is_disabled_without_a_token(serve):
    """Past ADMIN_RATELIMIT_MAX_BURST logins: 429; without ADMIN_TOKEN, /admin says the panel is disabled (200)."""
    import requests

    port, other = free_port(), free_port()
    serve(VAULTWARDEN, port, {"ROCKET_PORT": str(port), "ADMIN_TOKEN": "t0ken", "ADMIN_RATELIMIT_MAX_BURST": "2"})
    codes = [requests.post(f"http://127.0.0.1:{port}/admin", data={"token": "x"}, timeout=5).status_code
             for _ in range(3)]
    assert codes == [401, 401, 429]
    serve(VAULTWARDEN, other, {"ROCKET_PORT": str(other), "ADMIN_TOKEN": ""})
    status, _, body = get(other, "/admin")
    assert status == 200 and b"admin panel is disabled" in body


def test_the_vaultwarden_probe_passes_on_the_stand_in_and_fails_on_a_wrong_token(serve):
    """The functional probe logs in with the right token; with another one it fails, naming no token."""
    import requests

    from plugins.health.functional import KINDS

    port = free_port()
    serve(VAULTWARDEN, port, {"ROCKET_PORT": str(port), "ADMIN_TOKEN": "lab-admin-token-value"})
    probe = KINDS["vaultwarden_admin"]
    with requests.Session() as session:
        ok, message = probe(session, f"http://127.0.0.1:{port}/admin", {"vaultwarden_admin_token": "lab-admin-token-value"})
        assert ok, message
    with requests.Session() as session:
        ok, message = probe(session, f"http://127.0.0.1:{port}/admin", {"vaultwarden_admin_token": "wrong-value"})
    assert not ok and "401" in message and "wrong-value" not in message and "lab-admin-token-value" not in message


def test_snipeit_stand_in_answers_500_while_its_database_does_not(serve):
    """No MariaDB at DB_HOST:DB_PORT: / and /login answer 500 as Laravel does (never 302/200); no APP_KEY: 500."""
    port, db_port, other = free_port(), free_port(), free_port()
    env = {"STANDIN_PORT": str(port), "DB_HOST": "127.0.0.1", "DB_PORT": str(db_port), "DB_DATABASE": "snipeit",
           "DB_USERNAME": "snipeit", "DB_PASSWORD": "not-shown", "APP_KEY": "base64:x"}
    serve(SNIPEIT, port, env)
    assert get(port, "/")[0] == 500
    assert get(port, "/login")[0] == 500
    assert get(port, "/nothing")[0] == 404
    serve(SNIPEIT, other, {**env, "STANDIN_PORT": str(other), "APP_KEY": ""})
    assert get(other, "/login")[0] == 500
