"""The emulator's boot (POST startall): onboot CTs only, in startup order, with their `up` delays."""

from __future__ import annotations

import threading
import time

import pytest
from pve_memdriver import MemHosts

from lab.pve.app import Emulator
from lab.pve.auth import FULL_TOKEN_ID, load_tokens
from lab.pve.boot import parse_startup

pytestmark = pytest.mark.unit
BASE = "/api2/json"
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"


class Client:
    """Calls the emulator in-process with the full token."""

    def __init__(self, app: Emulator):
        self.app = app
        self.auth = f"PVEAPIToken={FULL_TOKEN_ID}={load_tokens(app.state_dir)[FULL_TOKEN_ID]}"

    def ok(self, method, path, **params):
        reply = self.app.handle(method, BASE + path, {k: str(v) for k, v in params.items()}, self.auth)
        assert reply.status == 200, (reply.status, reply.reason, reply.body)
        return reply.body["data"]

    def task(self, method, path, **params) -> tuple[dict, list[str]]:
        upid = self.ok(method, path, **params)
        self.app.tasks.wait(upid, 30)
        log = self.ok("GET", f"/nodes/homelab/tasks/{upid}/log", limit=1000)
        return self.ok("GET", f"/nodes/homelab/tasks/{upid}/status"), [row["t"] for row in log]


@pytest.fixture
def root(tmp_path):
    return Client(Emulator(tmp_path / "pve", MemHosts(), node="homelab"))


def _create(root: Client, vmid: int, **options) -> None:
    net = f"name=eth0,bridge=labbr0,ip=198.18.0.{vmid - 800}/24,gw=198.18.0.1"
    status, _ = root.task("POST", "/nodes/homelab/lxc", vmid=vmid, ostemplate=TEMPLATE, hostname=f"t{vmid}",
                          net0=net, **options)
    assert status["exitstatus"] == "OK"


def _starts(root: Client) -> list[int]:
    return [call[1] for call in root.app.driver.calls if call[0] == "start"]


@pytest.mark.parametrize("text, parsed", [
    ("order=2,up=30,down=60", {"order": 2, "up": 30, "down": 60}),
    ("3", {"order": 3}),
    ("up=5", {"up": 5}),
    ("up=1,order=2", {"order": 2, "up": 1}),
    ("", {}),
    (None, {}),
])
def test_parse_startup(text, parsed):
    assert parse_startup(text) == parsed


@pytest.mark.parametrize("text", ["order=x", "first", "order=1,up=-1", "order=1, up=2"])
def test_parse_startup_refuses(text):
    with pytest.raises(ValueError, match=r"expected \[\[order=\]N\]"):
        parse_startup(text)


def test_onboot_and_startup_kept_from_create_and_config(root):
    _create(root, 901, onboot=1, startup="order=2,up=1")
    conf = root.ok("GET", "/nodes/homelab/lxc/901/config")
    assert (conf["onboot"], conf["startup"]) == (1, "order=2,up=1")
    root.ok("PUT", "/nodes/homelab/lxc/901/config", onboot=0, startup="order=5")
    conf = root.ok("GET", "/nodes/homelab/lxc/901/config")
    assert (conf["onboot"], conf["startup"]) == (0, "order=5")
    # a new emulator on the same state directory (the process restarted) reads them back from disk
    again = Client(Emulator(root.app.state_dir, root.app.driver, node="homelab"))
    conf = again.ok("GET", "/nodes/homelab/lxc/901/config")
    assert (conf["onboot"], conf["startup"]) == (0, "order=5")


def test_startall_starts_onboot_cts_in_startup_order(root):
    _create(root, 901, onboot=1, startup="order=2")
    _create(root, 902, onboot=1, startup="order=1,up=1")
    _create(root, 903, onboot=0, startup="order=1")
    _create(root, 904, onboot=1)
    _create(root, 905, onboot=1, startup="order=1")
    _create(root, 906)
    root.app.driver.start(905)  # already running: skipped, as PVE's check_running does
    root.app.driver.calls.clear()
    started = time.monotonic()
    status, log = root.task("POST", "/nodes/homelab/startall")
    assert status["exitstatus"] == "OK" and status["type"] == "startall"
    assert _starts(root) == [902, 901, 904]
    assert time.monotonic() - started >= 1  # 902's up=1 before the next start
    assert log == ["Starting CT 902", "Waiting for 1 seconds (startup delay)", "Starting CT 901",
                   "Starting CT 904", "TASK OK"]
    states = {e["vmid"]: e["status"] for e in root.ok("GET", "/nodes/homelab/lxc")}
    assert states == {901: "running", 902: "running", 903: "stopped", 904: "running", 905: "running",
                      906: "stopped"}


def test_startall_force_and_vms(root):
    _create(root, 901, onboot=1)
    _create(root, 902)
    _create(root, 903)
    root.task("POST", "/nodes/homelab/startall", vms="902,903", force=1)
    assert _starts(root) == [902, 903]
    root.task("POST", "/nodes/homelab/startall")
    assert _starts(root) == [902, 903, 901]


def test_startall_goes_on_after_a_failed_start(root, monkeypatch):
    _create(root, 901, onboot=1, startup="order=1")
    _create(root, 902, onboot=1, startup="order=2")
    real = root.app.driver.start

    def start(vmid):
        if vmid == 901:
            raise RuntimeError("lxc-start: 901 failed")
        real(vmid)

    monkeypatch.setattr(root.app.driver, "start", start)
    status, log = root.task("POST", "/nodes/homelab/startall")
    assert status["exitstatus"] == "OK"
    assert [line for line in log if line.startswith("Starting CT 901 failed:") and "lxc-start: 901 failed" in line]
    assert root.ok("GET", "/nodes/homelab/lxc/902/status/current")["status"] == "running"



def test_lab_up_asks_for_the_boot_over_https_with_the_lab_ca(tmp_path, monkeypatch):
    """call_startall (what `lab up` runs) against the served emulator, with a system CA bundle in the environment
    (as on this machine): it verifies the lab CA and returns the task's lines."""
    from lab.pve.boot import call_startall
    from lab.pve.ca import ensure_ca
    from lab.pve.server import PveServer

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    app = Emulator(tmp_path / "pve", MemHosts(), node="homelab")
    root = Client(app)
    _create(root, 901, onboot=1)
    ca_file, cert, key = ensure_ca(app.state_dir)
    server = PveServer(("127.0.0.1", 0), app, cert, key, auth_delay=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        token = f"{FULL_TOKEN_ID}={load_tokens(app.state_dir)[FULL_TOKEN_ID]}"
        lines = call_startall(f"https://127.0.0.1:{server.server_address[1]}/api2/json", "homelab", str(ca_file),
                              token)
    finally:
        server.shutdown()
        server.server_close()
    assert lines == ["Starting CT 901"]
    assert _starts(root) == [901]
