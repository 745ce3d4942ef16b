"""Run a deploy's playbooks in waves: in inventory order, playbooks whose hosts do not overlap run together.

Bootstrap targets every host, so it is a wave of its own and always first; the role playbooks of a
homelab usually target one container each and then run side by side. The order of effects on any one
host is the same as running them one by one; only the waiting for unrelated hosts goes away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml


def playbook_hosts(playbook: Path, inventory: Any) -> frozenset[str]:
    """Hostnames a playbook's plays target (`all`, role groups, `runner`, or hostnames)."""
    plays = yaml.safe_load(playbook.read_text()) or []
    names: set[str] = set()
    for play in plays:
        pattern = play.get("hosts", "") if isinstance(play, dict) else ""
        for part in str(pattern).replace(",", ":").split(":"):
            part = part.strip()
            if not part:
                continue
            if part == "all":
                names |= {h.hostname for h in inventory.hosts}
            elif part == "runner":
                names |= {inventory.runner.host} if inventory.runner.host else set()
            elif part in inventory.roles:
                names |= {h.hostname for h in inventory.hosts_with_role(part)}
            else:
                names.add(part)
    return frozenset(names)


def waves(items: Iterable[tuple[Any, frozenset[str]]]) -> list[list[Any]]:
    """Group (item, hosts) in order into waves whose host sets are disjoint; an empty host set stands alone."""
    grouped: list[list[Any]] = []
    current: list[Any] = []
    used: set[str] = set()
    for item, hosts in items:
        if current and (not hosts or hosts & used or not used):
            grouped.append(current)
            current, used = [], set()
        current.append(item)
        used |= hosts
    if current:
        grouped.append(current)
    return grouped


def run_in_waves(playbooks: list[Path], inventory: Any, run: Callable[[Path], Any],
                 ok: Callable[[Any], bool]) -> dict[str, Any]:
    """Run every wave's playbooks concurrently, waves in order; stop after a wave with a failure."""
    results: dict[str, Any] = {}
    for wave in waves((p, playbook_hosts(p, inventory)) for p in playbooks):
        with ThreadPoolExecutor(max_workers=len(wave), thread_name_prefix="playbook") as pool:
            outcomes = list(pool.map(run, wave))
        results.update({p.stem: outcome for p, outcome in zip(wave, outcomes, strict=True)})
        if not all(ok(outcome) for outcome in outcomes):
            break
    return results
