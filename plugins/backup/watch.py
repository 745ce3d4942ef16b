"""Backups watched: each host's newest vzdump younger than the policy's schedule allows, the last restic check
passed. The health suite asks these; each answer is a verdict with a one-line diagnosis naming the stale host.

The allowed age comes from the schedule: the longest gap between two runs of its calendar event (every day:
24 h; some weekdays: the longest stretch between them; `hourly` or a `*` hour: 1 h), plus GRACE for the run
itself and a late start. `daily` or `mon..sun 02:30` → 26 h.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plugins.backup.run import STATUS_FILE, staging_dir

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory

HOUR = 3600
DAY = 24 * HOUR
GRACE = 2 * HOUR  # a job that starts late or runs long is not stale yet
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# systemd's and PVE's shorthands (systemd.time(7), "Calendar Events")
_NAMED = {"minutely": 60, "hourly": HOUR, "daily": DAY, "weekly": 7 * DAY, "monthly": 31 * DAY,
          "quarterly": 92 * DAY, "semiannually": 184 * DAY, "yearly": 366 * DAY, "annually": 366 * DAY}
_DAY_WORD = re.compile(r"^[a-z]{3}(\.\.[a-z]{3})?(,[a-z]{3}(\.\.[a-z]{3})?)*$")


def _weekdays(spec: str) -> set[int]:
    """`mon..fri,sun` → {0, 1, 2, 3, 4, 6}."""
    days: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("..")
        start, end = WEEKDAYS.index(first[:3]), WEEKDAYS.index((last or first)[:3])
        days.update(range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)])
    return days


def schedule_interval(schedule: str) -> int:
    """The longest gap, in seconds, between two runs of a calendar event (`sat 02:00` → 7 days)."""
    words = schedule.strip().lower().split()
    if len(words) == 1 and words[0] in _NAMED:
        return _NAMED[words[0]]
    days = set(range(7))
    if words and _DAY_WORD.match(words[0]) and all(w[:3] in WEEKDAYS for w in re.split(r"\.\.|,", words[0])):
        days = _weekdays(words.pop(0))
    hour = words[0].split(":")[0] if words and ":" in words[0] else ""
    if len(days) == 7 and ("*" in hour or "/" in hour):
        return HOUR
    ordered = sorted(days)
    gaps = [(ordered[(i + 1) % len(ordered)] - day) % 7 or 7 for i, day in enumerate(ordered)]
    return max(gaps) * DAY


def max_backup_age(schedule: str) -> int:
    """How old, in seconds, a host's newest backup may be under this schedule (interval + GRACE)."""
    return schedule_interval(schedule) + GRACE


@dataclass(frozen=True)
class Verdict:
    """One watch's outcome: passed, or why not (one line); skipped when there is nothing to judge yet."""

    passed: bool
    message: str
    skipped: bool = False


def _hours(seconds: float) -> str:
    return f"{seconds / HOUR:.1f} h"


def backup_freshness(inventory: Inventory, host: Host, backups: list[dict], now: float | None = None) -> Verdict:
    """The host's newest backup among `backups` (the policy storage's content entries, every CT's) against the
    schedule's allowed age. No backup of any host the policy backs up yet: skipped (nothing has run); of this host
    only: failed."""
    policy = inventory.backup
    now = time.time() if now is None else now
    allowed = max_backup_age(policy.schedule)
    rule = f"the policy allows {_hours(allowed)} (schedule '{policy.schedule}', {inventory.where('backup.schedule')})"
    own = sorted((row for row in backups if int(row.get("vmid", -1)) == host.vmid),
                 key=lambda row: row.get("ctime", 0), reverse=True)
    watched = {h.vmid for h in inventory.hosts if h.hostname not in policy.exclude}
    if not own:
        if not any(int(row.get("vmid", -1)) in watched for row in backups):  # another CT's backups judge nothing
            return Verdict(False, f"no backup on storage '{policy.storage}' of any host yet: run make backup, or wait "
                                  f"for the node's job ({policy.schedule})", skipped=True)
        return Verdict(False, f"{host.hostname} ({host.vmid}) has no backup on storage '{policy.storage}' while "
                              f"other hosts have; {rule}")
    newest = own[0]
    age = now - int(newest.get("ctime", 0))
    if age > allowed:
        return Verdict(False, f"{host.hostname} ({host.vmid}) is stale: its newest backup {newest['volid']} is "
                              f"{_hours(age)} old; {rule}")
    return Verdict(True, f"{host.hostname}: newest backup {_hours(age)} old ({newest['volid']})")


def status_path(inventory: Inventory) -> Path:
    """Where `make backup` records its last restic check on the runner (<state dir>/backups/<env>/status.json)."""
    return staging_dir(inventory) / STATUS_FILE


def restic_check(inventory: Inventory, path: Path | None = None) -> Verdict:
    """The last `restic check` make backup ran on this runner: passed, failed (with restic's line), or skipped
    when make backup never ran here."""
    path = status_path(inventory) if path is None else path
    try:
        check = json.loads(path.read_text()).get("check") or {}
    except FileNotFoundError:
        return Verdict(False, f"make backup has not run on this runner yet (no {path})", skipped=True)
    except (OSError, ValueError) as error:
        return Verdict(False, f"{path}: unreadable ({error}); run make backup to write it again")
    if not check:
        return Verdict(False, f"{path}: no restic check recorded yet (the off-site copy never got that far): run "
                              "make backup")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(int(check.get("at", 0))))
    if not check.get("ok"):
        return Verdict(False, f"the last restic check ({when}) of {inventory.backup.offsite.repository} failed: "
                              f"{check.get('error') or 'no reason recorded'}")
    return Verdict(True, f"the last restic check ({when}) passed")
