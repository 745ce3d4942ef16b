"""An emulator the tests start beside the lab's owns an nftables table of its own: the lab's firewall stays loaded.

Loading a table replaces it whole. A second emulator that loaded the lab's table would replace the lab's rules with
its own empty set, and every port of the lab's hosts would be open to the LAN until the lab's emulator restarted.
"""

from __future__ import annotations

import time

import pytest

from lab.pve.firewall import TABLE, nft_remove, nft_table_exists, nft_table_handle

pytest_plugins = ["pve_fixtures"]
pytestmark = pytest.mark.lab


def test_an_emulator_started_beside_the_lab_leaves_the_labs_firewall_table_alone(lab_hosts, tmp_path):
    """The lab's table keeps its handle while a test's emulator on another state dir, started without
    `--firewall-table`, starts, runs and stops; the test's own table is loaded while it runs and removed when it
    stops."""
    from pve_fixtures import serve_emulator

    before = nft_table_handle(TABLE)
    assert before is not None, f"the lab's emulator has not loaded its firewall table {TABLE}: is the lab up?"
    state = tmp_path / "pve"
    state.mkdir()
    with serve_emulator(state) as pve:  # no --firewall-table: the state dir alone decides
        assert pve.firewall_table != TABLE
        assert nft_table_exists(pve.firewall_table), f"the test's emulator did not load {pve.firewall_table}"
        assert f"firewall=bridge {pve.firewall_table}" in pve.log.read_text(), "the emulator's log names no table"
        assert nft_table_handle(TABLE) == before, f"the test's emulator loaded the lab's table {TABLE} again"
    assert not nft_table_exists(pve.firewall_table), f"{pve.firewall_table} outlived its emulator"
    assert nft_table_handle(TABLE) == before


def test_a_removed_table_is_loaded_again_by_the_firewalls_update_loop(lab_hosts, tmp_path):
    """pve-firewall's update loop: the emulator's table removed behind its back (`nft delete table`, a flush) is
    loaded again at its next check."""
    from pve_fixtures import serve_emulator

    state = tmp_path / "pve"
    state.mkdir()
    with serve_emulator(state, "--firewall-update", "0.5") as pve:
        loaded = nft_table_handle(pve.firewall_table)
        assert loaded is not None, f"the emulator did not load {pve.firewall_table}"
        assert nft_remove(pve.firewall_table)
        deadline = time.monotonic() + 10
        while nft_table_handle(pve.firewall_table) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        again = nft_table_handle(pve.firewall_table)
        assert again is not None and again != loaded, f"{pve.firewall_table} not loaded again within 10 s"
    assert "was removed or replaced outside the emulator" in pve.log.read_text()
