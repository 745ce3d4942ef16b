"""Where a secret's value comes from, by name only: an environment variable or an Ansible Vault variable."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from plugins.inventory.fields import EnvVarName
from plugins.inventory.section import Strict


class SecretSource(Strict):
    """Where a secret's value comes from: an environment variable (CI secret, `lab env`) or an Ansible Vault var."""

    env: EnvVarName | None = None
    vault: Annotated[str, Field(strict=True, pattern=r"^[a-z_][a-z0-9_]*$")] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretSource:
        if (self.env is None) == (self.vault is None):
            raise ValueError("expected exactly one of env (a variable's NAME) or vault (an Ansible Vault variable)")
        return self
