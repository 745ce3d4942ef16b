"""An emulator the tests start beside the lab's owns an nftables table of its own: the lab's firewall stays loaded.

Loading a table replaces it whole. A second emulator that loaded the lab's table would replace the lab's rules with
its own empty set, and every port of the lab's hosts would be open to the LAN until the lab's emulator restarted.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from lab.pve.firewall import TABLE, nft_table_exists

pytest_plugins = ["pve_fixtures"]
pytestmark = pytest.mark.lab


def table_handle(name: str) -> int | None:
    """The kernel's handle of a bridge table (a table deleted and loaded again gets a new one), None if none."""
    done = subprocess.run(["nft", "-a", "list", "table", "bridge", name], capture_output=True, text=True, check=False)
    found = re.search(r"# handle (\d+)", done.stdout) if done.returncode == 0 else None
    return int(found.group(1)) if found else None


def test_an_emulator_started_beside_the_lab_leaves_the_labs_firewall_table_alone(lab_hosts, tmp_path):
    """The lab's table keeps its handle while a test's emulator starts, runs and stops; the test's own table is
    loaded while it runs and removed when it stops."""
    from pve_fixtures import serve_emulator

    before = table_handle(TABLE)
    assert before is not None, f"the lab's emulator has not loaded its firewall table {TABLE}: is the lab up?"
    state = tmp_path / "pve"
    state.mkdir()
    with serve_emulator(state) as pve:
        assert pve.firewall_table != TABLE
        assert nft_table_exists(pve.firewall_table), f"the test's emulator did not load {pve.firewall_table}"
        assert table_handle(TABLE) == before, f"the test's emulator loaded the lab's table {TABLE} again"
    assert not nft_table_exists(pve.firewall_table), f"{pve.firewall_table} outlived its emulator"
    assert table_handle(TABLE) == before
