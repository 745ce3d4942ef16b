"""The inventory's `security:` section: what the security suite (suites/security) holds each host and route to."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from plugins.inventory.section import Strict

# lynis's hardening index runs 0-100: a floor outside it is a typo, refused at load.
LYNIS_INDEX_MAX = 100
MAX_EXPIRY_DAYS = 3650


class Security(Strict):
    """The floors of the security audit: lynis's hardening index per host, a certificate's remaining days."""

    lynis_floor: Annotated[int, Field(strict=True, ge=0, le=LYNIS_INDEX_MAX)] = Field(
        60, description="lowest lynis hardening index (0-100) a host may have")
    certificate_days: Annotated[int, Field(strict=True, ge=1, le=MAX_EXPIRY_DAYS)] = Field(
        30, description="a route's certificate must stay valid at least this many days")
