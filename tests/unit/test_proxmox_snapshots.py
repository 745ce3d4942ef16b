"""Snapshot names (PVE's pve-configid rule) and the retention prune selection."""

from __future__ import annotations

import pytest

from plugins.proxmox.snapshots import (
    InvalidSnapshotName,
    check_snapshot_name,
    is_deploy_snapshot,
    snapshot_name,
    snapshots_to_prune,
)
from plugins.proxmox.tasks import ProxmoxError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("run_id", ["12345", "20240611-1432", "a1b2c3", "run_7", 1])
def test_snapshot_name_is_deploy_and_the_run_id(run_id):
    """A valid run id gives deploy_<run id> unchanged."""
    assert snapshot_name(run_id) == f"deploy_{run_id}"


@pytest.mark.parametrize(
    ("run_id", "why"),
    [
        ("1.2", "not valid for PVE"),
        ("run id", "not valid for PVE"),
        ("ab:cd", "not valid for PVE"),
        ("x" * 34, "has 41 characters"),
        ("", "needs a run id"),
    ],
)
def test_snapshot_name_refuses_what_pve_would_refuse(run_id, why):
    """Names PVE answers with 400 are refused before any API write, with the rule in the message."""
    with pytest.raises(InvalidSnapshotName, match=why) as caught:
        snapshot_name(run_id)
    assert "letter first" in str(caught.value)
    assert isinstance(caught.value, ProxmoxError) and isinstance(caught.value, ValueError)


def test_forty_characters_is_the_limit():
    """deploy_ + 33 characters is exactly 40 and accepted."""
    assert len(snapshot_name("a" * 33)) == 40


@pytest.mark.parametrize("name", ["current", "vzdump", "CURRENT"])
def test_reserved_names_are_refused(name):
    """'current' and 'vzdump' are reserved by PVE."""
    with pytest.raises(InvalidSnapshotName, match="reserved"):
        check_snapshot_name(name)


@pytest.mark.parametrize("name", ["1abc", "-abc", "a", "_x", "é1"])
def test_bad_formats_are_refused(name):
    """Letter first, then letters/digits/_/-, at least 2 characters."""
    with pytest.raises(InvalidSnapshotName):
        check_snapshot_name(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("deploy_123", True), ("deploy_a-b", True), ("manual", False), ("deploy", False),
     ("pre_deploy_1", False), ("current", False), ("deploy_", False)],
)
def test_is_deploy_snapshot(name, expected):
    """Only deploy_<something> names made by snapshot_name count as deploy snapshots."""
    assert is_deploy_snapshot(name) is expected


def _snaps(*pairs):
    return [{"name": name, "snaptime": t, "description": ""} for name, t in pairs]


def test_prune_keeps_the_newest_within_retention_and_returns_the_oldest_first():
    """Five deploy snapshots, retention 3: the two oldest go, oldest first."""
    snaps = _snaps(("deploy_1", 100), ("deploy_2", 200), ("deploy_3", 300), ("deploy_4", 400), ("deploy_5", 500))
    assert snapshots_to_prune(snaps, 3) == ["deploy_1", "deploy_2"]


def test_prune_never_touches_other_snapshots_or_current():
    """Manual snapshots and PVE's 'current' entry are never candidates."""
    snaps = _snaps(("manual", 1), ("deploy_1", 100), ("deploy_2", 200), ("before-upgrade", 2))
    snaps.append({"name": "current", "description": "You are here!", "running": 1})
    assert snapshots_to_prune(snaps, 1) == ["deploy_1"]


def test_prune_counts_the_current_run_within_retention_and_never_prunes_it():
    """The current run's snapshot uses one retention slot and is kept even if its snaptime is oldest."""
    snaps = _snaps(("deploy_old", 100), ("deploy_mid", 200), ("deploy_new", 300), ("deploy_run", 50))
    assert snapshots_to_prune(snaps, 2, current="deploy_run") == ["deploy_old", "deploy_mid"]
    assert snapshots_to_prune(snaps, 0, current="deploy_run") == ["deploy_old", "deploy_mid", "deploy_new"]


def test_prune_with_nothing_beyond_retention_is_empty():
    """Fewer deploy snapshots than the retention: nothing to prune."""
    assert snapshots_to_prune(_snaps(("deploy_1", 1), ("deploy_2", 2)), 3) == []
    assert snapshots_to_prune([], 3) == []


def test_prune_orders_equal_snaptimes_by_name():
    """Snapshots taken in the same second are ordered by name, deterministically."""
    snaps = _snaps(("deploy_b", 100), ("deploy_a", 100), ("deploy_c", 100))
    assert snapshots_to_prune(snaps, 1) == ["deploy_a", "deploy_b"]


def test_negative_retention_is_refused():
    """A negative retention is an inventory mistake, not 'prune everything'."""
    with pytest.raises(ValueError, match="retention must be >= 0"):
        snapshots_to_prune([], -1)
