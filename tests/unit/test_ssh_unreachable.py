"""plugins/ssh/pool.py: a host whose sshd never answered the master is not asked a second time for its methods
(a cut network cost a second ConnectTimeout in every round of a health wait); a refused key still is."""

from __future__ import annotations

import subprocess

import pytest
from plain_http import free_port

from plugins.ssh import pool as ssh_pool
from plugins.ssh.pool import MasterState, SshPool, SshTarget, never_answered

pytestmark = pytest.mark.unit


def test_a_closed_port_is_asked_once(tmp_path, monkeypatch):
    """A real ssh to a closed loopback port: the master fails with `connect to host`, and the methods question
    runs no second ssh."""
    target = SshTarget("gone", "127.0.0.1", "deploy", str(tmp_path / "key"), port=free_port())
    with SshPool([target], known_hosts=tmp_path / "known_hosts") as pool:
        state = pool.open("gone")
        assert not state.is_open and "connect to host 127.0.0.1" in state.error, state.error

        def no_second_ssh(*args, **kwargs):
            raise AssertionError(f"a second ssh ran: {args[0]}")

        monkeypatch.setattr(ssh_pool.subprocess, "run", no_second_ssh)
        assert pool.auth_methods("gone") is None


def test_a_master_that_met_sshd_without_its_methods_is_still_probed(tmp_path, monkeypatch):
    target = SshTarget("web", "198.18.0.250", "deploy", str(tmp_path / "key"))
    with SshPool([target], known_hosts=tmp_path / "known_hosts") as pool:
        pool.states["web"] = MasterState(target, error="ssh did not finish within 30 s")
        asked = []

        def probe(args, **kwargs):
            asked.append(args)
            return subprocess.CompletedProcess(args, 255, "", "deploy@198.18.0.250: Permission denied (publickey).")

        monkeypatch.setattr(ssh_pool.subprocess, "run", probe)
        assert pool.auth_methods("web") == ("publickey",) and len(asked) == 1


@pytest.mark.parametrize(("error", "never"), [
    ("ssh: connect to host 198.18.0.250 port 22: Connection timed out", True),
    ("ssh: connect to host 198.18.0.250 port 22: Connection refused", True),
    ("ssh: connect to host 198.18.0.250 port 22: No route to host", True),
    ("ssh: Could not resolve hostname nowhere: Name or service not known", True),
    ("deploy@198.18.0.250: Permission denied (publickey).", False),
    ("Host key verification failed.", False),
    (None, False),
])
def test_only_an_ssh_server_that_never_answered_is_never_answered(error, never):
    assert never_answered(error) is never
