"""Field types of the inventory: each validator says what it expected and what it found."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN_ID = re.compile(r"^[^@!\s]+@[^@!\s]+![A-Za-z][A-Za-z0-9._-]*$")
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_GROUPS = ("all", "ungrouped", "runner", "bootstrap")


def _label(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError(
            f"{value!r} is not an RFC 1123 label (expected 1-63 of a-z 0-9 '-', not starting or ending with '-')"
        )
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        # Never echo it: a value that is not a variable name may be the secret itself.
        raise ValueError(
            "expected the NAME of an environment variable (e.g. PVE_TOKEN_SECRET), found a value (not shown)"
        )
    return value


def _token_id(value: str) -> str:
    if not _TOKEN_ID.match(value):
        raise ValueError(f"{value!r} is not a Proxmox API token id (expected user@realm!name, e.g. root@pam!deploy)")
    return value


def _role(value: str) -> str:
    if not _IDENT.match(value) or value in RESERVED_GROUPS:
        raise ValueError(
            f"{value!r} is not a usable role name (expected a-z 0-9 '_', starting with a letter: it becomes an "
            f"Ansible group; reserved: {', '.join(RESERVED_GROUPS)})"
        )
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL (expected e.g. http://198.18.0.200:8080/health)")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    return value


def _no_tls_off(value: bool) -> bool:
    if value is not True:
        raise ValueError("TLS verification cannot be turned off (expected true; trust a private CA with ca_file)")
    return value


Text = Annotated[str, Field(strict=True, min_length=1)]
IPv4 = Annotated[str, Field(strict=True, json_schema_extra={"format": "ipv4"}), AfterValidator(_ipv4)]
# Patterns go to the JSON schema only: the validators give the better message.
Label = Annotated[
    str,
    Field(strict=True, json_schema_extra={"pattern": _LABEL.pattern}),
    AfterValidator(_label),
]
HttpUrl = Annotated[
    str,
    Field(strict=True, json_schema_extra={"pattern": "^https?://"}),
    AfterValidator(_http_url),
]
TlsOn = Annotated[bool, Field(strict=True), AfterValidator(_no_tls_off)]
StatusCode = Annotated[int, Field(strict=True, ge=100, le=599)]
Flag = Annotated[bool, Field(strict=True)]
TokenId = Annotated[str, Field(strict=True), AfterValidator(_token_id)]
EnvVarName = Annotated[str, Field(strict=True), AfterValidator(_env_name)]
RoleName = Annotated[str, Field(strict=True), AfterValidator(_role)]
