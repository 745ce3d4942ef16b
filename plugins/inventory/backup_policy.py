"""The inventory's backup policy (`backup:`): PVE's backup job, the application dumps and the off-site copy.

Everything here is data and its grammar; the rules that span sections (a left-out host must be a host of the
inventory) are backup_problems, called with the inventory's other cross-field rules. Secrets are named only
(`{env: VAR}` or `{vault: var}`), never written: the values are read where they are used (plugins/backup).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from plugins.inventory.errors import Problem
from plugins.inventory.fields import AbsolutePath, HttpUrl, Label, Region, S3Bucket, grammar
from plugins.inventory.masking import shown
from plugins.inventory.secret_source import SecretSource
from plugins.inventory.section import Strict

# pve-storage's `pve-storage-id` format (PVE/JSONSchema.pm: parse_storage_id)
_STORAGE_ID = re.compile(r"^[a-z][a-z0-9\-_.]*[a-z0-9]$")
# A calendar event as PVE and systemd read it (`daily`, `02:30`, `mon..fri 01:00`, `*-*-* 03:00`, `sat/2`):
# PVE's are a subset of systemd's OnCalendar, so one value drives both the node's job and the hosts' timer.
# Its words and separators only; PVE parses it for real when the job is written, and says what is wrong.
_CALENDAR = re.compile(r"^(?=.*[A-Za-z0-9*])[A-Za-z0-9*:,./~ -]{1,128}$")
# restic's repository path inside the bucket: plain names between slashes
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$")
MAX_KEEP = 10_000  # a count of backups past which it is a typo

StorageId = grammar(_STORAGE_ID, "a Proxmox storage id (expected a-z 0-9 - _ ., starting with a letter, e.g. local)")
CalendarEvent = grammar(_CALENDAR, "a calendar event (expected PVE's and systemd's form, e.g. daily, 02:30 or "
                                   "mon..fri 01:00)")
RepositoryPrefix = grammar(_PREFIX, "a path inside the bucket (expected names of A-Z a-z 0-9 _ . - between "
                                    "slashes, e.g. restic/homelab)")
Keep = Annotated[int, Field(strict=True, ge=0, le=MAX_KEEP)]


class Retention(Strict):
    """How many backups to keep, as PVE's prune-backups and `restic forget` count them."""

    keep_last: Keep = 0
    keep_daily: Keep = 0
    keep_weekly: Keep = 0
    keep_monthly: Keep = 0

    @model_validator(mode="after")
    def _keeps_something(self) -> Retention:
        if not any(self.model_dump().values()):
            # PVE reads all-zero as "keep everything" and restic refuses to forget with nothing to keep: either
            # is a surprise; a policy says what it keeps
            raise ValueError("a retention of 0 everywhere keeps nothing (expected at least one of keep_last, "
                             "keep_daily, keep_weekly, keep_monthly > 0)")
        return self

    def prune_backups(self) -> str:
        """PVE's `prune-backups` property string: `keep-last=3,keep-daily=7`."""
        return ",".join(f"{key.replace('_', '-')}={value}" for key, value in self.model_dump().items() if value)

    def forget_flags(self) -> list[str]:
        """restic forget's options for the same counts: `--keep-last 3 --keep-daily 7`."""
        return [part for key, value in self.model_dump().items() if value
                for part in (f"--{key.replace('_', '-')}", str(value))]


class Dumps(Strict):
    """The application dumps on each host: where they are written and when the hosts' timer takes them."""

    directory: AbsolutePath = Field("/var/backups/homelab", description="where every dump of a host is written "
                                    "(vzdump and the off-site copy take it from there)")
    schedule: CalendarEvent = Field(description="systemd OnCalendar of the hosts' dump timer: before the PVE job")


class Offsite(Strict):
    """The encrypted copy off the node: a restic repository in an S3 bucket, its secrets by name."""

    endpoint: HttpUrl = Field(description="the S3 store's URL")
    bucket: S3Bucket
    prefix: RepositoryPrefix = Field("restic", description="the repository's path inside the bucket")
    region: Region | None = None
    password: SecretSource = Field(description="where the restic repository's password comes from")
    access_key_id: SecretSource = Field(description="where the S3 access key id comes from")
    secret_access_key: SecretSource = Field(description="where the S3 secret key comes from")

    @property
    def repository(self) -> str:
        """restic's repository string: `s3:<endpoint>/<bucket>/<prefix>`."""
        return f"s3:{self.endpoint.rstrip('/')}/{self.bucket}/{self.prefix}"


class BackupPolicy(Strict):
    """The backup policy: PVE's job (storage, schedule, mode, retention), the dumps, the off-site copy."""

    storage: StorageId = Field(description="the PVE storage (content backup) vzdump writes to")
    schedule: CalendarEvent = Field(description="the PVE backup job's calendar event")
    mode: Literal["snapshot", "suspend", "stop"] = "snapshot"
    retention: Retention
    exclude: list[Label] = Field([], description="hostnames left out of the backup job and the dumps")
    dumps: Dumps
    offsite: Offsite


def backup_problems(inv: Any) -> list[Problem]:
    """The backup section against the rest of the inventory: every left-out host must be one of its hosts."""
    policy = getattr(inv, "backup", None)
    if policy is None:
        return []
    known = [h.hostname for h in inv.hosts]
    problems: list[Problem] = []
    for index, name in enumerate(policy.exclude):
        if name not in known:
            problems.append((f"backup.exclude[{index}]", (f"{shown(name)} is not a host of this inventory (expected "
                                                        f"one of: {', '.join(known)})")))
        elif name in policy.exclude[:index]:
            problems.append((f"backup.exclude[{index}]", f"{name} is listed twice (expected each host once)"))
    return problems
