"""A stalled lxc-freeze is thawed and retried, never left half-frozen (the stall needs a wedged cgroup: scripted)."""

from __future__ import annotations

import pytest

from lab import config, freezer
from lab.hosts import HostError, LabHosts

pytestmark = pytest.mark.unit


class ScriptedLxc:
    """Answers lxc-* calls: freeze fails (times out) the first `stalls` times; records every call."""

    def __init__(self, stalls: int):
        self.stalls, self.calls = stalls, []

    def __call__(self, tool, vmid, *args, what, timeout=120):
        self.calls.append(tool)
        if tool == "freeze" and self.stalls:
            self.stalls -= 1
            raise HostError(f"{what}: `lxc-freeze` timed out after {timeout}s")
        return ""


@pytest.fixture
def hosts(tmp_path, monkeypatch):
    """LabHosts on a temp lab dir whose host 901 reports running, away from the machine's cgroup freezer."""
    # a lab CT 901 running on the machine (a bench's fleet) has a real freezer.state: _set_frozen would use it
    # instead of the scripted lxc-freeze, and freeze that container for the test
    monkeypatch.setattr(freezer, "FREEZER_ROOT", tmp_path / "no-freezer")
    lab = LabHosts(config.LabPaths(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache"))
    monkeypatch.setattr(lab, "status", lambda vmid: "running")
    monkeypatch.setattr("lab.hosts._run", lambda cmd, what, timeout=120: "")  # sync
    return lab


def test_one_stall_is_thawed_then_the_freeze_is_retried(hosts, monkeypatch):
    """freeze times out, thaw, freeze again, then the block runs and the host is unfrozen."""
    lxc = ScriptedLxc(stalls=1)
    monkeypatch.setattr(hosts, "_lxc", lxc)
    with hosts._frozen(901):
        assert lxc.calls == ["freeze", "unfreeze", "freeze"]
    assert lxc.calls[-1] == "unfreeze"


def test_a_freeze_that_keeps_stalling_fails_and_leaves_the_host_thawed(hosts, monkeypatch):
    """Two stalls: the error says which freeze timed out; the last call thawed the host; the block never ran."""
    lxc = ScriptedLxc(stalls=2)
    monkeypatch.setattr(hosts, "_lxc", lxc)
    ran = []
    with pytest.raises(HostError, match=r"freeze 901: `lxc-freeze` timed out"), hosts._frozen(901):
        ran.append(True)
    assert lxc.calls == ["freeze", "unfreeze", "freeze", "unfreeze"] and not ran


class StuckState:
    """A freezer.state that stays FREEZING whatever is written (what a stalled cgroup shows)."""

    def __init__(self):
        self.written = []

    def write_text(self, text):
        self.written.append(text)

    def read_text(self):
        return "FREEZING\n"


def test_the_cgroup_freezer_is_used_when_it_exists(tmp_path, monkeypatch):
    """state_file finds lxc.payload.<name>/freezer.state; a state that is reached returns at once."""
    monkeypatch.setattr(freezer, "FREEZER_ROOT", tmp_path)
    assert freezer.state_file("ct901") is None
    state = tmp_path / "lxc.payload.ct901" / "freezer.state"
    state.parent.mkdir()
    state.write_text("THAWED\n")
    assert freezer.state_file("ct901") == state
    assert freezer.set_state(state, "FROZEN", timeout=1) and state.read_text() == "FROZEN"


def test_a_state_that_is_never_reached_gives_false_at_the_timeout():
    """set_state does not wait forever: False after the timeout, the caller thaws."""
    stuck = StuckState()
    assert freezer.set_state(stuck, "FROZEN", timeout=0.05) is False
    assert stuck.written == ["FROZEN"]
