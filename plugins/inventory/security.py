"""The inventory's `security:` section: what the security suite (suites/security) holds each host and route to."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field

from plugins.inventory.fields import Label
from plugins.inventory.section import Strict

# The security suite's controls, in its table's column order (plugins/security reads them from here).
Control = Literal["ssh-audit", "ssh-auth", "root-login", "keys", "tls", "headers", "lynis", "openscap", "upgrades",
                  "docker"]
CONTROLS: tuple[str, ...] = get_args(Control)

# lynis's hardening index runs 0-100: a floor outside it is a typo, refused at load.
LYNIS_INDEX_MAX = 100
MAX_EXPIRY_DAYS = 3650
# An OpenSCAP rule id as the SCAP Security Guide names it, without its xccdf_org.ssgproject.content_rule_ prefix.
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", max_length=120)]
Reason = Annotated[str, Field(strict=True, min_length=10, max_length=500)]


class Accepted(Strict):
    """An accepted exception: a control that may fail on these hosts (all when none are named), and why."""

    control: Control
    hosts: list[Label] = Field([], description="the hosts it applies to; none: every host")
    reason: Reason = Field(description="why it is accepted, and what would lift it")


class Security(Strict):
    """The floors of the security audit: lynis's hardening index per host, a certificate's remaining days."""

    lynis_floor: Annotated[int, Field(strict=True, ge=0, le=LYNIS_INDEX_MAX)] = Field(
        60, description="lowest lynis hardening index (0-100) a host may have")
    certificate_days: Annotated[int, Field(strict=True, ge=1, le=MAX_EXPIRY_DAYS)] = Field(
        30, description="a route's certificate must stay valid at least this many days")
    accepted: list[Accepted] = Field([], description="controls accepted to fail, each with its reason")
    openscap_accepted: dict[RuleId, Reason] = Field(
        {}, description="OpenSCAP rules of this site accepted to fail, each with its reason (the ones every "
                        "unprivileged container fails are in plugins/security/openscap-accepted.yml)")

    def accepted_for(self, host: str, control: str) -> Accepted | None:
        """The accepted exception covering this host's control, if any."""
        return next((a for a in self.accepted if a.control == control and (not a.hosts or host in a.hosts)), None)
