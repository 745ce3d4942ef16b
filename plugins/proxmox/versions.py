"""Which Proxmox VE releases the suite supports, and the one-line refusal of any other.

PVE 9 (Debian 13, since August 2025) is the release the suite and its lab are built against (the lab's
emulator answers from PVE 9.1's own API schema). An 8.4 node answers every call the suite makes today,
but nothing here is checked against 8 and PVE 8 is past its end of life (Proxmox's lifecycle: August
2026): it is refused with the way out (pve8to9, then the upgrade) rather than deployed to unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SUPPORTED_MAJORS = (9,)
SUPPORTED_TEXT = "Proxmox VE 9.x (9.0 and later 9 releases)"
UPGRADE_HINT = {
    8: "PVE 8 is past its end of life: upgrade the node to 9 (run `pve8to9 --full`, then follow "
       "https://pve.proxmox.com/wiki/Upgrade_from_8_to_9)",
}


def pve_version(answer: Mapping) -> tuple[int, int, int] | None:
    """(major, minor, patch) from GET /version's answer, None when it holds no version."""
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", str(answer.get("version") or answer.get("release") or ""))
    if not match:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def unsupported_version_problem(answer: Mapping, url: str = "") -> str:
    """What is wrong with the node's PVE version ('' when the suite supports it), in one line."""
    version = pve_version(answer)
    where = f" on {url}" if url else ""
    if version is None:
        return f"Proxmox{where} answered /version without a version ({dict(answer)}); expected {SUPPORTED_TEXT}"
    if version[0] in SUPPORTED_MAJORS:
        return ""
    found = answer.get("version") or answer.get("release")
    hint = UPGRADE_HINT.get(version[0], "the suite has not been checked against this release")
    return f"Proxmox VE {found}{where} is not supported: this suite supports {SUPPORTED_TEXT}; {hint}"
