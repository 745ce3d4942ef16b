"""Preflight's version check against the emulator set to report a supported and an unsupported PVE."""

from __future__ import annotations

import threading

import pytest
from proxmoxer import ProxmoxAPI
from pve_memdriver import MemHosts

from lab.pve.app import Emulator
from lab.pve.auth import FULL_TOKEN_ID, load_tokens
from lab.pve.ca import ensure_ca
from lab.pve.server import PveServer
from plugins.proxmox.client import ProxmoxClient
from plugins.proxmox.versions import pve_version, unsupported_version_problem

pytestmark = pytest.mark.unit


@pytest.fixture
def node_running(tmp_path):
    """Start the emulator over HTTPS reporting a given version; return the suite's client for it."""
    servers = []

    def start(version: str | None) -> ProxmoxClient:
        state = tmp_path / f"pve-{version}"
        ca_file, cert, key = ensure_ca(state)
        server = PveServer(("127.0.0.1", 0), Emulator(state, MemHosts(), version=version), cert, key, auth_delay=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        port, secret = server.server_address[1], load_tokens(state)[FULL_TOKEN_ID]
        user, _, name = FULL_TOKEN_ID.partition("!")
        return ProxmoxClient(lambda: ProxmoxAPI("127.0.0.1", port=port, user=user, token_name=name,
                                                token_value=secret, verify_ssl=str(ca_file), timeout=10),
                             url=f"https://127.0.0.1:{port}", token_id=FULL_TOKEN_ID, secret_env="PVE_TOKEN_SECRET")

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_lab_reports_pve_9_and_preflight_accepts_it(node_running):
    """The emulator's default is 9.1: supported."""
    client = node_running(None)
    answer = client.version()
    assert answer["release"] == "9.1" and pve_version(answer)[0] == 9
    assert unsupported_version_problem(answer, client.url) == ""


def test_an_8_4_node_is_refused_in_one_line_with_the_upgrade(node_running):
    """8.4 is refused: one line naming the version found, the node, what is supported and the way out."""
    client = node_running("8.4.14")
    problem = unsupported_version_problem(client.version(), client.url)
    assert "\n" not in problem
    assert problem.startswith(f"Proxmox VE 8.4.14 on {client.url} is not supported: this suite supports "
                              "Proxmox VE 9.x")
    assert "pve8to9" in problem


def test_versions_before_and_after_are_refused():
    """7.4 and a future 10.0 are refused too; 9.0 (the first 9) is accepted."""
    assert "not supported" in unsupported_version_problem({"version": "7.4-17", "release": "7.4"})
    assert "has not been checked" in unsupported_version_problem({"version": "10.0.1", "release": "10.0"})
    assert unsupported_version_problem({"version": "9.0.3", "release": "9.0"}) == ""
    assert "without a version" in unsupported_version_problem({})
