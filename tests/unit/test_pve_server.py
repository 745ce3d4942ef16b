"""The emulator over HTTPS: proxmoxer with the lab CA, PVE's wire details, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from proxmoxer import ProxmoxAPI, ResourceException
from proxmoxer.tools import Tasks
from pve_memdriver import MemHosts

from lab.pve.app import Emulator
from lab.pve.auth import FULL_TOKEN_ID, READONLY_TOKEN_ID, load_tokens
from lab.pve.ca import ensure_ca
from lab.pve.server import Handler, PveServer

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    state = tmp_path_factory.mktemp("pve")
    ca_file, cert, key = ensure_ca(state)
    server = PveServer(("127.0.0.1", 0), Emulator(state, MemHosts(), verify_results=True), cert, key, auth_delay=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, ca_file, load_tokens(state)
    server.shutdown()
    server.server_close()


def api(served, token_id=FULL_TOKEN_ID, secret=None):
    server, ca_file, tokens = served
    user, _, name = token_id.partition("!")
    return ProxmoxAPI("127.0.0.1", port=server.server_address[1], user=user, token_name=name,
                      token_value=secret or tokens[token_id], verify_ssl=ca_file, timeout=10)


def test_proxmoxer_with_ca_file(served):
    prox = api(served)
    assert prox.version.get()["release"] == "9.1"
    upid = prox.nodes("homelab").lxc.post(
        vmid=910, ostemplate="local:vztmpl/debian-12-lab_amd64.tar.zst", hostname="t910",
        net0="name=eth0,bridge=labbr0,ip=198.18.0.91/24,gw=198.18.0.1", start=1)
    status = Tasks.blocking_status(prox, upid, timeout=10, polling_interval=0.05)
    assert status["exitstatus"] == "OK" and status["tokenid"] == "lab"
    assert prox.nodes("homelab").lxc(910).status.current.get()["status"] == "running"
    net0 = prox.nodes("homelab").lxc(910).config.get()["net0"]
    assert net0 == "name=eth0,bridge=labbr0,gw=198.18.0.1,hwaddr=BC:24:11:00:03:8E,ip=198.18.0.91/24,type=veth"


def test_wire_headers_and_reason(served):
    server, ca_file, tokens = served
    url = f"https://127.0.0.1:{server.server_address[1]}/api2/json/nodes/pve/foo"
    resp = requests.get(url, verify=ca_file, timeout=5,
                        headers={"Authorization": f"PVEAPIToken={FULL_TOKEN_ID}={tokens[FULL_TOKEN_ID]}"})
    assert resp.status_code == 501 and resp.reason == "Method 'GET /nodes/pve/foo' not implemented"
    assert resp.headers["Server"] == "pve-api-daemon/3.0"
    assert resp.json() == {"data": None, "message": "Method 'GET /nodes/pve/foo' not implemented\n"}


def test_errors_as_proxmoxer_raises_them(served):
    with pytest.raises(ResourceException) as exc:
        api(served, secret="wrong").version.get()
    assert exc.value.status_code == 401 and exc.value.content == "authentication failure"
    with pytest.raises(ResourceException) as exc:
        api(served, READONLY_TOKEN_ID).nodes("homelab").lxc(910).snapshot.post(snapname="x1")
    assert exc.value.status_code == 403 and exc.value.content == "Permission check failed (/vms/910, VM.Snapshot)"
    with pytest.raises(ResourceException) as exc:
        api(served).nodes("homelab").lxc(910).snapshot("x1").rollback.post(start=True)
    assert exc.value.status_code == 400 and exc.value.errors == {"start": "type check ('boolean') failed - got 'True'"}
    with pytest.raises(ResourceException) as exc:
        api(served).nodes("pve").lxc.get()
    assert exc.value.content.startswith("hostname lookup 'pve' failed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_reply_is_not_held_back_by_nagles_algorithm(served, monkeypatch):
    """Headers and body leave in two writes: without TCP_NODELAY the body waits for the client's delayed ACK."""
    server = served[0]
    nodelay = []

    class Recording(Handler):
        def setup(self):
            super().setup()
            nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(server, "RequestHandlerClass", Recording)
    assert api(served).version.get()["release"] == "9.1"
    assert nodelay and all(nodelay), f"TCP_NODELAY on the emulator's connections: {nodelay}"


def _serve_cmd(port: int, state: Path) -> list[str]:
    return [sys.executable, "-m", "lab.pve", "serve", "--port", str(port), "--state-dir", str(state), "--driver",
            "pve_memdriver:MemHosts"]


def _refusal(command: list[str]) -> str:
    """Run an emulator that must refuse to start: its exit code 2 and its last line (no traceback)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests' / 'unit'}"}
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("the emulator started (it should have refused) and was stopped by the timeout")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_an_emulator_that_cannot_listen_says_so_in_one_line(tmp_path):
    """A port already taken (the lab's emulator on 8006): one line naming the address, before the emulator has
    loaded anything (its firewall, its HA manager)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _refusal(_serve_cmd(port, tmp_path))
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in line
    assert not (tmp_path / "tokens.json").exists(), "the emulator set up its state before it could listen"


def test_a_second_emulator_on_a_served_state_dir_is_refused_naming_the_first(tmp_path):
    """One emulator per state directory: two would both run its HA manager and load its firewall table. The second
    is refused in one line that names the first's PID (the same port too, so that a missing lock cannot leave a
    second emulator serving)."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests' / 'unit'}"}
    first = subprocess.Popen(_serve_cmd(port, tmp_path), cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not (tmp_path / "tokens.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        line = _refusal(_serve_cmd(port, tmp_path))
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=10)
    assert f"{tmp_path} is served by another emulator (pid {first.pid})" in line


def test_main_serves_and_stops_on_sigterm(tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests' / 'unit'}"}
    proc = subprocess.Popen([sys.executable, "-m", "lab.pve", "serve", "--port", str(port), "--state-dir",
                             str(tmp_path), "--driver", "pve_memdriver:MemHosts"], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                resp = requests.get(f"https://127.0.0.1:{port}/api2/json/version", timeout=2,
                                    verify=str(tmp_path / "ca.pem"))
                break
            except (requests.ConnectionError, OSError):
                time.sleep(0.1)
        assert resp.status_code == 401
        assert oct((tmp_path / "tokens.json").stat().st_mode & 0o777) == "0o600"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "pve: GET /api2/json/version 401" in err
    secrets = load_tokens(tmp_path).values()
    assert not any(s in err for s in secrets)
