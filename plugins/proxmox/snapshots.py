"""The snapshot policy: PVE's rule for a snapshot name, a deploy's name deploy_<run id>, what to prune.

Checked before any API write: a name PVE would refuse never reaches it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from plugins.proxmox.tasks import ProxmoxError

SNAPSHOT_PREFIX = "deploy_"
SNAPSHOT_MAX_LEN = 40
RESERVED_SNAPSHOT_NAMES = frozenset({"current", "vzdump"})
_CONFIGID = re.compile(r"^[a-z][a-z0-9_-]+$", re.IGNORECASE)  # PVE's pve-configid format


class InvalidSnapshotName(ProxmoxError, ValueError):
    """A snapshot name PVE would refuse; raised before any API write."""


def check_snapshot_name(name: str) -> str:
    """Return the name if PVE accepts it as a snapshot name, else raise InvalidSnapshotName."""
    rule = f"letter first, then letters, digits, '_' or '-', 2-{SNAPSHOT_MAX_LEN} characters"
    if not isinstance(name, str) or not _CONFIGID.match(name):
        raise InvalidSnapshotName(f"snapshot name {name!r} is not valid for PVE ({rule})")
    if len(name) > SNAPSHOT_MAX_LEN:
        raise InvalidSnapshotName(f"snapshot name {name!r} has {len(name)} characters; PVE allows {rule}")
    if name.lower() in RESERVED_SNAPSHOT_NAMES:
        raise InvalidSnapshotName(f"snapshot name {name!r} is reserved by PVE")
    return name


def snapshot_name(run_id: str | int) -> str:
    """The snapshot name of a deploy run: deploy_<run id>, checked against PVE's rule."""
    if str(run_id) == "":
        raise InvalidSnapshotName("snapshot name needs a run id, got an empty one (deploy_<run id>: letter first, "
                                  f"then letters, digits, '_' or '-', at most {SNAPSHOT_MAX_LEN} characters)")
    return check_snapshot_name(f"{SNAPSHOT_PREFIX}{run_id}")


def is_deploy_snapshot(name: str) -> bool:
    """Tell whether a snapshot name was made by snapshot_name (deploy_<run id>)."""
    return (isinstance(name, str) and name.startswith(SNAPSHOT_PREFIX) and len(name) > len(SNAPSHOT_PREFIX)
            and bool(_CONFIGID.match(name)))


def snapshots_to_prune(snapshots: Iterable[Mapping], retention: int, *, current: str | None = None) -> list[str]:
    """Names of the oldest deploy_* snapshots beyond retention (current run's included in it, never pruned)."""
    if retention < 0:
        raise ValueError(f"snapshot retention must be >= 0, got {retention}")
    deploys = [s for s in snapshots if is_deploy_snapshot(s.get("name", ""))]
    newest_first = sorted(deploys, key=lambda s: (int(s.get("snaptime") or 0), s["name"]), reverse=True)
    has_current = any(s["name"] == current for s in newest_first)
    others = [s for s in newest_first if s["name"] != current]
    keep = max(retention - (1 if has_current else 0), 0)
    return [s["name"] for s in reversed(others[keep:])]
