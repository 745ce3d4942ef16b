"""What a host check gives: a CheckResult (pass, fail or skip) whose message is a diagnosis.

The message names the host, what was expected, what was found, and where to look.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugins.inventory import Host

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True)
class CheckResult:
    """One check on one host (subject: the container or package name, if any): pass/fail/skip and why."""

    host: str
    check: str
    outcome: str
    message: str
    subject: str | None = None
    final: bool = False  # a failure no wait can change (a container stopped that nothing restarts)

    @property
    def passed(self) -> bool:
        """True when the check passed."""
        return self.outcome == PASS

    def __bool__(self) -> bool:
        """A result is true when the check passed."""
        return self.passed


def where(host: Host) -> str:
    """Name a host in a message: `app-demo (198.18.0.250)`."""
    return f"{host.hostname} ({host.ip})"


def result(host: Host, check: str, outcome: str, message: str, subject: str | None = None, *,
           final: bool = False) -> CheckResult:
    """Build a CheckResult for an inventory host (final: a failure that waiting cannot change)."""
    return CheckResult(host.hostname, check, outcome, message, subject, final)
