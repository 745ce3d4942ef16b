"""Freeze and thaw a lab container through its cgroup-v1 freezer, polling every 10 ms.

`lxc-freeze` does the same write but then polls the state once a SECOND: a freeze that is done at
once still costs most of a second (docs/reference/figures.md). Where the freezer file is not there (cgroup v2, another layout), the caller
falls back to lxc-freeze / lxc-unfreeze.
"""

from __future__ import annotations

import time
from pathlib import Path

FREEZER_ROOT = Path("/sys/fs/cgroup/freezer")
POLL = 0.01


def state_file(name: str, root: Path | None = None) -> Path | None:
    """The container's freezer.state (LXC names its payload cgroup lxc.payload.<name>), None if absent."""
    path = (root or FREEZER_ROOT) / f"lxc.payload.{name}" / "freezer.state"
    return path if path.is_file() else None


def set_state(path: Path, wanted: str, timeout: float) -> bool:
    """Write FROZEN or THAWED and wait until the freezer reports it; False at the timeout (left as is)."""
    path.write_text(wanted)
    deadline = time.monotonic() + timeout
    while path.read_text().strip() != wanted:
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True
