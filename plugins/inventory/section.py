"""The base of every inventory section and of what the inventory derives: a misspelt key is an error."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base of every inventory section: a misspelt key is an error."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
